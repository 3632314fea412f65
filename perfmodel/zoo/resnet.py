"""Residual CNNs: ResNet-18/34/50/101/152 and ConvNeXt T/S/B/L, op by op as torchvision.

ResNet follows ``torchvision/models/resnet.py`` (He et al. 2016, "Deep residual learning
for image recognition"; bottleneck stride on the 3x3 conv, i.e. "ResNet v1.5");
ConvNeXt follows ``torchvision/models/convnext.py`` (Liu et al. 2022, "A ConvNet for
the 2020s"). Scopes carry torchvision's module names (``layer3.2.conv2``,
``features.5.3.block.3``).

``REFERENCE`` holds the published size of each model: parameters (exact) and MACs
(torchvision's "GFLOPS" column, which counts multiply-accumulates).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo.sources import TORCHVISION_DOCS

__all__ = ["MODELS", "REFERENCE", "resnet", "convnext", "convnext_tiny"]

_TV = "torchvision.models"


def _builder(name: str, family: str) -> GraphBuilder:
    return GraphBuilder(name, family=family, source=f"{_TV}.{name}", input="3x224x224",
                        default_batch=1, is_llm=False)


# --- ResNet -----------------------------------------------------------------------------

def _downsample(b: GraphBuilder, x: Tensor, out: int, stride: int) -> Tensor:
    """Projection shortcut: 1x1 conv (stride) + BN, torchvision's ``downsample.0/.1``."""
    with b.scope("downsample"):
        return b.batchnorm(b.conv2d(x, out, 1, stride, bias=False, name="0"), name="1")


def _basic_block(b: GraphBuilder, x: Tensor, planes: int, stride: int) -> Tensor:
    """``BasicBlock``: two 3x3 conv-BN, ReLU between, residual add, ReLU (expansion 1)."""
    y = b.relu(b.batchnorm(b.conv2d(x, planes, 3, stride, 1, bias=False, name="conv1"),
                           name="bn1"), name="relu1")
    y = b.batchnorm(b.conv2d(y, planes, 3, 1, 1, bias=False, name="conv2"), name="bn2")
    shortcut = x if stride == 1 and x.shape[1] == planes else _downsample(b, x, planes, stride)
    return b.relu(b.add(y, shortcut, name="add"), name="relu2")


def _bottleneck(b: GraphBuilder, x: Tensor, planes: int, stride: int) -> Tensor:
    """``Bottleneck``: 1x1 reduce, 3x3 (carrying the stride), 1x1 expand to 4*planes."""
    out = 4 * planes
    y = b.relu(b.batchnorm(b.conv2d(x, planes, 1, bias=False, name="conv1"), name="bn1"),
               name="relu1")
    y = b.relu(b.batchnorm(b.conv2d(y, planes, 3, stride, 1, bias=False, name="conv2"),
                           name="bn2"), name="relu2")
    y = b.batchnorm(b.conv2d(y, out, 1, bias=False, name="conv3"), name="bn3")
    shortcut = x if stride == 1 and x.shape[1] == out else _downsample(b, x, out, stride)
    return b.relu(b.add(y, shortcut, name="add"), name="relu3")


_RESNET_DEPTHS: dict[int, tuple[bool, tuple[int, int, int, int]]] = {
    # depth: (bottleneck?, blocks per stage), torchvision resnet.py builders
    18: (False, (2, 2, 2, 2)), 34: (False, (3, 4, 6, 3)), 50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)), 152: (True, (3, 8, 36, 3)),
}


def resnet(*, depth: int = 50, num_classes: int = 1000) -> ModelGraph:
    """ResNet-``depth``: 7x7/2 stem, 3x3/2 max pool, four stages (64..512 planes, the
    first block of stages 2-4 strides 2), global average pool, FC."""
    if depth not in _RESNET_DEPTHS:
        raise UnknownNameError(f"unknown ResNet depth {depth!r}",
                               did_you_mean(str(depth), map(str, _RESNET_DEPTHS)))
    bottleneck, blocks = _RESNET_DEPTHS[depth]
    block = _bottleneck if bottleneck else _basic_block
    b = _builder(f"resnet{depth}", "resnet")
    x = b.input("image", (3, 224, 224))
    x = b.relu(b.batchnorm(b.conv2d(x, 64, 7, 2, 3, bias=False, name="conv1"), name="bn1"),
               name="relu")
    x = b.maxpool(x, 3, 2, 1, name="maxpool")
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), start=1):
        for i in range(n):
            with b.scope(f"layer{stage}.{i}"):
                x = block(b, x, planes, 2 if stage > 1 and i == 0 else 1)
    x = b.flatten(b.adaptive_avgpool(x, 1, name="avgpool"), name="flatten")
    b.linear(x, num_classes, name="fc")
    return b.build()


# --- ConvNeXt ---------------------------------------------------------------------------

def _layernorm2d(b: GraphBuilder, x: Tensor, name: str) -> Tensor:
    """torchvision's ``LayerNorm2d``: LayerNorm over the channels of an NCHW tensor."""
    return b.layernorm(x, name=name, channels_dim=1)


