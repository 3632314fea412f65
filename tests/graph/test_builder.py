"""GraphBuilder: shape inference worked by hand, shape errors, naming, graph structure,
symbolic dimensions.

Output size of a conv or pool along one axis (PyTorch, torch.nn.Conv2d / MaxPool2d docs
and ATen's pooling_output_shape):

    floor((size + 2p - d(k-1) - 1) / s) + 1,
    ceil_mode: ceil(...) + 1, minus 1 if the last window would start in the right padding.
"""

from __future__ import annotations

import networkx as nx
import pytest

from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op, TensorSpec, numel

# --- shape inference ---------------------------------------------------------------------


@pytest.mark.parametrize(("size", "k", "s", "p", "d", "out"), [
    (32, 3, 1, 1, 1, 32),     # (32+2-2-1)/1+1 = 32: "same" padding
    (224, 7, 2, 3, 1, 112),   # (224+6-6-1)//2+1 = 111+1: ResNet stem
    (8, 3, 2, 1, 1, 4),       # 7//2+1 = 4
    (10, 3, 3, 0, 1, 3),      # 7//3+1 = 3
    (7, 3, 1, 0, 2, 3),       # dilation 2 spans 5: (7-4-1)+1 = 3
    (5, 5, 1, 0, 1, 1),       # kernel as large as the input: one output
    (9, 1, 2, 0, 1, 5),       # 1x1 stride 2: 8//2+1 = 5
])
def test_conv_output_size(size, k, s, p, d, out):
    b = GraphBuilder("conv")
    y = b.conv2d(b.input("x", (3, size, size)), 8, k, stride=s, padding=p, dilation=d)
    assert y.shape == ("B", 8, out, out)


def test_conv_rectangular_kernel_stride_padding():
    # H: k=1, s=1, p=0 on 4 -> 4.  W: k=3, s=2, p=1 on 6 -> (6+2-2-1)//2+1 = 3.
    b = GraphBuilder("rect")
    y = b.conv2d(b.input("x", (2, 4, 6)), 5, (1, 3), stride=(1, 2), padding=(0, 1))
    assert y.shape == ("B", 5, 4, 3)
    assert b.build().ops[0].weights[0].shape == (5, 2, 1, 3)


@pytest.mark.parametrize(("size", "k", "s", "p", "floor_out", "ceil_out"), [
    (112, 3, 2, 0, 55, 56),   # span 109: 109//2+1 = 55; ceil(109/2)+1 = 56 (GoogLeNet)
    (56, 3, 2, 0, 27, 28),    # span 53: 26+1 = 27; 27+1 = 28
    (14, 3, 2, 0, 6, 7),      # span 11: 5+1 = 6; 6+1 = 7
    (7, 2, 2, 0, 3, 4),       # span 5: 2+1 = 3; 3+1 = 4 (window 4 starts at 6 < 7: kept)
    (14, 2, 2, 0, 7, 7),      # span 12 divides evenly: ceil changes nothing
    (5, 2, 2, 1, 3, 3),       # span 5: ceil 3+1 = 4, but window 4 starts at 6 >= 5+1,
                              # entirely in the padding: PyTorch drops it -> 3
    (5, 1, 3, 0, 2, 2),       # span 4: ceil 2+1 = 3, window 3 starts at 6 >= 5: -> 2
])
def test_pool_output_size_floor_and_ceil_mode(size, k, s, p, floor_out, ceil_out):
    b = GraphBuilder("pool")
    x = b.input("x", (4, size, size))
    for pool in (b.maxpool, b.avgpool):
        assert pool(x, k, stride=s, padding=p).shape == ("B", 4, floor_out, floor_out)
        assert pool(x, k, stride=s, padding=p, ceil_mode=True).shape == \
            ("B", 4, ceil_out, ceil_out)


def test_pool_stride_defaults_to_kernel():
    b = GraphBuilder("pool")
    assert b.maxpool(b.input("x", (4, 8, 8)), 2).shape == ("B", 4, 4, 4)


