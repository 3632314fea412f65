"""Hugging Face ``config.json`` -> :class:`~perfmodel.graph.shape.ModelShape` and metadata.

Maps the keys each ``transformers`` config class uses (``LlamaConfig``, ``MistralConfig``,
``MixtralConfig``, ``GPT2Config``, ``BertConfig``) onto our config format, filling in the
class defaults that ``config.json`` files may leave out. Only the standard library is used
(no ``transformers``), so the import works anywhere; the shape is validated like a YAML
config's, and ``perfmodel.zoo.load_model`` builds the graph from it.

Examples
--------
>>> from perfmodel.importers import load_hf_config            # doctest: +SKIP
>>> shape, meta = load_hf_config("Llama-2-7b-hf/config.json")  # doctest: +SKIP
>>> shape.num_hidden_layers, meta["name"]                      # doctest: +SKIP
(32, 'Llama-2-7b-hf')
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from perfmodel.errors import SpecError, did_you_mean, raise_problems
from perfmodel.graph.shape import ModelShape

__all__ = ["load_hf_config", "SUPPORTED_MODEL_TYPES"]

_MISSING = object()

# hidden_act / activation_function values -> our activation. GELU variants differ only in
# the approximation, which costs the same.
_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu", "gelu_new": "gelu",
                "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu", "relu": "relu"}

_REFERENCE_CLASSES = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                      "mixtral": "MixtralForCausalLM", "gpt2": "GPT2LMHeadModel",
                      "bert": "BertModel"}


class _Reader:
    """Takes keys from a raw config, collecting every problem instead of stopping at one."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def get(self, key: str, default: Any = _MISSING) -> Any:
        value = self.raw.get(key, default)
        if value is _MISSING:
            self.problems.append(f"{key}: missing")
        return value

    def activation(self, key: str, default: Any = _MISSING) -> str:
        act = self.get(key, default)
        if act is _MISSING:
            return "silu"
        if act not in _ACTIVATIONS:
            self.problems.append(f"{key}: activation {act!r} is not supported "
                                 f"({did_you_mean(str(act), _ACTIVATIONS)})")
            return "silu"
        return _ACTIVATIONS[act]


def _llama_like(r: _Reader) -> dict[str, Any]:
    """LlamaConfig, MistralConfig and MixtralConfig (RMSNorm, RoPE, SwiGLU, GQA)."""
    heads = r.get("num_attention_heads")
    out = {
        "architecture": "decoder", "vocab_size": r.get("vocab_size"),
        "hidden_size": r.get("hidden_size"), "intermediate_size": r.get("intermediate_size"),
        "num_hidden_layers": r.get("num_hidden_layers"), "num_attention_heads": heads,
        "num_key_value_heads": r.get("num_key_value_heads", None) or heads,
        "head_dim": r.get("head_dim", None),
        "max_position_embeddings": r.get("max_position_embeddings"),
        "position_embedding": "rope", "norm": "rmsnorm", "norm_position": "pre",
        "activation": r.activation("hidden_act", "silu"), "mlp": "gated",
        "attention_bias": r.get("attention_bias", False), "mlp_bias": r.get("mlp_bias", False),
        "tie_word_embeddings": r.get("tie_word_embeddings", False),
        "sliding_window": r.get("sliding_window", None),
    }
    if "num_local_experts" in r.raw:  # Mixtral
        out["num_local_experts"] = r.get("num_local_experts")
        out["num_experts_per_tok"] = r.get("num_experts_per_tok", 2)
    return out


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


_MAPPERS: dict[str, Callable[[_Reader], dict[str, Any]]] = {
    "llama": _llama_like, "mistral": _llama_like, "mixtral": _llama_like,
    "gpt2": _gpt2, "bert": _bert,
}
SUPPORTED_MODEL_TYPES = tuple(sorted(_MAPPERS))


def load_hf_config(path: str | os.PathLike[str], *, name: str | None = None
                   ) -> tuple[ModelShape, dict[str, Any]]:
    """Read a Hugging Face ``config.json`` (or the folder holding one): (shape, metadata).

    The metadata holds ``name``, ``family`` (the ``model_type``) and ``source``; ``name``
    defaults to the folder the file sits in (``.../Llama-2-7b-hf/config.json`` ->
    ``Llama-2-7b-hf``). Raises SpecError for a missing or malformed file, an unsupported
    ``model_type`` (naming the supported ones) or missing keys (all listed at once).
    """
    file = Path(path)
    if file.is_dir():
        file = file / "config.json"
    raw = _read_json(file)
    model_type = raw.get("model_type")
    if model_type not in _MAPPERS:
        raise SpecError(f"{file}: model_type {model_type!r} is not supported",
                        f"supported model types: {', '.join(SUPPORTED_MODEL_TYPES)}")
    reader = _Reader(raw)
    values = _MAPPERS[model_type](reader)
    raise_problems(str(file), reader.problems,
                   "use the model's original config.json from the Hugging Face Hub",
                   "Hugging Face config")
    meta = {"name": name or file.resolve().parent.name, "family": model_type,
            "source": f"Hugging Face config.json at {file} (model_type {model_type}); graph "
                      f"follows transformers {_REFERENCE_CLASSES[model_type]}"}
    shape = ModelShape.from_dict({k: v for k, v in values.items() if v is not None},
                                 where=str(file))
    return shape, meta


def _read_json(file: Path) -> dict[str, Any]:
    try:
        raw = json.loads(file.read_text())
    except FileNotFoundError:
        raise SpecError(f"no Hugging Face config at {file}",
                        "pass a config.json file or the folder that holds it") from None
    except OSError as exc:
        raise SpecError(f"cannot read {file}: {exc.strerror or exc}",
                        "check the path and its permissions") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{file}: not valid JSON: {exc}", "fix the JSON syntax") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{file}: expected a JSON object, got {type(raw).__name__}",
                        "a config.json holds one object of settings")
    return raw
