"""Cost rules: one row per op kind, every number worked by hand.

Widths (bytes per element) are act 2, weight 2, kv 1, index 4, so a byte count is
2 x elements unless the tensor is a KV cache (1 x) or an index tensor (4 x).
Each row builds one op with GraphBuilder (the batch dim B is prepended to inputs),
resolves its symbols and compares (macs, flops, params, weight_bytes, input_bytes,
output_bytes) with the figures in the comment beside it.
"""

from __future__ import annotations

from dataclasses import astuple

import pytest

from perfmodel.errors import UnsupportedOpError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.graph.costs import COST_RULES, ELEMENTWISE_FLOPS, OpCost, cost_of, is_costed
from perfmodel.graph.kinds import ZERO_COST_KINDS, OpKind
from perfmodel.graph.op import Op, TensorSpec

WIDTHS = {"act": 2, "weight": 2, "kv": 1, "index": 4}
ONE = {"B": 1}
TWO = {"B": 2}
PREFILL = {"B": 1, "S": 4, "T": 4}   # 4 new tokens attending to 4 keys
DECODE = {"B": 1, "S": 1, "T": 8}    # 1 new token against an 8-token KV cache


# --- small builders ---------------------------------------------------------------------

def _x(b, *shape, role="act", name="x"):
    return b.input(name, shape, role=role)


def _q(b, heads):
    return b.input("q", (heads, "S", 8))


def _kv(b, name, heads, role="act"):
    return b.input(name, (heads, "T", 8), role=role)


def _scores(b, heads):
    return b.input("p", (heads, "S", "T"))


def _cell(kind):
    def build(b):
        b.recurrent_cell(kind, _x(b, 8), _x(b, 4, name="h"), hidden=4)
    return build


def _identity_with_weight(b):
    x = _x(b, 10)
    b.add_op(OpKind.IDENTITY, [x], x.shape, weights=[(10,)])