def test_other_layer_shapes():
    b = GraphBuilder("shapes")
    x = b.input("x", (6, 8, 8))
    assert b.adaptive_avgpool(x).shape == ("B", 6, 1, 1)
    assert b.adaptive_avgpool(x, (2, 3)).shape == ("B", 6, 2, 3)
    assert b.flatten(x).shape == ("B", 384)                       # 6*8*8
    assert b.concat([x, b.input("y", (2, 8, 8))]).shape == ("B", 8, 8, 8)
    assert b.permute(x, (0, 2, 3, 1)).shape == ("B", 8, 8, 6)
    t = b.input("t", ("S", 16))
    assert b.linear(t, 4).shape == ("B", "S", 4)
    assert b.matmul(b.input("a", (3, 5)), b.input("c", (5, 7))).shape == ("B", 3, 7)
    assert b.embedding(b.input("i", ("S",), role="index"), 50, 12).shape == ("B", "S", 12)
    q, k = b.input("q", (4, "S", 8)), b.input("k", (2, "T", 8))
    assert b.attn_score(q, k).shape == ("B", 4, "S", "T")
    assert b.attn_context(b.input("p", (4, "S", "T")), k).shape == ("B", 4, "S", 8)
    assert b.attention(q, k, k).shape == ("B", 4, "S", 8)
    assert b.recurrent_cell(OpKind.GRU_CELL, b.input("r", (10,)), None, 6).shape == ("B", 6)


# --- errors ----------------------------------------------------------------------------

def _raises_shape_error(fn, *words):
    with pytest.raises(ShapeError) as e:
        fn()
    assert e.value.hint, "every ShapeError carries a hint"
    for w in words:
        assert w in e.value.message
    return e.value


@pytest.mark.parametrize("make", [
    pytest.param(lambda b, x: b.input("bad", (3, 0, 8)), id="input-zero"),
    pytest.param(lambda b, x: b.input("bad", (-1,)), id="input-negative"),
    pytest.param(lambda b, x: b.conv2d(x, 0, 3), id="conv-out-channels-zero"),
    pytest.param(lambda b, x: b.conv2d(x, 4, 0), id="conv-kernel-zero"),
    pytest.param(lambda b, x: b.conv2d(x, 4, (3, -1)), id="conv-kernel-negative"),
    pytest.param(lambda b, x: b.conv2d(x, 4, 3, groups=0), id="conv-groups-zero"),
    pytest.param(lambda b, x: b.linear(x, 0), id="linear-zero"),
    pytest.param(lambda b, x: b.embedding(x, 0, 8), id="embedding-num-zero"),
    pytest.param(lambda b, x: b.embedding(x, 8, -2), id="embedding-dim-negative"),
])
def test_non_positive_sizes_raise(make):
    b = GraphBuilder("bad")
    x = b.input("x", (4, 8, 8))
    _raises_shape_error(lambda: make(b, x))


# PyTorch rejects all of these; a zero stride must not surface as ZeroDivisionError, and
# a zero-sized output must not reach cost_of (adaptive pooling divides by it).
@pytest.mark.parametrize("make", [
    pytest.param(lambda b, x: b.conv2d(x, 4, 3, stride=0), id="conv-stride-zero"),
    pytest.param(lambda b, x: b.conv2d(x, 4, 3, dilation=0), id="conv-dilation-zero"),
    pytest.param(lambda b, x: b.conv2d(x, 4, 3, padding=-1), id="conv-padding-negative"),
    pytest.param(lambda b, x: b.maxpool(x, 2, stride=0), id="pool-stride-zero"),
    pytest.param(lambda b, x: b.maxpool(x, 2, padding=-1), id="pool-padding-negative"),
    pytest.param(lambda b, x: b.adaptive_avgpool(x, 0), id="adaptive-output-zero"),
])
def test_invalid_stride_dilation_padding_raise_shape_error(make):
    b = GraphBuilder("bad")
    x = b.input("x", (4, 8, 8))
    _raises_shape_error(lambda: make(b, x))


# PyTorch: "pad should be at most half of effective kernel size" (k=2, padding=2 would
# otherwise give a 6x6 output no PyTorch model has).
def test_pool_padding_over_half_kernel_raises():
    b = GraphBuilder("bad")
    _raises_shape_error(lambda: b.maxpool(b.input("x", (4, 8, 8)), 2, padding=2))


# torch.nn.ChannelShuffle rejects groups that do not divide the channels.
def test_channel_shuffle_groups_must_divide_channels():
    b = GraphBuilder("bad")
    _raises_shape_error(lambda: b.channel_shuffle(b.input("x", (3, 4, 4)), 2))


