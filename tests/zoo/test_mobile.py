"""Mobile CNN zoo (mobile.py, efficientnet.py, reparam.py) against published figures.

Every expected number comes from the ``REFERENCE`` entry of the model's module; each entry's
``source`` cites it (torchvision docs and weights meta, the papers, timm, the official
RepVGG code, OpenMMLab). Structural tests use hand-worked counts, shown in comments.
"""

from __future__ import annotations

from functools import cache

import pytest

from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo import efficientnet, mobile, reparam
from tests.zoo.graph_sums import macs, out_shape, params

MODULES = (mobile, efficientnet, reparam)
ROWS = [(name, m) for m in MODULES for name in m.MODELS]


@cache
def build(name: str) -> ModelGraph:
    """Each default model is built once per session (graphs are immutable values)."""
    return next(m.MODELS[name]() for m in MODULES if name in m.MODELS)


@pytest.mark.parametrize(("name", "module"), ROWS, ids=[n for n, _ in ROWS])
def test_params_exact(name, module):
    # REFERENCE[name]["source"] cites the figure (torchvision docs / timm / official code).
    assert build(name).params == module.REFERENCE[name]["params"]


@pytest.mark.parametrize(("name", "module"), ROWS, ids=[n for n, _ in ROWS])
def test_macs_within_one_percent(name, module):
    # REFERENCE[name]["source"] cites the published MAC ("GFLOPS", "mult-adds") figure.
    ref = module.REFERENCE[name]["macs"]
    assert macs(build(name)) == pytest.approx(ref, rel=0.01)


@pytest.mark.parametrize(("name", "module"), ROWS, ids=[n for n, _ in ROWS])
def test_meta_and_output(name, module):
    g = build(name)
    assert g.name == name
    assert {"family", "source", "input", "default_batch", "is_llm"} <= set(g.meta)
    assert g.meta["default_batch"] == 1 and g.meta["is_llm"] is False
    assert g.ops[-1].outputs[0].shape == ("B", 1000)
    assert module.MODELS[name](num_classes=10).ops[-1].outputs[0].shape == ("B", 10)


def test_every_model_has_a_cited_reference():
    for m in MODULES:
        assert set(m.MODELS) == set(m.REFERENCE)
        assert all(ref["source"] for ref in m.REFERENCE.values())


def test_make_divisible():
    # torchvision _make_divisible: 18 -> int(18 + 4) // 8 * 8 = 16 < 0.9 * 18, so 16 + 8 = 24;
    # divisor 4 (GhostNet): int(18 + 2) // 4 * 4 = 20; 448 stays; 10 -> 8 < 9, so 16.
    assert mobile.make_divisible(18, 8) == 24
    assert mobile.make_divisible(18, 4) == 20
    assert mobile.make_divisible(448, 8) == 448
    assert mobile.make_divisible(10, 8) == 16


def test_mobilenet_v1_first_block_and_final_map():
    g = build("mobilenet_v1")
    # dw 3x3 on 32 ch: 288, BN 64, pw 32->64: 2048, BN 128 -> 2528
    assert params(g, "blocks.0.0.") == 2528
    # stem conv at 112x112: 112*112*32*27 MACs
    assert macs(g, "conv_stem") == 112 * 112 * 32 * 27
    assert out_shape(g, "blocks.4.1.bn2.act") == ("B", 1024, 7, 7)


def test_mobilenet_v2_block_and_residuals():
    g = build("mobilenet_v2")
    # features.2 (t=6, 16 -> 24, stride 2): expand 16*96 + BN 192 + dw 96*9 + BN 192
    # + project 96*24 + BN 48 = 1536 + 192 + 864 + 192 + 2304 + 48 = 5136
    assert params(g, "features.2.") == 5136
    adds = [op.name for op in g.ops if op.kind == OpKind.ADD]
    # stride-1 repeats with equal channels: 1 + 2 + 3 + 2 + 2 = 10 residual adds
    assert len(adds) == 10 and "features.3.add" in adds and "features.2.add" not in adds


