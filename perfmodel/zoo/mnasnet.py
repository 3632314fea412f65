"""MnasNet-B1 at depth multipliers 0.5, 0.75, 1.0 and 1.3, op by op as torchvision's
``mnasnet.py``.

Tan et al. CVPR 2019, "MnasNet: Platform-Aware Neural Architecture Search for Mobile"
(Figure 7, the B1 variant without squeeze-excite): a 3x3/2 stem, a depthwise-separable
block, six stacks of inverted residuals (1x1 expand, depthwise kxk, 1x1 linear projection,
ReLU, residual when the shape is unchanged), a 1x1 conv to 1280, global pool and a linear
classifier. Every width but the 1280 head is scaled by ``alpha`` and rounded to a multiple
of 8 (torchvision ``_round_to_multiple_of``, rounding up unless within 10 % of the lower
multiple). Scopes carry torchvision's module names (``layers.10.2.layers.3``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo.mobile import channels
from perfmodel.zoo.sources import TORCHVISION_DOCS

__all__ = ["MODELS", "REFERENCE", "mnasnet", "mnasnet_depths"]

_DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)  # alpha = 1.0 widths
# (kernel, stride, expansion, repeats) of the six stacks, layers.8 to layers.13
_STACKS = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))
_ALPHAS = {"0_5": 0.5, "0_75": 0.75, "1_0": 1.0, "1_3": 1.3}


def _round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def mnasnet_depths(alpha: float) -> list[int]:
    """torchvision ``_get_depths``: the eight scaled widths."""
    return [_round_to_multiple_of(d * alpha, 8) for d in _DEPTHS]


def _conv_bn(b: GraphBuilder, x: Tensor, out: int, kernel: int, index: int, stride: int = 1,
             groups: int = 1, relu: bool = True) -> Tensor:
    """conv (no bias, padding k//2) at ``index``, BN at index+1, ReLU at index+2."""
    x = b.conv2d(x, out, kernel, stride, kernel // 2, groups=groups, bias=False,
                 name=str(index))
    x = b.batchnorm(x, name=str(index + 1))
    return b.relu(x, name=str(index + 2)) if relu else x


def _inverted_residual(b: GraphBuilder, x: Tensor, out: int, kernel: int, stride: int,
                       expansion: int) -> Tensor:
    """``_InvertedResidual``: 1x1 to in*expansion, dw kxk, 1x1 linear (``layers.0``-``7``)."""
    c = channels(x)
    mid = c * expansion
    with b.scope("layers"):
        y = _conv_bn(b, x, mid, 1, 0)
        y = _conv_bn(b, y, mid, kernel, 3, stride, groups=mid)
        y = _conv_bn(b, y, out, 1, 6, relu=False)
    return b.add(y, x, name="add") if c == out and stride == 1 else y


def mnasnet(alpha: float = 1.0, *, num_classes: int = 1000, name: str = "mnasnet1_0",
            image_size: int = 224) -> ModelGraph:
    """torchvision ``MNASNet(alpha)``."""
    d = mnasnet_depths(alpha)
    b = GraphBuilder(name, family="mnasnet", source=f"torchvision.models.{name}",
                     input=f"3x{image_size}x{image_size}", default_batch=1, is_llm=False)
    x = b.input("image", (3, image_size, image_size))
    with b.scope("layers"):
        x = _conv_bn(b, x, d[0], 3, 0, stride=2)
        x = _conv_bn(b, x, d[0], 3, 3, groups=d[0])
        x = _conv_bn(b, x, d[1], 1, 6, relu=False)
        for s, (kernel, stride, expansion, repeats) in enumerate(_STACKS):
            for i in range(repeats):
                with b.scope(f"{8 + s}.{i}"):
                    x = _inverted_residual(b, x, d[s + 2], kernel, stride if i == 0 else 1,
                                           expansion)
        x = _conv_bn(b, x, 1280, 1, 14)
    x = b.flatten(b.adaptive_avgpool(x, 1, name="mean"), name="flatten")  # x.mean([2, 3])
    x = b.dropout(x, name="classifier.0")
    b.linear(x, num_classes, name="classifier.1")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    f"mnasnet{v}": partial(mnasnet, a, name=f"mnasnet{v}") for v, a in _ALPHAS.items()
}

_DOCS = TORCHVISION_DOCS
# variant -> (params, GFLOPS = GMACs at 224: the weights' meta _ops, 3 decimals)
_TV_PUBLISHED = {"0_5": (2_218_512, 0.104), "0_75": (3_170_208, 0.215),
                 "1_0": (4_383_312, 0.314), "1_3": (6_282_256, 0.526)}
REFERENCE: dict[str, dict[str, object]] = {
    f"mnasnet{v}": {
        "params": params, "macs": gmacs * 1e9,
        "source": f"{_DOCS}, MNASNet{v.upper()}_Weights.IMAGENET1K_V1: {params:,} params, "
                  f"{gmacs:.2f} GFLOPS (meta _ops {gmacs}); checked against torchvision "
                  "0.29.1: instantiated parameters equal"}
    for v, (params, gmacs) in _TV_PUBLISHED.items()
}
