"""ONNX import: small models built with onnx.helper, worked by hand; torchvision models
exported by torch equal the zoo's params and MACs exactly; a torch transformer's params equal
torch's count; symbolic batch and seq; unsupported ops listed; clear errors for bad input.
"""

from __future__ import annotations

import logging
import math
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from perfmodel.cli.main import main  # noqa: E402
from perfmodel.errors import PerfModelError, ShapeError, SpecError  # noqa: E402
from perfmodel.graph.kinds import OpKind  # noqa: E402
from perfmodel.importers.onnx_model import INSTALL, load_onnx  # noqa: E402
from perfmodel.workload.build import build_workload  # noqa: E402
from perfmodel.zoo.registry import load_model  # noqa: E402

F = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def _init(name, *shape):
    return numpy_helper.from_array(RNG.standard_normal(shape).astype(np.float32), name)


def _const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def _save(tmp_path, nodes, inputs, outputs, inits, opset=17, name="m"):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _macs(graph, **job):
    return float(build_workload(graph, **job).table["macs"].sum())


def _kinds(graph):
    return [str(op.kind) for op in graph.ops]


# --- hand-built models ------------------------------------------------------------------

@pytest.fixture
def conv_net(tmp_path):
    """x (batch, 3, 8, 8) -> conv 3x3 pad 1 (4 ch) -> BN -> relu -> maxpool 2 -> global
    average pool -> flatten -> gemm (10 classes, weight (10, 4), transB)."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["n"],
                         name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    inits = [_init("w", 4, 3, 3, 3), _init("b", 4), _init("g", 4), _init("beta", 4),
             _init("mean", 4), _init("var", 4), _init("fc_w", 10, 4), _init("fc_b", 10)]
    return _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", 3, 8, 8])],
                 [helper.make_tensor_value_info("y", F, ["batch", 10])], inits, name="convnet")


def test_conv_net_params_macs_and_kinds(conv_net):
    g = load_onnx(conv_net)
    assert g.name == "convnet" and g.meta["default_batch"] == 1
    assert _kinds(g) == ["conv2d", "batchnorm", "relu", "maxpool", "adaptive_avgpool",
                         "flatten", "linear"]
    # conv 4*3*3*3 + 4 bias = 112; BN scale and shift 2*4 = 8 (mean and var are buffers);
    # fc 10*4 + 10 = 50
    assert g.params == 112 + 8 + 50
    # per image: conv 4 out channels * 8*8 positions * 27 = 6912; fc 4*10 = 40
    assert _macs(g, batch=1) == 6912 + 40
    assert _macs(g, batch=5) == 5 * (6912 + 40)          # the batch stays symbolic
    conv = g.ops[0]
    assert conv.inputs[0].shape == ("B", 3, 8, 8) and conv.outputs[0].shape == ("B", 4, 8, 8)
    assert conv.attrs["kernel"] == (3, 3) and conv.attrs["padding"] == (1, 1)
    assert g.ops[3].attrs["kernel"] == (2, 2)
    assert build_workload(g).unsupported == ()


def test_batch_given_at_load_is_the_default(conv_net):
    g = load_onnx(conv_net, batch=4, name="mine")
    assert g.name == "mine" and g.meta["default_batch"] == 4
    assert _macs(g) == 4 * 6952


def test_depthwise_and_transposed_convolutions(tmp_path):
    nodes = [
        # depthwise: groups = channels = 8, weight (8, 1, 3, 3), no bias
        helper.make_node("Conv", ["x", "dw"], ["d"], group=8, pads=[1, 1, 1, 1]),
        # transposed, stride 2: weight (Ci 8, Co 4, 2, 2) -> (B, 4, 8, 8)
        helper.make_node("ConvTranspose", ["d", "up"], ["y"], strides=[2, 2]),
    ]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["N", 8, 4, 4])],
                 [helper.make_tensor_value_info("y", F, None)],
                 [_init("dw", 8, 1, 3, 3), _init("up", 8, 4, 2, 2)])
    g = load_onnx(path)
    dw, up = g.ops
    assert dw.attrs["depthwise"] and dw.attrs["groups"] == 8
    assert up.kind == OpKind.CONV2D and up.attrs["transposed"]
    assert g.params == 72 + 128
    # depthwise: 8 channels * 16 positions * 9 = 1152; transposed: every input element
    # (8 ch * 16 positions) meets Co * k * k = 4*2*2 weights: 2048 (fvcore's count)
    assert _macs(g) == 1152 + 2048
    wl = build_workload(g, dtype="fp32")
    # bytes: input 8*16 read, output 4*64 written, weights 128: the total is right
    assert wl.table["bytes"].iloc[1] == 4 * (8 * 16 + 4 * 64 + 128)


def _transformer_block(gelu="erf"):  # or "erf_half_first", "silu"
    """Pre-norm attention block on x (batch, seq, 8), 2 heads of 4, FFN 16, exact GELU as
    torch exported it before opset 20: x * (1 + erf(x / sqrt 2)) * 0.5."""
    mm = helper.make_node
    nodes = [
        mm("LayerNormalization", ["x", "ln_g", "ln_b"], ["h"], axis=-1),
        *(mm("MatMul", ["h", f"w{n}"], [n]) for n in "qkv"),
        *(mm("Reshape", [n, "heads"], [f"{n}4"]) for n in "qkv"),
        mm("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        mm("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        mm("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        mm("MatMul", ["qh", "kt"], ["s"]), mm("Div", ["s", "two"], ["s2"]),
        mm("Softmax", ["s2"], ["p"], axis=-1), mm("MatMul", ["p", "vh"], ["o"]),
        mm("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        mm("Reshape", ["ot", "merge"], ["om"]),
        mm("MatMul", ["om", "wo"], ["a0"]), mm("Add", ["a0", "bo"], ["a"]),
        mm("Add", ["x", "a"], ["r"]),
        mm("MatMul", ["r", "w1"], ["f0"]), mm("Add", ["f0", "b1"], ["f"]),
    ]
    if gelu == "erf":
        nodes += [mm("Div", ["f", "sqrt2"], ["e0"]), mm("Erf", ["e0"], ["e1"]),
                  mm("Add", ["e1", "one"], ["e2"]), mm("Mul", ["f", "e2"], ["e3"]),
                  mm("Mul", ["e3", "half"], ["g"])]
    elif gelu == "erf_half_first":  # (x * 0.5) * (1 + erf(x / sqrt 2))
        nodes += [mm("Mul", ["f", "half"], ["xh"]), mm("Div", ["f", "sqrt2"], ["e0"]),
                  mm("Erf", ["e0"], ["e1"]), mm("Add", ["one", "e1"], ["e2"]),
                  mm("Mul", ["xh", "e2"], ["g"])]
    else:  # x * sigmoid(x): a silu
        nodes += [mm("Sigmoid", ["f"], ["sg"]), mm("Mul", ["f", "sg"], ["g"])]
    nodes += [mm("MatMul", ["g", "w2"], ["m0"]), mm("Add", ["m0", "b2"], ["m"]),
              mm("Add", ["r", "m"], ["y"])]
    inits = [_init("ln_g", 8), _init("ln_b", 8), *(_init(f"w{n}", 8, 8) for n in "qkvo"),
             _init("bo", 8), _init("w1", 8, 16), _init("b1", 16), _init("w2", 16, 8),
             _init("b2", 8), _const("heads", [0, 0, 2, 4], np.int64),
             _const("merge", [0, 0, 8], np.int64), _const("two", 2.0),
             _const("sqrt2", math.sqrt(2)), _const("one", 1.0), _const("half", 0.5)]
    return nodes, inits


@pytest.fixture
def block(tmp_path):
    nodes, inits = _transformer_block()
    return _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", "seq", 8])],
                 [helper.make_tensor_value_info("y", F, ["batch", "seq", 8])], inits,
                 name="block")


def test_transformer_block_params_macs_and_symbols(block):
    g = load_onnx(block, seq=5)
    # LN 8+8; q, k, v 3*64; out 64+8; FFN 8*16+16 and 16*8+8
    assert g.params == 16 + 192 + 72 + 144 + 136
    kinds = _kinds(g)
    assert kinds.count("linear") == 6 and kinds.count("matmul") == 2
    assert kinds.count("gelu") == 1 and "onnx.Erf" not in kinds      # the Erf pattern
    assert {"layernorm", "softmax", "permute", "reshape"} <= set(kinds)
    # per token 3*64 + 64 + 128 + 128 = 512 linear MACs; attention per (batch, head): scores
    # S*S*4 and context S*S*4
    for batch, seq in ((2, 5), (3, 7)):
        attn = 2 * batch * 2 * seq * seq * 4
        assert _macs(g, batch=batch, seq=seq) == 512 * batch * seq + attn
    score = next(op for op in g.ops if op.kind == OpKind.MATMUL)
    assert score.outputs[0].shape == ("B", 2, "S", "S")
    assert g.meta["default_seq"] == 5 and "fixed_dims" not in g.meta
    assert build_workload(g, seq=5).unsupported == ()


@pytest.mark.parametrize(("pattern", "kind"), [("erf_half_first", "gelu"), ("silu", "silu")])
def test_activation_patterns(tmp_path, pattern, kind):
    nodes, inits = _transformer_block(gelu=pattern)
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", "seq", 8])],
                 [helper.make_tensor_value_info("y", F, None)], inits)
    g = load_onnx(path, seq=3)
    kinds = _kinds(g)
    assert kinds.count(kind) == 1 and not {"sigmoid", "onnx.Erf"} & set(kinds)
    assert kinds.count("mul") == 1  # only the attention scaling is left a mul


def test_seq_is_required_for_a_dynamic_sequence(block):
    with pytest.raises(ShapeError, match="dynamic sequence") as e:
        load_onnx(block)
    assert "--seq" in e.value.hint


def test_a_dim_not_a_multiple_of_seq_fixes_the_graph(tmp_path, caplog):
    # Pad one position onto the sequence: S+1 is no multiple of S, so the graph is built at
    # batch 2, seq 4 and says so.
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"]),
             helper.make_node("MatMul", ["p", "w"], ["y"])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", "seq", 8])],
                 [helper.make_tensor_value_info("y", F, None)],
                 [_const("pads", [0, 1, 0, 0, 0, 0], np.int64), _init("w", 8, 2)])
    with caplog.at_level(logging.WARNING):
        g = load_onnx(path, batch=2, seq=4)
    assert "no multiple of batch and seq" in caplog.text
    assert g.meta["fixed_dims"] == {"B": 2, "S": 4}
    assert g.ops[1].inputs[0].shape == (2, 5, 8) and _macs(g) == 2 * 5 * 8 * 2


def test_a_size_baked_into_the_export_is_fixed_the_batch_stays_symbolic(tmp_path, caplog):
    # A (4, 2) mask added to x (batch, seq, 2), as a traced causal-mask slice: the model
    # runs only at seq 4 (shape inference fails at seq 5), so S is fixed; B still varies.
    nodes = [helper.make_node("Add", ["x", "mask"], ["r"]),
             helper.make_node("MatMul", ["r", "w"], ["y"])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", "seq", 2])],
                 [helper.make_tensor_value_info("y", F, None)],
                 [_const("mask", np.zeros((4, 2))), _init("w", 2, 3)])
    with caplog.at_level(logging.WARNING):
        g = load_onnx(path, seq=4)
    assert "infer only at {'S': 4}" in caplog.text and g.meta["fixed_dims"] == {"S": 4}
    assert g.ops[1].inputs[0].shape == ("B", 4, 2) and _macs(g, batch=3) == 3 * 4 * 2 * 3
    with pytest.raises(ShapeError, match="shape inference failed"):
        load_onnx(path, seq=5)


def test_external_data_is_never_loaded_but_small_constants_are(tmp_path, block):
    # Every initializer in a side file (as torch writes models over 2 GB): the weights' data
    # is never read, the Reshape targets are.
    model = onnx.load(str(block))
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="ext.data", size_threshold=0)
    assert load_onnx(tmp_path / "ext.onnx", seq=5).params == load_onnx(block, seq=5).params


def test_unknown_ops_are_listed_never_priced_as_zero(tmp_path):
    # Where has no perfmodel kind; its weight is still a parameter.
    nodes = [helper.make_node("Greater", ["x", "zero"], ["m"]),
             helper.make_node("Where", ["m", "x", "w"], ["y"], name="select")]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", 6])],
                 [helper.make_tensor_value_info("y", F, None)],
                 [_const("zero", 0.0), _init("w", 6)])
    g = load_onnx(path)
    assert _kinds(g) == ["onnx.Greater", "onnx.Where"] and g.params == 6
    wl = build_workload(g, batch=2)
    # an unnamed node is named after its type and place
    assert wl.unsupported == ("Greater_0", "select") and not wl.table["costed"].any()


def test_shared_initializers_count_once(tmp_path):
    # one (4, 4) weight read by two MatMuls: 16 parameters; the second op is tied (its bytes
    # are still moved)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]),
             helper.make_node("MatMul", ["h", "w"], ["y"])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", 4])],
                 [helper.make_tensor_value_info("y", F, None)], [_init("w", 4, 4)])
    g = load_onnx(path)
    assert g.params == 16 and [op.tied for op in g.ops] == [False, True]
    assert _macs(g, batch=3) == 2 * 3 * 16


def test_gather_of_a_weight_is_an_embedding(tmp_path):
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"]),
             helper.make_node("Gemm", ["e2", "w"], ["y"], transB=1),
             helper.make_node("Reshape", ["e", "flat"], ["e2"])]
    nodes = [nodes[0], nodes[2], nodes[1]]
    path = _save(tmp_path, nodes,
                 [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
                 [helper.make_tensor_value_info("y", F, None)],
                 [_init("table", 50, 8), _init("w", 3, 8), _const("flat", [-1, 8], np.int64)])
    g = load_onnx(path, seq=4)
    emb, _, fc = g.ops
    assert emb.kind == OpKind.EMBEDDING and emb.inputs[0].role == "index"
    # The Reshape merges batch and seq into one dim of B*S rows: kept as two dims (B, S).
    assert fc.kind == OpKind.LINEAR and fc.inputs[0].shape == ("B", "S", 8)
    assert g.params == 400 + 24 and _macs(g, batch=2, seq=4) == 8 * 8 * 3


def test_onnx_attention_op_is_fused_attention(tmp_path):
    node = helper.make_node("Attention", ["q", "k", "v"], ["y"], is_causal=1)
    ins = [helper.make_tensor_value_info(n, F, ["batch", 2, "seq", 4]) for n in "qkv"]
    path = _save(tmp_path, [node], ins, [helper.make_tensor_value_info("y", F, None)], [],
                 opset=23)
    g = load_onnx(path, seq=6)
    (op,) = g.ops
    assert op.kind == OpKind.ATTENTION and op.attrs["causal"]
    # causal: 6*7/2 = 21 query-key pairs per head, two matmuls of d = 4
    assert _macs(g, batch=1, seq=6) == 2 * 2 * 4 * 21


# --- torch exports: the zoo's numbers exactly -------------------------------------------

def _export(tmp_path, module, args, name, **kw):
    torch = pytest.importorskip("torch")
    path = tmp_path / f"{name}.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on each BN update
        torch.onnx.export(module, args, str(path), dynamo=False, **kw)
    return path


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_torchvision_round_trip_equals_the_zoo(tmp_path, name):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    # Exported in training mode: in eval mode the exporter folds each BatchNorm into the
    # conv before it (a bias instead of scale and shift), which changes the parameter
    # count (not the MACs: see the next test).
    path = _export(tmp_path, getattr(tv.models, name)(), (torch.randn(1, 3, 224, 224),), name,
                   input_names=["image"], dynamic_axes={"image": {0: "batch"}},
                   training=torch.onnx.TrainingMode.TRAINING)
    g, zoo = load_onnx(path), load_model(name)
    assert g.params == zoo.params  # resnet18 11,689,512; mobilenet_v2 3,504,872
    ours, theirs = (build_workload(x, batch=4).table for x in (g, zoo))
    for column in ("macs", "flops", "bytes", "params"):
        assert ours[column].sum() == theirs[column].sum(), column
    assert (ours.groupby("kind")["flops"].sum() == theirs.groupby("kind")["flops"].sum()).all()


def test_eval_export_folds_batchnorm_and_keeps_the_macs(tmp_path):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    path = _export(tmp_path, tv.models.resnet18().eval(), (torch.randn(1, 3, 224, 224),),
                   "r18", input_names=["image"], dynamic_axes={"image": {0: "batch"}})
    g = load_onnx(path)
    assert "batchnorm" not in _kinds(g)
    assert _macs(g, batch=2) == _macs(load_model("resnet18"), batch=2) == 2 * 1_814_073_344


def _tiny_transformer(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, d, h, f):
            super().__init__()
            self.h = h
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.fc1, self.fc2, self.act = nn.Linear(d, f), nn.Linear(f, d), nn.GELU()

        def forward(self, x):
            b, n, d = x.shape
            def heads(t):
                return t.view(b, n, self.h, d // self.h).transpose(1, 2)
            q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
            p = torch.softmax(q @ k.transpose(-1, -2) / (d // self.h) ** 0.5, dim=-1)
            x = self.ln1(x + self.o((p @ v).transpose(1, 2).reshape(b, n, d)))
            return self.ln2(x + self.fc2(self.act(self.fc1(x))))

    class Tiny(nn.Module):
        """BERT-like: token and learned position embeddings, 2 post-norm blocks, a head."""

        def __init__(self, vocab=100, d=32, h=4, f=64, layers=2, max_pos=16):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_pos, d)
            self.blocks = nn.ModuleList(Block(d, h, f) for _ in range(layers))
            self.head = nn.Linear(d, vocab)

        def forward(self, ids):
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1]))
            for blk in self.blocks:
                x = blk(x)
            return self.head(x)

    model = Tiny().eval()
    # LayerNorm starts at ones and zeros: identical tensors the exporter shares as one
    # initializer (counted once), so they are made distinct here, as trained ones are.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.rand_like(p))
    return model


@pytest.mark.parametrize("opset", [17, 20])  # 17: GELU as the Erf pattern; 20: a Gelu op
def test_torch_transformer_params_equal_torch(tmp_path, opset):
    torch = pytest.importorskip("torch")
    model = _tiny_transformer(torch)
    path = _export(tmp_path, model, (torch.zeros(2, 8, dtype=torch.long),), "tiny",
                   input_names=["ids"], dynamic_axes={"ids": {0: "batch", 1: "seq"}},
                   opset_version=opset)
    g = load_onnx(path, seq=8)
    assert g.params == sum(p.numel() for p in model.parameters()) == 24_100
    wl = build_workload(g, batch=2, seq=8)
    assert wl.unsupported == ()
    assert _kinds(g).count("gelu") == 2
    # tokens 2*8 = 16; per block q, k, v, o 4*32*32 and FFN 2*32*64 per token; attention
    # 2 (batch) * 4 heads * 8*8 pairs * 8 (head dim), scores and context; head 32*100
    per_block = 16 * (4 * 32 * 32 + 2 * 32 * 64) + 2 * (2 * 4 * 8 * 8 * 8)
    assert wl.table["macs"].sum() == 2 * per_block + 16 * 32 * 100
    # symbolic: the same graph at batch 1, seq 12
    per_block = 12 * (4 * 32 * 32 + 2 * 32 * 64) + 2 * (4 * 12 * 12 * 8)
    assert _macs(g, batch=1, seq=12) == 2 * per_block + 12 * 32 * 100


# --- bad input --------------------------------------------------------------------------

def test_missing_empty_and_corrupt_files(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_onnx(tmp_path / "nope.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(SpecError, match="empty"):
        load_onnx(tmp_path / "empty.onnx")
    (tmp_path / "text.onnx").write_text("this is not a model\n")
    with pytest.raises(SpecError, match="not an ONNX model"):
        load_onnx(tmp_path / "text.onnx")
    (tmp_path / "junk.onnx").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SpecError, match="not an ONNX model"):
        load_onnx(tmp_path / "junk.onnx")
    with pytest.raises(SpecError, match="not a file"):
        load_onnx(tmp_path)


def test_shapes_that_do_not_fit_name_the_op(tmp_path):
    node = helper.make_node("Add", ["x", "w"], ["y"], name="bias_add")
    path = _save(tmp_path, [node], [helper.make_tensor_value_info("x", F, ["batch", 4])],
                 [helper.make_tensor_value_info("y", F, None)], [_init("w", 5)])
    with pytest.raises(ShapeError, match="shape inference failed.*bias_add"):
        load_onnx(path)


def test_a_tensor_of_unknown_shape_is_named(tmp_path):
    nodes = [helper.make_node("MyOp", ["x"], ["t"], domain="custom", name="mine"),
             helper.make_node("Relu", ["t"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, [1, 4])],
                              [helper.make_tensor_value_info("y", F, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("custom", 1)])
    onnx.save(model, str(tmp_path / "c.onnx"))
    with pytest.raises(ShapeError, match="tensor 't' .*MyOp node 'mine'.* cannot be inferred"):
        load_onnx(tmp_path / "c.onnx")


def test_fixed_batch_cannot_be_priced_at_another(conv_net, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, [1, 4])],
                 [helper.make_tensor_value_info("y", F, None)], [], name="fixed")
    assert load_onnx(path, batch=1).meta["default_batch"] == 1
    with pytest.raises(ShapeError, match="batch is fixed at 1"):
        load_onnx(path, batch=8)


def test_bad_batch_and_other_dynamic_dims(conv_net, tmp_path):
    with pytest.raises(ShapeError, match="batch must be a positive integer"):
        load_onnx(conv_net, batch=0)
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    path = _save(tmp_path, nodes, [helper.make_tensor_value_info("x", F, ["batch", 3, "h"])],
                 [helper.make_tensor_value_info("y", F, None)], [])
    with pytest.raises(ShapeError, match="dim 2 \\(h\\) is dynamic"):
        load_onnx(path)


def test_without_onnx_one_error_names_the_extra(conv_net, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(PerfModelError) as e:
        load_onnx(conv_net)
    assert e.value.hint == INSTALL == 'pip install ".[onnx]"'


# --- through load_model and the CLI -----------------------------------------------------

def test_load_model_and_cli_roofline(conv_net, capsys):
    assert load_model(str(conv_net)).params == 170
    code = main(["roofline", str(conv_net), "--hw", "a100", "--batch", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "convnet" in out


def test_cli_bad_onnx_file_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "bad.onnx").write_text("not a model")
    code = main(["roofline", str(tmp_path / "bad.onnx"), "--hw", "a100"])
    out, err = capsys.readouterr()
    assert code == 2 and "not an ONNX model" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