def test_groups_must_divide_channels():
    b = GraphBuilder("groups")
    x = b.input("x", (6, 8, 8))
    assert b.conv2d(x, 9, 3, groups=3).shape == ("B", 9, 6, 6)            # 3 | 6 and 3 | 9
    _raises_shape_error(lambda: b.conv2d(x, 8, 3, groups=4), "groups=4")   # 6 % 4 (in)
    _raises_shape_error(lambda: b.conv2d(x, 8, 3, groups=3), "groups=3")   # 8 % 3 (out)
    _raises_shape_error(lambda: b.groupnorm(x, 4), "groups")              # 6 % 4


def test_mismatched_add_shapes():
    b = GraphBuilder("add")
    x, y = b.input("x", (4, 8, 8)), b.input("y", (4, 4, 4))
    _raises_shape_error(lambda: b.add(x, y), "add")


def test_matmul_inner_dim_mismatch():
    b = GraphBuilder("mm")
    a, c = b.input("a", (3, 5)), b.input("c", (4, 7))
    _raises_shape_error(lambda: b.matmul(a, c), "inner dims")


@pytest.mark.parametrize("make", [
    pytest.param(lambda b, x: b.conv2d(x, 4, 5), id="conv-5x5-on-3x3"),
    pytest.param(lambda b, x: b.conv2d(x, 4, 3, dilation=2), id="conv-dilated-spans-5"),
    pytest.param(lambda b, x: b.maxpool(x, 4), id="pool-4x4-on-3x3"),
])
def test_kernel_larger_than_input(make):
    b = GraphBuilder("big")
    x = b.input("x", (4, 3, 3))
    err = _raises_shape_error(lambda: make(b, x), "larger than padded input")
    assert "padding" in err.hint


def test_kernel_fits_once_padded():
    b = GraphBuilder("pad")
    # 5x5 on 3x3 with padding 1: (3+2-4-1)+1 = 1
    assert b.conv2d(b.input("x", (4, 3, 3)), 4, 5, padding=1).shape == ("B", 4, 1, 1)


def test_other_shape_errors():
    b = GraphBuilder("misc")
    x = b.input("x", (4, 8, 8))
    _raises_shape_error(lambda: b.concat([x, b.input("y", (4, 7, 8))]), "concat")
    q, k = b.input("q", (6, "S", 8)), b.input("k", (4, "T", 8))
    _raises_shape_error(lambda: b.attention(q, k, k), "kv heads")          # 6 % 4
    seq = b.input("s", ("S", 8))
    _raises_shape_error(lambda: b.flatten(seq), "symbolic")
    _raises_shape_error(lambda: b.conv2d(b.input("img", (3, "S", 8)), 4, 3), "concrete")


# --- naming ----------------------------------------------------------------------------

def test_auto_names_count_per_kind():
    b = GraphBuilder("names")
    x = b.input("x", (4, 8, 8))
    x = b.relu(b.conv2d(x, 4, 3, padding=1))
    b.relu(b.conv2d(x, 4, 3, padding=1))
    assert [op.name for op in b.build().ops] == ["conv2d", "relu", "conv2d1", "relu1"]


def test_scopes_prefix_names_and_set_layer():
    b = GraphBuilder("scoped")
    x = b.input("x", (4, 8, 8))
    with b.scope("layer1"):
        with b.scope("0"):
            x = b.conv2d(x, 4, 3, padding=1, name="conv1")
        x = b.relu(x, name="act")
    b.linear(b.flatten(x), 10, name="fc")
    ops = b.build().ops
    assert [(op.name, op.layer) for op in ops] == [
        ("layer1.0.conv1", "layer1.0"), ("layer1.act", "layer1"), ("flatten", ""),
        ("fc", "")]


def test_scope_is_popped_when_the_body_raises():
    b = GraphBuilder("unwind")
    x = b.input("x", (4, 8, 8))
    with pytest.raises(ShapeError), b.scope("broken"):
        b.conv2d(x, 4, 99)
    assert b.relu(x).producer == "relu"


def test_duplicate_names_are_made_unique():
    b = GraphBuilder("dups")
    x = b.input("x", (8,))
    names = [b.linear(x, 8, name="fc").producer for _ in range(3)]
    with b.scope("s"):
        names += [b.linear(x, 8, name="fc").producer for _ in range(2)]
    assert names == ["fc", "fc_1", "fc_2", "s.fc", "s.fc_1"]


