"""The worked examples of DOMAIN.md sections 1 and 2, one named test each.

Every quantity is computed from a graph built with GraphBuilder (params from
``ModelGraph.params``, MACs from ``cost_of``), never by re-typing the formula; the
expected figure is the seed's number.
"""

from __future__ import annotations

from fractions import Fraction

import networkx as nx
import pytest

from perfmodel.analytic.roofline import predict
from perfmodel.graph.builder import GraphBuilder
from perfmodel.graph.costs import cost_of, seed_conv_macs
from perfmodel.graph.kinds import MAC_KINDS, OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.load import device_from_dict
from perfmodel.workload.build import build_workload
from tests.conftest import tiny_device_dict

WIDTHS = {"act": 2, "weight": 2, "kv": 1, "index": 4}


def _macs(g: ModelGraph, dims=None, prefix: str = "") -> float:
    dims = dims or {"B": 1}
    return sum(cost_of(op.resolve(dims), WIDTHS).macs for op in g.ops
               if op.name.startswith(prefix))


def _convs(channels, size, *layers, bias=False) -> ModelGraph:
    """A chain of convs; each layer is (out_channels, kernel, padding[, groups])."""
    b = GraphBuilder("convs")
    x = b.input("x", (channels, size, size))
    for out, k, pad, *groups in layers:
        x = b.conv2d(x, out, k, padding=pad, groups=groups[0] if groups else 1, bias=bias)
    return b.build()


def _seed_kernel_params(g: ModelGraph) -> int:
    """The seed's parameter convention for the bottleneck example: every 2-D kernel (one
    per input-output channel pair) carries its own bias, (k*k + 1) per kernel.
    perfmodel, like torch, counts one bias per output channel instead."""
    total = 0
    for op in g.ops:
        co, ci, kh, kw = op.weights[0].shape
        total += (kh * kw + 1) * ci * co
    return total


# --- section 1: the latency law --------------------------------------------------------

W_SEED = 0.137e12          # FLOP to decode one token
P_SEED = 6 * 184e12        # 6 x RTX 3090 Ti, fp16 peak
U_SEED = 0.001             # 0.1 %


def test_latency_law_seed_example_both_directions():
    # No perfmodel function takes U as an input; this is the law itself, L = W / (P U).
    latency = W_SEED / (P_SEED * U_SEED)
    assert latency == pytest.approx(0.124, abs=5e-4)           # 0.137/1.104 = 0.1241 s
    measured = 0.124
    assert W_SEED / (P_SEED * measured) == pytest.approx(U_SEED, rel=1e-3)


def test_latency_law_through_roofline_predict():
    # The seed example through perfmodel: a 0.137 TFLOP workload (one linear, 685 rows of
    # 10,000 -> 10,000: 2*685*1e8 FLOP) on a 1104 TFLOP/s device whose compute efficiency
    # is U = 0.001 and whose memory is fast enough never to bind.
    b = GraphBuilder("decode-step", default_batch=1)
    b.linear(b.input("x", (685, 10_000)), 10_000, bias=False)
    wl = build_workload(b.build(), batch=1, dtype="fp16")
    assert wl.table["flops"].sum() == W_SEED
    hand = {"value": 0, "source": "HAND"}
    device = device_from_dict(tiny_device_dict(
        compute={"tensor_TFLOPS": {"fp16": {**hand, "value": P_SEED / 1e12}}},
        memory=[{"name": "hbm", "role": "main", "capacity_GB": {**hand, "value": 1e6},
                 "bandwidth_GBps": {**hand, "value": 1e9}}],
        efficiency={"compute": {**hand, "value": U_SEED},
                    "memory": {**hand, "value": 1.0},
                    "launch_overhead_us": {**hand, "value": 0}}), "seed.yaml")
    summary = predict(wl, device).summary
    assert summary["latency_s"] == pytest.approx(W_SEED / (P_SEED * U_SEED), rel=1e-9)
    assert summary["latency_s"] == pytest.approx(0.124, abs=5e-4)
    # ... and U backed out of the predicted latency.
    assert summary["utilization"] == pytest.approx(U_SEED, rel=1e-9)


# --- section 2: counting work ---------------------------------------------------------------

