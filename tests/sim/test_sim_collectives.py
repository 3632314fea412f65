"""Simulated collectives: exact timelines on a tiny ring, agreement with the closed forms
where they hold, pipelining, stragglers, contention at a parameter server."""

from __future__ import annotations

import pytest

from perfmodel.analytic.collectives import collective_time
from perfmodel.analytic.network import predict_collective
from perfmodel.errors import ShapeError, UnsupportedOpError
from perfmodel.hardware.system import load_system, system_from_dict
from perfmodel.sim.collectives import simulate_collective
from tests.hardware.test_system import tiny_system_dict


def ring_system(p: int, gbps: float = 1e-9, alpha_us: float = 0.0):
    """p devices on a direct ring: gbps 1e-9 = 1 byte/s per direction."""
    return system_from_dict(tiny_system_dict(
        devices_per_node={"value": p, "source": "HAND"},
        scale_up={"topology": "ring",
                  "bandwidth_GBps_per_direction": {"value": gbps, "source": "HAND"},
                  "latency_us": {"value": alpha_us, "source": "HAND"}}))


def test_exact_timeline_of_a_three_device_ring_all_reduce():
    # V = 3 bytes on 3 devices at 1 B/s: 2(p-1) = 4 steps of one 1-byte block each
    r = simulate_collective(ring_system(3), "all_reduce", 3.0)
    assert r.time_s == 4.0
    links = ["n0.d0->n0.d1", "n0.d1->n0.d2", "n0.d2->n0.d0"]
    assert r.timeline.tuples() == [(link, float(s), float(s + 1), f"all_reduce s{s}")
                                   for s in range(4) for link in links]


def test_exact_timeline_with_latency():
    # alpha = 0.5 s: each step holds its link 1 s, the next starts when the data arrived
    r = simulate_collective(ring_system(3, alpha_us=0.5e6), "all_gather", 3.0)
    assert r.time_s == 2 * 1.5                     # (p-1)(alpha + V/(p b))
    assert [t[1:3] for t in r.timeline.tuples() if t[0] == "n0.d0->n0.d1"] == [
        (0.0, 1.0), (1.5, 2.5)]


@pytest.mark.parametrize("p", [4, 16, 64])
@pytest.mark.parametrize("size", [1e6, 256e6])
@pytest.mark.parametrize("prim", ["all_reduce", "reduce_scatter", "all_gather"])
def test_des_equals_analytic_within_1_percent_for_an_uncontended_ring(p, size, prim):
    s = ring_system(p, gbps=100.0, alpha_us=2.0)
    sim = simulate_collective(s, prim, size, record=False).time_s
    closed = float(collective_time(prim, size, p, 2e-6, 100e9, "ring"))
    assert sim == pytest.approx(closed, rel=0.01)


@pytest.mark.parametrize("system, nodes, algo", [
    ("dgx-a100", 1, "ring"), ("dgx-h100", 1, "ring"), ("pcie-8x-4090", 1, "ring"),
    ("ascend-910b-8", 1, "ring"), ("tpu-v4-4x4x4", 1, "ring"), ("dgx-a100", 2, "hierarchical"),
    ("dgx-a100", 1, "parameter_server"), ("pcie-8x-4090", 1, "parameter_server"),
    ("azure-nc-a100-v4", 1, "ring")])  # NVLink bridges + PCIe uplinks at their own figure
def test_des_equals_the_system_model_where_links_are_not_shared(system, nodes, algo):
    s = load_system(system)
    size = 1 << 28
    sim = simulate_collective(s, "all_reduce", size, nodes=nodes, algorithm=algo,
                              record=False).time_s
    model = predict_collective(s, "all_reduce", [size], nodes=nodes, algorithm=algo)
    assert sim == pytest.approx(model.table["time_us"][0] * 1e-6, rel=0.01)


def test_seed_claim_in_the_simulator_ring_time_tends_to_2v_over_b():
    times = [simulate_collective(ring_system(p, gbps=1.0), "all_reduce", 1e9,
                                 record=False).time_s for p in (2, 4, 8, 16, 32)]
    assert times == pytest.approx([2 * (p - 1) / p for p in (2, 4, 8, 16, 32)])
    assert all(a < b for a, b in zip(times, times[1:], strict=False)) and times[-1] < 2.0


def test_chunked_steps_pipeline_and_hide_latency():
    # p = 4, V = 4 B at 1 B/s, alpha = 0.5 s. One piece per step: 6 x (0.5 + 1) = 9 s.
    s = ring_system(4, alpha_us=0.5e6)
    assert simulate_collective(s, "all_reduce", 4.0).time_s == 9.0
    # 4 pieces of 0.25 B: the link never idles (4 x 0.25 >= 0.25 + 0.5), so only the
    # last arrival waits: 6 x 1 + 0.5 = 6.5 s
    assert simulate_collective(s, "all_reduce", 4.0, chunks=4).time_s == pytest.approx(6.5)


