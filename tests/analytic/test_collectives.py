"""Alpha-beta collectives: the closed forms DOMAIN.md section 4 states, nccl-tests
conventions, and the model on a SystemSpec. Every number is worked by hand in the test."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.analytic.collectives import (
    BUS_FACTOR,
    CLOSED_FORMS,
    busbw,
    collective_cost,
    collective_time,
    hierarchical_time,
    ps_over_ring_factor,
)
from perfmodel.analytic.nccl import TREE_PROTOCOLS, nccl_all_reduce_choice
from perfmodel.analytic.network import levels, predict_collective
from perfmodel.errors import PlanError, ShapeError, UnknownNameError, UnsupportedOpError
from perfmodel.hardware.system import load_system, system_from_dict, system_to_dict
from tests.hardware.test_system import tiny_system_dict

V, B, ALPHA = 8e9, 100e9, 5e-6  # 8 GB, 100 GB/s per direction, 5 us per step


@pytest.mark.parametrize("p", [2, 3, 8, 64, 1000])
def test_ring_reduce_scatter_sends_p_minus_1_over_p_of_v_in_p_minus_1_steps(p):
    steps, traffic = collective_cost("reduce_scatter", V, p, "ring")
    assert steps == p - 1
    assert traffic == pytest.approx((p - 1) * V / p)
    # all-gather mirrors it (DOMAIN.md section 4)
    assert collective_cost("all_gather", V, p, "ring")[1] == pytest.approx((p - 1) * V / p)


@pytest.mark.parametrize("p", [2, 4, 8, 16, 1024])
def test_ring_all_reduce_is_2_p_minus_1_v_over_pb_plus_2_p_minus_1_alpha(p):
    t = collective_time("all_reduce", V, p, ALPHA, B, "ring")
    assert t == pytest.approx(2 * (p - 1) * V / (p * B) + 2 * (p - 1) * ALPHA)
    # p = 8 by hand: 2*7*8e9/(8*100e9) + 14*5e-6 = 0.14 + 0.00007
    if p == 8:
        assert t == pytest.approx(0.14007)


@pytest.mark.parametrize("p, size", [(4, 1e6), (8, 1e9), (64, 4e3), (512, 1e10)])
def test_parameter_server_slower_than_ring_by_the_closed_form_factor(p, size):
    ratio = ps_over_ring_factor(size, p, ALPHA, B)
    ps = 2 * ALPHA + 2 * (p - 1) * size / B               # server link carries (p-1)V twice
    ring = 2 * (p - 1) * ALPHA + 2 * (p - 1) * size / (p * B)
    assert ratio == pytest.approx(ps / ring)
    assert ps_over_ring_factor(size, p, 0.0, B) == pytest.approx(p)  # bandwidth-bound: p


def test_seed_claim_ring_time_tends_to_2v_over_b_while_traffic_grows():
    p = np.array([2, 4, 16, 256, 4096, 65536])
    t = collective_time("all_reduce", V, p, 0.0, B, "ring")
    assert np.all(np.diff(t) > 0) and t[-1] < 2 * V / B    # rises towards 2V/b, never above
    assert t[-1] == pytest.approx(2 * V / B, rel=1e-4)      # 2(p-1)/p -> 2
    assert t[0] == pytest.approx(V / B)                     # p = 2: V/b
    # total traffic of one phase, summed over devices: p * (p-1)V/p = (p-1)V, growing with p
    _, per_device = collective_cost("reduce_scatter", V, p, "ring")
    assert np.allclose(p * per_device, (p - 1) * V)


@pytest.mark.parametrize("prim, factor", [("all_reduce", 2 * 7 / 8), ("all_gather", 7 / 8),
                                          ("reduce_scatter", 7 / 8), ("broadcast", 1),
                                          ("reduce", 1), ("all_to_all", 7 / 8),
                                          ("send_recv", 1)])
def test_nccl_tests_bus_bandwidth_factors(prim, factor):
    # NVIDIA/nccl-tests doc/PERFORMANCE.md: busbw = algbw x factor, n = 8
    assert float(BUS_FACTOR[prim](np.float64(8))) == pytest.approx(factor)
    assert float(busbw(prim, 1e9, 0.01, 8)) == pytest.approx(1e11 * factor)


@pytest.mark.parametrize("prim", ["all_reduce", "reduce_scatter", "all_gather"])
def test_bandwidth_optimal_ring_has_busbw_equal_to_the_link(prim):
    t = collective_time(prim, V, 8, 0.0, B, "ring")
    assert float(busbw(prim, V, t, 8)) == pytest.approx(B)


def test_recursive_and_tree_step_counts():
    assert collective_cost("all_reduce", V, 8, "recursive")[0] == 6      # 2 log2 8
    assert collective_cost("all_gather", V, 6, "recursive")[0] == 3      # ceil(log2 6)
    steps, traffic = collective_cost("all_reduce", V, 16, "tree")
    assert steps == 8 and traffic == 2 * V                                # 2 log2 16, 2V
    assert collective_cost("all_to_all", V, 8, "recursive")[1] == 3 * V / 2  # Bruck


def test_vectorized_over_size_and_p():
    sizes = np.logspace(3, 9, 7)[:, None]
    ps = np.array([2, 8, 32])[None, :]
    t = collective_time("all_reduce", sizes, ps, ALPHA, B)
    assert t.shape == (7, 3)
    assert t[3, 1] == pytest.approx(collective_time("all_reduce", 1e6, 8, ALPHA, B))
    assert collective_time("all_reduce", 1e6, 1, ALPHA, B) == 0.0        # nothing moves


def test_hierarchical_by_hand():
    # V = 8 GB, 2 nodes x 8: intra RS + AG = 2 * 7/8 * 8e9 / 200e9 = 0.07 s;
    # inter ring AR on V/8 per device, 8 shards share 100 GB/s: 2 * 1/2 * 8e9 / 100e9 = 0.08
    t = hierarchical_time("all_reduce", 8e9, 2, 8, 0.0, 200e9, 0.0, 100e9)
    assert float(t) == pytest.approx(0.15)
    # latency: 2 * 7 intra steps + 2 * 1 inter step
    t = hierarchical_time("all_reduce", 8e9, 2, 8, 1e-6, 200e9, 10e-6, 100e9)
    assert float(t) == pytest.approx(0.15 + 14e-6 + 20e-6)


def test_bad_input_is_our_error():
    with pytest.raises(UnknownNameError, match="did you mean 'all_reduce'"):
        collective_time("allreduce", V, 8, ALPHA, B)
    with pytest.raises(ShapeError, match="positive"):
        collective_time("all_reduce", 0, 8, ALPHA, B)
    with pytest.raises(ShapeError, match="whole number"):
        collective_time("all_reduce", V, 2.5, ALPHA, B)
    with pytest.raises(UnsupportedOpError, match="use one of: recursive, ring"):
        collective_time("all_gather", V, 8, ALPHA, B, "tree")
    with pytest.raises(ShapeError, match="bandwidth"):
        collective_time("all_reduce", V, 8, ALPHA, 0.0)


def test_every_closed_form_is_finite_and_non_negative():
    v, p = np.array([1.0, 1e6, 1e10]), np.array([2.0, 7.0, 4096.0])
    for (algo, prim), form in CLOSED_FORMS.items():
        steps, traffic = form(v, p)
        assert np.all(np.isfinite(steps)) and np.all(steps >= 1), (algo, prim)
        assert np.all(traffic >= 0), (algo, prim)


# ------------------------------------------------------------- on a SystemSpec


def test_predict_on_a_tiny_ring_matches_the_closed_form():
    s = system_from_dict(tiny_system_dict(
        scale_up={"topology": "ring", "bandwidth_GBps_per_direction": {"value": 10,
                                                                       "source": "HAND"},
                  "latency_us": {"value": 2, "source": "HAND"}}))
    t = predict_collective(s, "all_reduce", [3e9], algorithm="ring").table
    # 3 devices: 2 * 2/3 * 3e9 / 10e9 + 4 * 2e-6 = 0.4 + 8e-6 s
    assert t["time_us"][0] == pytest.approx((0.4 + 8e-6) * 1e6)
    assert t["busbw_GBps"][0] == pytest.approx(3e9 / (0.4 + 8e-6) * 4 / 3 / 1e9)
    assert list(t.columns[:6]) == ["size_bytes", "count", "type", "time_us", "algbw_GBps",
                                   "busbw_GBps"]


def test_two_dgx_nodes_run_at_the_slower_level():
    s = load_system("dgx-a100")
    intra, inter = levels(s, nodes=2)
    assert intra.ring_Bps == 300e9 and inter is not None and inter.ring_Bps == 200e9
    t = predict_collective(s, "all_reduce", [1 << 34], nodes=2, algorithm="ring").table
    # busbw at 16 GiB is bounded by 8 x 25 GB/s of NICs x the network efficiency
    assert t["busbw_GBps"][0] < 200


def test_efficiency_curve_read_at_the_reference_bandwidth():
    # without an uplink figure, a curve measured at 300 GB/s is read at size x 300/32 on a
    # 32 GB/s PCIe ring
    d = system_to_dict(load_system("azure-nc-a100-v4"))
    d["scale_up"] = {k: v for k, v in d["scale_up"].items() if k != "uplink_efficiency"}
    s = system_from_dict(d)
    intra, _ = levels(s, per_node=4)
    assert intra.ring_Bps == 32e9
    assert float(intra.eff(1 << 20, 4)) == pytest.approx(
        float(s.scale_up.efficiency.at((1 << 20) * 300 / 32 / 4)))


def test_a_ring_across_a_pcie_uplink_runs_at_its_own_efficiency():
    # azure-nc-a100-v4, 4 GPUs: the ring crosses PCIe Gen4 x16 (32 GB/s) at NCCL's 0.75
    # (topo.cc: 16 lanes x 120 / 80 = 24 GB/s), no size curve. Ring all-reduce, 64 MiB:
    # 36.54 us launch + 6 x 0.47 us + 2 x 3/4 x 64 MiB / 24 GB/s = 4233.66 us
    s = load_system("azure-nc-a100-v4")
    intra, _ = levels(s, per_node=4)
    assert intra.ring_Bps == 32e9 and float(intra.eff(1 << 20, 4)) == 0.75
    t = predict_collective(s, "all_reduce", [1 << 26], per_node=4, algorithm="ring").table
    assert t["time_us"][0] == pytest.approx(36.54 + 6 * 0.47 + 1.5 * (1 << 26) / 24e9 * 1e6)
    # a bridged pair stays on NVLink and the NVSwitch curve
    pair, _ = levels(s, per_node=2)
    assert pair.ring_Bps == 300e9
    assert float(pair.eff(1 << 20, 2)) == float(s.scale_up.efficiency.at(1 << 19))


def test_a_ring_reads_the_link_curve_at_its_per_step_message():
    # dgx-a100 (curve fitted on 8-GPU rows, indexed by V / 8): a 2-GPU ring of 16 MiB moves
    # 8 MiB per step, so it reads the curve where an 8-GPU ring of 64 MiB does. Ring
    # all-reduce time = 36.54 us + 2 x 0.47 us + V / (300 GB/s x e(8 MiB)); e(8 MiB) = 0.539
    s = load_system("dgx-a100")
    assert float(s.scale_up.efficiency.at(8 << 20)) == 0.539
    t2 = predict_collective(s, "all_reduce", [16 << 20], per_node=2, algorithm="ring").table
    assert t2["time_us"][0] == pytest.approx(36.54 + 0.94 + (16 << 20) / (300e9 * 0.539) * 1e6)
    t8 = predict_collective(s, "all_reduce", [64 << 20], per_node=8, algorithm="ring").table
    assert t8["efficiency"][0] == t2["efficiency"][0] == 0.539


def test_parameter_server_on_the_4090_box_is_p_times_slower():
    s = load_system("pcie-8x-4090")
    ps = predict_collective(s, "all_reduce", [1 << 30], algorithm="parameter_server").table
    ring = predict_collective(s, "all_reduce", [1 << 30], algorithm="ring").table
    ratio = ps["time_us"][0] / ring["time_us"][0]
    assert ratio == pytest.approx(8, rel=0.01)    # bandwidth-bound: p = 8 (uplink = port)


def test_pcie_uplink_sharing_shows_in_all_to_all():
    # 8 GPUs, 4 per switch: each uplink carries 4 x 4/8 V = 2V vs a port's 7/8 V
    # at NCCL's PCIe figure, 0.75 x 32 GB/s (pcie-8x-4090.yaml, NCCL-TOPO-PCI)
    s = load_system("pcie-8x-4090")
    t = predict_collective(s, "all_to_all", [1 << 30]).table["transfer_us"][0] * 1e-6
    assert t == pytest.approx(2 * (1 << 30) / (0.75 * 32e9), rel=1e-9)


def test_auto_takes_the_algorithm_nccls_tuner_picks():
    s = load_system("dgx-a100")
    auto = predict_collective(s, "all_reduce", [8, 1 << 30], nodes=16).table
    ring = predict_collective(s, "all_reduce", [8, 1 << 30], nodes=16, algorithm="ring").table
    tree = predict_collective(s, "all_reduce", [8, 1 << 30], nodes=16, algorithm="tree").table
    assert list(auto["algorithm"]) == ["tree", "ring"]   # small: fewer latency steps
    assert auto["time_us"][0] == tree["time_us"][0] and auto["time_us"][1] == ring["time_us"][1]


def test_nccl_tuner_picks_tree_at_scale_by_its_own_latencies():
    # tuning.cc @ 01afd20a, 256 nodes x 4: ring/Simple latency = (8.4 + 1536 x 3.4 + 510 x 9.6)
    # x 1.9 (plateau) = 19.2 ms vs tree/Simple 2 (3 x 28 + 8 x 50) = 968 us; ring's algbw
    # edge (1024/2046 vs 0.9/2) pays that back only above ~ 82 ms x B, i.e. GBs at 36 GB/s
    algo, proto = nccl_all_reduce_choice(np.array([8.0, 1 << 30]), 256, 4, 36e9)
    assert list(algo) == ["tree", "tree"] and list(proto) == ["LL", "Simple"]
    algo, _ = nccl_all_reduce_choice(np.array([1 << 30]), 1, 8, 230e9)
    assert list(algo) == ["ring"]                        # one node: the 8-GPU chain is slow


def test_tree_correction_factor_indexing():
    # treeCorrectionFactor[Simple] is indexed by log2(V / 64): 4 MiB -> 16 -> 0.5; >= 256 MiB
    # is past the table -> 1
    simple = TREE_PROTOCOLS["Simple"]
    assert list(simple.corr(np.array([4 << 20, 1 << 30]))) == [0.5, 1.0]
    assert float(simple.corr(np.array([8.0]))[0]) == 0.9


def test_tree_busbw_does_not_collapse_with_p():
    # double binary tree: t ~ 2V/b_tree + 2 log2(n) alpha, so busbw at 1 GiB barely moves from
    # 32 to 2,160 GPUs, while a ring's per-step message V/p shrinks with p
    s = load_system("polaris")
    bus = [predict_collective(s, "all_reduce", [1 << 30], nodes=n, algorithm="tree").table[
        "busbw_GBps"][0] for n in (8, 540)]
    assert bus[1] == pytest.approx(bus[0], rel=0.03)


def test_polaris_1024_gpu_all_reduce_matches_the_published_row():
    # alcf-nccl-tests results_polaris/nccl_2_21/n256.g4 all_reduce_perf, 1 GiB: 70,722 us
    # out-of-place (shared/reference/measurements/collectives.csv row collectives-00561)
    t = predict_collective(load_system("polaris"), "all_reduce", [1 << 30], nodes=256).table
    assert t["algorithm"][0] == "tree"
    assert t["time_us"][0] == pytest.approx(70722, rel=0.10)


def test_predict_states_its_assumptions():
    a = predict_collective(load_system("dgx-a100"), "all_gather", [1 << 20], 2).assumptions
    assert "FIT-A100-NVSWITCH" not in a["intra"]["efficiency_source"]   # resolved citation
    assert "collectives.csv" in a["intra"]["efficiency_source"]
    assert a["inter"]["nic_GBps"] == 25.0 and "size_convention" in a


def test_predict_rejects_bad_sizes_and_one_device():
    s = load_system("dgx-a100")
    with pytest.raises(ShapeError):
        predict_collective(s, "all_reduce", [0])
    with pytest.raises(ShapeError, match="at least 2 devices"):
        predict_collective(s, "all_reduce", [8], per_node=1)


def test_across_nodes_the_scale_up_curve_is_read_at_the_nodes_share():
    # dgx-a100, 2 nodes x 8, ring all-reduce of 256 MiB: NVLink pieces are read at V / g =
    # 32 MiB (knot 33554432: 0.663, 198.9 GB/s, just under the 200 GB/s of NICs), not at
    # V / p = 16 MiB; transfer = 2 x 15/16 x 256 MiB / 198.9 GB/s
    s = load_system("dgx-a100")
    t = predict_collective(s, "all_reduce", [1 << 28], nodes=2, algorithm="ring").table
    assert t["efficiency"][0] == pytest.approx(0.663)
    assert t["transfer_us"][0] == pytest.approx(2 * 15 / 16 * (1 << 28) / (300e9 * 0.663) * 1e6)


# Published 8-GPU NVLS all-reduce busbw (GB/s, in-place), Azure/AI-benchmarking-guide
# Azure_Results/ND_H100_v5_results.md and ND_H200_v5_results.md @ 8fd0c6e1 ("NCCL Bandwidth",
# NCCL 2.18.5 / 2.20.5). The H100 rows fitted dgx-h100's nvls_efficiency (FIT-H100-NVLS);
# the H200 rows were not used for anything: they are held out here.
AZURE_H100 = {1: 43.70, 4: 128.73, 16: 234.45, 64: 361.78, 256: 423.38, 1024: 466.35,
              8192: 478.87}
AZURE_H200 = {1: 52.96, 2: 88.78, 4: 138.44, 8: 181.94, 16: 240.41, 32: 300.91, 64: 368.11,
              128: 412.45, 256: 432.24, 512: 442.72, 1024: 467.58, 2048: 472.57,
              4096: 477.41, 8192: 479.98}


@pytest.mark.parametrize("system, published", [("dgx-h100", AZURE_H100),
                                               ("hgx-h200", AZURE_H200)])
def test_8_gpu_all_reduce_busbw_beside_the_published_nvls_curve(system, published):
    mib = np.array(sorted(published), dtype=float)
    t = predict_collective(load_system(system), "all_reduce", mib * 2**20).table
    pub = np.array([published[int(m)] for m in mib])
    err = (t["busbw_GBps"].to_numpy() - pub) / pub
    big = mib >= 1
    assert np.median(np.abs(err[big])) <= 0.10          # the goal, per board
    assert np.all(np.abs(err[mib >= 16]) <= 0.05)
    assert set(t["algorithm"][mib >= 2]) == {"nvls"}     # NCCL's model: NVLS above 1.3 MB


def test_h100_peaks_beside_nccls_own_figures():
    s = load_system("dgx-h100")
    v = float(8 << 30)
    nv = predict_collective(s, "all_reduce", [v]).table["busbw_GBps"].iloc[0]
    ring = predict_collective(s, "all_reduce", [v], algorithm="ring").table["busbw_GBps"].iloc[0]
    # NCCL's maintainer (NVIDIA/nccl-tests issue #212): 8 H100 reach ~480 GB/s busbw with
    # NVLS, ~370 with NCCL_ALGO=RING; GTC S62129 (quoted in NVIDIA/nccl issue #1374): 480
    assert nv == pytest.approx(480, rel=0.03)
    assert ring == pytest.approx(370, rel=0.05)
    # before this change both were 450 x 0.772 = 347 GB/s (the A100 curve's end)
    assert nv > 347 * 1.3


def test_b200_nvls_peak_beside_published():
    # 0.580 x 900 GB/s x 8/9 x 1.75 = 812 GB/s (NVLS-B200 in dgx-b200.yaml); published: 8x B200
    # "830+" (NVIDIA/nccl issue #1807), 8x B300 845 (issue #2140)
    bw = predict_collective(load_system("dgx-b200"), "all_reduce", [8 << 30]).table
    assert bw["busbw_GBps"].iloc[0] == pytest.approx(830, rel=0.05)


def test_nvls_time_by_hand_on_one_node():
    s = load_system("dgx-h100")
    v = float(1 << 30)
    t = predict_collective(s, "all_reduce", [v], algorithm="nvls").table.iloc[0]
    # V (8+1)/8 per direction at 450 GB/s x eff(1 GiB) = 0.669 (a knot), + 17.2 us launch
    # + 2 x 0.6 us (reduce, multicast)
    want = 17.2 + 1.2 + v * 9 / 8 / (450e9 * 0.669) * 1e6
    assert t["time_us"] == pytest.approx(want, rel=1e-6)


def test_nvls_across_nodes_is_nvls_tree_bound_by_the_nics():
    s = load_system("dgx-h100")
    t = predict_collective(s, "all_reduce", [8 << 30], nodes=4, algorithm="nvls").table.iloc[0]
    assert t["algorithm"] == "nvls_tree"
    # > 2 nodes: each NIC carries 2 V/8 at 50 GB/s x 0.98 -> algbw 8 x 49 / 2 = 196 GB/s
    assert t["algbw_GBps"] == pytest.approx(196, rel=0.01)


@pytest.mark.parametrize("system", ["dgx-a100", "h100-nvl-pair", "mi300x-8"])
def test_nvls_on_a_system_without_nvlink_sharp_is_a_plan_error(system):
    with pytest.raises(PlanError, match="NVLink SHARP"):
        predict_collective(load_system(system), "all_reduce", [1 << 20], algorithm="nvls")


def test_auto_never_picks_nvls_for_other_primitives():
    t = predict_collective(load_system("dgx-h100"), "all_gather", [1 << 30]).table
    assert t["algorithm"].iloc[0] == "ring"
