"""ModelShape: the one record of a layered model's dimensions (transformers, today).

Every consumer reads a transformer's dimensions from here: the zoo builds the graph from it,
the Hugging Face importer produces it, and the memory, parallel (and serving) models read it
from the graph (``ModelGraph.shape``). Field names are the Hugging Face ``config.json`` keys
(``workloads/README.md`` documents each), so a config file, this record and ``to_dict()``
speak one vocabulary.

``from_dict`` reads -> checks -> freezes: every problem (unknown key with a did-you-mean,
wrong type, value not allowed, fields that disagree) is collected with its key and raised as
one SpecError naming the file, and ``num_key_value_heads`` (= heads) and ``head_dim``
(= hidden / heads) are filled in. Per-layer lists (``layer_types``, ``mlp_layer_types``,
``no_rope_layers``) become tuples, so the record stays hashable; ``to_dict`` writes lists.

Layers may differ (``attention_type(i)``, ``is_moe_layer(i)``, ``uses_rope(i)``): sliding-
window, chunked (Llama 4) or full attention; dense or mixture-of-experts MLP; RoPE or NoPE.
``kv_cache_groups()`` is what one token adds to the KV cache, per kind of layer, for the
memory model; ``attended_pairs`` counts the query-key pairs a windowed kernel computes, and
``active_params`` the parameters one token runs through (a mixture of experts' top-k).

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
from typing import TYPE_CHECKING, Any, NamedTuple

from perfmodel.errors import did_you_mean, raise_problems

if TYPE_CHECKING:
    from perfmodel.graph.model_graph import ModelGraph

__all__ = ["ModelShape", "shape_problems", "CONTEXT_CAP", "KVGroup", "attended_pairs",
           "active_params", "LAYER_TYPES", "MLP_LAYER_TYPES"]

CONTEXT_CAP = 4096  # default_seq: max_position_embeddings, capped to keep sweeps modest
_REQUIRED = object()


@dataclass(frozen=True)
class _Field:
    """How one key is checked: its type (or allowed strings), default and minimum."""

    kind: Any  # str, int, bool, list, or a tuple of allowed strings
    default: Any = _REQUIRED
    minimum: int = 1
    items: tuple[Any, ...] = ()  # a list's allowed entries


LAYER_TYPES = ("full_attention", "sliding_attention", "chunked_attention")
MLP_LAYER_TYPES = ("dense", "sparse")


_FIELDS: dict[str, _Field] = {
    "architecture": _Field(("decoder", "encoder", "encoder-decoder")),
    "vocab_size": _Field(int), "hidden_size": _Field(int), "intermediate_size": _Field(int),
    "num_hidden_layers": _Field(int), "num_attention_heads": _Field(int),
    "num_key_value_heads": _Field(int, None), "head_dim": _Field(int, None),
    "max_position_embeddings": _Field(int),
    "position_embedding": _Field(("rope", "learned", "alibi", "relative", "none")),
    "type_vocab_size": _Field(int, 0, minimum=0),
    "norm": _Field(("layernorm", "rmsnorm")), "norm_position": _Field(("pre", "post")),
    "activation": _Field(("gelu", "silu", "relu", "relu2")), "mlp": _Field(("gated", "plain")),
    "attention_bias": _Field(bool, False), "mlp_bias": _Field(bool, False),
    "tie_word_embeddings": _Field(bool, False),
    "num_local_experts": _Field(int, 0, minimum=0),
    "num_experts_per_tok": _Field(int, 0, minimum=0),
    "num_shared_experts": _Field(int, 0, minimum=0),
    "pooler": _Field(bool, False), "sliding_window": _Field(int, None),
}
# Added with the families beyond Llama / GPT-2 / BERT; to_dict leaves them out at their
# default, so the files written before them read and round-trip unchanged.
_EXTRA_FIELDS: dict[str, _Field] = {
    "attention_out_bias": _Field(bool, None),
    "norm_bias": _Field(bool, True), "qk_norm": _Field(bool, False),
    "post_norms": _Field(bool, False), "scale_embeddings": _Field(bool, False),
    "parallel_attention": _Field(bool, False), "num_ln_in_parallel_attn": _Field(int, 1),
    "layer_types": _Field(list, None, items=LAYER_TYPES),
    "attention_chunk_size": _Field(int, None),
    "no_rope_layers": _Field(list, None, items=(0, 1)),
    "attention_sinks": _Field(bool, False),
    "moe_intermediate_size": _Field(int, None),
    "shared_expert_intermediate_size": _Field(int, None),
    "shared_expert_gate": _Field(bool, False), "router_bias": _Field(bool, False),
    "mlp_layer_types": _Field(list, None, items=MLP_LAYER_TYPES),
    "q_lora_rank": _Field(int, None), "kv_lora_rank": _Field(int, None),
    "qk_nope_head_dim": _Field(int, None), "qk_rope_head_dim": _Field(int, None),
    "v_head_dim": _Field(int, None), "num_nextn_predict_layers": _Field(int, 0, minimum=0),
    "num_decoder_layers": _Field(int, None),
    "relative_attention_num_buckets": _Field(int, None),
}
_FIELDS |= _EXTRA_FIELDS
_LISTS = tuple(k for k, f in _FIELDS.items() if f.kind is list)


class KVGroup(NamedTuple):
    """Layers that cache alike: how many, elements one token adds per layer, the most
    tokens a layer keeps (a sliding window or an attention chunk; None = every token), and
    whether the elements are KV heads that tensor parallelism splits (MLA's latent is
    replicated on every rank instead)."""

    layers: int
    elements: int
    span: int | None
    heads: int | None


@dataclass(frozen=True)
class ModelShape:
    """A transformer's dimensions and layer structure (keys as in ``config.json``).

    ``architecture``: ``decoder`` (causal attention, LM head, KV cache), ``encoder``
    (bidirectional, BERT) or ``encoder-decoder`` (T5: ``num_hidden_layers`` encoder blocks,
    ``num_decoder_layers`` decoder blocks with cross-attention). ``mlp``: ``gated`` (SwiGLU:
    down(act(gate x) * up x)) or ``plain`` (fc2(act(fc1 x))). Mixture of experts:
    ``num_local_experts`` routed experts of ``moe_intermediate_size`` (default: the
    intermediate size) per MoE layer, each token sent to ``num_experts_per_tok`` of them, plus
    ``num_shared_experts`` that every token runs (DeepSeekMoE, Dai et al. 2024, sec. 3.2), of
    ``shared_expert_intermediate_size`` in all (default: that many experts' width); which
    layers are MoE is ``mlp_layer_types`` (``dense`` / ``sparse``; default all sparse).
    Attention per layer: ``layer_types`` (``full_attention``, ``sliding_attention`` over the
    last ``sliding_window`` tokens, ``chunked_attention`` within ``attention_chunk_size``
    blocks); without it every layer is sliding when ``sliding_window`` is set (Mistral v0.1).
    Multi-head latent attention (DeepSeek-V2/V3) is set by ``kv_lora_rank``.
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
    attention_out_bias: bool | None = None
    norm_bias: bool = True
    qk_norm: bool = False
    post_norms: bool = False
    scale_embeddings: bool = False
    parallel_attention: bool = False
    num_ln_in_parallel_attn: int = 1
    layer_types: tuple[str, ...] | None = None
    attention_chunk_size: int | None = None
    no_rope_layers: tuple[int, ...] | None = None
    attention_sinks: bool = False
    moe_intermediate_size: int | None = None
    shared_expert_intermediate_size: int | None = None
    shared_expert_gate: bool = False
    router_bias: bool = False
    mlp_layer_types: tuple[str, ...] | None = None
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None
    num_nextn_predict_layers: int = 0
    num_decoder_layers: int | None = None
    relative_attention_num_buckets: int | None = None

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
        for key in _LISTS:
            if values[key] is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in the file format (keys in README order; unset optionals left out,
        and the later fields at their default too)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name in _EXTRA_FIELDS
                                 and value == _EXTRA_FIELDS[f.name].default):
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @property
    def is_decoder(self) -> bool:
        return self.architecture == "decoder"

    @property
    def is_moe(self) -> bool:
        return self.num_local_experts > 0

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention (DeepSeek-V2, Liu et al. 2024, sec. 2.1)."""
        return self.kv_lora_rank is not None

    @property
    def gated(self) -> bool:
        return self.mlp == "gated"

    @property
    def kv_dim(self) -> int:
        """Width of one token's keys (or values) in one layer: kv heads x head_dim."""
        return self.num_key_value_heads * self.head_dim

    @property
    def expert_size(self) -> int:
        """One routed expert's intermediate width."""
        return self.moe_intermediate_size or self.intermediate_size

    @property
    def shared_expert_size(self) -> int:
        """The shared experts' intermediate width in all (0 without them)."""
        if self.shared_expert_intermediate_size:
            return self.shared_expert_intermediate_size
        return self.num_shared_experts * self.expert_size

    @property
    def gpt_like(self) -> bool:
        """Multi-head attention, a plain 4h-style MLP and no experts: the layer of Narayanan
        et al. 2021, whose eq. 3 counts the model FLOP in closed form."""
        return (not self.gated and not self.is_moe and not self.is_mla
                and self.num_key_value_heads == self.num_attention_heads)

    @property
    def default_seq(self) -> int:
        return min(self.max_position_embeddings, CONTEXT_CAP)

    # --- per layer ----------------------------------------------------------------------
    def attention_type(self, layer: int) -> str:
        """``full_attention``, ``sliding_attention`` or ``chunked_attention``."""
        if self.layer_types is not None:
            return self.layer_types[layer]
        return "sliding_attention" if self.sliding_window else "full_attention"

    def attention_span(self, layer: int) -> int | None:
        """The most keys a query of this layer attends to (and the cache keeps)."""
        kind = self.attention_type(layer)
        if kind == "sliding_attention":
            return self.sliding_window
        return self.attention_chunk_size if kind == "chunked_attention" else None

    def uses_rope(self, layer: int) -> bool:
        """RoPE on this layer's q and k (Llama 4's NoPE layers have none)."""
        if self.position_embedding != "rope":
            return False
        return self.no_rope_layers is None or bool(self.no_rope_layers[layer])

    def is_moe_layer(self, layer: int) -> bool:
        if not self.is_moe:
            return False
        return self.mlp_layer_types is None or self.mlp_layer_types[layer] == "sparse"

    def kv_cache_groups(self) -> tuple[KVGroup, ...]:
        """What one token adds to the KV cache, by kind of layer (encoders: nothing).

        GQA / MQA: keys and values, 2 x kv heads x head_dim per layer; MLA: the compressed
        latent and the shared RoPE key, kv_lora_rank + qk_rope_head_dim (DeepSeek-V2 sec.
        2.1.2, Table 1). Sliding-window layers keep at most the window, chunked layers the
        chunk.
        """
        if not self.is_decoder:
            return ()
        if self.is_mla:
            width, heads = (self.kv_lora_rank or 0) + (self.qk_rope_head_dim or 0), None
        else:
            width, heads = 2 * self.kv_dim, self.num_key_value_heads
        spans = [self.attention_span(i) for i in range(self.num_hidden_layers)]
        return tuple(KVGroup(spans.count(s), width, s, heads) for s in dict.fromkeys(spans))

    def kv_elements_per_token(self) -> int:
        """KV-cache elements one token adds over all layers, within every window."""
        return sum(g.layers * g.elements for g in self.kv_cache_groups())