def test_two_3x3_vs_one_5x5_params_ratio_18_25():
    c = 16  # Ci = Co
    one = _convs(c, 5, (c, 5, 0))
    two = _convs(c, 5, (c, 3, 0), (c, 3, 0))
    # Same receptive field: both reduce a 5x5 input to one output pixel.
    assert one.ops[-1].outputs[0].shape == two.ops[-1].outputs[0].shape == ("B", c, 1, 1)
    assert (one.params, two.params) == (25 * c * c, 18 * c * c)      # 6400, 4608
    assert Fraction(two.params, one.params) == Fraction(18, 25)
    # At equal output size ("same" padding) the MACs shrink by the same ratio.
    one_same = _convs(c, 8, (c, 5, 2))
    two_same = _convs(c, 8, (c, 3, 1), (c, 3, 1))
    assert Fraction(int(_macs(two_same)), int(_macs(one_same))) == Fraction(18, 25)


def test_three_3x3_vs_one_7x7_single_channel():
    one = _convs(1, 7, (1, 7, 0), bias=True)
    three = _convs(1, 7, (1, 3, 0), (1, 3, 0), (1, 3, 0), bias=True)
    assert one.ops[-1].outputs[0].shape == three.ops[-1].outputs[0].shape == ("B", 1, 1, 1)
    assert one.params == 7 * 7 + 1 == 50
    assert three.params == 3 * (3 * 3 + 1) == 30


def test_bottleneck_1x1():
    m, k, n = 64, 16, 64      # M in, K mid (K < M), N out channels; 3x3 main conv
    plain = _convs(m, 8, (n, 3, 1), bias=True)
    bottleneck = _convs(m, 8, (k, 1, 0), (n, 3, 1), bias=True)
    # The seed's figures, (1+1)*M*K + (9+1)*K*N vs (9+1)*M*N, count one bias per kernel:
    assert _seed_kernel_params(bottleneck) == 2 * 1024 + 10 * 1024 == 12_288
    assert _seed_kernel_params(plain) == 10 * 4096 == 40_960
    # perfmodel counts torch's one bias per output channel:
    # 1x1: 64*16 + 16 = 1,040; 3x3: 9*16*64 + 64 = 9,280; plain: 9*64*64 + 64 = 36,928.
    assert (bottleneck.params, plain.params) == (1_040 + 9_280, 36_928)
    # Weights alone agree in both conventions: 1*M*K + 9*K*N vs 9*M*N.
    no_bias = _convs(m, 8, (k, 1, 0), (n, 3, 1)).params, _convs(m, 8, (n, 3, 1)).params
    assert no_bias == (1_024 + 9_216, 36_864)


def test_inception_5x5_reduction():
    # 128 -> 256 channels, 5x5: 128x5x5x256 weights vs 128x1x1x32 + 32x5x5x256.
    direct = _convs(128, 28, (256, 5, 2))
    reduced = _convs(128, 28, (32, 1, 0), (256, 5, 2))
    assert direct.params == 819_200
    assert reduced.params == 4_096 + 204_800 == 208_896
    assert direct.ops[-1].outputs[0].shape == reduced.ops[-1].outputs[0].shape


def test_depthwise_separable_4608_vs_656():
    standard = _convs(16, 8, (32, 3, 1))
    separable = _convs(16, 8, (16, 3, 1, 16), (32, 1, 0))    # depthwise 3x3, pointwise 1x1
    assert standard.params == 4608                           # 3*3*16*32
    assert separable.params == 656                           # 3*3*16 + 16*32
    assert separable.ops[0].attr("depthwise") is True
    assert standard.ops[-1].outputs[0].shape == separable.ops[-1].outputs[0].shape


def test_depthwise_and_pointwise_params():
    # Depthwise: k*k*C (+ C bias); pointwise 1x1: Ci*Co.
    dw = _convs(32, 8, (32, 3, 1, 32), bias=True)
    pw = _convs(32, 8, (64, 1, 0))
    assert (dw.params, pw.params) == (3 * 3 * 32 + 32, 32 * 64)


def test_densenet_reuse():
    # Layer n sees C1 = 64 maps and must hand on C1 + C2 = 96. Without reuse it computes
    # all 96: k*k*C1*(C1+C2); with reuse it computes C2 = 32 new maps and concatenates.
    k, c1, c2 = 3, 64, 32
    b = GraphBuilder("no-reuse")
    b.conv2d(b.input("x", (c1, 8, 8)), c1 + c2, k, padding=1, bias=False)
    without = b.build()
    b = GraphBuilder("reuse")
    x = b.input("x", (c1, 8, 8))
    b.concat([x, b.conv2d(x, c2, k, padding=1, bias=False)])
    reuse = b.build()
    assert without.ops[-1].outputs[0].shape == reuse.ops[-1].outputs[0].shape
    assert without.params == 9 * 64 * 96 == 55_296
    assert reuse.params == 9 * 64 * 32 == 18_432
    assert Fraction(reuse.params, without.params) == Fraction(c2, c1 + c2)


