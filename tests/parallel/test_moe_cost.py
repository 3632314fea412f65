"""perfmodel.parallel.moe: routed load, dispatch all-to-all and grouped expert GEMMs, each
against numbers worked by hand from the formulas and the system / device files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perfmodel.analytic.network import predict_collective
from perfmodel.errors import PlanError
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system
from perfmodel.parallel.moe import (
    all_to_all_time,
    dispatch_time,
    expert_load,
    group_layout,
    grouped_gemm_time,
)

# DeepSeek-V3-like dispatch: 4096 tokens per device, hidden 7168, top-8, bf16
TOKENS, HIDDEN, TOP_K, WIDTH = 4096, 7168, 8, 2
V = TOKENS * TOP_K * HIDDEN * WIDTH          # 469,762,048 B of token copies per device


@pytest.fixture(scope="module")
def dgx():
    return load_system("dgx-h100")


def test_group_layout_follows_the_rank_order(dgx):
    assert group_layout(dgx, 16, 1) == (2, 8)    # two whole nodes
    assert group_layout(dgx, 8, 2) == (2, 4)     # tp 2: 4 EP ranks a node
    assert group_layout(dgx, 2, 8) == (2, 1)     # tp 8: one a node
    assert group_layout(dgx, 4, 1) == (1, 4)


def test_dispatch_on_two_dgx_h100_nodes_by_hand(dgx):
    # ep = 16 ranks, stride 1: g = 8 a node, n = 2 nodes. A copy lands on any rank with
    # probability 1/16: 7 of 16 ranks are node peers, 8 of 16 in the other node.
    #   bytes_intra = V x 7/16 = 205,520,896 B;  bytes_inter = V x 8/16 = 234,881,024 B
    a2a = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 16, 1)
    assert a2a.bytes_intra == 205_520_896
    assert a2a.bytes_inter == 234_881_024
    assert (a2a.nodes, a2a.per_node) == (2, 8)
    # network: each GPU's share of the node's 8 x 400 Gb/s NICs = 50 GB/s, efficiency 0.98
    # (dgx-h100.yaml scale_out): 234,881,024 / 49e9 = 4.7935 ms
    assert a2a.inter_s == pytest.approx(234_881_024 / (50e9 * 0.98))
    # NVLink: 450 GB/s per direction; the ring curve (measured at 300 GB/s) read at the
    # buffer's per-node-peer piece V/8 x 300/450 = 39,146,837 B, 7/6 of the 32 MiB knot:
    # 0.683 + (0.778 - 0.683) log(7/6) / log(4) = 0.6936
    eff = 0.683 + (0.778 - 0.683) * math.log(7 / 6) / math.log(4)
    assert a2a.intra_s == pytest.approx(205_520_896 / (450e9 * eff))
    # latency: launch 17.2 us + 14 NVLink steps x 0.6 us + 1 network step x 14 us = 39.6 us
    assert a2a.latency_s == pytest.approx(39.6e-6)
    assert a2a.binding == "scale_out"
    assert a2a.seconds == pytest.approx(39.6e-6 + 234_881_024 / 49e9)


def test_uniform_dispatch_is_predict_collectives_all_to_all(dgx):
    a2a = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 16, 1)
    ref = predict_collective(dgx, "all_to_all", [V], nodes=2, per_node=8).table.iloc[0]
    assert a2a.seconds == pytest.approx(ref["time_us"] * 1e-6)
    assert all_to_all_time(dgx, 16, 1, V).seconds == pytest.approx(a2a.seconds)


def test_node_limited_routing_cuts_network_bytes_by_the_worked_factor(dgx):
    token = TOKENS * HIDDEN * WIDTH
    # 2 nodes, M = 2: a token reaches D = min(8, 2, 2) = 2 nodes, the other one with
    # probability 1/2: 1 network copy per token instead of 8 x 8/16 = 4 -> 4x fewer bytes
    lim = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 16, 1, node_limit=2)
    assert lim.bytes_inter == token * 1.0
    assert lim.bytes_inter * 4 == dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 16,
                                                1).bytes_inter
    # every copy not aimed at the device it arrives at crosses NVLink once: V x 7/8
    assert lim.bytes_intra == V * 7 / 8
    # M = 1 on 2 nodes: D = 1, remote with probability 1/2 -> 0.5 copies, 8x fewer
    assert dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 16, 1,
                         node_limit=1).bytes_inter == token * 0.5
    # 8 nodes (ep 64), DeepSeek-V3's M = 4: 4 x 7/8 = 3.5 copies vs 8 x 56/64 = 7 -> 2x
    free = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 64, 1)
    lim4 = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 64, 1, node_limit=4)
    assert free.bytes_inter == token * 7.0
    assert lim4.bytes_inter == token * 3.5
    assert lim4.inter_s == pytest.approx(free.inter_s / 2)


def test_node_limit_changes_nothing_on_one_node(dgx):
    free = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 8, 1)
    lim = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 8, 1, node_limit=4)
    assert (free.bytes_intra, free.bytes_inter) == (lim.bytes_intra, lim.bytes_inter)
    assert free.bytes_inter == 0 and free.bytes_intra == V * 7 / 8
    assert free.binding == "scale_up"


def test_imbalance_stretches_the_busiest_receiver(dgx):
    even = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 16, 1)
    skew = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 16, 1, imbalance=1.5)
    assert skew.bytes_inter == even.bytes_inter               # the average is unchanged
    assert skew.inter_s == pytest.approx(1.5 * even.inter_s)
    assert skew.seconds - skew.latency_s == pytest.approx(1.5 * (even.seconds
                                                                 - even.latency_s))


def test_dispatch_with_tensor_parallel_stride(dgx):
    # tp 2, ep 8: 4 EP ranks a node on 2 nodes; copies: 3/8 node peers, 4/8 other node
    a2a = dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 8, 2)
    assert (a2a.nodes, a2a.per_node) == (2, 4)
    assert a2a.bytes_intra == V * 3 / 8 and a2a.bytes_inter == V * 4 / 8
    assert a2a.inter_s == pytest.approx(V / 2 / 49e9)    # still a NIC per GPU


def test_single_rank_dispatch_is_free(dgx):
    assert dispatch_time(dgx, TOKENS, HIDDEN, TOP_K, WIDTH, 1, 1).seconds == 0.0


def test_expert_load_balanced():
    # 4096 tokens x top-8 = 32,768 copies a device; 256 experts / ep 32 = 8 local experts
    load = expert_load(4096, 8, 256, 32)
    assert load.tokens_per_device == 32768
    assert load.tokens_busiest == 32768
    assert load.local_experts == 8
    assert load.tokens_per_expert == 4096 == load.tokens_per_expert_mean
    assert load.capacity is None and load.dropped_fraction == 0.0


def test_capacity_factor_drops_the_busiest_devices_excess():
    # capacity per expert = 1.25 x (32 x 4096 tokens) x 8 / 256 = 5120 copies, 8 local
    # experts -> 40,960 a device = 1.25 x 32,768. The busiest asks 1.5 x 32,768 = 49,152:
    # 8,192 dropped, 1 - 1.25/1.5 = 1/6 of its copies
    load = expert_load(4096, 8, 256, 32, capacity_factor=1.25, imbalance=1.5)
    assert load.capacity == 40960
    assert load.tokens_busiest == 40960
    assert load.dropped_fraction == pytest.approx(1 / 6)
    assert load.tokens_per_expert == 5120
    assert load.tokens_per_expert_mean == 4096


def test_imbalance_without_capacity_drops_nothing():
    load = expert_load(4096, 8, 256, 32, imbalance=1.5)
    assert load.tokens_busiest == 49152 and load.tokens_per_expert == 6144
    assert load.dropped_fraction == 0.0
    roomy = expert_load(4096, 8, 256, 32, capacity_factor=2.0, imbalance=1.5)
    assert roomy.tokens_busiest == 49152 and roomy.dropped_fraction == 0.0


@pytest.mark.parametrize("kwargs, word", [
    ({"ep": 3}, "does not divide"),
    ({"imbalance": 0.5}, "imbalance"),
    ({"top_k": 0}, "top_k"),
])
def test_expert_load_rejects_bad_input(kwargs, word):
    args = {"tokens": 4096, "top_k": 8, "experts": 256, "ep": 32} | kwargs
    imbalance = args.pop("imbalance", 1.0)
    with pytest.raises(PlanError, match=word):
        expert_load(**args, imbalance=imbalance)


@pytest.fixture(scope="module")
def h100():
    return load_device("h100-sxm5-80gb")


def test_grouped_gemm_flops_by_hand(h100):
    # gated: up+gate N = 2 x 2048, K = 7168; down N = 7168, K = 2048; 8 experts, M = 4096
    t = grouped_gemm_time(h100, "bf16", 8, 4096, 7168, 2048, True)
    assert t.forward_flops == 2 * 8 * 4096 * (7168 * 4096 + 2048 * 7168)
    plain = grouped_gemm_time(h100, "bf16", 8, 4096, 7168, 2048, False)
    assert plain.forward_flops == 2 * 8 * 4096 * (7168 * 2048 + 2048 * 7168)
    assert t.backward_s == pytest.approx(2 * t.forward_s, rel=0.05)  # two GEMMs per GEMM


def test_grouped_gemm_time_is_the_kernel_models(h100):
    # at M = 4096 the GEMMs are compute-bound: t = FLOP / (peak x KernelModel.gemm) + launch
    km = h100.efficiency.compute_model
    _, _, peak, _ = h100.resolve_unit("tensor", "bf16")
    t = grouped_gemm_time(h100, "bf16", 8, 4096, 7168, 2048, True)
    want = 0.0
    for n, k in ((4096, 7168), (7168, 2048)):
        eff = float(km.gemm(np.array([8.0]), np.array([4096.0]), np.array([float(n)]),
                            np.array([float(k)]))[0])
        want += 2 * 8 * 4096 * n * k / (peak * eff) + h100.efficiency.launch_overhead_s
    assert t.forward_s == pytest.approx(want)


def test_small_tokens_per_expert_lose_efficiency(h100):
    def rate(m: float) -> float:
        t = grouped_gemm_time(h100, "bf16", 8, m, 7168, 2048, True)
        return t.forward_flops / t.forward_s
    assert rate(64) < rate(512) < rate(4096)
    assert grouped_gemm_time(h100, "bf16", 8, 0, 7168, 2048, True).forward_s == 0.0