# (kind, build, dims, (macs, flops, params, weight_bytes, input_bytes, output_bytes))
ROWS = [
    # --- conv2d: MACs = N*Co*Ho*Wo*(Ci/groups)*kh*kw, FLOPs = 2*MACs ---------------------
    pytest.param(
        # x (1,3,8,8), 4 filters 3x3, stride 2, pad 1, bias: Ho = (8+2-2-1)//2+1 = 4.
        # macs 4*4*4*3*9 = 1728; params 4*27+4 = 112 (224 B); in 192 el, out 64 el.
        OpKind.CONV2D, lambda b: b.conv2d(_x(b, 3, 8, 8), 4, 3, stride=2, padding=1), ONE,
        (1728, 3456, 112, 224, 384, 128), id="conv2d-stride-pad-bias"),
    pytest.param(
        # x (1,1,9,9), 2 filters 3x3, dilation 2 (spans 5), no bias: Ho = 9-4 = 5.
        # macs 2*5*5*1*9 = 450; params 18 (36 B); in 81 el, out 50 el.
        OpKind.CONV2D, lambda b: b.conv2d(_x(b, 1, 9, 9), 2, 3, dilation=2, bias=False), ONE,
        (450, 900, 18, 36, 162, 100), id="conv2d-dilation"),
    pytest.param(
        # x (1,4,6,6), 8 filters 3x3 pad 1, groups 2, no bias: weight (8,2,3,3) = 144.
        # macs 8*6*6*2*9 = 5184; in 144 el, out 288 el.
        OpKind.CONV2D,
        lambda b: b.conv2d(_x(b, 4, 6, 6), 8, 3, padding=1, groups=2, bias=False), ONE,
        (5184, 10368, 144, 288, 288, 576), id="conv2d-groups"),
    pytest.param(
        # depthwise x (1,4,6,6), groups 4, bias: weight (4,1,3,3) = 36 + 4 bias = 40.
        # macs 4*6*6*1*9 = 1296; in and out 144 el.
        OpKind.CONV2D, lambda b: b.conv2d(_x(b, 4, 6, 6), 4, 3, padding=1, groups=4), ONE,
        (1296, 2592, 40, 80, 288, 288), id="conv2d-depthwise"),
    # --- linear: MACs = rows * in * out ------------------------------------------------
    pytest.param(
        # x (2,8) -> 4 with bias: macs 2*8*4 = 64; params 32+4 = 36; in 16 el, out 8 el.
        OpKind.LINEAR, lambda b: b.linear(_x(b, 8), 4), TWO,
        (64, 128, 36, 72, 32, 16), id="linear-bias"),
    pytest.param(
        # x (2,3,8) -> 4, no bias: rows 6, macs 6*8*4 = 192; params 32; in 48, out 24 el.
        OpKind.LINEAR, lambda b: b.linear(_x(b, "S", 8), 4, bias=False), {"B": 2, "S": 3},
        (192, 384, 32, 64, 96, 48), id="linear-tokens"),
    pytest.param(
        # MoE, E=4 experts, top_k=2, 2 tokens: x (2 tokens, 2 copies, 8) -> 16, bias.
        # rows 4, macs 4*8*16 = 512; params 4*16*8 + 4*16 = 576 (1152 B all experts).
        # touched = E*(1-(1-k/E)^tokens) = 4*(1-0.5^2) = 3 -> 1152*3/4 = 864 B.
        # in 32 el, out 4*16 = 64 el.
        OpKind.LINEAR, lambda b: b.linear(_x(b, 2, 8), 16, experts=4, top_k=2), TWO,
        (512, 1024, 576, 864, 64, 128), id="linear-moe"),
    # --- matmul / bmm: MACs = out elements * K -----------------------------------------
    pytest.param(
        # (2,2,3) @ (2,3,4) -> (2,2,4): macs 16*3 = 48; in 12+24 el, out 16 el.
        OpKind.MATMUL, lambda b: b.matmul(_x(b, 2, 3), _x(b, 3, 4, name="y")), TWO,
        (48, 96, 0, 0, 72, 32), id="matmul"),
    pytest.param(
        # (3,4,5) @ (3,5,2) -> (3,4,2): macs 24*5 = 120; in 60+30 el, out 24 el.
        OpKind.BMM,
        lambda b: b.matmul(_x(b, 4, 5), _x(b, 5, 2, name="y"), kind=OpKind.BMM), {"B": 3},
        (120, 240, 0, 0, 180, 48), id="bmm"),
    # --- attention: MACs = B*H*d*pairs; pairs = Q*T, causal Q*T - Q(Q-1)/2 ---------------
    pytest.param(
        # Q (1,2,4,8), K (1,2,4,8): pairs 16, macs 2*8*16 = 256; in 64+64 el, out 32 el.
        OpKind.ATTN_SCORE, lambda b: b.attn_score(_q(b, 2), _kv(b, "k", 2)), PREFILL,
        (256, 512, 0, 0, 256, 64), id="attn_score"),
    pytest.param(
        # causal: pairs 16 - 4*3/2 = 10, macs 2*8*10 = 160; the score tensor is still
        # written in full (32 el).
        OpKind.ATTN_SCORE, lambda b: b.attn_score(_q(b, 2), _kv(b, "k", 2), causal=True),
        PREFILL, (160, 320, 0, 0, 256, 64), id="attn_score-causal"),
    pytest.param(
        # GQA decode: Q (1,4,1,8) 4 query heads; K cache (1,2,8,8) 2 kv heads, role kv.
        # pairs 8, macs 4*8*8 = 256 (query heads); in Q 32*2 + K 128*1 = 192; out 32 el.
        OpKind.ATTN_SCORE,
        lambda b: b.attn_score(_q(b, 4), _kv(b, "k", 2, "kv"), causal=True), DECODE,
        (256, 512, 0, 0, 192, 64), id="attn_score-gqa-decode"),
    pytest.param(
        # P (1,2,4,4), V (1,2,4,8): macs 2*8*16 = 256; in 32+64 el, out (1,2,4,8) 64 el.
        OpKind.ATTN_CONTEXT, lambda b: b.attn_context(_scores(b, 2), _kv(b, "v", 2)),
        PREFILL, (256, 512, 0, 0, 192, 128), id="attn_context"),
    pytest.param(
        # causal: pairs 10, macs 2*8*10 = 160; bytes as above.
        OpKind.ATTN_CONTEXT,
        lambda b: b.attn_context(_scores(b, 2), _kv(b, "v", 2), causal=True), PREFILL,
        (160, 320, 0, 0, 192, 128), id="attn_context-causal"),
    pytest.param(
        # GQA decode: P (1,4,1,8), V cache (1,2,8,8) kv: macs 4*8*8 = 256;
        # in P 32*2 + V 128*1 = 192; out (1,4,1,8) 32 el.
        OpKind.ATTN_CONTEXT,
        lambda b: b.attn_context(_scores(b, 4), _kv(b, "v", 2, "kv"), causal=True), DECODE,
        (256, 512, 0, 0, 192, 64), id="attn_context-gqa-decode"),
    pytest.param(
        # fused: macs 2*B*H*d*pairs = 2*2*8*16 = 512; flops 2*512 + 5*2*16 (softmax) = 1184;
        # in Q, K, V 64 el each = 384 B; out 64 el.
        OpKind.ATTENTION,
        lambda b: b.attention(_q(b, 2), _kv(b, "k", 2), _kv(b, "v", 2)), PREFILL,
        (512, 1184, 0, 0, 384, 128), id="attention"),
    pytest.param(
        # causal: pairs 10, macs 2*2*8*10 = 320; flops 640 + 5*2*10 = 740.
        OpKind.ATTENTION,
        lambda b: b.attention(_q(b, 2), _kv(b, "k", 2), _kv(b, "v", 2), causal=True),
        PREFILL, (320, 740, 0, 0, 384, 128), id="attention-causal"),
    pytest.param(
        # GQA decode: pairs 8, macs 2*4*8*8 = 512; flops 1024 + 5*4*8 = 1184;
        # in Q 32*2 + K 128*1 + V 128*1 = 320; out 32 el.
        OpKind.ATTENTION,
        lambda b: b.attention(_q(b, 4), _kv(b, "k", 2, "kv"), _kv(b, "v", 2, "kv"),
                              causal=True), DECODE,
        (512, 1184, 0, 0, 320, 64), id="attention-gqa-decode"),
    # --- normalization and activations on x (2,10): 20 el, 40 B in and out ------------
    # flops = ELEMENTWISE_FLOPS[kind] * 20; norms carry their (10,) weights.
    pytest.param(OpKind.SOFTMAX, lambda b: b.softmax(_x(b, 10)), TWO,
                 (0, 100, 0, 0, 40, 40), id="softmax"),              # 5 * 20
    pytest.param(OpKind.LAYERNORM, lambda b: b.layernorm(_x(b, 10)), TWO,
                 (0, 100, 20, 40, 40, 40), id="layernorm"),          # 5 * 20; gamma, beta
    pytest.param(OpKind.GROUPNORM, lambda b: b.groupnorm(_x(b, 10), 2), TWO,
                 (0, 100, 20, 40, 40, 40), id="groupnorm"),          # 5 * 20; gamma, beta
    pytest.param(OpKind.RMSNORM, lambda b: b.rmsnorm(_x(b, 10)), TWO,
                 (0, 80, 10, 20, 40, 40), id="rmsnorm"),             # 4 * 20; gamma
    pytest.param(OpKind.BATCHNORM, lambda b: b.batchnorm(_x(b, 10)), TWO,
                 (0, 40, 20, 40, 40, 40), id="batchnorm"),           # 2 * 20; gamma, beta
    pytest.param(OpKind.RELU, lambda b: b.relu(_x(b, 10)), TWO,
                 (0, 20, 0, 0, 40, 40), id="relu"),                  # 1 * 20
    pytest.param(OpKind.RELU6, lambda b: b.act(_x(b, 10), "relu6"), TWO,
                 (0, 40, 0, 0, 40, 40), id="relu6"),                 # 2 * 20
    pytest.param(OpKind.GELU, lambda b: b.act(_x(b, 10), "gelu"), TWO,
                 (0, 160, 0, 0, 40, 40), id="gelu"),                 # 8 * 20
    pytest.param(OpKind.SILU, lambda b: b.act(_x(b, 10), "silu"), TWO,
                 (0, 80, 0, 0, 40, 40), id="silu"),                  # 4 * 20
    pytest.param(OpKind.SIGMOID, lambda b: b.act(_x(b, 10), "sigmoid"), TWO,
                 (0, 80, 0, 0, 40, 40), id="sigmoid"),               # 4 * 20
    pytest.param(OpKind.TANH, lambda b: b.act(_x(b, 10), "tanh"), TWO,
                 (0, 100, 0, 0, 40, 40), id="tanh"),                 # 5 * 20
    pytest.param(OpKind.HARDSWISH, lambda b: b.act(_x(b, 10), "hardswish"), TWO,
                 (0, 80, 0, 0, 40, 40), id="hardswish"),             # 4 * 20
    pytest.param(OpKind.HARDSIGMOID, lambda b: b.act(_x(b, 10), "hardsigmoid"), TWO,
                 (0, 60, 0, 0, 40, 40), id="hardsigmoid"),           # 3 * 20
    pytest.param(OpKind.ROPE, lambda b: b.rope(_x(b, 10)), TWO,
                 (0, 60, 0, 0, 40, 40), id="rope"),                  # 3 * 20
    # --- elementwise binary ops: an n-input add does n-1 adds per element ---------------
    pytest.param(
        OpKind.ADD, lambda b: b.add(*(_x(b, 10, name=n) for n in "xyz")), TWO,
        (0, 40, 0, 0, 120, 40), id="add-3-inputs"),                   # 2 adds * 20; 3 * 40 B
    pytest.param(
        OpKind.MUL, lambda b: b.mul(_x(b, 10), _x(b, 10, name="y")), TWO,
        (0, 20, 0, 0, 80, 40), id="mul"),                             # 1 * 20; 2 * 40 B
    pytest.param(
        OpKind.MUL, lambda b: b.mul(_x(b, 10), weight=(10,)), TWO,
        (0, 20, 10, 20, 40, 40), id="mul-learned-scale"),             # 1 * 20; weight (10,)
    # --- pooling: kh*kw per output element (adaptive: input window per output) ---------
    pytest.param(
        # x (1,2,4,4) -> 2x2 windows -> (1,2,2,2) 8 el; flops 4*8 = 32; in 32 el.
        OpKind.MAXPOOL, lambda b: b.maxpool(_x(b, 2, 4, 4), 2), ONE,
        (0, 32, 0, 0, 64, 16), id="maxpool"),
    pytest.param(
        # x (1,2,5,5), 3x3 stride 2 pad 1 -> Ho = (5+2-2-1)//2+1 = 3; 18 el; 9*18 = 162.
        OpKind.MAXPOOL, lambda b: b.maxpool(_x(b, 2, 5, 5), 3, stride=2, padding=1), ONE,
        (0, 162, 0, 0, 100, 36), id="maxpool-3x3-s2-p1"),
    pytest.param(
        OpKind.AVGPOOL, lambda b: b.avgpool(_x(b, 2, 4, 4), 2), ONE,
        (0, 32, 0, 0, 64, 16), id="avgpool"),                         # as maxpool 2x2
    pytest.param(
        # global: (1,2,4,4) -> (1,2,1,1): 16 adds per output * 2 outputs = 32.
        OpKind.ADAPTIVE_AVGPOOL, lambda b: b.adaptive_avgpool(_x(b, 2, 4, 4)), ONE,
        (0, 32, 0, 0, 64, 4), id="adaptive_avgpool-global"),
    pytest.param(
        # (1,2,4,4) -> (1,2,2,2): 32/8 = 4 per output * 8 outputs = 32.
        OpKind.ADAPTIVE_AVGPOOL, lambda b: b.adaptive_avgpool(_x(b, 2, 4, 4), 2), ONE,
        (0, 32, 0, 0, 64, 16), id="adaptive_avgpool-2x2"),
    # --- data movement: no FLOPs, read inputs, write outputs ---------------------------
    pytest.param(
        # (2,2,3) ++ (2,4,3) on dim 1 -> (2,6,3): in 12+24 el, out 36 el.
        OpKind.CONCAT, lambda b: b.concat([_x(b, 2, 3), _x(b, 4, 3, name="y")]), TWO,
        (0, 0, 0, 0, 72, 72), id="concat"),
    pytest.param(
        # (1,4,2,2) 16 el in and out.
        OpKind.CHANNEL_SHUFFLE, lambda b: b.channel_shuffle(_x(b, 4, 2, 2), 2), ONE,
        (0, 0, 0, 0, 32, 32), id="channel_shuffle"),
    pytest.param(
        # 20 act el (40 B) written into the KV cache at 1 B each (20 B).
        OpKind.COPY, lambda b: b.copy(_x(b, 10), role="kv"), TWO,
        (0, 0, 0, 0, 40, 20), id="copy-to-kv"),
    pytest.param(
        # idx (2,3) int32 (24 B) into a 100 x 8 table: params 800, but only the 6 gathered
        # rows are read: 6*8 = 48 el = 96 B (not 1600 B); out (2,3,8) 48 el.
        OpKind.EMBEDDING, lambda b: b.embedding(_x(b, "S", role="index"), 100, 8),
        {"B": 2, "S": 3}, (0, 0, 800, 96, 24, 96), id="embedding"),
    # --- recurrent cells, x (2,8), h (2,4), hidden 4: MACs = N*G*H*(I+H) ----------------
    # params G*H*I + G*H*H + 2*G*H; in x 16 el + h 8 el = 48 B; out (2,4) = 16 B.
    pytest.param(
        # G=4: macs 2*16*12 = 384; flops 768 + 22*2*4 = 944; params 128+64+32 = 224.
        OpKind.LSTM_CELL, _cell(OpKind.LSTM_CELL), TWO,
        (384, 944, 224, 448, 48, 16), id="lstm_cell"),
    pytest.param(
        # G=3: macs 2*12*12 = 288; flops 576 + 19*8 = 728; params 96+48+24 = 168.
        OpKind.GRU_CELL, _cell(OpKind.GRU_CELL), TWO,
        (288, 728, 168, 336, 48, 16), id="gru_cell"),
    pytest.param(
        # G=1: macs 2*4*12 = 96; flops 192 + 5*8 = 232; params 32+16+8 = 56.
        OpKind.RNN_CELL, _cell(OpKind.RNN_CELL), TWO,
        (96, 232, 56, 112, 48, 16), id="rnn_cell"),
    # --- views and no-ops: nothing computed or moved, params still counted --------------
    pytest.param(OpKind.RESHAPE, lambda b: b.reshape(_x(b, 10), ("B", 2, 5)), TWO,
                 (0, 0, 0, 0, 0, 0), id="reshape"),
    pytest.param(OpKind.FLATTEN, lambda b: b.flatten(_x(b, 2, 5)), TWO,
                 (0, 0, 0, 0, 0, 0), id="flatten"),
    pytest.param(OpKind.PERMUTE, lambda b: b.permute(_x(b, 2, 5), (0, 2, 1)), TWO,
                 (0, 0, 0, 0, 0, 0), id="permute"),
    pytest.param(OpKind.DROPOUT, lambda b: b.dropout(_x(b, 10)), TWO,
                 (0, 0, 0, 0, 0, 0), id="dropout"),
    pytest.param(OpKind.IDENTITY, _identity_with_weight, TWO,
                 (0, 0, 10, 0, 0, 0), id="identity-keeps-params"),
]


