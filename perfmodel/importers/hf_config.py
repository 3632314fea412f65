"""Hugging Face ``config.json`` -> :class:`~perfmodel.graph.shape.ModelShape` and metadata.

Maps the keys each ``transformers`` config class uses onto our config format, filling in
the class defaults that ``config.json`` files may leave out: Llama 1-4, Mistral, Mixtral,
Qwen2 / Qwen2-MoE / Qwen3 / Qwen3-MoE, Gemma 1-3, Phi-3, DeepSeek-V2 / V3, gpt-oss, MPT,
Falcon, Nemotron, GPT-2, BERT and T5, and the text tower of a vision-language config
(``text_config``: LLaVA, Llama 4, Gemma 3, Mistral 3). Only the standard library is used (no
``transformers``), so the import works anywhere; the shape is validated like a YAML
config's, and ``perfmodel.zoo.load_model`` builds the graph from it. Keys that change no
cost (token ids, dropout, initialisation, norm epsilon, RoPE scaling, soft-capping, ...)
are read silently; any other key we do not model is named in one warning.

Examples
--------
>>> from perfmodel.importers import load_hf_config            # doctest: +SKIP
>>> shape, meta = load_hf_config("Llama-2-7b-hf/config.json")  # doctest: +SKIP
>>> shape.num_hidden_layers, meta["name"]                      # doctest: +SKIP
(32, 'Llama-2-7b-hf')
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from perfmodel.errors import SpecError, did_you_mean, raise_problems
from perfmodel.graph.shape import ModelShape

__all__ = ["load_hf_config", "SUPPORTED_MODEL_TYPES"]

log = logging.getLogger(__name__)
_MISSING = object()

# hidden_act / activation_function values -> our activation. GELU variants differ only in
# the approximation, which costs the same.
_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu",
                "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu", "relu": "relu",
                "relu2": "relu2"}

# Keys that change no cost we model: read silently. Any key containing one of the parts.
_QUIET = {"architectures", "model_type", "torch_dtype", "dtype", "transformers_version",
          "_name_or_path", "use_cache", "auto_map", "quantization_config", "initializer_range",
          "initializer_factor", "task_specific_params", "n_ctx", "pretraining_tp",
          "use_sliding_window", "max_window_layers", "output_router_logits", "norm_topk_prob",
          "routed_scaling_factor", "scoring_func", "n_group", "topk_group", "ep_size",
          "aux_loss_alpha", "seq_aux", "is_encoder_decoder", "is_decoder", "classifier_dropout",
          "gradient_checkpointing", "position_embedding_type", "tokenizer_class", "prefix",
          "use_bfloat16", "output_past", "return_dict", "id2label", "label2id",
          "query_pre_attn_scalar", "cache_implementation", "swiglu_limit", "use_qk_norm",
          "attn_temperature_tuning", "attn_scale", "floor_scale", "for_llm_compressor",
          "no_rope_layer_interval", "router_jitter_noise", "initial_context_length",
          "experts_per_token", "use_mrope", "partial_rotary_factor",
          "original_max_position_embeddings",
          "layer_norm_type", "norm_type", "low_cpu_mem_usage", "verbose", "logit_scale",
          "rotary", "alibi", "learned_pos_emb", "attn_config", "init_config",
          "embedding_fraction", "emb_pdrop", "resid_pdrop", "fc_type", "ffn_config",
          "tie_word_embeddings", "vision_config", "image_token_index", "image_token_id",
          "boi_token_index", "eoi_token_index", "mm_tokens_per_image", "projector_hidden_act",
          "vision_feature_layer", "vision_feature_select_strategy", "image_seq_length",
          "multimodal_projector_bias", "spatial_merge_size", "text_config", "topk_method",
          "moe_layer_freq", "kv_channels", "feed_forward_proj", "dense_act_fn", "is_gated_act",
          "relative_attention_max_distance", "apply_residual_connection_post_layernorm",
          "multi_query", "new_decoder_architecture", "parallel_attn", "bias", "no_bias",
          "summary_activation", "summary_first_dropout", "summary_proj_to_labels",
          "summary_type", "summary_use_proj", "scale_attn_weights", "reorder_and_upcast_attn",
          "scale_attn_by_inverse_layer_idx", "hidden_activation", "sliding_window_pattern",
          "sliding_window_size", "tokenizer_name", "init_device"}
_QUIET_PARTS = ("token_id", "dropout", "pdrop", "eps", "epsilon", "rope", "softcapping",
                "aux_loss", "z_loss", "init_", "_std")

_REFERENCE_CLASSES = {
    "llama": "LlamaForCausalLM", "llama4_text": "Llama4ForCausalLM",
    "mistral": "MistralForCausalLM", "mixtral": "MixtralForCausalLM",
    "qwen2": "Qwen2ForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
    "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
    "gemma3_text": "Gemma3ForCausalLM",
    "phi3": "Phi3ForCausalLM", "deepseek_v2": "DeepseekV2ForCausalLM",
    "deepseek_v3": "DeepseekV3ForCausalLM", "gpt_oss": "GptOssForCausalLM",
    "mpt": "MptForCausalLM", "falcon": "FalconForCausalLM", "nemotron": "NemotronForCausalLM",
    "gpt2": "GPT2LMHeadModel", "bert": "BertModel", "t5": "T5ForConditionalGeneration",
}
# Vision-language configs whose text tower we build: model_type -> its text_config's type
# when the text_config names none (transformers' default sub-config).
_VLM_TEXT = {"llava": "llama", "llava_next": "llama", "llama4": "llama4_text",
             "gemma3": "gemma3_text", "mistral3": "mistral"}


class _Reader:
    """Takes keys from a raw config, collecting every problem instead of stopping at one,
    and remembering which keys were read."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []
        self.read: set[str] = set()

    def get(self, key: str, default: Any = _MISSING) -> Any:
        self.read.add(key)
        value = self.raw.get(key, default)
        if value is None and default is not _MISSING:
            value = default
        if value is _MISSING:
            self.problems.append(f"{key}: missing")
        return value

    def first(self, keys: tuple[str, ...], default: Any = _MISSING) -> Any:
        """The first of ``keys`` the config has (a class's attribute_map aliases)."""
        for key in keys:
            if self.raw.get(key) is not None:
                return self.get(key)
        self.read.update(keys)
        if default is _MISSING:
            self.problems.append(f"{keys[0]}: missing")
        return default

    def activation(self, key: str, default: Any = _MISSING) -> str:
        act = self.get(key, default)
        if act is _MISSING:
            return "silu"
        if act not in _ACTIVATIONS:
            self.problems.append(f"{key}: activation {act!r} is not supported "
                                 f"({did_you_mean(str(act), _ACTIVATIONS)})")
            return "silu"
        return _ACTIVATIONS[act]

    def unknown(self) -> list[str]:
        return sorted(k for k in self.raw if k not in self.read and k not in _QUIET
                      and not any(p in k for p in _QUIET_PARTS))