def test_a_straggler_sets_the_pace_of_the_ring():
    # p = 4, V = 4 B, 1 B/s: 6 steps of 1 s; device d1 at half speed makes every step 2 s
    s = ring_system(4)
    assert simulate_collective(s, "all_reduce", 4.0).time_s == 6.0
    slow = simulate_collective(s, "all_reduce", 4.0, device_slowdown={"n0.d1": 2.0})
    assert slow.time_s == 12.0
    link = simulate_collective(s, "all_reduce", 4.0,
                               link_slowdown={("n0.d2", "n0.d3"): 3.0})
    assert link.time_s == 18.0


def test_parameter_server_link_is_the_bottleneck():
    # 4 devices on a switch at 1 B/s, V = 1 B: the server's port takes 3 pushes then
    # gives 3 pulls: 6 s; ring all-reduce: 6 steps of 1/4 B = 1.5 s; ratio p = 4
    d = tiny_system_dict(devices_per_node={"value": 4, "source": "HAND"})
    d["scale_up"]["topology"] = "switch"
    s = system_from_dict(d)
    ps = simulate_collective(s, "all_reduce", 1.0, algorithm="parameter_server")
    ring = simulate_collective(s, "all_reduce", 1.0)
    assert ps.time_s == 6.0 and ring.time_s == 1.5
    server_in = ps.timeline.events[ps.timeline.events["resource"] == "n0.sw->n0.d0"]
    assert len(server_in) == 3 and (server_in["end"] - server_in["start"]).sum() == 3.0


def test_simulation_is_deterministic():
    s = load_system("polaris")
    a = simulate_collective(s, "all_gather", 1 << 24, nodes=4, chunks=2)
    b = simulate_collective(s, "all_gather", 1 << 24, nodes=4, chunks=2)
    assert a.time_s == b.time_s and a.timeline.events.equals(b.timeline.events)


def test_rail_imbalance_in_a_multi_node_all_to_all():
    # pairwise rounds leave some NICs with two flows: slower than the balanced bound
    s = load_system("polaris")
    sim = simulate_collective(s, "all_to_all", 1 << 28, nodes=2, record=False).time_s
    model = predict_collective(s, "all_to_all", [1 << 28], nodes=2).table["time_us"][0]
    assert sim > model * 1e-6 * 1.2


def test_bad_requests():
    s = load_system("dgx-a100")
    with pytest.raises(UnsupportedOpError, match="no tree all_reduce"):
        simulate_collective(s, "all_reduce", 1e6, algorithm="tree")
    with pytest.raises(ShapeError):
        simulate_collective(s, "all_reduce", 1e6, chunks=0)
    with pytest.raises(ShapeError):
        simulate_collective(s, "all_reduce", -1.0)


@pytest.mark.parametrize("system, nodes, algo, transfers", [
    # 16 devices x (2 (g-1) intra steps + 2 (n-1) inter steps) = 16 x (14 + 2)
    ("dgx-a100", 2, "hierarchical", 256),
    # 64 chips x 6 parts (axis, direction) x 2 x (3 axes x 3 steps)
    ("tpu-v4-4x4x4", 1, "ring", 6912)])
def test_chunked_multi_phase_collectives_send_every_piece(system, nodes, algo, transfers):
    # a phase starts once every piece of the previous phase's last step has arrived; with
    # k pieces per step each phase sends k times as many transfers, and pipelining the
    # pieces can only shorten the run (it hides per-step latency)
    s = load_system(system)
    one = simulate_collective(s, "all_reduce", 1 << 28, nodes=nodes, algorithm=algo)
    four = simulate_collective(s, "all_reduce", 1 << 28, nodes=nodes, algorithm=algo, chunks=4)
    assert one.transfers == transfers and four.transfers == 4 * transfers
    assert one.time_s * 0.99 < four.time_s <= one.time_s


def test_uneven_ring_is_set_by_its_slowest_link_and_needs_an_event_per_transfer():
    # p = 4, V = 4 B, 1 B/s: link i slowed by 1 + i/4, so step pieces leave and arrive at
    # different instants; the slowest link (x 1.75) paces the 6 steps: 6 x 1.75 = 10.5 s
    s = ring_system(4)
    slow = {(f"n0.d{i}", f"n0.d{(i + 1) % 4}"): 1 + i / 4 for i in range(4)}
    r = simulate_collective(s, "all_reduce", 4.0, link_slowdown=slow)
    assert r.time_s == pytest.approx(10.5)
    assert r.transfers == 24 and r.events > 12  # arrivals at distinct instants
