"""Xception (Chollet CVPR 2017, "Xception: Deep Learning with Depthwise Separable
Convolutions", Fig. 5), op by op as timm's ``legacy_xception`` (Cadene's PyTorch port of
Keras ``applications.Xception``, whose weights it loads).

Entry flow: two 3x3 convs (stride 2, then 1; no padding) and three residual blocks of
ReLU-separable conv-BN pairs ending in a 3x3/2 max pool, with a 1x1/2 conv + BN shortcut;
middle flow: eight blocks of three ReLU-separable conv-BN on 728 channels with identity
shortcuts; exit flow: one more downsampling block (728 -> 1024), two separable convs (1536,
2048) with BN and ReLU, global average pool, linear classifier. A separable conv is a
depthwise 3x3 then a pointwise 1x1, both without bias. Input 299x299. Scopes carry timm's
names (``block5.rep.4.pointwise``).
"""

from __future__ import annotations

from collections.abc import Callable

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo.mobile import channels

__all__ = ["MODELS", "REFERENCE", "xception"]

# (out channels, separable convs, stride, start with ReLU, grow first) of block1..block12
_BLOCKS = ((128, 2, 2, False, True), (256, 2, 2, True, True), (728, 2, 2, True, True),
           *((728, 3, 1, True, True),) * 8, (1024, 2, 2, True, False))


def _separable(b: GraphBuilder, x: Tensor, out: int, name: str) -> Tensor:
    """``SeparableConv2d``: depthwise 3x3 (padding 1) then pointwise 1x1, no bias."""
    c = channels(x)
    with b.scope(name):
        x = b.conv2d(x, c, 3, 1, 1, groups=c, bias=False, name="conv1")
        return b.conv2d(x, out, 1, bias=False, name="pointwise")


def _block(b: GraphBuilder, x: Tensor, out: int, reps: int, stride: int, start_relu: bool,
           grow_first: bool) -> Tensor:
    """``Block``: [ReLU, separable, BN] x reps (channels grow on the first or the last),
    a 3x3/2 max pool when strided; shortcut 1x1 conv + BN when the shape changes."""
    c = channels(x)
    widths = [out] * reps if grow_first else [c] * (reps - 1) + [out]
    y, i = x, 0
    with b.scope("rep"):
        for j, w in enumerate(widths):
            if j or start_relu:
                y = b.relu(y, name=str(i))
                i += 1
            y = b.batchnorm(_separable(b, y, w, str(i)), name=str(i + 1))
            i += 2
        if stride != 1:
            y = b.maxpool(y, 3, stride, 1, name=str(i))
    skip = x
    if out != c or stride != 1:
        skip = b.batchnorm(b.conv2d(x, out, 1, stride, bias=False, name="skip"),
                           name="skipbn")
    return b.add(y, skip, name="add")


def xception(*, num_classes: int = 1000, image_size: int = 299) -> ModelGraph:
    """Xception at ``image_size`` (299 in the paper and Keras)."""
    b = GraphBuilder("xception", family="xception", input=f"3x{image_size}x{image_size}",
                     source="Chollet 2017, Fig. 5; timm legacy_xception (= Keras "
                            "applications.Xception)", default_batch=1, is_llm=False)
    x = b.input("image", (3, image_size, image_size))
    x = b.relu(b.batchnorm(b.conv2d(x, 32, 3, 2, bias=False, name="conv1"), name="bn1"),
               name="act1")
    x = b.relu(b.batchnorm(b.conv2d(x, 64, 3, bias=False, name="conv2"), name="bn2"),
               name="act2")
    for i, cfg in enumerate(_BLOCKS, start=1):
        with b.scope(f"block{i}"):
            x = _block(b, x, *cfg)
    x = b.relu(b.batchnorm(_separable(b, x, 1536, "conv3"), name="bn3"), name="act3")
    x = b.relu(b.batchnorm(_separable(b, x, 2048, "conv4"), name="bn4"), name="act4")
    x = b.flatten(b.adaptive_avgpool(x, 1, name="global_pool"), name="flatten")
    b.linear(x, num_classes, name="fc")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {"xception": xception}

REFERENCE: dict[str, dict[str, object]] = {
    "xception": {
        "params": 22_855_952, "macs": 8.4e9, "macs_tolerance": 0.05e9,
        "source": "Chollet 2017, Table 3: Xception 22,855,952 parameters (trainable); "
                  "keras.io/api/applications: Xception 22.9M parameters (Keras's total: "
                  "22,855,952 + 54,528 BatchNorm moving means and variances = 22,910,480); "
                  "MACs: timm model card on the Hugging Face Hub, timm/legacy_xception."
                  "tf_in1k: 22.9M params, 8.4 GMACs at 299",
    },
}