def test_conv_params_with_bias():
    # (k*k*Ci + 1)*Co: AlexNet conv1, 11x11, 3 -> 64: (363 + 1)*64 = 23,296 (as torchvision).
    b = GraphBuilder("alexnet-conv1")
    b.conv2d(b.input("x", (3, 224, 224)), 64, 11, stride=4, padding=2)
    assert b.build().params == 23_296


def test_fc_params_and_macs():
    # (in + 1)*out params; in*out MACs per sample. LeNet-5 fc1: 400 -> 120.
    b = GraphBuilder("fc")
    b.linear(b.input("x", (400,)), 120)
    g = b.build()
    assert g.params == 48_120
    assert _macs(g, {"B": 1}) == 48_000
    assert _macs(g, {"B": 4}) == 4 * 48_000


def test_seed_conv_flop_formula():
    # Seed: W*H*(k*k*Ci + 1)*Co. AlexNet conv1: out 55x55 ((224+4-11)//4+1), Ci 3, Co 64:
    # 3025 * 364 * 64 = 70,470,400; perfmodel's MACs leave out the bias add:
    # 3025 * 363 * 64 = 70,276,800, and the difference is one add per output, 3025*64.
    b = GraphBuilder("alexnet-conv1")
    b.conv2d(b.input("x", (3, 224, 224)), 64, 11, stride=4, padding=2)
    op = b.build().ops[0].resolve({"B": 1})
    assert op.outputs[0].shape == (1, 64, 55, 55)
    macs = cost_of(op, WIDTHS).macs
    assert seed_conv_macs(op) == 70_470_400
    assert macs == 70_276_800
    assert seed_conv_macs(op) - macs == 55 * 55 * 64


def test_flops_are_twice_macs():
    b = GraphBuilder("mixed")
    x = b.input("x", (3, 8, 8))
    x = b.conv2d(x, 4, 3, padding=1)
    x = b.linear(b.flatten(x), 10)
    b.matmul(b.reshape(x, ("B", 2, 5)), b.input("y", (5, 3)))
    g = b.build()
    for op in g.ops:
        c = cost_of(op.resolve({"B": 2}), WIDTHS)
        assert c.flops == 2 * c.macs
    wl = build_workload(g, batch=2).table
    assert wl["flops"].sum() == 2 * wl["macs"].sum() > 0


def _attention_layer(s: int, d: int, heads: int, kv_heads: int) -> ModelGraph:
    """One self-attention layer, seq s, hidden d: Q/K/V/O projections and the two matmuls."""
    dh = d // heads
    b = GraphBuilder("attention")
    x = b.input("x", (s, d))

    def split(t, n):
        return b.permute(b.reshape(t, ("B", s, n, dh)), (0, 2, 1, 3))

    q = split(b.linear(x, d, bias=False, name="q_proj"), heads)
    k = split(b.linear(x, kv_heads * dh, bias=False, name="k_proj"), kv_heads)
    v = split(b.linear(x, kv_heads * dh, bias=False, name="v_proj"), kv_heads)
    p = b.softmax(b.attn_score(q, k, name="score"), name="softmax")
    o = b.attn_context(p, v, name="context")
    o = b.reshape(b.permute(o, (0, 2, 1, 3)), ("B", s, d))
    b.linear(o, d, bias=False, name="o_proj")
    return b.build()


def test_attention_layer_macs():
    s, d, h = 8, 16, 2
    g = _attention_layer(s, d, h, h)
    proj = sum(_macs(g, prefix=p) for p in ("q_proj", "k_proj", "v_proj", "o_proj"))
    assert proj == 4 * d * d * s == 8_192                # 4*d*d per token
    assert _macs(g, prefix="score") == s * s * d == 1_024
    assert _macs(g, prefix="context") == s * s * d == 1_024
    # Softmax: no MACs, 5 FLOP per 4 bytes moved (2 B in, 2 B out) whatever the size.
    soft = cost_of(g.op("softmax").resolve({"B": 1}), WIDTHS)
    assert soft.macs == 0 and soft.flops / soft.total_bytes == 1.25


