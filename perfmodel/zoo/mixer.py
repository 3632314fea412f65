"""MLP-Mixer S/16, B/16 and L/16 (Tolstikhin et al. NeurIPS 2021, "MLP-Mixer: An all-MLP
Architecture for Vision"), op by op as timm's ``mlp_mixer.py`` (``MlpMixer``, the port of
google-research/vision_transformer's Flax ``MlpMixer``).

A 16x16/16 conv embeds the 224x224 image as S = 196 tokens of C channels; each of the N
Mixer layers is a token-mixing MLP (LayerNorm, transpose, Linear S -> D_S, GELU, Linear
D_S -> S, transpose back, residual) then a channel-mixing MLP (LayerNorm, Linear C -> D_C,
GELU, Linear D_C -> C, residual); then LayerNorm, the mean over tokens and a linear head.
The transposes are views (``permute``). Scopes carry timm's names (``blocks.3.mlp_tokens.fc1``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["MODELS", "REFERENCE", "mlp_mixer", "MIXER_CONFIGS"]

# name -> (layers N, hidden C, token MLP D_S, channel MLP D_C): Tolstikhin et al. 2021,
# Table 1 (patch 16, sequence length 196 at 224x224)
MIXER_CONFIGS = {
    "mixer_s16": (8, 512, 256, 2048),
    "mixer_b16": (12, 768, 384, 3072),
    "mixer_l16": (24, 1024, 512, 4096),
}


def _mlp(b: GraphBuilder, x: Tensor, hidden: int, name: str) -> Tensor:
    """timm ``Mlp``: fc1, GELU, fc2 over the last dimension."""
    with b.scope(name):
        y = b.act(b.linear(x, hidden, name="fc1"), OpKind.GELU, name="act")
        return b.linear(y, int(x.shape[-1]), name="fc2")


def _mixer_block(b: GraphBuilder, x: Tensor, tokens_dim: int, channels_dim: int) -> Tensor:
    """``MixerBlock``: x + T(mlp_tokens(T(norm1(x)))), then x + mlp_channels(norm2(x))."""
    y = b.permute(b.layernorm(x, name="norm1"), (0, 2, 1), name="to_tokens_last")
    y = b.permute(_mlp(b, y, tokens_dim, "mlp_tokens"), (0, 2, 1), name="to_channels_last")
    x = b.add(x, y, name="add_1")
    return b.add(x, _mlp(b, b.layernorm(x, name="norm2"), channels_dim, "mlp_channels"),
                 name="add_2")


def mlp_mixer(name: str = "mixer_b16", *, num_classes: int = 1000, patch: int = 16,
              image_size: int = 224) -> ModelGraph:
    """An MLP-Mixer of ``MIXER_CONFIGS`` (the paper's Table 1) at ``image_size``."""
    layers, dim, tokens_dim, channels_dim = MIXER_CONFIGS[name]
    b = GraphBuilder(name, family="mlp_mixer", input=f"3x{image_size}x{image_size}",
                     source=f"Tolstikhin et al. 2021, Table 1; timm {name}_224",
                     default_batch=1, is_llm=False)
    x = b.input("image", (3, image_size, image_size))
    x = b.conv2d(x, dim, patch, patch, name="stem.proj")
    batch, _, gh, gw = x.shape
    seq = int(gh) * int(gw)
    x = b.permute(b.reshape(x, (batch, dim, seq), name="stem.flatten"), (0, 2, 1),
                  name="stem.to_tokens")
    for i in range(layers):
        with b.scope(f"blocks.{i}"):
            x = _mixer_block(b, x, tokens_dim, channels_dim)
    x = b.layernorm(x, name="norm")
    x = b.reshape(b.permute(x, (0, 2, 1), name="pool_view"), (batch, dim, seq, 1),
                  name="pool_grid")
    x = b.flatten(b.adaptive_avgpool(x, 1, name="global_pool"), name="flatten")  # mean(1)
    b.linear(x, num_classes, name="head")
    return b.build()


MODELS: dict[str, Callable[..., ModelGraph]] = {
    name: partial(mlp_mixer, name) for name in MIXER_CONFIGS
}

_PAPER = ("Tolstikhin et al. 2021, Table 1: {m}M params (the trunk: the table leaves out "
          "the classifier head, here C x 1000 + 1000 = {head:,})")
_CARD = ("timm model card on the Hugging Face Hub, timm/{}_224.goog_in21k_ft_in1k: {}M "
         "params, {} GMACs at 224 (timm's profile also counts the LayerNorms' elementwise "
         "work, which perfmodel counts as FLOPs, not MACs: ~0.05 G for L/16, so the check "
         "is 1 %)")


def _ref(name: str, params: int, paper_m: int, card: tuple[float, float] | None
         ) -> dict[str, object]:
    head = MIXER_CONFIGS[name][1] * 1000 + 1000
    source = _PAPER.format(m=paper_m, head=head) + f"; exact {params:,} = timm {name}_224"
    if card is None:
        return {"params": params, "macs": None, "trunk_params_m": paper_m,
                "source": source + "; no published MAC figure (timm has no weights for "
                                   "it): the test works them out by hand"}
    return {"params": params, "macs": card[1] * 1e9, "macs_tolerance": card[1] * 1e7,
            "trunk_params_m": paper_m,
            "source": source + "; MACs: " + _CARD.format(name, *card)}


REFERENCE: dict[str, dict[str, object]] = {
    "mixer_s16": _ref("mixer_s16", 18_528_264, 18, None),
    "mixer_b16": _ref("mixer_b16", 59_880_472, 59, (59.9, 12.6)),
    "mixer_l16": _ref("mixer_l16", 208_196_168, 207, (208.2, 44.6)),
}
