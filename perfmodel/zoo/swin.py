"""Swin Transformer T/S/B and Swin V2 T/S/B, op by op as torchvision's
``swin_transformer.py``.

Liu et al. ICCV 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted
Windows"; Liu et al. CVPR 2022, "Swin Transformer V2: Scaling Up Capacity and Resolution".
A 4x4/4 patch conv + LayerNorm, four stages of blocks (channels-last (B, H, W, C)) with
patch merging (2x2 neighbours concatenated, LayerNorm, linear 4C -> 2C) between them, a
final LayerNorm, global pool and a linear head. Scopes carry torchvision's module names
(``features.5.3.attn.qkv``).

Window attention is built from existing kinds, with torchvision's shapes:

* the feature map is cut into nW = (H/w)(W/w) windows of N = w*w tokens (a view); each
  window is a batch entry of an ordinary multi-head attention, so q, k, v are (B, nW*heads,
  N, d) and the scores (B, nW*heads, N, N) -- ``attn_score``, ``softmax``, ``attn_context``
  unfused, as torchvision computes them (``q.matmul(k.transpose)``, ``F.softmax``,
  ``attn.matmul(v)``);
* V1's relative position bias: the learned table ((2w-1)^2, heads) rides as the weight of
  the ``add`` that adds it to the scores (its parameters count; the gather by the constant
  ``relative_position_index`` is a view);
* V2's continuous position bias: the ``cpb_mlp`` (Linear 2 -> 512, ReLU, Linear 512 ->
  heads) runs on the constant (1, 2w-1, 2w-1, 2) coordinate table once per forward (no
  batch dimension), then a gather (``copy``), 16 * sigmoid and the add; cosine attention
  normalizes q and k (``F.normalize``, priced as an ``rmsnorm`` without weight: square, sum,
  rsqrt, scale) and scales the scores by the learned ``logit_scale`` (heads, 1, 1);
* shifted windows (odd blocks): ``torch.roll`` before and after is a ``copy`` each, and the
  shift mask is one more ``add`` on the scores. torchvision drops the shift where one
  window covers the map (stage 4 of V1 at 224: 7x7 map, 7x7 window).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import TensorSpec
from perfmodel.zoo.sources import TORCHVISION_DOCS

__all__ = ["MODELS", "REFERENCE", "swin", "SWIN_CONFIGS"]

# name -> (embed dim, depths, heads, window, V2?, resolution of torchvision's weights):
# torchvision ``swin_*`` builders (Liu et al. 2021, section 3.3: Swin-T C = 96, layers
# {2, 2, 6, 2}; S {2, 2, 18, 2}; B C = 128; window 7; V2: window 8 at 256x256).
SWIN_CONFIGS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...], int, bool, int]] = {
    "swin_t": (96, (2, 2, 6, 2), (3, 6, 12, 24), 7, False, 224),
    "swin_s": (96, (2, 2, 18, 2), (3, 6, 12, 24), 7, False, 224),
    "swin_b": (128, (2, 2, 18, 2), (4, 8, 16, 32), 7, False, 224),
    "swin_v2_t": (96, (2, 2, 6, 2), (3, 6, 12, 24), 8, True, 256),
    "swin_v2_s": (96, (2, 2, 18, 2), (3, 6, 12, 24), 8, True, 256),
    "swin_v2_b": (128, (2, 2, 18, 2), (4, 8, 16, 32), 8, True, 256),
}
_CPB_HIDDEN = 512  # V2 continuous position bias MLP width


def _position_bias(b: GraphBuilder, scores: Tensor, heads: int, window: int,
                   v2: bool) -> Tensor:
    """scores + relative position bias (V1: a learned table; V2: cpb_mlp of the constant
    log-spaced coordinate table, 16 * sigmoid)."""
    n = window * window
    span = 2 * window - 1
    if not v2:
        return b.add_op(OpKind.ADD, [scores], scores.shape, weights=[(span * span, heads)],
                        name="relative_position_bias")
    coords = Tensor(None, TensorSpec((1, span, span, 2)))  # relative_coords_table buffer
    with b.scope("cpb_mlp"):
        t = b.relu(b.linear(coords, _CPB_HIDDEN, name="0"), name="1")
        t = b.linear(t, heads, bias=False, name="2")
    bias = b.add_op(OpKind.COPY, [t], (1, heads, n, n), name="relative_position_index_gather")
    bias = b.mul(b.act(bias, OpKind.SIGMOID, name="bias_sigmoid"), name="bias_times_16")
    return b.add_op(OpKind.ADD, [scores, bias], scores.shape, name="relative_position_bias")


def _window_attention(b: GraphBuilder, x: Tensor, heads: int, window: int, shift: int,
                      v2: bool) -> Tensor:
    """``shifted_window_attention`` on x (B, H, W, C) -> (B, H, W, C)."""
    batch, h, w, _ = x.shape
    c = int(x.shape[-1])
    if int(h) % window or int(w) % window:
        raise ShapeError(f"swin: a {h}x{w} map is not a whole number of {window}x{window} "
                         "windows", "use an image size of 32 * window (224 for V1, 256 for V2)")
    nw, n, d = (int(h) // window) * (int(w) // window), window * window, c // heads
    if shift:
        x = b.add_op(OpKind.COPY, [x], x.shape, name="roll")
    x = b.reshape(x, (batch, nw, n, c), name="window_partition")
    qkv = b.linear(x, 3 * c, name="qkv")
    q, k, v = (b.reshape(b.slice(qkv, 3, c, name=f"{t}_select"), (batch, nw * heads, n, d),
                         name=t) for t in "qkv")
    if v2:  # cosine attention: F.normalize(q), F.normalize(k), times exp(logit_scale)
        q = b.add_op(OpKind.RMSNORM, [q], q.shape, name="normalize_q")
        k = b.add_op(OpKind.RMSNORM, [k], k.shape, name="normalize_k")
    else:
        q = b.mul(q, name="scale_q")  # q * head_dim ** -0.5
    scores = b.attn_score(q, k, name="scores")
    if v2:
        scores = b.mul(scores, weight=(heads, 1, 1), name="logit_scale")
    scores = _position_bias(b, scores, heads, window, v2)
    if shift:
        scores = b.add_op(OpKind.ADD, [scores], scores.shape, name="attn_mask")
    o = b.attn_context(b.softmax(scores, name="softmax"), v, name="context")
    o = b.linear(b.reshape(o, (batch, nw, n, c), name="merge_heads"), c, name="proj")
    o = b.reshape(o, (batch, h, w, c), name="window_reverse")
    return b.add_op(OpKind.COPY, [o], o.shape, name="roll_back") if shift else o


def _mlp(b: GraphBuilder, x: Tensor) -> Tensor:
    """torchvision ``ops.misc.MLP(dim, [4 dim, dim])`` with GELU."""
    dim = int(x.shape[-1])
    with b.scope("mlp"):
        y = b.dropout(b.act(b.linear(x, 4 * dim, name="0"), OpKind.GELU, name="1"), name="2")
        return b.dropout(b.linear(y, dim, name="3"), name="4")


def _block(b: GraphBuilder, x: Tensor, heads: int, window: int, shift: int,
           v2: bool) -> Tensor:
    """``SwinTransformerBlock`` (pre-norm: x + attn(norm1(x)), x + mlp(norm2(x))) or
    ``SwinTransformerBlockV2`` (res-post-norm: x + norm1(attn(x)), x + norm2(mlp(x)))."""
    if v2:
        with b.scope("attn"):
            y = _window_attention(b, x, heads, window, shift, v2)
        x = b.add(x, b.layernorm(y, name="norm1"), name="add_1")
        return b.add(x, b.layernorm(_mlp(b, x), name="norm2"), name="add_2")
    y = b.layernorm(x, name="norm1")
    with b.scope("attn"):
        y = _window_attention(b, y, heads, window, shift, v2)
    x = b.add(x, y, name="add_1")
    return b.add(x, _mlp(b, b.layernorm(x, name="norm2")), name="add_2")


def _patch_merging(b: GraphBuilder, x: Tensor, v2: bool) -> Tensor:
    """``PatchMerging`` (norm 4C, then reduction 4C -> 2C) or ``PatchMergingV2``
    (reduction, then norm 2C): the 2x2 neighbours x0..x3 are strided views, concatenated."""
    batch, h, w, c = x.shape
    parts = [b.reshape(x, (batch, int(h) // 2, int(w) // 2, c), name=f"x{i}") for i in range(4)]
    x = b.concat(parts, dim=-1, name="cat")
    if v2:
        return b.layernorm(b.linear(x, 2 * int(c), bias=False, name="reduction"), name="norm")
    return b.linear(b.layernorm(x, name="norm"), 2 * int(c), bias=False, name="reduction")


def swin(name: str = "swin_t", *, num_classes: int = 1000,
         image_size: int | None = None) -> ModelGraph:
    """A torchvision Swin Transformer (``name`` as in ``SWIN_CONFIGS``); ``image_size``
    defaults to its weights' crop (224 for V1, 256 for V2)."""
    dim, depths, heads, window, v2, native = SWIN_CONFIGS[name]
    size = image_size or native
    b = GraphBuilder(name, family="swin_v2" if v2 else "swin",
                     source=f"torchvision.models.{name}", input=f"3x{size}x{size}",
                     default_batch=1, is_llm=False)
    x = b.input("image", (3, size, size))
    with b.scope("features.0"):
        x = b.conv2d(x, dim, 4, 4, name="0")
        x = b.layernorm(b.permute(x, (0, 2, 3, 1), name="1"), name="2")
    for s, (depth, h) in enumerate(zip(depths, heads, strict=True)):
        for i in range(depth):
            # torchvision: shift w // 2 on odd blocks, dropped where one window spans the map
            shift = window // 2 if i % 2 and int(x.shape[1]) > window else 0
            with b.scope(f"features.{2 * s + 1}.{i}"):
                x = _block(b, x, h, window, shift, v2)
        if s < len(depths) - 1:
            with b.scope(f"features.{2 * s + 2}"):
                x = _patch_merging(b, x, v2)
    x = b.permute(b.layernorm(x, name="norm"), (0, 3, 1, 2), name="permute")
    x = b.flatten(b.adaptive_avgpool(x, 1, name="avgpool"), name="flatten")
    b.linear(x, num_classes, name="head")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    name: partial(swin, name) for name in SWIN_CONFIGS
}

