"""DeiT Ti/S/B and their distilled variants (Touvron et al. ICML 2021, "Training
data-efficient image transformers & distillation through attention", Table 1).

DeiT is the Vision Transformer at other widths, so the graphs come from
:func:`perfmodel.zoo.vision_transformer.vision_transformer`: Ti 192 wide with 3 heads, S 384
with 6, B 768 with 12 (= ViT-B/16), all 12 layers, MLP 4 x dim, patch 16 at 224. The
reference code (facebookresearch/deit, timm ``VisionTransformer``) names modules
differently (``blocks.3.attn.qkv``) but has the same parameters and ops. The ``_distilled``
variants add the distillation token (a second learned (1, 1, dim) token, so 198 positions)
and a second head on it, whose logits are averaged with the class head's at inference (timm
``VisionTransformerDistilled``).

``REFERENCE``: parameters exact (counted by hand in the tests, equal to timm's), the
paper's rounded figure, and timm's published GMACs (one decimal, so ``macs_tolerance`` is
half a unit of it, 0.05 G).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perfmodel.graph.model_graph import ModelGraph
from perfmodel.zoo.vision_transformer import vision_transformer

__all__ = ["MODELS", "REFERENCE", "DEIT"]

# DeiT variant -> (dim, heads): Touvron et al. 2021, Table 1 (12 layers, MLP 4 x dim)
DEIT = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
_DEIT_SOURCE = ("Touvron et al. ICML 2021, Table 1 (facebookresearch/deit = timm "
                "deit_{v}{d}_patch16_224)")


def _deit(variant: str, distilled: bool = False) -> Callable[..., ModelGraph]:
    dim, heads = DEIT[variant]
    d = "_distilled" if distilled else ""
    return partial(vision_transformer, layers=12, heads=heads, dim=dim, mlp_dim=4 * dim,
                   name=f"deit_{variant}{d}", distilled=distilled, family="deit",
                   source=_DEIT_SOURCE.format(v=variant, d=d))


MODELS: dict[str, Callable[..., ModelGraph]] = {
    **{f"deit_{v}": _deit(v) for v in DEIT},
    **{f"deit_{v}_distilled": _deit(v, distilled=True) for v in DEIT},
}

_TIMM_CARD = "timm model card on the Hugging Face Hub, timm/{}.fb_in1k"


def _deit_ref(name: str, params: int, paper_m: int, card_m: float, gmacs: float,
              distilled: bool = False) -> dict[str, object]:
    """A DeiT REFERENCE entry: exact params (counted by hand = timm), the paper's rounded
    figure, and timm's published GMACs (one decimal, so ``macs_tolerance`` is 0.05 G)."""
    timm = f"{name}_patch16_224"
    paper = (f"facebookresearch/deit README model table: {paper_m}M params (Table 1's "
             "model plus the distillation token, 1 x dim, and head, dim x 1000 + 1000)"
             if distilled else f"Touvron et al. 2021, Table 1: {paper_m}M params")
    return {"params": params, "macs": gmacs * 1e9, "macs_tolerance": 0.05e9,
            "source": f"{paper}; exact {params:,} = timm {timm} ({card_m}M); MACs: "
                      f"{_TIMM_CARD.format(timm)}: {gmacs} GMACs at 224"}


REFERENCE: dict[str, dict[str, object]] = {
    "deit_tiny": _deit_ref("deit_tiny", 5_717_416, 5, 5.7, 1.3),
    "deit_small": _deit_ref("deit_small", 22_050_664, 22, 22.1, 4.6),
    "deit_base": _deit_ref("deit_base", 86_567_656, 86, 86.6, 17.6),
    "deit_tiny_distilled": _deit_ref("deit_tiny_distilled", 5_910_800, 6, 5.9, 1.3, True),
    "deit_small_distilled": _deit_ref("deit_small_distilled", 22_436_432, 22, 22.4, 4.6,
                                      True),
    "deit_base_distilled": _deit_ref("deit_base_distilled", 87_338_192, 87, 87.3, 17.7,
                                     True),
}
