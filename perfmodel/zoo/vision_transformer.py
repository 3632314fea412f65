"""Vision Transformer ViT-B/16, op by op as torchvision's ``vision_transformer.py``.

Dosovitskiy et al. 2021, "An image is worth 16x16 words": a 16x16/16 conv patchifies
the image into 196 tokens, a learned class token is prepended and a learned position
embedding added, then 12 pre-norm encoder layers (multi-head self-attention, MLP with
GELU) and a final LayerNorm; the class token's output feeds a linear head. Scopes carry
torchvision's module names (``encoder.layers.encoder_layer_3.self_attention``).

``distilled=True`` adds DeiT's distillation token and head (:mod:`perfmodel.zoo.deit`).

``REFERENCE`` holds the published size: parameters (exact) and MACs (torchvision's
"GFLOPS" column, which counts multiply-accumulates).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["MODELS", "REFERENCE", "vision_transformer"]


def _self_attention(b: GraphBuilder, x: Tensor, heads: int) -> Tensor:
    """torch ``nn.MultiheadAttention`` (self-attention, no mask), as torch computes it:
    one in-projection of 3d outputs (``in_proj_weight`` (3d, d), ``in_proj_bias`` (3d)),
    viewed as q, k, v of shape (B, H, S, d/H); fused scaled-dot-product attention;
    heads merged back and ``out_proj``."""
    batch, seq, dim = x.shape
    head_dim = int(dim) // heads
    with b.scope("self_attention"):
        qkv = b.linear(x, 3 * int(dim), name="in_proj")
        qkv = b.reshape(qkv, (batch, seq, 3, heads, head_dim), name="split_heads")
        q, k, v = (
            b.permute(b.reshape(b.slice(qkv, 2, 1, name=f"{t}_select"),
                                (batch, seq, heads, head_dim), name=f"{t}_view"),
                      (0, 2, 1, 3), name=t)
            for t in ("q", "k", "v"))
        o = b.attention(q, k, v, causal=False, name="attention")
        o = b.reshape(b.permute(o, (0, 2, 1, 3), name="merge_heads"), (batch, seq, dim),
                      name="merge_view")
        return b.linear(o, int(dim), name="out_proj")


def _encoder_block(b: GraphBuilder, x: Tensor, heads: int, mlp_dim: int) -> Tensor:
    """``EncoderBlock``: x + attn(ln_1(x)), then y + mlp(ln_2(y)) (pre-norm, eps 1e-6)."""
    dim = int(x.shape[-1])
    y = _self_attention(b, b.layernorm(x, name="ln_1"), heads)
    x = b.add(b.dropout(y, name="dropout"), x, name="add_1")
    y = b.layernorm(x, name="ln_2")
    with b.scope("mlp"):  # torchvision MLPBlock: Linear, GELU, Dropout, Linear, Dropout
        y = b.dropout(b.act(b.linear(y, mlp_dim, name="0"), OpKind.GELU, name="1"), name="2")
        y = b.dropout(b.linear(y, dim, name="3"), name="4")
    return b.add(y, x, name="add_2")


def _embed(b: GraphBuilder, x: Tensor, patch: int, dim: int, prefix: int = 1) -> Tensor:
    """``_process_input`` and the token prefix: patchify conv, flatten to (B, N, dim),
    concat the class token (and DeiT's distillation token: ``prefix`` 2), add the position
    embedding. The tokens and position embedding are parameters; they ride on the concat
    and add ops that use them (weights (1, 1, dim) each and (1, N+prefix, dim)), so they
    are counted."""
    x = b.conv2d(x, dim, patch, patch, name="conv_proj")
    batch, _, gh, gw = x.shape
    x = b.permute(b.reshape(x, (batch, dim, int(gh) * int(gw)), name="flatten_patches"),
                  (0, 2, 1), name="to_tokens")
    tokens = int(gh) * int(gw) + prefix
    x = b.add_op(OpKind.CONCAT, [x], (batch, tokens, dim), weights=[(1, 1, dim)] * prefix,
                 name="class_token", dim=1)
    with b.scope("encoder"):
        x = b.add_op(OpKind.ADD, [x], x.shape, weights=[(1, tokens, dim)],
                     name="pos_embedding")
        return b.dropout(x, name="dropout")


def vision_transformer(*, patch: int = 16, layers: int = 12, heads: int = 12,
                       dim: int = 768, mlp_dim: int = 3072, image_size: int = 224,
                       num_classes: int = 1000, name: str = "vit_b_16",
                       distilled: bool = False, family: str = "vit",
                       source: str | None = None) -> ModelGraph:
    """A torchvision ``VisionTransformer``; the defaults are ViT-B/16. ``distilled`` adds
    DeiT's distillation token and head."""
    b = GraphBuilder(name, family=family, source=source or f"torchvision.models.{name}",
                     input=f"3x{image_size}x{image_size}", default_batch=1, is_llm=False)
    x = _embed(b, b.input("image", (3, image_size, image_size)), patch, dim,
               2 if distilled else 1)
    with b.scope("encoder"):
        for i in range(layers):
            with b.scope(f"layers.encoder_layer_{i}"):
                x = _encoder_block(b, x, heads, mlp_dim)
        x = b.layernorm(x, name="ln")
    cls = b.reshape(b.slice(x, 1, 1, name="class_token_out"), (x.shape[0], dim),
                    name="class_token_view")
    logits = b.linear(cls, num_classes, name="heads.head")
    if distilled:  # timm VisionTransformerDistilled at inference: (head + head_dist) / 2
        dist = b.reshape(b.slice(x, 1, 1, name="dist_token_out"), (x.shape[0], dim),
                         name="dist_token_view")
        both = b.add(logits, b.linear(dist, num_classes, name="heads.head_dist"),
                     name="heads.sum")
        b.mul(both, name="heads.mean")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    "vit_b_16": partial(vision_transformer, name="vit_b_16"),
}

REFERENCE: dict[str, dict[str, object]] = {
    "vit_b_16": {
        "params": 86_567_656,
        "macs": 17.564e9,
        "source": ('torchvision docs, "Table of all available classification weights", '
                   "ViT_B_16_Weights.IMAGENET1K_V1: 86,567,656 params, 17.56 GFLOPS "
                   "(weights meta _ops 17.564); checked against torchvision 0.29.1: "
                   "instantiated parameters equal"),
    },
}