def _op(build, dims) -> Op:
    b = GraphBuilder("one-op")
    build(b)
    return b.build().ops[-1].resolve(dims)


@pytest.mark.parametrize(("kind", "build", "dims", "expected"), ROWS)
def test_cost_of_each_kind(kind, build, dims, expected):
    op = _op(build, dims)
    assert op.kind == kind and not op.is_symbolic
    assert astuple(cost_of(op, WIDTHS)) == pytest.approx(expected)


def test_rows_cover_every_cost_rule_and_kind():
    covered = {row.values[0] for row in ROWS}
    assert covered == set(COST_RULES), "add a row for each new kind in COST_RULES"
    assert set(COST_RULES) == set(OpKind)


def test_mac_rows_have_two_flops_per_mac():
    # For conv/linear/matmul the FLOP count is exactly 2 x MACs (bias rides in the MAC).
    for row in ROWS:
        kind, build, dims, _ = row.values
        if kind in (OpKind.CONV2D, OpKind.LINEAR, OpKind.MATMUL, OpKind.BMM):
            c = cost_of(_op(build, dims), WIDTHS)
            assert c.flops == 2 * c.macs


def test_elementwise_rows_follow_the_table():
    # The hand-worked numbers above are ELEMENTWISE_FLOPS[kind] * 20 elements.
    for kind in ("softmax", "layernorm", "rmsnorm", "batchnorm", "relu", "relu6", "gelu",
                 "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "rope"):
        row = next(r for r in ROWS if r.values[0] == kind)
        assert row.values[3][1] == ELEMENTWISE_FLOPS[kind] * 20


# --- relations the rows imply, stated directly ---------------------------------------

def test_gqa_bytes_use_kv_heads_macs_use_query_heads():
    def score(kv_heads):
        b = GraphBuilder("gqa")
        b.attn_score(_q(b, 4), _kv(b, "k", kv_heads, "kv"), causal=True)
        return cost_of(b.build().ops[-1].resolve(DECODE), WIDTHS)

    mha, gqa = score(4), score(2)
    assert gqa.macs == mha.macs == 4 * 8 * 8          # 4 query heads x d 8 x 8 keys
    # K cache: 4*8*8 = 256 B (MHA) vs 2*8*8 = 128 B (GQA); Q 64 B in both.
    assert (mha.input_bytes, gqa.input_bytes) == (64 + 256, 64 + 128)


def test_decode_causal_equals_non_causal():
    # One query at the last position sees all T keys: causal masking saves nothing.
    def fused(causal):
        b = GraphBuilder("dec")
        b.attention(_q(b, 2), _kv(b, "k", 2, "kv"), _kv(b, "v", 2, "kv"), causal=causal)
        return cost_of(b.build().ops[-1].resolve(DECODE), WIDTHS)

    assert fused(True) == fused(False)


def test_gru_macs_are_three_quarters_of_lstm():
    # DOMAIN.md section 2: LSTM has 4 gates, GRU 3, so GRU ~ 3/4 of LSTM's work.
    lstm = cost_of(_op(_cell(OpKind.LSTM_CELL), TWO), WIDTHS)
    gru = cost_of(_op(_cell(OpKind.GRU_CELL), TWO), WIDTHS)
    rnn = cost_of(_op(_cell(OpKind.RNN_CELL), TWO), WIDTHS)
    assert gru.macs == 0.75 * lstm.macs
    assert rnn.macs == 0.25 * lstm.macs
    assert gru.params == 0.75 * lstm.params


@pytest.mark.parametrize(("tokens", "touched"), [
    (1, 2.0),          # one token routed to k=2 experts touches exactly 2
    (2, 3.5),          # 8*(1-(3/4)^2) = 8*7/16 = 3.5
    (1000, 8.0),       # many tokens touch every expert (within float rounding)
])
def test_moe_reads_expected_touched_experts(tokens, touched):
    # E = 8 experts, top_k = 2; weight (8,4,4) = 128 el = 256 B for all experts, no bias.
    b = GraphBuilder("moe")
    b.linear(b.input("x", (2, 4)), 4, bias=False, experts=8, top_k=2)
    c = cost_of(b.build().ops[-1].resolve({"B": tokens}), WIDTHS)
    assert c.weight_bytes == pytest.approx(256 * touched / 8)
    assert c.params == 128
    assert c.macs == tokens * 2 * 4 * 4


def test_embedding_reads_only_gathered_rows():
    b = GraphBuilder("emb")
    b.embedding(b.input("idx", (), role="index"), 1000, 4)
    c = cost_of(b.build().ops[-1].resolve({"B": 3}), WIDTHS)
    assert c.weight_bytes == 3 * 4 * 2         # 3 rows of 4 at 2 B, not 1000*4*2
    assert c.input_bytes == 3 * 4              # int32 indices
    assert c.params == 4000


# --- tied ops, zero-cost kinds, unknown kinds ----------------------------------------

@pytest.mark.parametrize(("build", "expected"), [
    # linear x (2,8) -> 4 with bias, tied: params 0 but the 36 weights (72 B) are read.
    pytest.param(lambda b: b.linear(_x(b, 8), 4, tied=True),
                 (64, 128, 0, 72, 32, 16), id="linear-tied"),
    # LSTM step t > 0 tied to step 0: same work and traffic as the lstm_cell row, no params.
    pytest.param(lambda b: b.recurrent_cell(OpKind.LSTM_CELL, _x(b, 8), _x(b, 4, name="h"),
                                            hidden=4, tied=True),
                 (384, 944, 0, 448, 48, 16), id="lstm-tied"),
])
def test_tied_ops_count_no_params_but_move_weights(build, expected):
    assert astuple(cost_of(_op(build, TWO), WIDTHS)) == pytest.approx(expected)


def test_tied_weights_counted_once_in_graph_params():
    b = GraphBuilder("lm")
    idx = b.input("idx", ("S",), role="index")
    h = b.embedding(idx, 100, 8)
    b.linear(h, 100, bias=False, tied=True)   # LM head tied to the embedding table
    assert b.build().params == 800


@pytest.mark.parametrize("kind", sorted(ZERO_COST_KINDS))
def test_zero_cost_kinds_cost_nothing_but_keep_params(kind):
    op = Op("v", kind, (TensorSpec((2, 10)),), (TensorSpec((2, 10)),),
            weights=(TensorSpec((3,), "weight"),))
    assert cost_of(op, WIDTHS) == OpCost(params=3)


def test_unknown_kind_raises_unsupported_op_error():
    op = Op("mystery", "frobnicate", (TensorSpec((2, 10)),), (TensorSpec((2, 10)),))
    assert not is_costed("frobnicate")
    with pytest.raises(UnsupportedOpError) as e:
        cost_of(op, WIDTHS)
    assert "frobnicate" in e.value.message and "mystery" in e.value.message
    assert "COST_RULES" in e.value.hint


def test_opcost_adds_fieldwise_from_zero():
    costs = [OpCost(1, 2, 3, 4, 5, 6), OpCost(10, 20, 30, 40, 50, 60), OpCost(macs=100)]
    total = sum(costs, OpCost())
    assert total == OpCost(111, 22, 33, 44, 55, 66)
    assert (total.bytes_read, total.bytes_written, total.total_bytes) == (99, 66, 165)
    assert sum([], OpCost()) == OpCost()


def test_graph_totals_are_sums_of_op_costs():
    # conv2d-stride-pad-bias row then relu on its (1,4,4,4) output: 64 el, 64 flops.
    b = GraphBuilder("pair")
    b.relu(b.conv2d(_x(b, 3, 8, 8), 4, 3, stride=2, padding=1))
    total = sum((cost_of(op.resolve(ONE), WIDTHS) for op in b.build().ops), OpCost())
    assert astuple(total) == (1728, 3456 + 64, 112, 224, 384 + 128, 128 + 128)