_DOCS = TORCHVISION_DOCS
# name -> (weights, params, GFLOPS = GMACs: the weights' meta _ops, 3 decimals, at the crop)
_TV_PUBLISHED = {
    "swin_t": ("Swin_T_Weights.IMAGENET1K_V1", 28_288_354, 4.491),
    "swin_s": ("Swin_S_Weights.IMAGENET1K_V1", 49_606_258, 8.741),
    "swin_b": ("Swin_B_Weights.IMAGENET1K_V1", 87_768_224, 15.431),
    "swin_v2_t": ("Swin_V2_T_Weights.IMAGENET1K_V1", 28_351_570, 5.94),
    "swin_v2_s": ("Swin_V2_S_Weights.IMAGENET1K_V1", 49_737_442, 11.546),
    "swin_v2_b": ("Swin_V2_B_Weights.IMAGENET1K_V1", 87_930_848, 20.325),
}
REFERENCE: dict[str, dict[str, object]] = {
    name: {"params": params, "macs": gmacs * 1e9,
           "source": f"{_DOCS}, {weights}: {params:,} params, {gmacs:.2f} GFLOPS (meta _ops "
                     f"{gmacs}) at {SWIN_CONFIGS[name][5]}x{SWIN_CONFIGS[name][5]}; checked "
                     "against torchvision 0.29.1: instantiated parameters equal"}
    for name, (weights, params, gmacs) in _TV_PUBLISHED.items()
}
