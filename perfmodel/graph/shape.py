"""ModelShape: the one record of a layered model's dimensions (transformers, today).

Every consumer reads a transformer's dimensions from here: the zoo builds the graph from it,
the Hugging Face importer produces it, and the memory, parallel (and serving) models read it
from the graph (``ModelGraph.shape``). Field names are the Hugging Face ``config.json`` keys
(``workloads/README.md`` documents each), so a config file, this record and ``to_dict()``
speak one vocabulary.

``from_dict`` reads -> checks -> freezes: every problem (unknown key with a did-you-mean,
wrong type, value not allowed, fields that disagree) is collected with its key and raised as
one SpecError naming the file, and ``num_key_value_heads`` (= heads) and ``head_dim``
(= hidden / heads) are filled in.

>>> s = ModelShape.from_dict({"architecture": "decoder", "vocab_size": 1000,
...     "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
...     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
...     "position_embedding": "rope", "norm": "rmsnorm", "norm_position": "pre",
...     "activation": "silu", "mlp": "gated"})
>>> s.head_dim, s.kv_dim, s.gated, s.is_moe
(16, 32, True, False)
>>> ModelShape.from_dict(s.to_dict()) == s
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from perfmodel.errors import did_you_mean, raise_problems

__all__ = ["ModelShape", "shape_problems", "CONTEXT_CAP"]

CONTEXT_CAP = 4096  # default_seq: max_position_embeddings, capped to keep sweeps modest
_REQUIRED = object()


@dataclass(frozen=True)
class _Field:
    """How one key is checked: its type (or allowed strings), default and minimum."""

    kind: Any  # str, int, bool, or a tuple of allowed strings
    default: Any = _REQUIRED
    minimum: int = 1


_FIELDS: dict[str, _Field] = {
    "architecture": _Field(("decoder", "encoder")),
    "vocab_size": _Field(int), "hidden_size": _Field(int), "intermediate_size": _Field(int),
    "num_hidden_layers": _Field(int), "num_attention_heads": _Field(int),
    "num_key_value_heads": _Field(int, None), "head_dim": _Field(int, None),
    "max_position_embeddings": _Field(int),
    "position_embedding": _Field(("rope", "learned", "none")),
    "type_vocab_size": _Field(int, 0, minimum=0),
    "norm": _Field(("layernorm", "rmsnorm")), "norm_position": _Field(("pre", "post")),
    "activation": _Field(("gelu", "silu", "relu")), "mlp": _Field(("gated", "plain")),
    "attention_bias": _Field(bool, False), "mlp_bias": _Field(bool, False),
    "tie_word_embeddings": _Field(bool, False),
    "num_local_experts": _Field(int, 0, minimum=0),
    "num_experts_per_tok": _Field(int, 0, minimum=0),
    "num_shared_experts": _Field(int, 0, minimum=0),
    "pooler": _Field(bool, False), "sliding_window": _Field(int, None),
}


@dataclass(frozen=True)
class ModelShape:
    """A transformer's dimensions and layer structure (keys as in ``config.json``).

    ``architecture``: ``decoder`` (causal attention, LM head, KV cache) or ``encoder``
    (bidirectional, BERT). ``mlp``: ``gated`` (SwiGLU: down(act(gate x) * up x)) or
    ``plain`` (fc2(act(fc1 x))). Mixture of experts: ``num_local_experts`` routed experts
    per layer, each token sent to ``num_experts_per_tok`` of them, plus
    ``num_shared_experts`` that every token runs (DeepSeekMoE, Dai et al. 2024, sec. 3.2).
    ``sliding_window`` is recorded but not yet priced (attention counts every causal pair).
    """

    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    max_position_embeddings: int
    position_embedding: str
    norm: str
    norm_position: str
    activation: str
    mlp: str
    type_vocab_size: int = 0
    attention_bias: bool = False
    mlp_bias: bool = False
    tie_word_embeddings: bool = False
    num_local_experts: int = 0
    num_experts_per_tok: int = 0
    num_shared_experts: int = 0
    pooler: bool = False
    sliding_window: int | None = None

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "<dict>",
                  ignore: Iterable[str] = ()) -> ModelShape:
        """Check ``data`` (e.g. parsed YAML) and freeze it; keys in ``ignore`` (a file's own
        metadata, read by its caller) are skipped. One SpecError lists every problem."""
        raise_problems(where, shape_problems(data, ignore),
                       "see workloads/README.md for the config format", "transformer config")
        values = {k: data.get(k, f.default) for k, f in _FIELDS.items()}
        heads = values["num_attention_heads"]
        values["num_key_value_heads"] = values["num_key_value_heads"] or heads
        values["head_dim"] = values["head_dim"] or values["hidden_size"] // heads
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in the file format (keys in README order; unset optionals left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @property
    def is_decoder(self) -> bool:
        return self.architecture == "decoder"

    @property
    def is_moe(self) -> bool:
        return self.num_local_experts > 0

    @property
    def gated(self) -> bool:
        return self.mlp == "gated"

    @property
    def kv_dim(self) -> int:
        """Width of one token's keys (or values) in one layer: kv heads x head_dim."""
        return self.num_key_value_heads * self.head_dim

    @property
    def gpt_like(self) -> bool:
        """Multi-head attention, a plain 4h-style MLP and no experts: the layer of Narayanan
        et al. 2021, whose eq. 3 counts the model FLOP in closed form."""
        return (not self.gated and not self.is_moe
                and self.num_key_value_heads == self.num_attention_heads)

    @property
    def default_seq(self) -> int:
        return min(self.max_position_embeddings, CONTEXT_CAP)


