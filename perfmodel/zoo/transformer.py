"""Transformers from declarative configs: GPT-2/3, BERT, Llama 2/3, Mistral, Mixtral.

A config (``workloads/<name>.yaml``, format in ``workloads/README.md``) names the
hyper-parameters with Hugging Face ``config.json`` keys; :func:`build_transformer` turns it
into a :class:`~perfmodel.graph.ModelGraph` that follows the Hugging Face reference
implementations op by op (``LlamaForCausalLM``, ``MistralForCausalLM``,
``MixtralForCausalLM``, ``GPT2LMHeadModel``, ``BertModel`` in ``transformers``).

One graph serves prefill, decode and training: shapes use the symbols of
:mod:`perfmodel.graph.op` (``B`` batch, ``S`` new tokens, ``T`` attended context = KV-cache
length, ``L`` tokens that need logits), which the workload layer substitutes. Decoders with
a KV cache write the ``S`` new keys/values into the cache (a ``copy`` with role ``kv`` and
attr ``inference_only=True``) and attend over a ``(B, Hkv, T, head_dim)`` view of it.

Op names inside each ``layers.{i}`` scope are the same for every family (Llama's module
names): ``input_layernorm``, ``self_attn.{q,k,v,o}_proj``, ``post_attention_layernorm``,
``mlp.{gate,up,down}_proj`` (gated) or ``mlp.fc1``/``mlp.fc2`` (plain),
``block_sparse_moe.*`` (mixture of experts). Dropout is left out: it is the identity at
inference and costs nothing in our rules.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from perfmodel.errors import UnknownNameError, did_you_mean, raise_problems
from perfmodel.files import data_dir, read_yaml
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import ModelShape, shape_problems

__all__ = ["build_transformer", "load_transformer_config", "read_transformer_config",
           "workloads_dir", "CONFIG_NAMES", "MODELS", "REFERENCE", "META_FIELDS"]

# A config file's own keys besides the shape (perfmodel.graph.shape.ModelShape): what it
# is and where its numbers come from. name, family and source are required.
META_FIELDS = ("name", "family", "source", "reference_params", "reference_params_source")
_REQUIRED_META = ("name", "family", "source")


def read_transformer_config(data: Any, *, where: str = "<dict>"
                            ) -> tuple[ModelShape, dict[str, Any]]:
    """A parsed config file as (shape, metadata); one SpecError lists every problem of both
    (unknown keys with a did-you-mean, types, values, fields that disagree)."""
    problems = shape_problems(data, ignore=META_FIELDS)
    if isinstance(data, Mapping):
        problems += [f"{k}: missing (required)" for k in _REQUIRED_META if k not in data]
        problems += [f"{k}: must be a str, got {data[k]!r}" for k in
                     (*_REQUIRED_META, "reference_params_source")
                     if data.get(k) is not None and not isinstance(data[k], str)]
        ref = data.get("reference_params")
        if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int) or ref < 1):
            problems.append(f"reference_params: must be an integer >= 1, got {ref!r}")
        if ref is not None and not data.get("reference_params_source"):
            problems.append("reference_params_source: missing (required with "
                            "reference_params)")
    raise_problems(where, problems, "see workloads/README.md for the config format",
                   "transformer config")
    meta = {k: data[k] for k in META_FIELDS if data.get(k) is not None}
    return ModelShape.from_dict(data, where=where, ignore=META_FIELDS), meta


def load_transformer_config(path: str | os.PathLike[str]) -> tuple[ModelShape, dict[str, Any]]:
    """Read, check and freeze one YAML config file: (shape, metadata); any problem raises
    SpecError naming the file."""
    return read_transformer_config(read_yaml(Path(path)), where=str(path))


# --- graph ------------------------------------------------------------------------------

def build_transformer(shape: ModelShape, name: str = "transformer", *,
                      meta: Mapping[str, Any] | None = None, fused_attention: bool = True,
                      kv_cache: bool = True) -> ModelGraph:
    """The model graph of ``shape``, following the Hugging Face reference op by op.

    ``meta`` (family, source, ...) goes to ``ModelGraph.meta`` beside what the shape implies
    (default batch and sequence, ``is_llm``); the shape itself is carried as
    ``ModelGraph.shape``. ``fused_attention`` uses one FlashAttention-style ``attention`` op
    per layer instead of ``attn_score`` -> ``softmax`` -> ``attn_context``. ``kv_cache``
    (decoders only) writes new keys/values into the cache and attends over all ``T`` cached
    positions.
    """
    c = shape
    decoder = c.is_decoder
    b = GraphBuilder(name, shape=c, **_meta(c, meta or {}))
    with b.scope("embeddings"):
        x = _embeddings(b, c)
    for i in range(c.num_hidden_layers):
        with b.scope(f"layers.{i}"):
            x = _layer(b, c, x, causal=decoder, cache=decoder and kv_cache, fused=fused_attention)
    if c.norm_position == "pre":  # pre-norm stacks end with a final norm (ln_f, model.norm)
        x = _norm(b, c, x, "norm")
    if decoder:
        x = b.slice(x, 1, "L", name="lm_head_tokens")  # only L tokens get logits
        b.linear(x, c.vocab_size, bias=False, name="lm_head", tied=c.tie_word_embeddings)
    if c.pooler:
        with b.scope("pooler"):  # BertPooler: dense + tanh on the first token
            first = b.reshape(b.slice(x, 1, 1, name="first_token"), ("B", c.hidden_size))
            b.act(b.linear(first, c.hidden_size, name="dense"), OpKind.TANH, name="activation")
    return b.build()


def _meta(c: ModelShape, given: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "family": given.get("family", ""), "source": given.get("source", ""),
        "input": f"{c.default_seq} tokens", "default_batch": 1, "default_seq": c.default_seq,
        "is_llm": c.is_decoder,
        **{k: v for k, v in given.items() if k not in ("name", "family", "source")},
    }


def _norm(b: GraphBuilder, c: ModelShape, x: Tensor, name: str) -> Tensor:
    if c.norm == "rmsnorm":
        return b.rmsnorm(x, name=name)
    return b.layernorm(x, name=name)


def _embeddings(b: GraphBuilder, c: ModelShape) -> Tensor:
    """Token (+ token-type) (+ learned position) embeddings, summed in one add.

    Positions are ``(S,)`` without a batch dim, as HF broadcasts ``position_ids``. Post-norm
    models (BERT) normalize the embeddings; pre-norm ones (GPT-2, Llama) do not.
    """
    ids = b.input("input_ids", ("S",), role="index")
    parts = [b.embedding(ids, c.vocab_size, c.hidden_size, name="word_embeddings")]
    if c.type_vocab_size:
        types = b.input("token_type_ids", ("S",), role="index")
        parts.append(b.embedding(types, c.type_vocab_size, c.hidden_size,
                                 name="token_type_embeddings"))
    if c.position_embedding == "learned":
        pos = b.input("position_ids", ("S",), batch=False, role="index")
        parts.append(b.embedding(pos, c.max_position_embeddings, c.hidden_size,
                                 name="position_embeddings"))
    x = parts[0] if len(parts) == 1 else b.add_op(OpKind.ADD, parts, parts[0].shape, name="add")
    return _norm(b, c, x, "layernorm") if c.norm_position == "post" else x


def _layer(b: GraphBuilder, c: ModelShape, x: Tensor, *, causal: bool, cache: bool,
           fused: bool) -> Tensor:
    """One block: pre-norm (GPT-2, Llama) or post-norm (BERT) residual attention + MLP."""
    ffn = _moe if c.is_moe else _mlp
    if c.norm_position == "pre":
        h = _attention(b, c, _norm(b, c, x, "input_layernorm"), causal, cache, fused)
        x = b.add(x, h, name="attn_residual")
        h = ffn(b, c, _norm(b, c, x, "post_attention_layernorm"))
        return b.add(x, h, name="mlp_residual")
    h = _attention(b, c, x, causal, cache, fused)
    x = _norm(b, c, b.add(x, h, name="attn_residual"), "post_attention_layernorm")
    h = ffn(b, c, x)
    return _norm(b, c, b.add(x, h, name="mlp_residual"), "post_mlp_layernorm")


def _attention(b: GraphBuilder, c: ModelShape, x: Tensor, causal: bool, cache: bool,
               fused: bool) -> Tensor:
    """q/k/v projections, heads view, rope, KV cache, attention, o_proj."""
    h, hkv, hd, bias = c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.attention_bias
    q = b.linear(x, h * hd, bias=bias, name="self_attn.q_proj")
    k = b.linear(x, hkv * hd, bias=bias, name="self_attn.k_proj")
    v = b.linear(x, hkv * hd, bias=bias, name="self_attn.v_proj")
    # view(B, S, heads, hd).transpose(1, 2): one zero-cost view each
    q = b.reshape(q, ("B", h, "S", hd), name="self_attn.q_heads")
    k = b.reshape(k, ("B", hkv, "S", hd), name="self_attn.k_heads")
    v = b.reshape(v, ("B", hkv, "S", hd), name="self_attn.v_heads")
    if c.position_embedding == "rope":
        q = b.rope(q, name="self_attn.q_rope")
        k = b.rope(k, name="self_attn.k_rope")
    if cache:
        k, v = _cache(b, k, "k"), _cache(b, v, "v")
    if fused:
        o = b.attention(q, k, v, causal=causal, name="self_attn.attention")
    else:
        p = b.softmax(b.attn_score(q, k, causal=causal, name="self_attn.scores"),
                      name="self_attn.softmax")
        o = b.attn_context(p, v, causal=causal, name="self_attn.context")
    o = b.reshape(o, ("B", "S", h * hd), name="self_attn.merge_heads")
    return b.linear(o, c.hidden_size, bias=bias, name="self_attn.o_proj")


def _cache(b: GraphBuilder, x: Tensor, which: str) -> Tensor:
    """Write the S new keys (values) into the cache, then view all T cached positions.

    The write is a copy kernel (HF ``past_key_values.update``) that only runs at inference;
    the view has role ``kv`` so the attention reads it at the KV-cache dtype.
    """
    written = b.add_op(OpKind.COPY, [x], x.shape, role="kv",
                       name=f"self_attn.{which}_cache_write", inference_only=True)
    bsz, heads, _, hd = x.shape
    return b.add_op(OpKind.RESHAPE, [written], (bsz, heads, "T", hd), role="kv",
                    name=f"self_attn.{which}_cache")


def _mlp(b: GraphBuilder, c: ModelShape, x: Tensor) -> Tensor:
    """Gated (LlamaMLP: down(act(gate(x)) * up(x))) or plain (GPT-2/BERT: fc2(act(fc1(x))))."""
    ff, bias = c.intermediate_size, c.mlp_bias
    if c.mlp == "gated":
        gate = b.linear(x, ff, bias=bias, name="mlp.gate_proj")
        up = b.linear(x, ff, bias=bias, name="mlp.up_proj")
        h = b.mul(b.act(gate, c.activation, name="mlp.act_fn"), up, name="mlp.mul")
        return b.linear(h, c.hidden_size, bias=bias, name="mlp.down_proj")
    h = b.act(b.linear(x, ff, bias=bias, name="mlp.fc1"), c.activation, name="mlp.act_fn")
    return b.linear(h, c.hidden_size, bias=bias, name="mlp.fc2")


def _moe(b: GraphBuilder, c: ModelShape, x: Tensor) -> Tensor:
    """MixtralSparseMoeBlock: router, top-k dispatch, expert SwiGLU (w1, w3, w2), combine.

    Each token's k routed copies form a (B, S, k, d) tensor, so expert linears do
    tokens * k * in * out MACs, k/E of running every expert on every token. Shared experts
    (``num_shared_experts``), where the shape has them, run on every token beside.
    """
    e, k, d, ff = c.num_local_experts, c.num_experts_per_tok, c.hidden_size, c.intermediate_size
    bias = c.mlp_bias
    pre = "block_sparse_moe."
    probs = b.softmax(b.linear(x, e, bias=False, name=pre + "gate"), name=pre + "routing_softmax")
    weights = b.slice(probs, 2, k, name=pre + "top_k")  # (B, S, k) routing weights
    routed = b.add_op(OpKind.COPY, [x], ("B", "S", k, d), name=pre + "dispatch")
    w1 = b.linear(routed, ff, bias=bias, experts=e, top_k=k, name=pre + "experts.w1")
    w3 = b.linear(routed, ff, bias=bias, experts=e, top_k=k, name=pre + "experts.w3")
    h = b.mul(b.act(w1, c.activation, name=pre + "experts.act_fn"), w3, name=pre + "experts.mul")
    y = b.linear(h, d, bias=bias, experts=e, top_k=k, name=pre + "experts.w2")
    y = b.mul(y, weights, name=pre + "routing_weights")
    y = b.add_op(OpKind.ADD, [y], ("B", "S", d), name=pre + "combine")
    if not c.num_shared_experts:
        return y
    # Shared experts run on every token: one SwiGLU MLP of num_shared_experts x the expert
    # width (DeepSeek-V2 modeling_deepseek.py, DeepseekV2MoE: shared_experts =
    # DeepseekV2MLP(intermediate_size = moe_intermediate_size * n_shared_experts)),
    # added to the routed output.
    ffs = ff * c.num_shared_experts
    gate = b.linear(x, ffs, bias=bias, name=pre + "shared_experts.gate_proj")
    up = b.linear(x, ffs, bias=bias, name=pre + "shared_experts.up_proj")
    h = b.mul(b.act(gate, c.activation, name=pre + "shared_experts.act_fn"), up,
              name=pre + "shared_experts.mul")
    shared = b.linear(h, d, bias=bias, name=pre + "shared_experts.down_proj")
    return b.add(y, shared, name=pre + "shared_add")


# --- registry ---------------------------------------------------------------------------

CONFIG_NAMES: tuple[str, ...] = (
    "bert-base", "bert-large", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-175b",
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b",
    "mixtral-8x7b",
)


def workloads_dir() -> Path:
    """The bundled ``workloads/`` folder: ``perfmodel/_data/workloads`` in an installed wheel,
    else ``workloads/`` at the root of the source checkout."""
    return data_dir("workloads")


@cache
def _named_config(name: str) -> tuple[ModelShape, dict[str, Any]]:
    if name not in CONFIG_NAMES:
        raise UnknownNameError(f"unknown transformer config {name!r}",
                               did_you_mean(name, CONFIG_NAMES))
    return load_transformer_config(workloads_dir() / f"{name}.yaml")


def _named_builder(name: str) -> Callable[..., ModelGraph]:
    def build(*, fused_attention: bool = True, kv_cache: bool = True) -> ModelGraph:
        shape, meta = _named_config(name)
        return build_transformer(shape, meta["name"], meta=meta, fused_attention=fused_attention,
                                 kv_cache=kv_cache)

    build.__name__ = name.replace("-", "_")
    build.__doc__ = f"Build {name} from workloads/{name}.yaml (see build_transformer)."
    return build


class _References(Mapping[str, dict[str, Any]]):
    """REFERENCE, read lazily from each config's reference_params fields."""

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in CONFIG_NAMES:
            raise KeyError(name)
        meta = _named_config(name)[1]
        return {"params": meta.get("reference_params"), "macs": None,
                "source": meta.get("reference_params_source")}

    def __iter__(self) -> Iterator[str]:
        return iter(CONFIG_NAMES)

    def __len__(self) -> int:
        return len(CONFIG_NAMES)


MODELS: dict[str, Callable[..., ModelGraph]] = {n: _named_builder(n) for n in CONFIG_NAMES}
REFERENCE: Mapping[str, dict[str, Any]] = _References()