def _int(x: Any) -> int:
    return x if isinstance(x, int) and not isinstance(x, bool) else 0


def _decoder(r: _Reader, **defaults: Any) -> dict[str, Any]:
    """The keys LlamaConfig and its descendants share (RMSNorm, RoPE, SwiGLU, GQA);
    ``defaults`` are the config class's own defaults for keys a file may leave out."""
    d = defaults
    heads = r.get("num_attention_heads", d.get("num_attention_heads", _MISSING))
    return {
        "architecture": "decoder",
        "vocab_size": r.get("vocab_size", d.get("vocab_size", _MISSING)),
        "hidden_size": r.get("hidden_size", d.get("hidden_size", _MISSING)),
        "intermediate_size": r.get("intermediate_size", d.get("intermediate_size", _MISSING)),
        "num_hidden_layers": r.get("num_hidden_layers", d.get("num_hidden_layers", _MISSING)),
        "num_attention_heads": heads,
        "num_key_value_heads": r.get("num_key_value_heads", d.get("num_key_value_heads"))
        or heads,
        "head_dim": r.get("head_dim", d.get("head_dim")),
        "max_position_embeddings": r.get("max_position_embeddings",
                                         d.get("max_position_embeddings", _MISSING)),
        "position_embedding": "rope", "norm": "rmsnorm", "norm_position": "pre",
        "activation": r.activation("hidden_act", d.get("hidden_act", "silu")), "mlp": "gated",
        "attention_bias": r.get("attention_bias", d.get("attention_bias", False)),
        "mlp_bias": r.get("mlp_bias", False),
        "tie_word_embeddings": r.get("tie_word_embeddings", d.get("tie_word_embeddings", False)),
    }