def shape_problems(data: Any, ignore: Iterable[str] = ()) -> list[str]:
    """Every problem in a raw shape mapping, each prefixed with its key path."""
    if not isinstance(data, Mapping):
        return [f"<top>: expected a mapping of keys to values, got {type(data).__name__}"]
    skip = set(ignore)
    problems = [f"{k}: unknown key ({did_you_mean(str(k), [*_FIELDS, *skip])})"
                for k in data if k not in _FIELDS and k not in skip]
    for key, field in _FIELDS.items():
        if key not in data:
            if field.default is _REQUIRED:
                problems.append(f"{key}: missing (required)")
            continue
        problem = _check_value(field, data[key])
        if problem:
            problems.append(f"{key}: {problem}")
    if not problems:
        problems += _cross_field_problems(data)
    return problems


def _check_value(field: _Field, value: Any) -> str | None:
    if value is None and field.default is None:
        return None
    if isinstance(field.kind, tuple):
        if value not in field.kind:
            hint = did_you_mean(str(value), field.kind)
            return f"{value!r} is not one of {', '.join(field.kind)} ({hint})"
        return None
    if field.kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < field.minimum:
            return f"must be an integer >= {field.minimum}, got {value!r}"
        return None
    if not isinstance(value, field.kind):
        return f"must be a {field.kind.__name__}, got {value!r}"
    return None


def _cross_field_problems(data: Mapping[str, Any]) -> list[str]:
    """Checks between fields: head counts divide, experts and their top-k agree."""
    out = []
    heads, hidden = data["num_attention_heads"], data["hidden_size"]
    kv = data.get("num_key_value_heads") or heads
    if heads % kv:
        out.append(f"num_key_value_heads: {kv} does not divide num_attention_heads {heads}")
    if not data.get("head_dim") and hidden % heads:
        out.append(f"num_attention_heads: {heads} does not divide hidden_size {hidden} "
                   "(give head_dim)")
    experts, top_k = data.get("num_local_experts", 0), data.get("num_experts_per_tok", 0)
    if experts and not 1 <= top_k <= experts:
        out.append(f"num_experts_per_tok: must be 1..{experts} with {experts} experts, got {top_k}")
    if top_k and not experts:
        out.append("num_experts_per_tok: set without num_local_experts")
    if data.get("num_shared_experts") and not experts:
        out.append("num_shared_experts: set without num_local_experts")
    return out