def attended_pairs(queries: float, context: float, *, causal: bool,
                   window: int | None = None, chunk: int | None = None) -> float:
    """Query-key pairs one head computes: ``queries`` new tokens at the end of ``context``.

    Causal: query i (at position T-Q+i) sees T-Q+i+1 keys, in all Q*T - Q(Q-1)/2 pairs; a
    sliding window W caps each at W keys (Mistral, Jiang et al. 2023, sec. 2); chunked
    attention C (Llama 4) sees only its own chunk, (position mod C) + 1 keys. Non-causal:
    Q*T.

    >>> attended_pairs(4, 4, causal=True), attended_pairs(4, 4, causal=True, window=2)
    (10.0, 7.0)
    >>> attended_pairs(1, 10, causal=True, chunk=4)   # position 9 is 2nd of its chunk
    2.0
    """
    if not causal or queries > context:
        return float(queries * context)
    first = context - queries + 1  # keys seen by the first new query (unwindowed)
    if chunk:
        return float(_chunk_sum(context, chunk) - _chunk_sum(first - 1, chunk))
    if window and context > window:
        if first >= window:
            return float(queries * window)
        return float((first + window) * (window - first + 1) / 2 + (context - window) * window)
    return float(queries * context - queries * (queries - 1) / 2)


def _chunk_sum(n: float, chunk: int) -> float:
    """Sum over positions 1..n of ((x - 1) mod chunk) + 1."""
    full, rest = divmod(int(n), chunk)
    return full * chunk * (chunk + 1) / 2 + rest * (rest + 1) / 2


