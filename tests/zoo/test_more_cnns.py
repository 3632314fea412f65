"""ConvNeXt S/B/L, MnasNet, EfficientNetV2 and Xception against their published figures.

Each expected number comes from the module's ``REFERENCE`` entry, whose ``source`` cites it:
torchvision's docs table (docs.pytorch.org/vision/stable/models.html; weights meta _ops to
3 decimals) for the torchvision models, which are also compared with the instantiated
torchvision model when torchvision is installed; Chollet 2017 (Table 3) and timm's model
card for Xception. Structural tests are worked by hand in the comments.
"""

from __future__ import annotations

import pytest

from perfmodel.graph.kinds import OpKind
from perfmodel.zoo import efficientnet, mnasnet, resnet, xception
from tests.zoo.graph_sums import macs, out_shape, params
from tests.zoo.torchvision_check import (
    GFLOPS_ROUNDING,
    ZooRows,
    check_well_formed,
    torchvision_params,
)

NEW = {
    resnet: ("convnext_small", "convnext_base", "convnext_large"),
    mnasnet: tuple(mnasnet.MODELS),
    efficientnet: ("efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"),
    xception: ("xception",),
}
Z = ZooRows(NEW)
ROWS, IDS, build = Z.rows, Z.ids, Z.build
TORCHVISION = [name for name, module in ROWS if module is not xception]


@pytest.mark.parametrize(("name", "module"), ROWS, ids=IDS)
def test_params_equal_published(name, module):
    assert build(name).params == module.REFERENCE[name]["params"]


@pytest.mark.parametrize("name", TORCHVISION)
def test_params_equal_torchvision(name):
    assert build(name).params == torchvision_params(name)


@pytest.mark.parametrize(("name", "module"), ROWS, ids=IDS)
def test_macs_within_published_rounding(name, module):
    ref = module.REFERENCE[name]
    assert abs(macs(build(name)) - ref["macs"]) <= ref.get("macs_tolerance", GFLOPS_ROUNDING)
    assert macs(build(name)) == pytest.approx(ref["macs"], rel=0.01)


@pytest.mark.parametrize(("name", "module"), ROWS, ids=IDS)
def test_graph_is_well_formed(name, module):
    g = build(name)
    check_well_formed(g, module, name)
    assert {"family", "source", "input", "default_batch", "is_llm"} <= set(g.meta)


def test_convnext_variants_differ_only_in_widths_and_depths():
    base = build("convnext_base")
    # stage 3 of B: 27 blocks of 512 channels; one block: dw 7x7 512*49 + 512, LN 1,024,
    # Linear 512->2048 (1,050,624), Linear 2048->512 (1,049,088), layer scale 512
    assert params(base, "features.5.26.") == 25_600 + 1_024 + 1_050_624 + 1_049_088 + 512
    assert out_shape(base, "features.7.2.add") == ("B", 1024, 7, 7)
    assert sum(op.name.endswith(".add") for op in build("convnext_small").ops) == 36


def test_mnasnet_depths_round_to_multiples_of_eight():
    # _round_to_multiple_of(32 * 0.5, 8) = 16; 24 * 0.75 = 18 -> 16 < 0.9 * 18, so 24;
    # 40 * 1.3 = 52 -> 56 (int(52 + 4) // 8 * 8 = 56); 320 * 1.3 = 416
    assert mnasnet.mnasnet_depths(0.5) == [16, 8, 16, 24, 40, 48, 96, 160]
    assert mnasnet.mnasnet_depths(0.75)[2] == 24
    assert mnasnet.mnasnet_depths(1.3) == [40, 24, 32, 56, 104, 128, 248, 416]
    g = build("mnasnet1_0")
    # layers.8.0: 16 -> 24, expansion 3: 1x1 16*48 + BN 96, dw 3x3 48*9 + BN 96,
    # 1x1 48*24 + BN 48 = 768 + 96 + 432 + 96 + 1,152 + 48
    assert params(g, "layers.8.0.") == 2_592
    assert out_shape(g, "layers.16") == ("B", 1280, 7, 7)


def test_efficientnet_v2_fused_mbconv():
    g = build("efficientnet_v2_s")
    # features.1.0 (fused, expand 1, 24 -> 24): one 3x3 conv 24*24*9 + BN 48, residual
    assert params(g, "features.1.0.") == 5_232
    assert g.op("features.1.0.add").kind == OpKind.ADD
    # features.2.0 (fused, expand 4, 24 -> 48, stride 2): 3x3 24->96 (20,736) + BN 192,
    # 1x1 96->48 (4,608) + BN 96; no squeeze-excite in fused blocks
    assert params(g, "features.2.0.") == 20_736 + 192 + 4_608 + 96
    assert not any(".se" in op.name or "block.2.fc1" in op.name for op in g.ops
                   if op.name.startswith(("features.1.", "features.2.", "features.3.")))
    assert out_shape(g, "features.7.2") == ("B", 1280, 12, 12)  # 384 / 32


def test_xception_flows_by_hand():
    g = build("xception")
    # a middle-flow block: 3 x (dw 728*9 + pw 728*728 + BN 2*728) = 3 * 537,992
    assert params(g, "block5.") == 3 * (6_552 + 529_984 + 1_456) == 1_613_976
    assert out_shape(g, "block3.add") == ("B", 728, 19, 19)
    assert out_shape(g, "block12.add") == ("B", 1024, 10, 10)
    # Keras's 22,910,480 "total params" also counts BatchNorm moving means and variances:
    # 2 x (32 + 64 + 1,536 + 2,048 + sum of the BN widths inside the blocks)
    bn = sum(op.weights[0].numel for op in g.ops if op.kind == OpKind.BATCHNORM)
    assert g.params + 2 * bn == 22_910_480
