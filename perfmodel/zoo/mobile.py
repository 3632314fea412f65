"""Mobile CNNs: MobileNet V1/V2/V3-Large, ShuffleNet V2 and GhostNet.

Each builder follows its reference implementation op by op (conv without bias where the
reference has none, BatchNorm, activation, pooling, residual add, squeeze-excite) and
names scopes after the reference's module names (``features.3.block.1``), so per-op
reports read like the source. The helpers here (``make_divisible``, ``conv_norm_act``,
``squeeze_excite``) are shared with :mod:`perfmodel.zoo.efficientnet`.

Papers: Howard et al. 2017 (MobileNet, arXiv:1704.04861); Sandler et al. CVPR 2018
(MobileNetV2); Howard et al. ICCV 2019 (MobileNetV3); Ma et al. ECCV 2018 (ShuffleNet V2);
Han et al. CVPR 2020 (GhostNet).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["MODELS", "REFERENCE", "channels", "make_divisible", "conv_norm_act", "squeeze_excite",
           "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "shufflenet_v2_x1_0",
           "ghostnet"]

TORCHVISION = "checked against torchvision 0.29.1"
# torchvision SqueezeExcitation's submodule names; GhostNet's SqueezeExcite uses others.
TV_SE_NAMES = ("avgpool", "fc1", "activation", "fc2", "scale_activation")
GHOST_SE_NAMES = ("avg_pool", "conv_reduce", "act1", "conv_expand", "gate")


def _meta(family: str, source: str, size: int) -> dict[str, Any]:
    return {"family": family, "source": source, "input": f"3x{size}x{size}",
            "default_batch": 1, "is_llm": False}


# --- shared building blocks -------------------------------------------------------------

def channels(x: Tensor) -> int:
    """Channel count (dim 1) of an NCHW tensor; always concrete in these CNNs."""
    return int(x.shape[1])


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor``, never more than 10 % below ``v``.

    torchvision ``ops.misc._make_divisible`` (from TensorFlow's MobileNet code); GhostNet's
    ghostnet.py uses the same rule with divisor 4.
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_norm_act(b: GraphBuilder, x: Tensor, out: int, kernel: int, name: str,
                  stride: int = 1, groups: int = 1, act: str | None = OpKind.RELU) -> Tensor:
    """torchvision ``Conv2dNormActivation``: conv (no bias, padding (k-1)//2) -> BN -> act.

    Ops are named ``<name>.0`` (conv), ``.1`` (BN), ``.2`` (activation) as in the
    ``nn.Sequential``; ``act=None`` leaves the activation out.
    """
    with b.scope(name):
        x = b.conv2d(x, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False,
                     name="0")
        x = b.batchnorm(x, name="1")
        return b.act(x, act, name="2") if act else x


def squeeze_excite(b: GraphBuilder, x: Tensor, squeeze: int, name: str,
                   act: str = OpKind.RELU, gate: str = OpKind.HARDSIGMOID,
                   names: Sequence[str] = TV_SE_NAMES) -> Tensor:
    """Squeeze-and-excitation (Hu et al. CVPR 2018) as torchvision ``SqueezeExcitation``.

    Global average pool -> 1x1 conv C->squeeze (bias) -> act -> 1x1 conv squeeze->C (bias)
    -> gate (sigmoid or hard-sigmoid) -> x * scale. Params: 2*C*squeeze + squeeze + C.
    """
    pool, fc1, act_name, fc2, gate_name = names
    with b.scope(name):
        s = b.adaptive_avgpool(x, 1, name=pool)
        s = b.act(b.conv2d(s, squeeze, 1, name=fc1), act, name=act_name)
        s = b.act(b.conv2d(s, channels(x), 1, name=fc2), gate, name=gate_name)
        return b.mul(x, s, name="mul")


def _pool_flatten(b: GraphBuilder, x: Tensor, pool: str = "avgpool") -> Tensor:
    """Global average pool to 1x1, then flatten to (B, C)."""
    return b.flatten(b.adaptive_avgpool(x, 1, name=pool), name="flatten")


# --- MobileNet V1 -----------------------------------------------------------------------

# (output channels, stride) of the 13 depthwise-separable blocks, grouped as timm's stages
# (Howard et al. 2017, Table 1; its last depthwise layer is stride 1 at 7x7, the table's
# "s2" being a typo, as every implementation agrees).
MOBILENET_V1_STAGES = (((64, 1),), ((128, 2), (128, 1)), ((256, 2), (256, 1)),
                       ((512, 2),) + ((512, 1),) * 5, ((1024, 2), (1024, 1)))


def _depthwise_separable(b: GraphBuilder, x: Tensor, out: int, stride: int) -> Tensor:
    """timm ``DepthwiseSeparableConv`` with pw_act: dw 3x3 -> BN -> ReLU -> 1x1 -> BN -> ReLU."""
    c = channels(x)
    x = b.conv2d(x, c, 3, stride, 1, groups=c, bias=False, name="conv_dw")
    x = b.relu(b.batchnorm(x, name="bn1"), name="bn1.act")
    x = b.conv2d(x, out, 1, bias=False, name="conv_pw")
    return b.relu(b.batchnorm(x, name="bn2"), name="bn2.act")


def mobilenet_v1(*, num_classes: int = 1000, image_size: int = 224) -> ModelGraph:
    """MobileNet V1 1.0-224 (Howard et al. 2017, Table 1) with BN + ReLU after every conv.

    Structure and names follow timm ``mobilenetv1_100`` (no head conv; 1024 -> classes
    linear classifier), whose parameters equal Keras ``applications.MobileNet``'s trainable
    ones (Keras's classifier is a 1x1 conv of the same size). Both use ReLU6; we use the
    paper's ReLU, which changes no parameter or MAC.
    """
    b = GraphBuilder("mobilenet_v1", **_meta(
        "mobilenet", "timm mobilenetv1_100 (Howard et al. 2017, Table 1)", image_size))
    x = b.input("image", (3, image_size, image_size))
    x = b.conv2d(x, 32, 3, 2, 1, bias=False, name="conv_stem")
    x = b.relu(b.batchnorm(x, name="bn1"), name="bn1.act")
    for s, stage in enumerate(MOBILENET_V1_STAGES):
        for i, (out, stride) in enumerate(stage):
            with b.scope(f"blocks.{s}.{i}"):
                x = _depthwise_separable(b, x, out, stride)
    x = _pool_flatten(b, x, "global_pool")
    b.linear(x, num_classes, name="classifier")
    return b.build()


# --- MobileNet V2 -----------------------------------------------------------------------

# (expand ratio t, channels c, repeats n, first stride s): Sandler et al. 2018, Table 2;
# torchvision ``MobileNetV2.inverted_residual_setting``.
MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _inverted_residual_v2(b: GraphBuilder, x: Tensor, out: int, stride: int,
                          expand: int) -> Tensor:
    """torchvision ``mobilenetv2.InvertedResidual``: [1x1 expand] -> dw 3x3 -> 1x1 linear.

    ReLU6 after expand and depthwise; no activation after the projection; residual add
    when stride is 1 and channels are unchanged.
    """
    c = channels(x)
    hidden = int(round(c * expand))
    y, j = x, 0
    if expand != 1:
        y = conv_norm_act(b, y, hidden, 1, name=f"conv.{j}", act=OpKind.RELU6)
        j += 1
    y = conv_norm_act(b, y, hidden, 3, name=f"conv.{j}", stride=stride, groups=hidden,
                      act=OpKind.RELU6)
    y = b.conv2d(y, out, 1, bias=False, name=f"conv.{j + 1}")
    y = b.batchnorm(y, name=f"conv.{j + 2}")
    return b.add(x, y, name="add") if stride == 1 and c == out else y


def mobilenet_v2(*, num_classes: int = 1000, image_size: int = 224) -> ModelGraph:
    """MobileNet V2 1.0 as torchvision ``mobilenet_v2`` (Sandler et al. CVPR 2018)."""
    b = GraphBuilder("mobilenet_v2", **_meta(
        "mobilenet", "torchvision.models.mobilenet_v2", image_size))
    x = b.input("image", (3, image_size, image_size))
    x = conv_norm_act(b, x, 32, 3, name="features.0", stride=2, act=OpKind.RELU6)
    i = 1
    for t, c, n, s in MOBILENET_V2_SETTING:
        for k in range(n):
            with b.scope(f"features.{i}"):
                x = _inverted_residual_v2(b, x, c, s if k == 0 else 1, t)
            i += 1
    x = conv_norm_act(b, x, 1280, 1, name=f"features.{i}", act=OpKind.RELU6)
    x = _pool_flatten(b, x)
    x = b.dropout(x, name="classifier.0")
    b.linear(x, num_classes, name="classifier.1")
    return b.build()


# --- MobileNet V3 Large -----------------------------------------------------------------

# (kernel, expanded, out, use_se, activation, stride): torchvision
# ``_mobilenet_v3_conf("mobilenet_v3_large")`` (Howard et al. ICCV 2019, Table 1).
RE, HS = OpKind.RELU, OpKind.HARDSWISH
MOBILENET_V3_LARGE = (
    (3, 16, 16, False, RE, 1), (3, 64, 24, False, RE, 2), (3, 72, 24, False, RE, 1),
    (5, 72, 40, True, RE, 2), (5, 120, 40, True, RE, 1), (5, 120, 40, True, RE, 1),
    (3, 240, 80, False, HS, 2), (3, 200, 80, False, HS, 1), (3, 184, 80, False, HS, 1),
    (3, 184, 80, False, HS, 1), (3, 480, 112, True, HS, 1), (3, 672, 112, True, HS, 1),
    (5, 672, 160, True, HS, 2), (5, 960, 160, True, HS, 1), (5, 960, 160, True, HS, 1),
)


def _inverted_residual_v3(b: GraphBuilder, x: Tensor, kernel: int, expanded: int, out: int,
                          use_se: bool, act: str, stride: int) -> Tensor:
    """torchvision ``mobilenetv3.InvertedResidual``: [expand] -> dw -> [SE] -> project."""
    c = channels(x)
    y, j = x, 0
    with b.scope("block"):
        if expanded != c:
            y = conv_norm_act(b, y, expanded, 1, name=str(j), act=act)
            j += 1
        y = conv_norm_act(b, y, expanded, kernel, name=str(j), stride=stride,
                          groups=expanded, act=act)
        j += 1
        if use_se:
            y = squeeze_excite(b, y, make_divisible(expanded // 4, 8), name=str(j))
            j += 1
        y = conv_norm_act(b, y, out, 1, name=str(j), act=None)
    return b.add(x, y, name="add") if stride == 1 and c == out else y


def mobilenet_v3_large(*, num_classes: int = 1000, image_size: int = 224) -> ModelGraph:
    """MobileNet V3 Large 1.0 as torchvision ``mobilenet_v3_large`` (Howard et al. 2019)."""
    b = GraphBuilder("mobilenet_v3_large", **_meta(
        "mobilenet", "torchvision.models.mobilenet_v3_large", image_size))
    x = b.input("image", (3, image_size, image_size))
    x = conv_norm_act(b, x, 16, 3, name="features.0", stride=2, act=HS)
    for i, cfg in enumerate(MOBILENET_V3_LARGE, start=1):
        with b.scope(f"features.{i}"):
            x = _inverted_residual_v3(b, x, *cfg)
    x = conv_norm_act(b, x, 6 * 160, 1, name=f"features.{len(MOBILENET_V3_LARGE) + 1}",
                      act=HS)
    x = _pool_flatten(b, x)
    x = b.act(b.linear(x, 1280, name="classifier.0"), HS, name="classifier.1")
    x = b.dropout(x, name="classifier.2")
    b.linear(x, num_classes, name="classifier.3")
    return b.build()


# --- ShuffleNet V2 ----------------------------------------------------------------------

SHUFFLENET_V2_X1_0 = ((4, 8, 4), (24, 116, 232, 464, 1024))  # repeats, stage channels


def _shuffle_branch(b: GraphBuilder, x: Tensor, out: int, stride: int, name: str) -> Tensor:
    """torchvision ShuffleNet V2 ``branch2``: 1x1-BN-ReLU, dw 3x3-BN, 1x1-BN-ReLU."""
    with b.scope(name):
        x = b.relu(b.batchnorm(b.conv2d(x, out, 1, bias=False, name="0"), name="1"), name="2")
        x = b.conv2d(x, out, 3, stride, 1, groups=out, bias=False, name="3")
        x = b.batchnorm(x, name="4")
        x = b.batchnorm(b.conv2d(x, out, 1, bias=False, name="5"), name="6")
        return b.relu(x, name="7")


def _shuffle_unit(b: GraphBuilder, x: Tensor, out: int, stride: int) -> Tensor:
    """torchvision ``shufflenetv2.InvertedResidual`` (Ma et al. 2018, Fig. 3c/d).

    Stride 1: split channels in half, transform one half, concat, shuffle. Stride 2: both
    branches see the whole input (branch1: dw 3x3 -> BN -> 1x1 -> BN -> ReLU).
    """
    half = out // 2
    c = channels(x)
    if stride == 1:
        left = b.slice(x, 1, c // 2, name="chunk.0")
        right = b.slice(x, 1, c // 2, name="chunk.1")
        right = _shuffle_branch(b, right, half, 1, "branch2")
    else:
        with b.scope("branch1"):
            left = b.conv2d(x, c, 3, 2, 1, groups=c, bias=False, name="0")
            left = b.batchnorm(left, name="1")
            left = b.relu(b.batchnorm(b.conv2d(left, half, 1, bias=False, name="2"),
                                      name="3"), name="4")
        right = _shuffle_branch(b, x, half, 2, "branch2")
    return b.channel_shuffle(b.concat([left, right], name="cat"), 2, name="channel_shuffle")


def shufflenet_v2_x1_0(*, num_classes: int = 1000, image_size: int = 224) -> ModelGraph:
    """ShuffleNet V2 1.0x as torchvision ``shufflenet_v2_x1_0`` (Ma et al. ECCV 2018)."""
    repeats, chans = SHUFFLENET_V2_X1_0
    b = GraphBuilder("shufflenet_v2_x1_0", **_meta(
        "shufflenet", "torchvision.models.shufflenet_v2_x1_0", image_size))
    x = b.input("image", (3, image_size, image_size))
    x = conv_norm_act(b, x, chans[0], 3, name="conv1", stride=2)
    x = b.maxpool(x, 3, 2, 1, name="maxpool")
    for s, (n, out) in enumerate(zip(repeats, chans[1:4], strict=True), start=2):
        for i in range(n):
            with b.scope(f"stage{s}.{i}"):
                x = _shuffle_unit(b, x, out, 2 if i == 0 else 1)
    x = conv_norm_act(b, x, chans[4], 1, name="conv5")
    x = _pool_flatten(b, x, "mean")  # torchvision: x.mean([2, 3])
    b.linear(x, num_classes, name="fc")
    return b.build()


# --- GhostNet ---------------------------------------------------------------------------

# Per stage, blocks of (dw kernel, expanded, out, se_ratio, stride): huawei-noah ghostnet.py
# ``cfgs`` (Han et al. CVPR 2020, Table 1), identical to timm ``ghostnet_100``.
GHOSTNET_CFGS = (
    ((3, 16, 16, 0, 1),),
    ((3, 48, 24, 0, 2),), ((3, 72, 24, 0, 1),),
    ((5, 72, 40, 0.25, 2),), ((5, 120, 40, 0.25, 1),),
    ((3, 240, 80, 0, 2),),
    ((3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1),
     (3, 672, 112, 0.25, 1)),
    ((5, 672, 160, 0.25, 2),),
    ((5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1),
     (5, 960, 160, 0.25, 1)),
)


def _ghost_module(b: GraphBuilder, x: Tensor, out: int, relu: bool, name: str) -> Tensor:
    """``GhostModule`` (ratio 2): 1x1 conv to ceil(out/2) "intrinsic" maps, a cheap dw 3x3
    makes as many "ghost" maps, concat, keep the first ``out`` channels."""
    init = math.ceil(out / 2)
    with b.scope(name):
        with b.scope("primary_conv"):
            x1 = b.batchnorm(b.conv2d(x, init, 1, bias=False, name="0"), name="1")
            x1 = b.relu(x1, name="2") if relu else x1
        with b.scope("cheap_operation"):
            x2 = b.conv2d(x1, init, 3, 1, 1, groups=init, bias=False, name="0")
            x2 = b.batchnorm(x2, name="1")
            x2 = b.relu(x2, name="2") if relu else x2
        y = b.concat([x1, x2], name="cat")
        return b.slice(y, 1, out, name="slice") if 2 * init != out else y


def _ghost_bottleneck(b: GraphBuilder, x: Tensor, kernel: int, mid: int, out: int,
                      se_ratio: float, stride: int) -> Tensor:
    """``GhostBottleneck``: ghost1 (ReLU) -> [dw stride 2 + BN] -> [SE] -> ghost2 (linear),
    plus the input, or a dw + 1x1 shortcut when the shape changes."""
    c = channels(x)
    y = _ghost_module(b, x, mid, True, "ghost1")
    if stride > 1:
        y = b.conv2d(y, mid, kernel, stride, (kernel - 1) // 2, groups=mid, bias=False,
                     name="conv_dw")
        y = b.batchnorm(y, name="bn_dw")
    if se_ratio:
        y = squeeze_excite(b, y, make_divisible(mid * se_ratio, 4), name="se",
                           names=GHOST_SE_NAMES)
    y = _ghost_module(b, y, out, False, "ghost2")
    if stride == 1 and c == out:
        return b.add(y, x, name="add")
    with b.scope("shortcut"):
        s = b.conv2d(x, c, kernel, stride, (kernel - 1) // 2, groups=c, bias=False,
                     name="0")
        s = b.batchnorm(b.conv2d(b.batchnorm(s, name="1"), out, 1, bias=False, name="2"),
                        name="3")
    return b.add(y, s, name="add")


def ghostnet(*, num_classes: int = 1000, image_size: int = 224) -> ModelGraph:
    """GhostNet 1.0x (Han et al. CVPR 2020) as huawei-noah ghostnet.py / timm ``ghostnet_100``."""
    b = GraphBuilder("ghostnet", **_meta(
        "ghostnet", "huawei-noah Efficient-AI-Backbones ghostnet_pytorch/ghostnet.py "
        "(= timm ghostnet_100)", image_size))
    x = b.input("image", (3, image_size, image_size))
    x = b.conv2d(x, 16, 3, 2, 1, bias=False, name="conv_stem")
    x = b.relu(b.batchnorm(x, name="bn1"), name="act1")
    for s, stage in enumerate(GHOSTNET_CFGS):
        for i, (k, exp, c, se, stride) in enumerate(stage):
            with b.scope(f"blocks.{s}.{i}"):
                x = _ghost_bottleneck(b, x, k, make_divisible(exp, 4),
                                      make_divisible(c, 4), se, stride)
    with b.scope(f"blocks.{len(GHOSTNET_CFGS)}.0"):  # ConvBnAct to the last exp size
        x = b.conv2d(x, 960, 1, bias=False, name="conv")
        x = b.relu(b.batchnorm(x, name="bn1"), name="act1")
    x = b.adaptive_avgpool(x, 1, name="global_pool")
    x = b.relu(b.conv2d(x, 1280, 1, name="conv_head"), name="act2")
    x = b.dropout(b.flatten(x, name="flatten"), name="dropout")
    b.linear(x, num_classes, name="classifier")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": mobilenet_v3_large,
    "shufflenet_v2_x1_0": shufflenet_v2_x1_0,
    "ghostnet": ghostnet,
}

REFERENCE: dict[str, dict] = {
    "mobilenet_v1": {
        "params": 4_231_976, "macs": 569e6,
        "source": "Howard et al. 2017, 1.0 MobileNet-224: 569M mult-adds, 4.2M params; exact "
                  "params 4,231,976 of timm 1.0.31 mobilenetv1_100 (checked), equal to Keras "
                  "applications.MobileNet(alpha=1.0) trainable params",
    },
    "mobilenet_v2": {
        "params": 3_504_872, "macs": 0.301e9,
        "source": "torchvision docs, MobileNet_V2_Weights.IMAGENET1K_V1: 3,504,872 params, "
                  f"0.30 GFLOPS (meta _ops 0.301); {TORCHVISION}",
    },
    "mobilenet_v3_large": {
        "params": 5_483_032, "macs": 0.217e9,
        "source": "torchvision docs, MobileNet_V3_Large_Weights.IMAGENET1K_V1: 5,483,032 "
                  f"params, 0.22 GFLOPS (meta _ops 0.217); {TORCHVISION}",
    },
    "shufflenet_v2_x1_0": {
        "params": 2_278_604, "macs": 0.145e9,
        "source": "torchvision docs, ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1: 2,278,604 "
                  f"params, 0.14 GFLOPS (meta _ops 0.145); {TORCHVISION}",
    },
    "ghostnet": {
        "params": 5_182_508, "macs": 141e6,
        "source": "Han et al. CVPR 2020, ImageNet results: GhostNet 1.0x 5.2M params, 141M FLOPs "
                  "(MACs); exact params 5,182,508 of timm 1.0.31 ghostnet_100 (checked), the "
                  "port of huawei-noah ghostnet.py",
    },
}
