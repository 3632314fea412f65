"""EfficientNet B0-B4 (Tan & Le, ICML 2019) and EfficientNetV2 S/M/L (Tan & Le, ICML 2021)
as torchvision builds them.

One base network (MBConv stages of Table 1 in the paper) scaled by a width multiplier
(channels, rounded with ``make_divisible(., 8)``), a depth multiplier (repeats, rounded
up) and an input resolution. Scope names follow torchvision's modules
(``features.2.1.block.3``). Stochastic depth is a no-op at inference and is left out.

EfficientNetV2 (``efficientnet_v2``) has no compound scaling: each size is its own stage
table (the paper's Table 4 for S; torchvision ``_efficientnet_conf`` for all three). Its
early stages use Fused-MBConv (the 1x1 expand and the depthwise kxk fused into one regular
kxk conv, no squeeze-excite); the head conv has 1280 channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo.mobile import (
    TORCHVISION,
    channels,
    conv_norm_act,
    make_divisible,
    squeeze_excite,
)

__all__ = ["MODELS", "REFERENCE", "efficientnet", "efficientnet_v2"]

# (expand ratio, kernel, stride, in channels, out channels, repeats): torchvision
# ``_efficientnet_conf("efficientnet_b*")``, the B0 baseline (Tan & Le 2019, Table 1).
EFFICIENTNET_B0_STAGES = (
    (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
)
# variant -> (width multiplier, depth multiplier, resolution): torchvision builders, and
# the crop size of their ImageNet weights, at which torchvision publishes GFLOPS. That is
# the paper's resolution except for B2: torchvision's B2 weights (ported from timm) are
# evaluated at 288, not the paper's 260 (``image_size=260`` gives the paper's input).
EFFICIENTNET_SCALING = {
    "b0": (1.0, 1.0, 224), "b1": (1.0, 1.1, 240), "b2": (1.1, 1.2, 288),
    "b3": (1.2, 1.4, 300), "b4": (1.4, 1.8, 380),
}
SILU = OpKind.SILU


def _mbconv(b: GraphBuilder, x: Tensor, expand: int, kernel: int, stride: int, out: int,
            squeeze: int) -> Tensor:
    """torchvision ``efficientnet.MBConv``: [1x1 expand] -> dw kxk -> SE -> 1x1 project.

    SiLU after expand and depthwise; the SE squeezes to ``squeeze`` = block input // 4
    channels with SiLU and a sigmoid gate; residual add when stride 1 and shape unchanged.
    """
    c = channels(x)
    hidden = make_divisible(c * expand, 8)
    y, j = x, 0
    with b.scope("block"):
        if hidden != c:
            y = conv_norm_act(b, y, hidden, 1, name="0", act=SILU)
            j = 1
        y = conv_norm_act(b, y, hidden, kernel, name=str(j), stride=stride, groups=hidden,
                          act=SILU)
        y = squeeze_excite(b, y, squeeze, name=str(j + 1), act=SILU, gate=OpKind.SIGMOID)
        y = conv_norm_act(b, y, out, 1, name=str(j + 2), act=None)
    return b.add(y, x, name="add") if stride == 1 and c == out else y


def efficientnet(variant: str = "b0", *, num_classes: int = 1000,
                 image_size: int | None = None) -> ModelGraph:
    """EfficientNet-``variant`` (b0..b4) as torchvision ``efficientnet_<variant>``.

    ``image_size`` defaults to the crop size of torchvision's ImageNet weights (224, 240,
    288, 300, 380), the resolution of torchvision's published GFLOPS.
    """
    width, depth, native = EFFICIENTNET_SCALING[variant]
    size = image_size or native
    b = GraphBuilder(f"efficientnet_{variant}", family="efficientnet",
                     source=f"torchvision.models.efficientnet_{variant}",
                     input=f"3x{size}x{size}", default_batch=1, is_llm=False)
    x = b.input("image", (3, size, size))
    x = conv_norm_act(b, x, make_divisible(32 * width, 8), 3, name="features.0", stride=2,
                      act=SILU)
    for s, (t, k, stride, _cin, cout, n) in enumerate(EFFICIENTNET_B0_STAGES, start=1):
        cout = make_divisible(cout * width, 8)
        for i in range(math.ceil(n * depth)):
            squeeze = max(1, channels(x) // 4)
            with b.scope(f"features.{s}.{i}"):
                x = _mbconv(b, x, t, k, stride if i == 0 else 1, cout, squeeze)
    x = conv_norm_act(b, x, 4 * channels(x), 1, name="features.8", act=SILU)
    x = b.flatten(b.adaptive_avgpool(x, 1, name="avgpool"), name="flatten")
    x = b.dropout(x, name="classifier.0")
    b.linear(x, num_classes, name="classifier.1")
    return b.build()


# --- EfficientNetV2 ---------------------------------------------------------------------

# (fused?, expand ratio, kernel, stride, in channels, out channels, repeats) and the
# resolution of torchvision's weights (the crop at which it publishes GFLOPS).
_F, _M = True, False
EFFICIENTNET_V2 = {
    "s": (((_F, 1, 3, 1, 24, 24, 2), (_F, 4, 3, 2, 24, 48, 4), (_F, 4, 3, 2, 48, 64, 4),
           (_M, 4, 3, 2, 64, 128, 6), (_M, 6, 3, 1, 128, 160, 9),
           (_M, 6, 3, 2, 160, 256, 15)), 384),
    "m": (((_F, 1, 3, 1, 24, 24, 3), (_F, 4, 3, 2, 24, 48, 5), (_F, 4, 3, 2, 48, 80, 5),
           (_M, 4, 3, 2, 80, 160, 7), (_M, 6, 3, 1, 160, 176, 14),
           (_M, 6, 3, 2, 176, 304, 18), (_M, 6, 3, 1, 304, 512, 5)), 480),
    "l": (((_F, 1, 3, 1, 32, 32, 4), (_F, 4, 3, 2, 32, 64, 7), (_F, 4, 3, 2, 64, 96, 7),
           (_M, 4, 3, 2, 96, 192, 10), (_M, 6, 3, 1, 192, 224, 19),
           (_M, 6, 3, 2, 224, 384, 25), (_M, 6, 3, 1, 384, 640, 7)), 480),
}


def _fused_mbconv(b: GraphBuilder, x: Tensor, expand: int, kernel: int, stride: int,
                  out: int) -> Tensor:
    """torchvision ``FusedMBConv``: kxk conv (stride) to ``expand`` x channels, then a 1x1
    projection; with expand 1, a single kxk conv to ``out``. SiLU; residual when the shape
    is unchanged."""
    c = channels(x)
    hidden = make_divisible(c * expand, 8)
    with b.scope("block"):
        if hidden != c:
            y = conv_norm_act(b, x, hidden, kernel, name="0", stride=stride, act=SILU)
            y = conv_norm_act(b, y, out, 1, name="1", act=None)
        else:
            y = conv_norm_act(b, x, out, kernel, name="0", stride=stride, act=SILU)
    return b.add(y, x, name="add") if stride == 1 and c == out else y


def efficientnet_v2(variant: str = "s", *, num_classes: int = 1000,
                    image_size: int | None = None) -> ModelGraph:
    """EfficientNetV2-``variant`` (s, m, l) as torchvision ``efficientnet_v2_<variant>``;
    ``image_size`` defaults to its weights' crop (384, 480, 480)."""
    stages, native = EFFICIENTNET_V2[variant]
    size = image_size or native
    b = GraphBuilder(f"efficientnet_v2_{variant}", family="efficientnet_v2",
                     source=f"torchvision.models.efficientnet_v2_{variant}",
                     input=f"3x{size}x{size}", default_batch=1, is_llm=False)
    x = b.input("image", (3, size, size))
    x = conv_norm_act(b, x, stages[0][4], 3, name="features.0", stride=2, act=SILU)
    for s, (fused, t, k, stride, _cin, cout, n) in enumerate(stages, start=1):
        for i in range(n):
            st = stride if i == 0 else 1
            with b.scope(f"features.{s}.{i}"):
                if fused:
                    x = _fused_mbconv(b, x, t, k, st, cout)
                else:
                    x = _mbconv(b, x, t, k, st, cout, max(1, channels(x) // 4))
    x = conv_norm_act(b, x, 1280, 1, name=f"features.{len(stages) + 1}", act=SILU)
    x = b.flatten(b.adaptive_avgpool(x, 1, name="avgpool"), name="flatten")
    x = b.dropout(x, name="classifier.0")
    b.linear(x, num_classes, name="classifier.1")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    **{f"efficientnet_{v}": partial(efficientnet, v) for v in EFFICIENTNET_SCALING},
    **{f"efficientnet_v2_{v}": partial(efficientnet_v2, v) for v in EFFICIENTNET_V2},
}

# torchvision docs "Table of all available classification weights" (GFLOPS to 2 decimals;
# the weights' meta["_ops"] holds the same figure to 3 decimals, used here).
_TV_PUBLISHED = {  # variant -> (params, GFLOPS = GMACs, weights)
    "b0": (5_288_548, 0.386, "EfficientNet_B0_Weights.IMAGENET1K_V1: 0.39 GFLOPS"),
    "b1": (7_794_184, 0.687, "EfficientNet_B1_Weights.IMAGENET1K_V1/V2: 0.69 GFLOPS"),
    "b2": (9_109_994, 1.088, "EfficientNet_B2_Weights.IMAGENET1K_V1: 1.09 GFLOPS at 288"),
    "b3": (12_233_232, 1.827, "EfficientNet_B3_Weights.IMAGENET1K_V1: 1.83 GFLOPS"),
    "b4": (19_341_616, 4.394, "EfficientNet_B4_Weights.IMAGENET1K_V1: 4.39 GFLOPS"),
    "v2_s": (21_458_488, 8.366, "EfficientNet_V2_S_Weights.IMAGENET1K_V1: 8.37 GFLOPS at 384"),
    "v2_m": (54_139_356, 24.582, "EfficientNet_V2_M_Weights.IMAGENET1K_V1: 24.58 GFLOPS at "
                                 "480"),
    "v2_l": (118_515_272, 56.08, "EfficientNet_V2_L_Weights.IMAGENET1K_V1: 56.08 GFLOPS at "
                                 "480"),
}
REFERENCE: dict[str, dict] = {
    f"efficientnet_{v}": {
        "params": params, "macs": gflops * 1e9,
        "source": f"torchvision docs (docs.pytorch.org/vision/stable/models.html), {weights} "
                  f"(meta _ops {gflops}), {params:,} params; "
                  f"{TORCHVISION}",
    }
    for v, (params, gflops, weights) in _TV_PUBLISHED.items()
}
