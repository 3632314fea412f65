"""Classic image-classification CNNs, op by op as their reference implementations.

LeNet-5 (LeCun et al. 1998), AlexNet, VGG, GoogLeNet, Inception v3, SqueezeNet and
DenseNet, each following ``torchvision.models`` (pytorch/vision, ``torchvision/models/*.py``)
module by module: every conv, norm, activation, pooling and concat is one op, and
scopes carry torchvision's module names (``features.0``, ``inception4a.branch2.1``,
``Mixed_6e.branch7x7dbl_3``), so a report reads like the source. ResNet and ConvNeXt
are in :mod:`perfmodel.zoo.resnet`, the Vision Transformer in
:mod:`perfmodel.zoo.vision_transformer`.

``REFERENCE`` holds the published size of each model: parameters (exact) and MACs
(torchvision's "GFLOPS" column, which counts multiply-accumulates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["MODELS", "REFERENCE", "lenet5", "alexnet", "vgg", "googlenet", "inception_v3",
           "squeezenet", "densenet121"]

_TV = "torchvision.models"  # the reference implementation of every model here but LeNet


def _builder(name: str, family: str, source: str, image: tuple[int, int, int]) -> GraphBuilder:
    c, h, w = image
    return GraphBuilder(name, family=family, source=source, input=f"{c}x{h}x{w}",
                        default_batch=1, is_llm=False)


def _variant(table: dict[str, Any], key: str, option: str) -> Any:
    """``table[key]``, or one clear error naming the valid choices for ``option``."""
    if key not in table:
        raise UnknownNameError(f"unknown {option} {key!r}", did_you_mean(str(key), table))
    return table[key]


def _conv_bn_relu(b: GraphBuilder, x: Tensor, name: str, out: int,
                  kernel: int | Sequence[int], stride: int = 1,
                  padding: int | Sequence[int] = 0) -> Tensor:
    """torchvision's ``BasicConv2d`` (googlenet.py, inception.py): conv without bias,
    BatchNorm (eps 0.001), ReLU, under the module name ``name``."""
    with b.scope(name):
        x = b.conv2d(x, out, kernel, stride, padding, bias=False, name="conv")
        return b.relu(b.batchnorm(x, name="bn"), name="relu")


# --- LeNet-5 ----------------------------------------------------------------------------

def lenet5(*, in_channels: int = 1, num_classes: int = 10, name: str = "lenet5") -> ModelGraph:
    """LeNet-5 on a 32x32 image (LeCun et al. 1998, "Gradient-based learning applied to
    document recognition", Fig. 2): C1 conv 6@5x5, S2 2x2 subsampling, C3 conv 16@5x5,
    S4 subsampling, C5/F6/output fully connected 120-84-10.

    Follows the common PyTorch reimplementation (e.g. d2l.ai "Convolutional Neural
    Networks (LeNet)", which pads a 28x28 input to the same 32x32 geometry): tanh,
    average pooling without trainable coefficients, a fully connected C3 and a plain
    linear output instead of the RBF units, giving 61,706 parameters. ``in_channels=3``
    is the seed documents' variant on 3x32x32 images (``lenet5_cifar``).
    """
    b = _builder(name, "lenet", "LeCun et al. 1998 (common PyTorch reimplementation: "
                 "tanh, avg-pool subsampling, full C3)", (in_channels, 32, 32))
    x = b.input("image", (in_channels, 32, 32))
    x = b.act(b.conv2d(x, 6, 5, name="conv1"), "tanh", name="tanh1")       # C1: 6x28x28
    x = b.avgpool(x, 2, name="pool1")                                        # S2: 6x14x14
    x = b.act(b.conv2d(x, 16, 5, name="conv2"), "tanh", name="tanh2")      # C3: 16x10x10
    x = b.flatten(b.avgpool(x, 2, name="pool2"), name="flatten")           # S4: 16x5x5
    x = b.act(b.linear(x, 120, name="fc1"), "tanh", name="tanh3")          # C5
    x = b.act(b.linear(x, 84, name="fc2"), "tanh", name="tanh4")           # F6
    b.linear(x, num_classes, name="fc3")
    return b.build()


# --- AlexNet and VGG --------------------------------------------------------------------

def alexnet(*, num_classes: int = 1000) -> ModelGraph:
    """AlexNet as in torchvision (``alexnet.py``), the single-tower variant of Krizhevsky,
    "One weird trick for parallelizing convolutional neural networks" (2014)."""
    b = _builder("alexnet", "alexnet", f"{_TV}.alexnet", (3, 224, 224))
    x = b.input("image", (3, 224, 224))
    convs = {0: (64, 11, 4, 2), 3: (192, 5, 1, 2), 6: (384, 3, 1, 1), 8: (256, 3, 1, 1),
             10: (256, 3, 1, 1)}
    with b.scope("features"):
        for i, (out, k, s, p) in convs.items():
            x = b.relu(b.conv2d(x, out, k, s, p, name=str(i)), name=str(i + 1))
            if i in (0, 3, 10):
                x = b.maxpool(x, 3, 2, name=str(i + 2))
    x = b.flatten(b.adaptive_avgpool(x, 6, name="avgpool"), name="flatten")
    with b.scope("classifier"):
        x = b.relu(b.linear(b.dropout(x, name="0"), 4096, name="1"), name="2")
        x = b.relu(b.linear(b.dropout(x, name="3"), 4096, name="4"), name="5")
        b.linear(x, num_classes, name="6")
    return b.build()


_VGG_CFGS: dict[str, list[int | str]] = {  # torchvision vgg.py ``cfgs``; "M" = maxpool 2x2
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def vgg(*, cfg: str = "D", num_classes: int = 1000, name: str = "vgg16") -> ModelGraph:
    """VGG without BatchNorm (Simonyan & Zisserman 2014), torchvision ``vgg.py``:
    3x3 convs with bias and ReLU, 2x2 max pools, 7x7 adaptive pool, 3 FC layers."""
    b = _builder(name, "vgg", f"{_TV}.{name}", (3, 224, 224))
    x = b.input("image", (3, 224, 224))
    with b.scope("features"):
        i = 0
        for v in _variant(_VGG_CFGS, cfg, "VGG cfg"):
            if v == "M":
                x, i = b.maxpool(x, 2, 2, name=str(i)), i + 1
            else:
                x = b.relu(b.conv2d(x, int(v), 3, padding=1, name=str(i)), name=str(i + 1))
                i += 2
    x = b.flatten(b.adaptive_avgpool(x, 7, name="avgpool"), name="flatten")
    with b.scope("classifier"):
        x = b.dropout(b.relu(b.linear(x, 4096, name="0"), name="1"), name="2")
        x = b.dropout(b.relu(b.linear(x, 4096, name="3"), name="4"), name="5")
        b.linear(x, num_classes, name="6")
    return b.build()


# --- GoogLeNet --------------------------------------------------------------------------

_GOOGLENET_BLOCKS: dict[str, tuple[int, int, int, int, int, int]] = {
    # name: (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), torchvision googlenet.py
    "inception3a": (64, 96, 128, 16, 32, 32), "inception3b": (128, 128, 192, 32, 96, 64),
    "inception4a": (192, 96, 208, 16, 48, 64), "inception4b": (160, 112, 224, 24, 64, 64),
    "inception4c": (128, 128, 256, 24, 64, 64), "inception4d": (112, 144, 288, 32, 64, 64),
    "inception4e": (256, 160, 320, 32, 128, 128),
    "inception5a": (256, 160, 320, 32, 128, 128), "inception5b": (384, 192, 384, 48, 128, 128),
}


def _googlenet_inception(b: GraphBuilder, x: Tensor, name: str) -> Tensor:
    """GoogLeNet's Inception module (Szegedy et al. 2015, Fig. 2b). As in torchvision,
    the "5x5" branch uses a 3x3 kernel (kept there for weight compatibility)."""
    c1, c3r, c3, c5r, c5, pp = _GOOGLENET_BLOCKS[name]
    with b.scope(name):
        y1 = _conv_bn_relu(b, x, "branch1", c1, 1)
        y2 = _conv_bn_relu(b, _conv_bn_relu(b, x, "branch2.0", c3r, 1), "branch2.1", c3, 3,
                           padding=1)
        y3 = _conv_bn_relu(b, _conv_bn_relu(b, x, "branch3.0", c5r, 1), "branch3.1", c5, 3,
                           padding=1)
        pool = b.maxpool(x, 3, 1, 1, ceil_mode=True, name="branch4.0")
        y4 = _conv_bn_relu(b, pool, "branch4.1", pp, 1)
        return b.concat([y1, y2, y3, y4], name="cat")


def _googlenet_aux(b: GraphBuilder, x: Tensor, name: str, num_classes: int) -> None:
    """GoogLeNet's auxiliary classifier (training only; torchvision ``InceptionAux``)."""
    with b.scope(name):
        x = _conv_bn_relu(b, b.adaptive_avgpool(x, 4, name="pool"), "conv", 128, 1)
        x = b.relu(b.linear(b.flatten(x, name="flatten"), 1024, name="fc1"), name="relu")
        b.linear(b.dropout(x, name="dropout"), num_classes, name="fc2")


def googlenet(*, num_classes: int = 1000, aux_logits: bool = False) -> ModelGraph:
    """GoogLeNet (Szegedy et al. 2015, "Going deeper with convolutions") as torchvision's
    ``googlenet.py``, with BatchNorm after every conv. ``aux_logits=False`` is the
    pretrained eval model (torchvision drops aux1/aux2 after loading weights)."""
    b = _builder("googlenet", "googlenet", f"{_TV}.googlenet", (3, 224, 224))
    x = b.input("image", (3, 224, 224))
    x = _conv_bn_relu(b, x, "conv1", 64, 7, 2, 3)
    x = b.maxpool(x, 3, 2, ceil_mode=True, name="maxpool1")
    x = _conv_bn_relu(b, _conv_bn_relu(b, x, "conv2", 64, 1), "conv3", 192, 3, padding=1)
    x = b.maxpool(x, 3, 2, ceil_mode=True, name="maxpool2")
    x = _googlenet_inception(b, _googlenet_inception(b, x, "inception3a"), "inception3b")
    x = b.maxpool(x, 3, 2, ceil_mode=True, name="maxpool3")
    for stage in "abcde":
        x = _googlenet_inception(b, x, f"inception4{stage}")
        if aux_logits and stage in "ad":
            _googlenet_aux(b, x, "aux1" if stage == "a" else "aux2", num_classes)
    x = b.maxpool(x, 2, 2, ceil_mode=True, name="maxpool4")
    x = _googlenet_inception(b, _googlenet_inception(b, x, "inception5a"), "inception5b")
    x = b.flatten(b.adaptive_avgpool(x, 1, name="avgpool"), name="flatten")
    b.linear(b.dropout(x, name="dropout"), num_classes, name="fc")
    return b.build()


# --- Inception v3 -----------------------------------------------------------------------

def _avgpool_branch(b: GraphBuilder, x: Tensor, out: int) -> Tensor:
    """``branch_pool``: 3x3 stride-1 average pool, then a 1x1 BasicConv2d."""
    return _conv_bn_relu(b, b.avgpool(x, 3, 1, 1, name="avg_pool"), "branch_pool", out, 1)


def _inception_a(b: GraphBuilder, x: Tensor, name: str, pool_features: int) -> Tensor:
    """InceptionA (Szegedy et al. 2016, Fig. 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | pool-1x1."""
    with b.scope(name):
        y1 = _conv_bn_relu(b, x, "branch1x1", 64, 1)
        y5 = _conv_bn_relu(b, _conv_bn_relu(b, x, "branch5x5_1", 48, 1), "branch5x5_2", 64, 5,
                           padding=2)
        y3 = _conv_bn_relu(b, x, "branch3x3dbl_1", 64, 1)
        y3 = _conv_bn_relu(b, y3, "branch3x3dbl_2", 96, 3, padding=1)
        y3 = _conv_bn_relu(b, y3, "branch3x3dbl_3", 96, 3, padding=1)
        return b.concat([y1, y5, y3, _avgpool_branch(b, x, pool_features)], name="cat")


def _inception_b(b: GraphBuilder, x: Tensor, name: str) -> Tensor:
    """InceptionB (grid reduction 35 -> 17, Fig. 10): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""
    with b.scope(name):
        y3 = _conv_bn_relu(b, x, "branch3x3", 384, 3, 2)
        yd = _conv_bn_relu(b, x, "branch3x3dbl_1", 64, 1)
        yd = _conv_bn_relu(b, yd, "branch3x3dbl_2", 96, 3, padding=1)
        yd = _conv_bn_relu(b, yd, "branch3x3dbl_3", 96, 3, 2)
        return b.concat([y3, yd, b.maxpool(x, 3, 2, name="max_pool")], name="cat")


def _inception_c(b: GraphBuilder, x: Tensor, name: str, c7: int) -> Tensor:
    """InceptionC (Fig. 6): 7x7 convs factorized into 1x7 and 7x1."""
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding)
    with b.scope(name):
        y1 = _conv_bn_relu(b, x, "branch1x1", 192, 1)
        y7 = _conv_bn_relu(b, x, "branch7x7_1", c7, 1)
        y7 = _conv_bn_relu(b, y7, "branch7x7_2", c7, row[0], padding=row[1])
        y7 = _conv_bn_relu(b, y7, "branch7x7_3", 192, col[0], padding=col[1])
        yd = _conv_bn_relu(b, x, "branch7x7dbl_1", c7, 1)
        for i, (k, p) in enumerate((col, row, col, row), start=2):
            yd = _conv_bn_relu(b, yd, f"branch7x7dbl_{i}", 192 if i == 5 else c7, k, padding=p)
        return b.concat([y1, y7, yd, _avgpool_branch(b, x, 192)], name="cat")


def _inception_d(b: GraphBuilder, x: Tensor, name: str) -> Tensor:
    """InceptionD (grid reduction 17 -> 8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""
    with b.scope(name):
        y3 = _conv_bn_relu(b, _conv_bn_relu(b, x, "branch3x3_1", 192, 1), "branch3x3_2", 320,
                           3, 2)
        y7 = _conv_bn_relu(b, x, "branch7x7x3_1", 192, 1)
        y7 = _conv_bn_relu(b, y7, "branch7x7x3_2", 192, (1, 7), padding=(0, 3))
        y7 = _conv_bn_relu(b, y7, "branch7x7x3_3", 192, (7, 1), padding=(3, 0))
        y7 = _conv_bn_relu(b, y7, "branch7x7x3_4", 192, 3, 2)
        return b.concat([y3, y7, b.maxpool(x, 3, 2, name="max_pool")], name="cat")


def _split_1x3_3x1(b: GraphBuilder, x: Tensor, prefix: str) -> Tensor:
    """InceptionE's expanded filter bank (Fig. 7): a 1x3 and a 3x1 conv side by side."""
    ya = _conv_bn_relu(b, x, f"{prefix}a", 384, (1, 3), padding=(0, 1))
    yb = _conv_bn_relu(b, x, f"{prefix}b", 384, (3, 1), padding=(1, 0))
    return b.concat([ya, yb], name=f"{prefix}_cat")


def _inception_e(b: GraphBuilder, x: Tensor, name: str) -> Tensor:
    """InceptionE (8x8 grid, Fig. 7)."""
    with b.scope(name):
        y1 = _conv_bn_relu(b, x, "branch1x1", 320, 1)
        y3 = _split_1x3_3x1(b, _conv_bn_relu(b, x, "branch3x3_1", 384, 1), "branch3x3_2")
        yd = _conv_bn_relu(b, x, "branch3x3dbl_1", 448, 1)
        yd = _conv_bn_relu(b, yd, "branch3x3dbl_2", 384, 3, padding=1)
        yd = _split_1x3_3x1(b, yd, "branch3x3dbl_3")
        return b.concat([y1, y3, yd, _avgpool_branch(b, x, 192)], name="cat")


def _inception_aux(b: GraphBuilder, x: Tensor, num_classes: int) -> None:
    """Inception v3's auxiliary classifier on the 17x17 grid (``InceptionAux``)."""
    with b.scope("AuxLogits"):
        x = _conv_bn_relu(b, b.avgpool(x, 5, 3, name="avg_pool"), "conv0", 128, 1)
        x = b.adaptive_avgpool(_conv_bn_relu(b, x, "conv1", 768, 5), 1, name="adaptive_pool")
        b.linear(b.flatten(x, name="flatten"), num_classes, name="fc")


def inception_v3(*, num_classes: int = 1000, aux_logits: bool = True) -> ModelGraph:
    """Inception v3 (Szegedy et al. 2016, "Rethinking the Inception architecture") as
    torchvision's ``inception.py`` on 299x299 images.

    ``aux_logits=True`` (torchvision's default) keeps the ``AuxLogits`` head, whose
    weights are part of the published 27,161,264 parameters; torchvision runs it only in
    training mode, so at inference it adds ~5.7 M MACs (0.1 %) that the eval model skips.
    """
    b = _builder("inception_v3", "inception", f"{_TV}.inception_v3", (3, 299, 299))
    x = b.input("image", (3, 299, 299))
    x = _conv_bn_relu(b, x, "Conv2d_1a_3x3", 32, 3, 2)
    x = _conv_bn_relu(b, x, "Conv2d_2a_3x3", 32, 3)
    x = _conv_bn_relu(b, x, "Conv2d_2b_3x3", 64, 3, padding=1)
    x = b.maxpool(x, 3, 2, name="maxpool1")
    x = _conv_bn_relu(b, x, "Conv2d_3b_1x1", 80, 1)
    x = _conv_bn_relu(b, x, "Conv2d_4a_3x3", 192, 3)
    x = b.maxpool(x, 3, 2, name="maxpool2")
    for block, pool_features in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
        x = _inception_a(b, x, block, pool_features)
    x = _inception_b(b, x, "Mixed_6a")
    for block, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160),
                      ("Mixed_6e", 192)):
        x = _inception_c(b, x, block, c7)
    if aux_logits:
        _inception_aux(b, x, num_classes)
    x = _inception_d(b, x, "Mixed_7a")
    x = _inception_e(b, _inception_e(b, x, "Mixed_7b"), "Mixed_7c")
    x = b.flatten(b.adaptive_avgpool(x, 1, name="avgpool"), name="flatten")
    b.linear(b.dropout(x, name="dropout"), num_classes, name="fc")
    return b.build()


# --- SqueezeNet -------------------------------------------------------------------------

def _fire(b: GraphBuilder, x: Tensor, name: str, squeeze: int, expand: int) -> Tensor:
    """Fire module (Iandola et al. 2016): 1x1 squeeze, then 1x1 and 3x3 expands, concat."""
    with b.scope(name):
        s = b.relu(b.conv2d(x, squeeze, 1, name="squeeze"), name="squeeze_activation")
        e1 = b.relu(b.conv2d(s, expand, 1, name="expand1x1"), name="expand1x1_activation")
        e3 = b.relu(b.conv2d(s, expand, 3, padding=1, name="expand3x3"),
                    name="expand3x3_activation")
        return b.concat([e1, e3], name="cat")


# torchvision squeezenet.py: (stem conv, kernel), then per features index a Fire module
# (squeeze, expand) or "M" (3x3/2 max pool, ceil mode).
_SQUEEZENET: dict[str, tuple[int, int, list[tuple[int, int] | str]]] = {
    "1_0": (96, 7, ["M", (16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192),
                    (48, 192), (64, 256), "M", (64, 256)]),
    "1_1": (64, 3, ["M", (16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192),
                    (48, 192), (64, 256), (64, 256)]),
}


def squeezenet(*, version: str = "1_0", num_classes: int = 1000) -> ModelGraph:
    """SqueezeNet 1.0 (Iandola et al. 2016) or 1.1 (fewer MACs), torchvision
    ``squeezenet.py``: the classifier is a 1x1 conv and global average pooling."""
    name = f"squeezenet{version}"
    b = _builder(name, "squeezenet", f"{_TV}.{name}", (3, 224, 224))
    x = b.input("image", (3, 224, 224))
    stem, kernel, layers = _variant(_SQUEEZENET, version, "SqueezeNet version")
    with b.scope("features"):
        x = b.relu(b.conv2d(x, stem, kernel, 2, name="0"), name="1")
        for i, layer in enumerate(layers, start=2):
            if layer == "M":
                x = b.maxpool(x, 3, 2, ceil_mode=True, name=str(i))
            else:
                x = _fire(b, x, str(i), *layer)
    with b.scope("classifier"):
        x = b.relu(b.conv2d(b.dropout(x, name="0"), num_classes, 1, name="1"), name="2")
        x = b.adaptive_avgpool(x, 1, name="3")
    b.flatten(x, name="flatten")
    return b.build()


# --- DenseNet ---------------------------------------------------------------------------

def _dense_layer(b: GraphBuilder, features: list[Tensor], name: str, growth: int,
                 bn_size: int) -> Tensor:
    """``_DenseLayer``: concat of all earlier features, BN-ReLU-1x1 conv (bottleneck to
    bn_size*growth), BN-ReLU-3x3 conv to ``growth`` new channels (Huang et al. 2017)."""
    with b.scope(name):
        x = features[0] if len(features) == 1 else b.concat(features, name="cat")
        x = b.relu(b.batchnorm(x, name="norm1"), name="relu1")
        x = b.conv2d(x, bn_size * growth, 1, bias=False, name="conv1")
        x = b.relu(b.batchnorm(x, name="norm2"), name="relu2")
        return b.conv2d(x, growth, 3, padding=1, bias=False, name="conv2")


def _transition(b: GraphBuilder, x: Tensor, name: str) -> Tensor:
    """``_Transition``: BN-ReLU-1x1 conv halving the channels, 2x2 average pool."""
    with b.scope(name):
        x = b.relu(b.batchnorm(x, name="norm"), name="relu")
        x = b.conv2d(x, int(x.shape[1]) // 2, 1, bias=False, name="conv")
        return b.avgpool(x, 2, 2, name="pool")


def densenet121(*, num_classes: int = 1000, growth: int = 32,
                block_config: tuple[int, ...] = (6, 12, 24, 16), bn_size: int = 4,
                init_features: int = 64) -> ModelGraph:
    """DenseNet-121 (Huang et al. 2017, "Densely connected convolutional networks") as
    torchvision's ``densenet.py`` (memory-hungry default: each layer concatenates)."""
    b = _builder("densenet121", "densenet", f"{_TV}.densenet121", (3, 224, 224))
    x = b.input("image", (3, 224, 224))
    with b.scope("features"):
        x = b.relu(b.batchnorm(b.conv2d(x, init_features, 7, 2, 3, bias=False, name="conv0"),
                               name="norm0"), name="relu0")
        x = b.maxpool(x, 3, 2, 1, name="pool0")
        for i, layers in enumerate(block_config, start=1):
            with b.scope(f"denseblock{i}"):
                features = [x]
                for j in range(1, layers + 1):
                    features.append(_dense_layer(b, features, f"denselayer{j}", growth,
                                                 bn_size))
                x = b.concat(features, name="cat")
            if i < len(block_config):
                x = _transition(b, x, f"transition{i}")
        x = b.batchnorm(x, name="norm5")
    x = b.flatten(b.adaptive_avgpool(b.relu(x, name="relu"), 1, name="avgpool"),
                  name="flatten")
    b.linear(x, num_classes, name="classifier")
    return b.build()


# --- registry and published figures -----------------------------------------------------

MODELS: dict[str, Callable[..., ModelGraph]] = {
    "lenet5": lenet5,
    "lenet5_cifar": partial(lenet5, in_channels=3, name="lenet5_cifar"),
    "alexnet": alexnet,
    "vgg11": partial(vgg, cfg="A", name="vgg11"),
    "vgg16": partial(vgg, cfg="D", name="vgg16"),
    "vgg19": partial(vgg, cfg="E", name="vgg19"),
    "googlenet": googlenet,
    "inception_v3": inception_v3,
    "squeezenet1_0": partial(squeezenet, version="1_0"),
    "squeezenet1_1": partial(squeezenet, version="1_1"),
    "densenet121": densenet121,
}

_DOCS = 'torchvision docs, "Table of all available classification weights"'


def _ref(weights: str, params: int, gmacs: float, note: str = "") -> dict[str, object]:
    """A REFERENCE entry; ``gmacs`` is the weights' meta ``_ops`` that the docs table
    shows as GFLOPS (rounded to 2 decimals there)."""
    return {"params": params, "macs": gmacs * 1e9,
            "source": f"{_DOCS}, {weights}: {params:,} params, {gmacs:.2f} GFLOPS (meta "
                      f"_ops {gmacs}); checked against torchvision 0.29.1: instantiated "
                      f"parameters equal, FlopCounterMode MACs equal _ops{note}"}


_LENET = ("LeCun et al. 1998, Proc. IEEE 86(11), Fig. 2, as commonly reimplemented in "
          "PyTorch (tanh, avg-pool subsampling, full C3, linear output; d2l.ai LeNet); "
          "DOMAIN.md section 2: LeNet-5 ~60k")

REFERENCE: dict[str, dict[str, object]] = {
    # 156 + 2,416 + 48,120 + 10,164 + 850; no published MAC figure (416,520 by hand)
    "lenet5": {"params": 61_706, "macs": None, "source": f"{_LENET}; 61,706 params"},
    # conv1 takes 3 channels: +2*25*6 = 300 weights
    "lenet5_cifar": {"params": 62_006, "macs": None,
                     "source": f"{_LENET}, the seed's 3x32x32 variant; 62,006 params"},
    "alexnet": _ref("AlexNet_Weights.IMAGENET1K_V1", 61_100_840, 0.714),
    "vgg11": _ref("VGG11_Weights.IMAGENET1K_V1", 132_863_336, 7.609),
    "vgg16": _ref("VGG16_Weights.IMAGENET1K_V1", 138_357_544, 15.47),
    "vgg19": _ref("VGG19_Weights.IMAGENET1K_V1", 143_667_240, 19.632),
    "googlenet": _ref("GoogLeNet_Weights.IMAGENET1K_V1", 6_624_904, 1.498,
                      " (eval model without aux1/aux2)"),
    "inception_v3": _ref("Inception_V3_Weights.IMAGENET1K_V1", 27_161_264, 5.713,
                         " (the params include the AuxLogits head: 3,326,696 of them; "
                         "the _ops exclude it, since eval skips it)"),
    "squeezenet1_0": _ref("SqueezeNet1_0_Weights.IMAGENET1K_V1", 1_248_424, 0.819),
    "squeezenet1_1": _ref("SqueezeNet1_1_Weights.IMAGENET1K_V1", 1_235_496, 0.349),
    "densenet121": _ref("DenseNet121_Weights.IMAGENET1K_V1", 7_978_856, 2.834),
}