def _llama_like(r: _Reader) -> dict[str, Any]:
    """LlamaConfig, MistralConfig (every layer sliding over ``sliding_window``), MixtralConfig
    and Phi3Config (fused qkv_proj / gate_up_proj: the same weights)."""
    out = _decoder(r) | {"sliding_window": r.get("sliding_window", None)}
    if "num_local_experts" in r.raw:  # Mixtral
        out["num_local_experts"] = r.get("num_local_experts")
        out["num_experts_per_tok"] = r.get("num_experts_per_tok", 2)
    return out


def _qwen(r: _Reader) -> dict[str, Any]:
    """Qwen2 (biases on q, k, v, not o), Qwen3 (q/k RMSNorm per head, no biases) and their
    MoE configs: ``num_experts`` of ``moe_intermediate_size``, Qwen2-MoE's gated shared
    expert, dense layers from ``decoder_sparse_step`` / ``mlp_only_layers``. A sliding
    window is used only with ``use_sliding_window``."""
    qwen3 = r.raw.get("model_type", "").startswith("qwen3")
    out = _decoder(r, attention_bias=not qwen3)
    out |= {"attention_out_bias": False, "qk_norm": qwen3}
    window = r.get("sliding_window", None)  # used only with use_sliding_window
    if r.get("use_sliding_window", False):
        out["sliding_window"] = window
    experts = _int(r.get("num_experts", 0))
    if experts:
        layers, step = _int(out["num_hidden_layers"]), _int(r.get("decoder_sparse_step", 1))
        dense = set(r.get("mlp_only_layers", []))
        out |= {"num_local_experts": experts, "num_experts_per_tok": r.get("num_experts_per_tok"),
                "moe_intermediate_size": r.get("moe_intermediate_size"),
                "mlp_layer_types": ["sparse" if i not in dense and (i + 1) % max(step, 1) == 0
                                    else "dense" for i in range(layers)]}
    shared = r.get("shared_expert_intermediate_size", 0)
    if experts and shared:
        out |= {"num_shared_experts": 1, "shared_expert_intermediate_size": shared,
                "shared_expert_gate": True}
    return out


def _llama4(r: _Reader) -> dict[str, Any]:
    """Llama4TextConfig: MoE layers every ``interleave_moe_layer_step`` (or ``moe_layers``)
    of ``intermediate_size`` experts plus one shared expert, dense layers of
    ``intermediate_size_mlp``; NoPE every 4th layer (``no_rope_layers``: 1 = RoPE), and the
    RoPE layers attend within ``attention_chunk_size`` chunks."""
    out = _decoder(r, vocab_size=202048, hidden_size=5120, intermediate_size=8192,
                   num_hidden_layers=48, num_attention_heads=40, num_key_value_heads=8,
                   head_dim=128, max_position_embeddings=4096 * 32)
    layers = _int(out["num_hidden_layers"])
    step = _int(r.get("interleave_moe_layer_step", 1)) or 1
    moe = r.get("moe_layers", None) or list(range(step - 1, layers, step))
    rope = r.get("no_rope_layers", None) or [int((i + 1) % 4 != 0) for i in range(layers)]
    chunk = r.get("attention_chunk_size", None)
    types = r.get("layer_types", None) or [
        "chunked_attention" if chunk and rope[i] else "full_attention" for i in range(layers)]
    return out | {
        "intermediate_size": r.get("intermediate_size_mlp", 16384),
        "moe_intermediate_size": out["intermediate_size"],
        "num_local_experts": r.get("num_local_experts", 16),
        "num_experts_per_tok": r.get("num_experts_per_tok", 1), "num_shared_experts": 1,
        "mlp_layer_types": ["sparse" if i in moe else "dense" for i in range(layers)],
        "no_rope_layers": rope, "attention_chunk_size": chunk, "layer_types": types,
    }


