"""A collective over message sizes by either rung (model or simulator) in one table, and
parameter server against ring all-reduce, on tiny systems with hand-worked times."""

from __future__ import annotations

import pandas as pd
import pytest

from perfmodel.analytic.network import predict_collective
from perfmodel.errors import PlanError, UnknownNameError
from perfmodel.hardware.system import load_system, system_from_dict
from perfmodel.sim.collective_sweep import collective_sweep, compare_algorithms
from tests.hardware.test_system import tiny_system_dict
from tests.sim.test_sim_collectives import ring_system

NCCL = ["size_bytes", "count", "type", "time_us", "algbw_GBps", "busbw_GBps", "algorithm", "p",
        "nodes", "per_node"]


def switch_system(p: int):
    """p devices on one switch, 1 byte/s per direction, no latency."""
    return system_from_dict(tiny_system_dict(
        devices_per_node={"value": p, "source": "HAND"},
        scale_up={"topology": "switch",
                  "bandwidth_GBps_per_direction": {"value": 1e-9, "source": "HAND"},
                  "latency_us": {"value": 0, "source": "HAND"}}))


def test_analytic_sweep_is_the_models_table_and_assumptions():
    s = load_system("dgx-h100")
    sweep = collective_sweep(s, "all_gather", [8, 1 << 20, 1 << 30], algorithm="ring")
    pred = predict_collective(s, "all_gather", [8, 1 << 20, 1 << 30], algorithm="ring")
    pd.testing.assert_frame_equal(sweep.table, pred.table)
    assert sweep.assumptions == pred.assumptions
    assert sweep.method == "analytic" and sweep.last_run is None


def test_simulated_ring_all_reduce_by_hand():
    # V = 3 bytes on a 3-device ring at 1 B/s: 2(p-1) = 4 steps of 1 byte = 4 s; V = 6: 8 s.
    # algbw = V / t = 0.75 B/s; busbw = algbw x 2(p-1)/p = 1 B/s (nccl-tests factor)
    sweep = collective_sweep(ring_system(3), "all_reduce", [3, 6], dtype="int8", method="sim")
    t = sweep.table
    assert list(t.columns) == [*NCCL, "events", "sim_wall_s"]
    assert t["time_us"].tolist() == [4e6, 8e6]
    assert t["algbw_GBps"].tolist() == pytest.approx([0.75e-9, 0.75e-9])
    assert t["busbw_GBps"].tolist() == pytest.approx([1e-9, 1e-9])
    assert t["count"].tolist() == [3, 6] and set(t["algorithm"]) == {"ring"}  # auto -> ring
    assert sweep.method == "sim" and sweep.last_run.time_s == 8.0
    assert sweep.assumptions["nodes"] == 1 and sweep.assumptions["per_node"] == 3


def test_the_model_agrees_with_the_simulator_on_an_uncontended_ring():
    s = ring_system(3)
    model = collective_sweep(s, "all_reduce", [3, 6], dtype="int8").table
    sim = collective_sweep(s, "all_reduce", [3, 6], dtype="int8", method="sim").table
    pd.testing.assert_frame_equal(model[NCCL], sim[NCCL])


def test_record_keeps_the_last_runs_timeline():
    sweep = collective_sweep(ring_system(3), "all_reduce", [3], method="sim", record=True)
    links = ["n0.d0->n0.d1", "n0.d1->n0.d2", "n0.d2->n0.d0"]
    assert sweep.last_run.timeline.tuples() == [
        (link, float(s), float(s + 1), f"all_reduce s{s}") for s in range(4) for link in links]


def test_a_straggler_at_half_speed_doubles_the_ring():
    # every ring step waits for the slow device's link: 4 steps x 2 s = 8 s instead of 4 s
    sweep = collective_sweep(ring_system(3), "all_reduce", [3], method="sim",
                             slowdown={"n0.d1": 2.0})
    assert sweep.table["time_us"].tolist() == [8e6]


def test_unknown_method_and_a_slowdown_without_the_simulator_are_refused():
    s = ring_system(3)
    with pytest.raises(UnknownNameError, match="unknown collective method 'des'") as exc:
        collective_sweep(s, "all_reduce", [3], method="des")
    assert "analytic" in exc.value.hint and "sim" in exc.value.hint
    with pytest.raises(PlanError, match="needs the simulator") as exc:
        collective_sweep(s, "all_reduce", [3], slowdown={"n0.d1": 2.0})
    assert "method='sim'" in exc.value.hint


def test_parameter_server_is_p_times_ring_on_one_switch():
    # p = 4, V = 4 bytes, 1 B/s: ring 2(p-1)V/(p b) = 6 s; the server's link carries (p-1)V
    # per phase, two phases: 24 s; ratio p = 4, simulated too
    df = compare_algorithms(switch_system(4), 4.0)
    assert df["algorithm"].tolist() == ["ring", "parameter_server"]
    assert df["time_us"].tolist() == [6e6, 24e6] and df["sim_time_us"].tolist() == [6e6, 24e6]
    assert df["x_ring"].tolist() == [1.0, 4.0] and df["sim_x_ring"].tolist() == [1.0, 4.0]
    assert df["p"].tolist() == [4, 4] and df["size_bytes"].tolist() == [4, 4]


def test_parameter_server_is_p_times_ring_at_large_messages_on_shipped_pcie():
    # pcie-8x-4090, 8 GPUs, 1 GiB: bandwidth-bound, PS/ring = p = 8 (the CLI footer's claim)
    df = compare_algorithms(load_system("pcie-8x-4090"), float(1 << 30), simulate=False)
    assert list(df.columns) == ["algorithm", "size_bytes", "p", "time_us", "busbw_GBps",
                                "x_ring"]
    assert df["x_ring"].iloc[1] == pytest.approx(8, rel=0.01)