def test_mobilenet_v3_squeeze_excite():
    g = build("mobilenet_v3_large")
    # features.4 SE on 72 ch, squeeze make_divisible(72 // 4, 8) = 24:
    # fc1 72*24 + 24 = 1752, fc2 24*72 + 72 = 1800 -> 3552
    assert params(g, "features.4.block.2.") == 3552
    assert g.op("features.4.block.2.scale_activation").kind == OpKind.HARDSIGMOID
    assert g.op("features.4.block.2.mul").outputs[0].shape == ("B", 72, 28, 28)


def test_efficientnet_scaling():
    g = build("efficientnet_b4")
    # depth 1.8: ceil([1, 2, 2, 3, 3, 4, 1] * 1.8) = [2, 4, 4, 6, 6, 8, 2] = 32 MBConv blocks
    blocks = {op.layer.split(".block")[0] for op in g.ops if ".block" in op.layer}
    assert len(blocks) == 32
    # width 1.4: head 4 * make_divisible(320 * 1.4, 8) = 1792 channels at 380 / 32 -> 12
    assert out_shape(g, "features.8.2") == ("B", 1792, 12, 12)
    assert params(g, "classifier.1") == 1792 * 1000 + 1000
    # B2 at the paper's 260: torchvision's own Conv2d+Linear hook count is 993,561,872 MACs
    assert macs(efficientnet.efficientnet("b2", image_size=260)) == 993_561_872


def test_shufflenet_v2_units():
    g = build("shufflenet_v2_x1_0")
    assert out_shape(g, "stage2.0.channel_shuffle") == ("B", 116, 28, 28)
    assert sum(op.kind == OpKind.CHANNEL_SHUFFLE for op in g.ops) == 4 + 8 + 4
    # stage2.1 (stride 1, 116 ch, half 58 transformed): 1x1 58*58 + BN 116 + dw 58*9
    # + BN 116 + 1x1 58*58 + BN 116 = 3364 + 116 + 522 + 116 + 3364 + 116 = 7598
    assert params(g, "stage2.1.") == 7598


def test_ghost_module():
    g = build("ghostnet")
    # ghost1 of blocks.0.0 (16 -> 16): primary 1x1 16*8 + BN 16, cheap dw 8*9 + BN 16 = 232
    assert params(g, "blocks.0.0.ghost1.") == 232
    assert out_shape(g, "blocks.0.0.ghost1.cat") == ("B", 16, 112, 112)
    # SE of blocks.3.0 on 72 ch squeezes to make_divisible(72 * 0.25, 4) = 20
    assert g.op("blocks.3.0.se.conv_reduce").weights[0].shape == (20, 72, 1, 1)


def test_repvgg_reparameterization():
    train, deploy = build("repvgg_a0"), build("repvgg_a0_deploy")
    # A stage3 block (192 -> 192): train 9*192^2 + 192^2 + 2*(2*192) BN + 2*192 identity BN
    # = 331776 + 36864 + 768 + 384 = 369792; deploy 9*192^2 + 192 bias = 331968
    assert params(train, "stage3.5.") == 369_792
    assert params(deploy, "stage3.5.") == 331_968
    assert not any(op.kind == OpKind.BATCHNORM for op in deploy.ops)
    # Folding removes exactly the 1x1 branches' MACs (BN costs no MACs): 151,130,112 =
    # 3*48*112^2 + 2*48^2*56^2 + (48*96 + 3*96^2)*28^2 + (96*192 + 13*192^2)*14^2 + 192*1280*7^2
    one_by_one = macs(train, kind=OpKind.CONV2D) - macs(deploy, kind=OpKind.CONV2D)
    assert one_by_one == sum(macs(train, op.name) for op in train.ops
                             if op.name.endswith("rbr_1x1.conv")) == 151_130_112