def _gemma(r: _Reader) -> dict[str, Any]:
    """GemmaConfig / Gemma2Config / Gemma3TextConfig: head_dim apart from hidden / heads,
    GELU-tanh gated MLP, embeddings scaled by sqrt(hidden) and tied; Gemma 2/3 add norms on
    the attention and MLP outputs and interleave sliding-window and global layers (Gemma 2:
    every other, from layer 0; Gemma 3: ``sliding_window_pattern`` - 1 local to 1 global,
    Gemma 3 also normalises q and k per head). Soft-capping costs nothing we count."""
    kind = r.raw.get("model_type")
    defaults = {"gemma3_text": dict(vocab_size=262208, hidden_size=2304, intermediate_size=9216,
                                    num_hidden_layers=26, num_attention_heads=8,
                                    num_key_value_heads=4, head_dim=256,
                                    max_position_embeddings=131072),
                "gemma2": dict(head_dim=256), "gemma": dict(head_dim=256)}[str(kind)]
    out = _decoder(r, tie_word_embeddings=True, **defaults)
    out |= {"activation": r.activation("hidden_activation", "gelu_pytorch_tanh"),
            "scale_embeddings": True}
    r.read.add("hidden_act")
    if kind == "gemma":
        return out
    layers = _int(out["num_hidden_layers"])
    pattern = _int(r.get("sliding_window_pattern", 6 if kind == "gemma3_text" else 2))
    default = [("sliding_attention" if (i % 2 == 0 if kind == "gemma2" else (i + 1) % pattern)
                else "full_attention") for i in range(layers)]
    return out | {"post_norms": True, "qk_norm": kind == "gemma3_text",
                  "sliding_window": r.get("sliding_window", 4096),
                  "layer_types": r.get("layer_types", None) or default}


def _deepseek(r: _Reader) -> dict[str, Any]:
    """DeepseekV2Config / DeepseekV3Config: multi-head latent attention, ``n_routed_experts``
    + ``n_shared_experts`` of ``moe_intermediate_size``, the first ``first_k_dense_replace``
    layers dense (then every ``moe_layer_freq``-th MoE). DeepSeek-V3's ``noaux_tc`` routing
    keeps a score-correction bias per expert; group-limited routing (n_group, topk_group)
    costs nothing more. The MTP module (``num_nextn_predict_layers``) is recorded, not built."""
    out = _decoder(r)
    nope, rope = r.get("qk_nope_head_dim"), r.get("qk_rope_head_dim")
    layers, first = _int(out["num_hidden_layers"]), _int(r.get("first_k_dense_replace", 0))
    freq = _int(r.get("moe_layer_freq", 1)) or 1
    out |= {"head_dim": _int(nope) + _int(rope), "q_lora_rank": r.get("q_lora_rank", None),
            "kv_lora_rank": r.get("kv_lora_rank"), "qk_nope_head_dim": nope,
            "qk_rope_head_dim": rope, "v_head_dim": r.get("v_head_dim"),
            "num_nextn_predict_layers": r.get("num_nextn_predict_layers", 0)}
    experts = _int(r.get("n_routed_experts", 0))
    if experts:
        out |= {"num_local_experts": experts, "num_experts_per_tok": r.get("num_experts_per_tok"),
                "num_shared_experts": r.get("n_shared_experts", 0),
                "moe_intermediate_size": r.get("moe_intermediate_size"),
                "router_bias": r.raw.get("topk_method") == "noaux_tc",
                "mlp_layer_types": ["sparse" if i >= first and i % freq == 0 else "dense"
                                    for i in range(layers)]}
    return out


