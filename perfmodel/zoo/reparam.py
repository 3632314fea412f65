"""RepVGG-A0 in its train-time and deploy (re-parameterized) forms (Ding et al. CVPR 2021).

At train time each block sums three branches, 3x3 conv + BN, 1x1 conv + BN and (when the
shape is unchanged) a BN-only identity, then applies ReLU. Because each branch is linear,
they fold into one 3x3 conv with bias for deployment: the same function at a third fewer
parameters in the 1x1 and BN branches, and a plain VGG-style stack of 3x3 convs that runs
fast. Structure and names follow the official ``DingXiaoH/RepVGG`` repvgg.py
(``RepVGGBlock``: ``rbr_dense``, ``rbr_1x1``, ``rbr_identity``; deploy: ``rbr_reparam``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["MODELS", "REFERENCE", "repvgg"]

# create_RepVGG_A0: num_blocks [2, 4, 14, 1], width_multiplier [0.75, 0.75, 0.75, 2.5].
REPVGG_A0 = ((2, 4, 14, 1), (0.75, 0.75, 0.75, 2.5))


def _conv_bn(b: GraphBuilder, x: Tensor, out: int, kernel: int, stride: int,
             name: str) -> Tensor:
    """repvgg.py ``conv_bn``: conv (no bias, padding k//2) -> BN, as ``<name>.conv``/``.bn``."""
    with b.scope(name):
        x = b.conv2d(x, out, kernel, stride, kernel // 2, bias=False, name="conv")
        return b.batchnorm(x, name="bn")


def _repvgg_block(b: GraphBuilder, x: Tensor, out: int, stride: int, deploy: bool) -> Tensor:
    """``RepVGGBlock``: ReLU(3x3 conv-BN + 1x1 conv-BN [+ BN(x)]), or ReLU(3x3 conv + bias).

    Train-time params: 9*Ci*Co + Ci*Co + 4*Co (+ 2*Ci identity BN); deploy: 9*Ci*Co + Co.
    """
    if deploy:
        y = b.conv2d(x, out, 3, stride, 1, bias=True, name="rbr_reparam")
        return b.relu(y, name="nonlinearity")
    branches = [_conv_bn(b, x, out, 3, stride, "rbr_dense"),
                _conv_bn(b, x, out, 1, stride, "rbr_1x1")]
    if out == x.shape[1] and stride == 1:
        branches.append(b.batchnorm(x, name="rbr_identity"))
    return b.relu(b.add(*branches, name="add"), name="nonlinearity")


def repvgg(deploy: bool = False, *, num_classes: int = 1000,
           image_size: int = 224) -> ModelGraph:
    """RepVGG-A0 (``create_RepVGG_A0(deploy)``): 22 blocks in 5 stages, GAP, linear."""
    depths, widths = REPVGG_A0
    name = "repvgg_a0_deploy" if deploy else "repvgg_a0"
    form = "deploy" if deploy else "train-time"
    b = GraphBuilder(name, family="repvgg", input=f"3x{image_size}x{image_size}",
                     source=f"DingXiaoH/RepVGG repvgg.py create_RepVGG_A0 ({form})",
                     default_batch=1, is_llm=False)
    x = b.input("image", (3, image_size, image_size))
    with b.scope("stage0"):
        x = _repvgg_block(b, x, min(64, int(64 * widths[0])), 2, deploy)
    stages = zip(depths, (64, 128, 256, 512), widths, strict=True)
    for s, (n, base, w) in enumerate(stages, start=1):
        for i in range(n):
            with b.scope(f"stage{s}.{i}"):
                x = _repvgg_block(b, x, int(base * w), 2 if i == 0 else 1, deploy)
    x = b.flatten(b.adaptive_avgpool(x, 1, name="gap"), name="view")
    b.linear(x, num_classes, name="linear")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    "repvgg_a0": partial(repvgg, False),
    "repvgg_a0_deploy": partial(repvgg, True),
}

# Exact params come from the official repvgg.py structure (counted by instantiating it,
# and equal to timm 1.0.31 ``repvgg_a0``). The paper gives 8.30M params and 1.4 GFLOPs
# (deploy, MACs), too coarse for a 1 % check, so MACs are OpenMMLab's published figures
# (mmcls configs/repvgg README: 9.11M | 8.31M params, 1.52 | 1.36 GFLOPs train | deploy,
# counted by mmcv get_model_complexity_info, which counts MACs).
REFERENCE: dict[str, dict] = {
    "repvgg_a0": {
        "params": 9_108_968, "macs": 1.52e9,
        "source": "DingXiaoH/RepVGG repvgg.py create_RepVGG_A0(deploy=False): 9,108,968 "
                  "params (counted; = timm 1.0.31 repvgg_a0); MACs: OpenMMLab mmcls RepVGG "
                  "README, RepVGG-A0 train 9.11M params, 1.52 GFLOPs",
    },
    "repvgg_a0_deploy": {
        "params": 8_309_384, "macs": 1.36e9,
        "source": "Ding et al. CVPR 2021: RepVGG-A0 8.30M params, 1.4 GFLOPs; exact params "
                  "8,309,384 of DingXiaoH/RepVGG repvgg.py create_RepVGG_A0(deploy=True) "
                  "(counted); MACs: OpenMMLab mmcls RepVGG README, deploy 8.31M, 1.36 GFLOPs",
    },
}