def test_names_unique_when_explicit_and_auto_names_collide():
    b = GraphBuilder("mix")
    x = b.input("x", (8,))
    b.relu(x, name="relu1")    # squats on the name the second auto relu would get
    for _ in range(3):
        b.relu(x)
    names = [op.name for op in b.build().ops]
    assert len(set(names)) == len(names) == 4


# --- ModelGraph structure ----------------------------------------------------------------

def _residual_block() -> ModelGraph:
    b = GraphBuilder("res", family="test")
    x = b.input("x", (4, 8, 8))
    c1 = b.conv2d(x, 4, 3, padding=1, name="c1")
    r = b.relu(c1, name="r")
    c2 = b.conv2d(r, 4, 3, padding=1, name="c2")
    s = b.add(c2, c1, name="sum")
    b.linear(b.flatten(s, name="flat"), 10, name="fc")
    return b.build()


def test_edges_follow_data_flow():
    g = _residual_block()
    assert set(g.graph.edges) == {("c1", "r"), ("r", "c2"), ("c2", "sum"), ("c1", "sum"),
                                  ("sum", "flat"), ("flat", "fc")}
    assert set(g.graph.nodes) == {op.name for op in g.ops}
    assert all(g.op(op.name) is op for op in g.ops)


def test_graph_is_a_dag_in_insertion_order():
    g = _residual_block()
    assert nx.is_directed_acyclic_graph(g.graph)
    order = {op.name: i for i, op in enumerate(g.ops)}
    # The lexicographic topological sort keyed by insertion index returns the insertion
    # order exactly when that order is topological.
    assert list(nx.lexicographical_topological_sort(g.graph, key=order.get)) == list(order)


def test_model_graph_metadata():
    g = _residual_block()
    assert (g.name, g.num_ops, len(g), dict(g.meta)) == ("res", 6, 6, {"family": "test"})
    assert g.inputs == (TensorSpec(("B", 4, 8, 8)),)
    # c1, c2: 4*4*9 + 4 = 148 each; fc: 256*10 + 10 = 2570.
    assert g.params == 148 + 148 + 2570


def test_graph_inputs_have_no_producer_edges():
    b = GraphBuilder("two-inputs")
    b.add(b.input("x", (4,)), b.input("y", (4,)))
    g = b.build()
    assert g.graph.number_of_edges() == 0 and len(g.inputs) == 2


# --- symbolic dimensions --------------------------------------------------------------------

def test_symbolic_dims_resolve():
    b = GraphBuilder("sym")
    b.linear(b.input("x", ("S", 8)), 4)
    op = b.build().ops[0]
    assert op.is_symbolic
    r = op.resolve({"B": 2, "S": 3, "T": 99})
    assert not r.is_symbolic
    assert (r.inputs[0].shape, r.outputs[0].shape) == ((2, 3, 8), (2, 3, 4))
    assert r.weights == op.weights and r.name == op.name and r.attrs == op.attrs
    assert op.inputs[0].shape == ("B", "S", 8), "resolve returns a new op"


def test_missing_symbol_raises_with_hint():
    op = Op("o", OpKind.RELU, (TensorSpec(("B", "S")),), (TensorSpec(("B", "S")),))
    with pytest.raises(ShapeError) as e:
        op.resolve({"B": 2})
    assert "'S'" in e.value.message and "B, S, T, L" in e.value.hint


def test_numel_of_symbolic_shape_raises():
    assert numel((2, 3, 4)) == 24
    with pytest.raises(ShapeError):
        numel(("B", 4))
    with pytest.raises(ShapeError):
        TensorSpec(("B", 4)).numel  # noqa: B018 (the property raises)


def test_matmul_broadcasts_batch_dims_like_torch():
    # torch.matmul: (4, 3) @ (2, 3, 5) -> (2, 4, 5); MACs = 2 * 4 * 5 * 3 = 120.
    from perfmodel.graph.costs import cost_of
    b = GraphBuilder("mm")
    a = b.input("a", (4, 3), batch=False)
    w = b.input("w", (2, 3, 5), batch=False)
    y = b.matmul(a, w)
    assert y.shape == (2, 4, 5)
    op = b.build().ops[0]
    widths = {"act": 2, "weight": 2, "kv": 2, "index": 4}
    assert cost_of(op, widths).macs == 120
    with pytest.raises(ShapeError, match="do not broadcast"):
        b.matmul(b.input("p", (2, 4, 3), batch=False), b.input("q", (3, 3, 5), batch=False))