def _gpt_oss(r: _Reader) -> dict[str, Any]:
    """GptOssConfig: every layer MoE (experts and router with biases), attention with biases
    and a learned sink per head, alternating sliding-window / full ``layer_types``."""
    out = _decoder(r, attention_bias=True)
    layers = _int(out["num_hidden_layers"])
    return out | {
        "num_local_experts": r.get("num_local_experts"),
        "num_experts_per_tok": r.first(("num_experts_per_tok", "experts_per_token")),
        "moe_intermediate_size": out["intermediate_size"], "mlp_bias": True,
        "router_bias": True, "attention_sinks": True, "sliding_window": r.get("sliding_window"),
        "layer_types": r.get("layer_types", None) or [
            "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)],
    }


def _mpt(r: _Reader) -> dict[str, Any]:
    """MptConfig: ALiBi (no position table), fused Wqkv, a plain GELU MLP of
    ``expansion_ratio`` x d_model, LayerNorm and linears without biases (``no_bias``), the
    LM head tied to the embedding."""
    d = r.get("d_model")
    return {
        "architecture": "decoder", "vocab_size": r.get("vocab_size"), "hidden_size": d,
        "intermediate_size": _int(d) * _int(r.get("expansion_ratio", 4)),
        "num_hidden_layers": r.get("n_layers"), "num_attention_heads": r.get("n_heads"),
        "max_position_embeddings": r.get("max_seq_len", 2048), "position_embedding": "alibi",
        "norm": "layernorm", "norm_position": "pre", "activation": "gelu", "mlp": "plain",
        "attention_bias": not r.get("no_bias", True), "mlp_bias": not r.get("no_bias", True),
        "norm_bias": not r.get("no_bias", True), "tie_word_embeddings": True,
    }


def _falcon(r: _Reader) -> dict[str, Any]:
    """FalconConfig: attention and MLP in parallel off one LayerNorm (two with
    ``new_decoder_architecture``), multi-query (1 KV head) or ``num_kv_heads`` groups, RoPE
    (or ALiBi), a plain GELU MLP of 4 x hidden, biases per ``bias``, LM head tied."""
    heads = r.first(("num_attention_heads", "n_head"))
    new = r.get("new_decoder_architecture", False)
    kv = r.get("num_kv_heads", heads) if new else (1 if r.get("multi_query", True) else heads)
    d = r.get("hidden_size")
    return {
        "architecture": "decoder", "vocab_size": r.get("vocab_size"), "hidden_size": d,
        "intermediate_size": r.get("ffn_hidden_size", None) or 4 * _int(d),
        "num_hidden_layers": r.first(("num_hidden_layers", "n_layer")),
        "num_attention_heads": heads, "num_key_value_heads": kv,
        "max_position_embeddings": r.get("max_position_embeddings", 2048),
        "position_embedding": "alibi" if r.get("alibi", False) else "rope",
        "norm": "layernorm", "norm_position": "pre", "activation": "gelu", "mlp": "plain",
        "attention_bias": r.get("bias", False), "mlp_bias": r.get("bias", False),
        "tie_word_embeddings": r.get("tie_word_embeddings", True),
        "parallel_attention": r.get("parallel_attn", True),
        "num_ln_in_parallel_attn": r.get("num_ln_in_parallel_attn", None) or (2 if new else 1),
    }


def _nemotron(r: _Reader) -> dict[str, Any]:
    """NemotronConfig: squared-ReLU plain MLP (up_proj, down_proj), LayerNorm1P (a LayerNorm
    with bias, computed with 1 + weight), partial RoPE (costs the same), GQA."""
    out = _decoder(r, hidden_act="relu2") | {"mlp": "plain", "norm": "layernorm"}
    return out | {"head_dim": r.first(("head_dim", "kv_channels"), None)}


def _gpt2(r: _Reader) -> dict[str, Any]:
    """GPT2Config: n_embd, n_layer, n_head, n_positions, n_inner (None = 4 * n_embd)."""
    d = r.get("n_embd")
    inner = r.get("n_inner", None)
    return {
        "architecture": "decoder", "vocab_size": r.get("vocab_size"), "hidden_size": d,
        "intermediate_size": inner or (4 * d if isinstance(d, int) else d),
        "num_hidden_layers": r.get("n_layer"), "num_attention_heads": r.get("n_head"),
        "max_position_embeddings": r.get("n_positions"), "position_embedding": "learned",
        "norm": "layernorm", "norm_position": "pre",
        "activation": r.activation("activation_function", "gelu_new"), "mlp": "plain",
        "attention_bias": True, "mlp_bias": True,
        "tie_word_embeddings": r.get("tie_word_embeddings", True),
    }


def _bert(r: _Reader) -> dict[str, Any]:
    """BertConfig, built as BertModel with its pooler (no masked-LM head)."""
    kind = r.get("position_embedding_type", "absolute")
    if kind != "absolute":
        r.problems.append(f"position_embedding_type: {kind!r} is not supported (only absolute)")
    return {
        "architecture": "encoder", "vocab_size": r.get("vocab_size"),
        "hidden_size": r.get("hidden_size"), "intermediate_size": r.get("intermediate_size"),
        "num_hidden_layers": r.get("num_hidden_layers"),
        "num_attention_heads": r.get("num_attention_heads"),
        "max_position_embeddings": r.get("max_position_embeddings"),
        "position_embedding": "learned", "type_vocab_size": r.get("type_vocab_size", 2),
        "norm": "layernorm", "norm_position": "post",
        "activation": r.activation("hidden_act", "gelu"), "mlp": "plain",
        "attention_bias": True, "mlp_bias": True, "tie_word_embeddings": False, "pooler": True,
    }


def _t5(r: _Reader) -> dict[str, Any]:
    """T5Config: encoder-decoder, RMSNorm without bias, no biases, relative position
    buckets; ``feed_forward_proj`` ``relu`` (T5) or ``gated-gelu`` (T5 v1.1, FLAN-T5)."""
    proj = str(r.get("feed_forward_proj", "relu"))
    gated = proj.startswith("gated-")
    act = proj.removeprefix("gated-")
    if act not in _ACTIVATIONS:
        r.problems.append(f"feed_forward_proj: {proj!r} is not supported")
    return {
        "architecture": "encoder-decoder", "vocab_size": r.get("vocab_size"),
        "hidden_size": r.get("d_model"), "intermediate_size": r.get("d_ff"),
        "head_dim": r.get("d_kv"), "num_hidden_layers": r.get("num_layers"),
        "num_decoder_layers": r.get("num_decoder_layers", None) or r.get("num_layers"),
        "num_attention_heads": r.get("num_heads"),
        "max_position_embeddings": r.get("n_positions", 512), "position_embedding": "relative",
        "relative_attention_num_buckets": r.get("relative_attention_num_buckets", 32),
        "norm": "rmsnorm", "norm_position": "pre", "activation": _ACTIVATIONS.get(act, "relu"),
        "mlp": "gated" if gated else "plain", "tie_word_embeddings": r.get(
            "tie_word_embeddings", True),
    }


_MAPPERS: dict[str, Callable[[_Reader], dict[str, Any]]] = {
    "llama": _llama_like, "mistral": _llama_like, "mixtral": _llama_like, "phi3": _llama_like,
    "llama4_text": _llama4, "qwen2": _qwen, "qwen2_moe": _qwen, "qwen3": _qwen,
    "qwen3_moe": _qwen, "gemma": _gemma, "gemma2": _gemma, "gemma3_text": _gemma,
    "deepseek_v2": _deepseek, "deepseek_v3": _deepseek, "gpt_oss": _gpt_oss, "mpt": _mpt,
    "falcon": _falcon, "nemotron": _nemotron, "gpt2": _gpt2, "bert": _bert, "t5": _t5,
}
SUPPORTED_MODEL_TYPES = tuple(sorted([*_MAPPERS, *_VLM_TEXT]))


def load_hf_config(path: str | os.PathLike[str], *, name: str | None = None
                   ) -> tuple[ModelShape, dict[str, Any]]:
    """Read a Hugging Face ``config.json`` (or the model folder holding one): (shape, meta).

    The metadata holds ``name``, ``family`` (the ``model_type`` built) and ``source``;
    ``name`` defaults to the last part of the config's ``_name_or_path``, else its
    ``model_type``. A vision-language config yields its text tower (``text_config``; the
    vision encoder is not built). Config keys that change a cost we do not model are named
    in one warning. Raises SpecError for a missing, empty, binary or malformed file, a folder
    without config.json, an unsupported ``model_type`` (naming the supported ones) or
    missing keys (all listed at once).
    """
    file = Path(path)
    if file.is_dir():
        if not (file / "config.json").is_file():
            raise SpecError(f"{file}: a folder with no config.json",
                            "give a Hugging Face model folder (it holds config.json) or the "
                            "config.json file itself")
        file = file / "config.json"
    top = _read_json(file)
    raw, model_type, note = _text_tower(file, top)
    reader = _Reader(raw)
    values = _MAPPERS[model_type](reader)
    raise_problems(str(file), reader.problems,
                   "use the model's original config.json from the Hugging Face Hub",
                   "Hugging Face config")
    unknown = reader.unknown()
    if unknown:
        log.warning("%s: config keys not modelled (ignored): %s", file, ", ".join(unknown))
    label = str(top.get("_name_or_path") or "").rstrip("/").split("/")[-1]
    meta = {"name": name or label or str(top.get("model_type")), "family": model_type,
            "source": f"Hugging Face config.json at {file} (model_type {top.get('model_type')}"
                      f"{note}); graph follows transformers {_REFERENCE_CLASSES[model_type]}"}
    if "tie_word_embeddings" in top and "tie_word_embeddings" not in raw:
        values["tie_word_embeddings"] = top["tie_word_embeddings"]
    shape = ModelShape.from_dict({k: v for k, v in values.items() if v is not None},
                                 where=str(file))
    return shape, meta


def _text_tower(file: Path, top: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(the config to read, its model_type, a note for the source) of a config, or of a
    vision-language config's ``text_config``; SpecError for a model_type we do not build."""
    kind = top.get("model_type")
    if kind in _VLM_TEXT or (kind not in _MAPPERS and isinstance(top.get("text_config"), dict)):
        text = dict(top.get("text_config") or {})
        text.setdefault("model_type", _VLM_TEXT.get(str(kind), ""))
        if text["model_type"] == "llama4":
            text["model_type"] = "llama4_text"
        if text["model_type"] in _MAPPERS:
            return text, text["model_type"], ", text_config only: the vision tower is not built"
        kind = text["model_type"]
    if kind == "llama4" and "text_config" not in top:
        return {**top, "model_type": "llama4_text"}, "llama4_text", ""
    if kind not in _MAPPERS:
        raise SpecError(
            f"{file}: model_type {kind!r} is not supported",
            f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}; describe any other "
            "transformer as a workloads YAML config (hidden_size, num_hidden_layers, ...; "
            "format and keys in workloads/README.md) and pass its path")
    return top, str(kind), ""


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"no Hugging Face config at {file}",
                        "pass a config.json file or the folder that holds it") from None
    except OSError as exc:
        raise SpecError(f"cannot read {file}: {exc.strerror or exc}",
                        "check the path and its permissions") from None
    if not data.strip():
        raise SpecError(f"{file}: the file is empty", "a config.json holds one JSON object")
    if b"\0" in data:
        raise SpecError(f"{file}: a binary file, not a config.json",
                        "give the model's config.json (JSON text), not a weights file")
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SpecError(f"{file}: not UTF-8 text (byte {exc.start})",
                        "config.json must be UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{file}: not valid JSON: {exc}", "fix the JSON syntax") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{file}: expected a JSON object, got {type(raw).__name__}",
                        "a config.json holds one object of settings")
    return raw