def active_params(graph: ModelGraph) -> int:
    """Parameters one token runs through: every weight, but of a mixture-of-experts linear
    only its top-k of E experts (Mixtral's "12.9B active of 46.7B", Jiang et al. 2024).
    The embedding table counts in full, as the Mixtral, Qwen and DeepSeek cards count it
    (gpt-oss's card leaves it out: its active figure is ours minus the embedding)."""
    total = 0.0
    for op in graph.ops:
        if op.tied:
            continue
        n = sum(w.numel for w in op.weights)
        experts = op.attr("experts", 0)
        total += n * op.attr("top_k", 1) / experts if experts else n
    return round(total)


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
    if field.kind is list:
        if not isinstance(value, list | tuple):
            return f"must be a list, got {value!r}"
        bad = [v for v in value if v not in field.items or isinstance(v, bool)]
        if bad:
            return (f"{bad[0]!r} is not one of {', '.join(map(str, field.items))} "
                    f"({did_you_mean(str(bad[0]), [str(i) for i in field.items])})")
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
    for key in ("num_shared_experts", "moe_intermediate_size", "mlp_layer_types",
                "shared_expert_intermediate_size"):
        if data.get(key) and not experts:
            out.append(f"{key}: set without num_local_experts")
    return out + _layer_problems(data) + _mla_problems(data)


def _layer_problems(data: Mapping[str, Any]) -> list[str]:
    """Per-layer lists have one entry a layer; the attention kinds they name are sized."""
    out = []
    layers = data["num_hidden_layers"]
    for key in _LISTS:
        value = data.get(key)
        if value is not None and len(value) != layers:
            out.append(f"{key}: {len(value)} entries for {layers} layers")
    kinds = set(data.get("layer_types") or ())
    if "sliding_attention" in kinds and not data.get("sliding_window"):
        out.append("layer_types: sliding_attention layers need sliding_window")
    if "chunked_attention" in kinds and not data.get("attention_chunk_size"):
        out.append("layer_types: chunked_attention layers need attention_chunk_size")
    return out


def _mla_problems(data: Mapping[str, Any]) -> list[str]:
    """Multi-head latent attention needs its head widths; encoders have no KV cache."""
    mla = ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
    if data.get("kv_lora_rank") is None:
        return [f"{k}: set without kv_lora_rank" for k in (*mla, "q_lora_rank") if data.get(k)]
    return [f"{k}: missing (required with kv_lora_rank)" for k in mla if not data.get(k)]