def test_gqa_mqa_shrink_kv_projections_and_cache():
    s, d, h = 8, 16, 4                                   # head dim 4
    kv_params = {}
    for kv in (4, 2, 1):                                 # MHA, GQA, MQA
        g = _attention_layer(s, d, h, kv)
        kv_params[kv] = sum(w.numel for n in ("k_proj", "v_proj") for w in g.op(n).weights)
        assert _macs(g, prefix="score") == s * s * d     # query heads do the same work
    assert kv_params == {4: 2 * 16 * 16, 2: 2 * 16 * 8, 1: 2 * 16 * 4}
    # KV cache read by one decode step (T = 8 cached tokens, 1 B per element):
    cache = {}
    for kv in (4, 2, 1):
        b = GraphBuilder("decode")
        k = b.input("k", (kv, "T", 4), role="kv")
        v = b.input("v", (kv, "T", 4), role="kv")
        b.attention(b.input("q", (h, "S", 4)), k, v, causal=True)
        op = b.build().ops[0].resolve({"B": 1, "S": 1, "T": 8})
        cache[kv] = cost_of(op, WIDTHS).input_bytes - 1 * h * 4 * 2   # minus Q
    assert cache == {4: 2 * 4 * 8 * 4, 2: 2 * 2 * 8 * 4, 1: 2 * 1 * 8 * 4}


def _unrolled(kind: str, steps: int, inputs: int = 8, hidden: int = 4) -> ModelGraph:
    b = GraphBuilder(str(kind))
    h = None
    for t in range(steps):
        x = b.input(f"x{t}", (inputs,))
        h = b.recurrent_cell(kind, x, h, hidden, tied=t > 0)
    return b.build()


def test_gru_is_three_quarters_of_lstm():
    lstm, gru = _unrolled(OpKind.LSTM_CELL, 5), _unrolled(OpKind.GRU_CELL, 5)
    assert Fraction(int(_macs(gru)), int(_macs(lstm))) == Fraction(3, 4)
    # LSTM: 4 gates * 4 hidden * (8 + 4) = 192 MACs per step, 5 steps, batch 1 ...
    # (the first step has no h input, but the cost counts W_hh: h0 = 0 is still multiplied)
    assert _macs(lstm) == 5 * 192
    # ... and parameters counted once: 16*8 + 16*4 + 2*16 = 224 (tied steps add none).
    assert lstm.params == 224


def test_recurrence_serializes_over_time_steps():
    for steps in (1, 4, 16):
        g = _unrolled(OpKind.RNN_CELL, steps)
        assert nx.dag_longest_path_length(g.graph) == steps - 1   # a chain of T cells
        assert _macs(g) == steps * 1 * 4 * (8 + 4)


def test_backward_is_twice_forward_macs():
    b = GraphBuilder("net", default_batch=1)
    x = b.relu(b.conv2d(b.input("x", (3, 8, 8)), 4, 3, padding=1))
    b.linear(b.flatten(x), 10)
    wl = build_workload(b.build(), batch=2, phase="train").table
    fwd = wl[wl["phase"] == "forward"].set_index("name")
    bwd = wl[wl["phase"] == "backward"].set_index("name")
    for name in ("conv2d", "linear"):
        assert OpKind(fwd.loc[name, "kind"]) in MAC_KINDS
        assert bwd.loc[name, "macs"] == 2 * fwd.loc[name, "macs"] > 0
    assert bwd["macs"].sum() == 2 * fwd["macs"].sum()


def test_bytes_moved_and_arithmetic_intensity():
    # linear 8 -> 4 with bias, batch 2, fp16: read x 16 el (32 B) + weights 36 (72 B),
    # write 8 el (16 B) = 120 B; 2*2*8*4 = 128 FLOP; intensity 128/120 FLOP/B.
    b = GraphBuilder("fc")
    b.linear(b.input("x", (8,)), 4)
    row = build_workload(b.build(), batch=2, dtype="fp16").table.iloc[0]
    assert (row["input_bytes"], row["weight_bytes"], row["output_bytes"]) == (32, 72, 16)
    assert row["bytes"] == 120
    assert row["intensity"] == pytest.approx(128 / 120)
