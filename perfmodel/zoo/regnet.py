"""RegNetX and RegNetY, op by op as torchvision's ``regnet.py``.

Radosavovic et al. CVPR 2020, "Designing Network Design Spaces": a 3x3/2 stem of 32
channels, four stages of residual bottleneck blocks (1x1, grouped 3x3 carrying the stride,
[squeeze-excite], 1x1; projection shortcut when the shape changes), global pool and a
linear classifier. The block widths follow the paper's quantized linear rule
(section 3.3): u_j = w_0 + w_a * j for block j < depth, s_j = round(log(u_j / w_0) /
log(w_m)), width w_0 * w_m^s_j rounded to a multiple of 8; blocks of equal width form a
stage. RegNetY adds squeeze-excite (ratio 0.25 of the block *input* width, sigmoid gate,
Hu et al. 2018). Scopes carry torchvision's module names
(``trunk_output.block2.block2-0.f.b.0``).

``REFERENCE`` holds torchvision's published size of each model: parameters (exact) and
MACs (the docs' "GFLOPS" column, which counts multiply-accumulates).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo.mobile import channels, conv_norm_act, make_divisible, squeeze_excite
from perfmodel.zoo.sources import TORCHVISION_DOCS

__all__ = ["MODELS", "REFERENCE", "regnet", "regnet_stages", "REGNET_PARAMS"]

# name -> (depth, w_0, w_a, w_m, group width, SE ratio): torchvision ``regnet_*`` builders,
# the paper's Tables 15 and 16 (Appendix C, the RegNetX / RegNetY models).
REGNET_PARAMS: dict[str, tuple[int, int, float, float, int, float | None]] = {
    "regnet_x_400mf": (22, 24, 24.48, 2.54, 16, None),
    "regnet_x_800mf": (16, 56, 35.73, 2.28, 16, None),
    "regnet_x_1_6gf": (18, 80, 34.01, 2.25, 24, None),
    "regnet_x_3_2gf": (25, 88, 26.31, 2.25, 48, None),
    "regnet_x_8gf": (23, 80, 49.56, 2.88, 120, None),
    "regnet_x_16gf": (22, 216, 55.59, 2.1, 128, None),
    "regnet_x_32gf": (23, 320, 69.86, 2.0, 168, None),
    "regnet_y_400mf": (16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_y_800mf": (14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": (27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": (21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": (17, 192, 76.82, 2.19, 56, 0.25),
    "regnet_y_16gf": (18, 200, 106.23, 2.48, 112, 0.25),
    "regnet_y_32gf": (20, 232, 115.89, 2.53, 232, 0.25),
    "regnet_y_128gf": (27, 456, 160.83, 2.52, 264, 0.25),
}
_QUANT = 8  # block widths are multiples of 8


def regnet_stages(depth: int, w_0: int, w_a: float, w_m: float,
                  group_width: int) -> list[tuple[int, int, int]]:
    """(width, blocks, group width) per stage: torchvision ``BlockParams.from_init_params``
    (bottleneck multiplier 1), including its width / group-width compatibility fix."""
    widths = []
    for j in range(depth):
        s = round(math.log((j * w_a + w_0) / w_0) / math.log(w_m))
        widths.append(round(w_0 * w_m**s / _QUANT) * _QUANT)
    stages: list[list[int]] = []  # [width, blocks]
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    out = []
    for w, n in stages:
        g = min(group_width, w)
        out.append((make_divisible(w, g), n, g))
    return out


def _bottleneck(b: GraphBuilder, x: Tensor, out: int, stride: int, group_width: int,
                se_ratio: float | None) -> Tensor:
    """``ResBottleneckBlock``: proj (when shape changes) + f(x), then ReLU, where f is
    ``BottleneckTransform`` a (1x1) -> b (3x3, groups = width / group width) -> [se] -> c."""
    c_in = channels(x)
    with b.scope("f"):
        y = conv_norm_act(b, x, out, 1, name="a")
        y = conv_norm_act(b, y, out, 3, name="b", stride=stride, groups=out // group_width)
        if se_ratio:
            y = squeeze_excite(b, y, int(round(se_ratio * c_in)), name="se",
                               gate=OpKind.SIGMOID)
        y = conv_norm_act(b, y, out, 1, name="c", act=None)
    shortcut = x
    if c_in != out or stride != 1:
        shortcut = conv_norm_act(b, x, out, 1, name="proj", stride=stride, act=None)
    return b.relu(b.add(shortcut, y, name="add"), name="activation")


def regnet(name: str = "regnet_y_400mf", *, num_classes: int = 1000,
           image_size: int = 224) -> ModelGraph:
    """A torchvision RegNet (``name`` as in ``REGNET_PARAMS``) on ``image_size`` images."""
    depth, w_0, w_a, w_m, group_width, se_ratio = REGNET_PARAMS[name]
    b = GraphBuilder(name, family="regnet", source=f"torchvision.models.{name}",
                     input=f"3x{image_size}x{image_size}", default_batch=1, is_llm=False)
    x = b.input("image", (3, image_size, image_size))
    x = conv_norm_act(b, x, 32, 3, name="stem", stride=2)
    for s, (width, n, g) in enumerate(regnet_stages(depth, w_0, w_a, w_m, group_width), 1):
        for i in range(n):
            with b.scope(f"trunk_output.block{s}.block{s}-{i}"):
                x = _bottleneck(b, x, width, 2 if i == 0 else 1, g, se_ratio)
    x = b.flatten(b.adaptive_avgpool(x, 1, name="avgpool"), name="flatten")
    b.linear(x, num_classes, name="fc")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    name: partial(regnet, name) for name in REGNET_PARAMS
}

_DOCS = TORCHVISION_DOCS
# name -> (weights, params, GFLOPS = GMACs at 224: the weights' meta _ops, 3 decimals)
_TV_PUBLISHED = {
    "regnet_x_400mf": ("RegNet_X_400MF_Weights.IMAGENET1K_V1", 5_495_976, 0.414),
    "regnet_x_800mf": ("RegNet_X_800MF_Weights.IMAGENET1K_V1", 7_259_656, 0.8),
    "regnet_x_1_6gf": ("RegNet_X_1_6GF_Weights.IMAGENET1K_V1", 9_190_136, 1.603),
    "regnet_x_3_2gf": ("RegNet_X_3_2GF_Weights.IMAGENET1K_V1", 15_296_552, 3.177),
    "regnet_x_8gf": ("RegNet_X_8GF_Weights.IMAGENET1K_V1", 39_572_648, 7.995),
    "regnet_x_16gf": ("RegNet_X_16GF_Weights.IMAGENET1K_V1", 54_278_536, 15.941),
    "regnet_x_32gf": ("RegNet_X_32GF_Weights.IMAGENET1K_V1", 107_811_560, 31.736),
    "regnet_y_400mf": ("RegNet_Y_400MF_Weights.IMAGENET1K_V1", 4_344_144, 0.402),
    "regnet_y_800mf": ("RegNet_Y_800MF_Weights.IMAGENET1K_V1", 6_432_512, 0.834),
    "regnet_y_1_6gf": ("RegNet_Y_1_6GF_Weights.IMAGENET1K_V1", 11_202_430, 1.612),
    "regnet_y_3_2gf": ("RegNet_Y_3_2GF_Weights.IMAGENET1K_V1", 19_436_338, 3.176),
    "regnet_y_8gf": ("RegNet_Y_8GF_Weights.IMAGENET1K_V1", 39_381_472, 8.473),
    "regnet_y_16gf": ("RegNet_Y_16GF_Weights.IMAGENET1K_V1", 83_590_140, 15.912),
    "regnet_y_32gf": ("RegNet_Y_32GF_Weights.IMAGENET1K_V1", 145_046_770, 32.28),
    # only SWAG weights; the LINEAR_V1 ones are evaluated at 224 (E2E_V1 at 384: 374.57)
    "regnet_y_128gf": ("RegNet_Y_128GF_Weights.IMAGENET1K_SWAG_LINEAR_V1", 644_812_894,
                       127.518),
}
REFERENCE: dict[str, dict[str, object]] = {
    name: {"params": params, "macs": gmacs * 1e9,
           "source": f"{_DOCS}, {weights}: {params:,} params, {gmacs:.2f} GFLOPS (meta _ops "
                     f"{gmacs}) at 224x224; checked against torchvision 0.29.1: "
                     "instantiated parameters equal"}
    for name, (weights, params, gmacs) in _TV_PUBLISHED.items()
}