def _cn_block(b: GraphBuilder, x: Tensor) -> Tensor:
    """``CNBlock``: 7x7 depthwise conv, channels-last LayerNorm, Linear 4x expand, GELU,
    Linear back, layer scale (a learned per-channel gain), stochastic depth, residual."""
    dim = int(x.shape[1])
    with b.scope("block"):
        y = b.conv2d(x, dim, 7, padding=3, groups=dim, name="0")
        y = b.layernorm(b.permute(y, (0, 2, 3, 1), name="1"), name="2")
        y = b.act(b.linear(y, 4 * dim, name="3"), OpKind.GELU, name="4")
        y = b.permute(b.linear(y, dim, name="5"), (0, 3, 1, 2), name="6")
    y = b.dropout(b.mul(y, weight=(dim, 1, 1), name="layer_scale"), name="stochastic_depth")
    return b.add(y, x, name="add")


# variant -> per stage (input channels, output channels of the following downsampling
# layer or None, blocks): torchvision ``convnext_<variant>``'s CNBlockConfig lists (Liu et al.
# 2022, section 3: C = (96, 192, 384, 768) with B = (3, 3, 9, 3) for T, (3, 3, 27, 3) for S,
# C = (128, ...) for B and (192, ...) for L).
_CONVNEXT: dict[str, tuple[tuple[int, int | None, int], ...]] = {
    "tiny": ((96, 192, 3), (192, 384, 3), (384, 768, 9), (768, None, 3)),
    "small": ((96, 192, 3), (192, 384, 3), (384, 768, 27), (768, None, 3)),
    "base": ((128, 256, 3), (256, 512, 3), (512, 1024, 27), (1024, None, 3)),
    "large": ((192, 384, 3), (384, 768, 3), (768, 1536, 27), (1536, None, 3)),
}


def convnext(variant: str = "tiny", *, num_classes: int = 1000) -> ModelGraph:
    """ConvNeXt-``variant``: 4x4/4 patchify stem + LayerNorm, four stages of CNBlocks
    separated by LayerNorm + 2x2/2 conv downsampling, global pool, LayerNorm, Linear."""
    if variant not in _CONVNEXT:
        raise UnknownNameError(f"unknown ConvNeXt variant {variant!r}",
                               did_you_mean(variant, _CONVNEXT))
    stages = _CONVNEXT[variant]
    b = _builder(f"convnext_{variant}", "convnext")
    x = b.input("image", (3, 224, 224))
    with b.scope("features"):
        with b.scope("0"):
            x = _layernorm2d(b, b.conv2d(x, stages[0][0], 4, 4, name="0"), "1")
        for stage, (_, out, n) in enumerate(stages):
            for i in range(n):
                with b.scope(f"{2 * stage + 1}.{i}"):
                    x = _cn_block(b, x)
            if out is not None:
                with b.scope(str(2 * stage + 2)):
                    x = b.conv2d(_layernorm2d(b, x, "0"), out, 2, 2, name="1")
    x = b.adaptive_avgpool(x, 1, name="avgpool")
    with b.scope("classifier"):
        x = b.flatten(_layernorm2d(b, x, "0"), name="1")
        b.linear(x, num_classes, name="2")
    return b.build()


def convnext_tiny(*, num_classes: int = 1000) -> ModelGraph:
    """ConvNeXt-T (``convnext("tiny")``)."""
    return convnext("tiny", num_classes=num_classes)


# --- registry and published figures -----------------------------------------------------

MODELS: dict[str, Callable[..., ModelGraph]] = {
    **{f"resnet{d}": partial(resnet, depth=d) for d in _RESNET_DEPTHS},
    **{f"convnext_{v}": partial(convnext, v) for v in _CONVNEXT},
}

_DOCS = TORCHVISION_DOCS


def _ref(weights: str, params: int, gmacs: float) -> dict[str, object]:
    """A REFERENCE entry; ``gmacs`` is the weights' meta ``_ops`` that the docs table
    shows as GFLOPS (rounded to 2 decimals there)."""
    return {"params": params, "macs": gmacs * 1e9,
            "source": f"{_DOCS}, {weights}: {params:,} params, {gmacs:.2f} GFLOPS (meta "
                      f"_ops {gmacs}); checked against torchvision 0.29.1: instantiated "
                      "parameters equal, FlopCounterMode MACs equal _ops"}


REFERENCE: dict[str, dict[str, object]] = {
    "resnet18": _ref("ResNet18_Weights.IMAGENET1K_V1", 11_689_512, 1.814),
    "resnet34": _ref("ResNet34_Weights.IMAGENET1K_V1", 21_797_672, 3.664),
    "resnet50": _ref("ResNet50_Weights.IMAGENET1K_V1", 25_557_032, 4.089),
    "resnet101": _ref("ResNet101_Weights.IMAGENET1K_V1", 44_549_160, 7.801),
    "resnet152": _ref("ResNet152_Weights.IMAGENET1K_V1", 60_192_808, 11.514),
    "convnext_tiny": _ref("ConvNeXt_Tiny_Weights.IMAGENET1K_V1", 28_589_128, 4.456),
    "convnext_small": _ref("ConvNeXt_Small_Weights.IMAGENET1K_V1", 50_223_688, 8.684),
    "convnext_base": _ref("ConvNeXt_Base_Weights.IMAGENET1K_V1", 88_591_464, 15.355),
    "convnext_large": _ref("ConvNeXt_Large_Weights.IMAGENET1K_V1", 197_767_336, 34.361),
}
