"""Transformers from declarative configs: GPT-2/3, BERT, T5, Llama 1-4, Mistral, Mixtral,
Qwen2/3 (and MoE), Gemma 1-3, Phi-3, DeepSeek-V2/V3, gpt-oss, MPT, Falcon, Nemotron.

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
from dataclasses import dataclass
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
    positions (multi-head latent attention then runs in its absorbed form over the cached
    latent, DeepSeek-V2 sec. 2.1.2). DeepSeek-V3's multi-token-prediction module
    (``num_nextn_predict_layers``) is not built: it is not used for plain decoding.
    """
    c = shape
    if c.architecture == "encoder-decoder":
        return _build_seq2seq(c, name, meta or {}, fused_attention)
    decoder = c.is_decoder
    b = GraphBuilder(name, shape=c, **_meta(c, meta or {}))
    with b.scope("embeddings"):
        x = _embeddings(b, c)
    ctx = _Ctx(causal=decoder, cache=decoder and kv_cache, fused=fused_attention)
    for i in range(c.num_hidden_layers):
        with b.scope(f"layers.{i}"):
            x = _layer(b, c, i, x, ctx)
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


@dataclass(frozen=True)
class _Ctx:
    """How attention runs in this graph: causal, through a KV cache, fused."""

    causal: bool
    cache: bool
    fused: bool


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
    return b.layernorm(x, bias=c.norm_bias, name=name)


def _embeddings(b: GraphBuilder, c: ModelShape) -> Tensor:
    """Token (+ token-type) (+ learned position) embeddings, summed in one add.

    Positions are ``(S,)`` without a batch dim, as HF broadcasts ``position_ids``. Post-norm
    models (BERT) normalize the embeddings; pre-norm ones (GPT-2, Llama) do not. Gemma
    scales the embeddings by sqrt(hidden) (``scale_embeddings``).
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
    if c.scale_embeddings:
        x = b.mul(x, name="scale")
    return _norm(b, c, x, "layernorm") if c.norm_position == "post" else x


def _layer(b: GraphBuilder, c: ModelShape, i: int, x: Tensor, ctx: _Ctx) -> Tensor:
    """One block: pre-norm (GPT-2, Llama), with norms on the sublayer outputs too (Gemma 2/3),
    parallel attention and MLP (Falcon, GPT-J style), or post-norm (BERT)."""
    ffn = _moe if c.is_moe_layer(i) else _mlp
    attn = _mla if c.is_mla else _attention
    if c.norm_position == "post":
        h = attn(b, c, i, x, ctx)
        x = _norm(b, c, b.add(x, h, name="attn_residual"), "post_attention_layernorm")
        h = ffn(b, c, x)
        return _norm(b, c, b.add(x, h, name="mlp_residual"), "post_mlp_layernorm")
    if c.parallel_attention:  # x + attn(ln(x)) + mlp(ln(x)); new Falcon: a norm for each
        h = _norm(b, c, x, "input_layernorm")
        m = _norm(b, c, x, "mlp_layernorm") if c.num_ln_in_parallel_attn == 2 else h
        return b.add(x, attn(b, c, i, h, ctx), ffn(b, c, m), name="residual")
    h = attn(b, c, i, _norm(b, c, x, "input_layernorm"), ctx)
    if c.post_norms:
        h = _norm(b, c, h, "post_attention_layernorm")
    x = b.add(x, h, name="attn_residual")
    h = ffn(b, c, _norm(b, c, x, "pre_feedforward_layernorm" if c.post_norms
                        else "post_attention_layernorm"))
    if c.post_norms:
        h = _norm(b, c, h, "post_feedforward_layernorm")
    return b.add(x, h, name="mlp_residual")


def _attention(b: GraphBuilder, c: ModelShape, i: int, x: Tensor, ctx: _Ctx) -> Tensor:
    """q/k/v projections, heads view, q/k norms, rope, KV cache, attention, o_proj."""
    h, hkv, hd, bias = c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.attention_bias
    q = b.linear(x, h * hd, bias=bias, name="self_attn.q_proj")
    k = b.linear(x, hkv * hd, bias=bias, name="self_attn.k_proj")
    v = b.linear(x, hkv * hd, bias=bias, name="self_attn.v_proj")
    # view(B, S, heads, hd).transpose(1, 2): one zero-cost view each
    q = b.reshape(q, ("B", h, "S", hd), name="self_attn.q_heads")
    k = b.reshape(k, ("B", hkv, "S", hd), name="self_attn.k_heads")
    v = b.reshape(v, ("B", hkv, "S", hd), name="self_attn.v_heads")
    if c.qk_norm:  # Qwen3, Gemma 3: RMSNorm over each head's head_dim (q_norm, k_norm)
        q, k = b.rmsnorm(q, name="self_attn.q_norm"), b.rmsnorm(k, name="self_attn.k_norm")
    if c.uses_rope(i):
        q = b.rope(q, name="self_attn.q_rope")
        k = b.rope(k, name="self_attn.k_rope")
    if ctx.cache:
        k, v = _cache(b, k, "k"), _cache(b, v, "v")
    o = _attend(b, c, i, q, k, v, ctx, (h, hd))
    o = b.reshape(o, ("B", "S", h * hd), name="self_attn.merge_heads")
    out_bias = bias if c.attention_out_bias is None else c.attention_out_bias
    return b.linear(o, c.hidden_size, bias=out_bias, name="self_attn.o_proj")


def _attend(b: GraphBuilder, c: ModelShape, i: int, q: Tensor, k: Tensor, v: Tensor,
            ctx: _Ctx, out: tuple[int, int]) -> Tensor:
    """Attention over the layer's span: ``window`` (sliding) or ``chunk`` (chunked) attrs
    (perfmodel.graph.shape.attended_pairs counts the pairs). gpt-oss's attention sinks, one
    learned logit per head (``sinks``), are the fused op's weights."""
    kind = c.attention_type(i)
    span: dict[str, Any] = {"window": c.sliding_window} if kind == "sliding_attention" else (
        {"chunk": c.attention_chunk_size} if kind == "chunked_attention" else {})
    shape = ("B", out[0], "S", out[1])
    sinks = [(c.num_attention_heads,)] if c.attention_sinks else []
    if ctx.fused:
        return b.add_op(OpKind.ATTENTION, [q, k, v], shape, weights=sinks,
                        name="self_attn.attention", causal=ctx.causal, **span)
    p = b.add_op(OpKind.ATTN_SCORE, [q, k], ("B", out[0], "S", k.shape[2]), weights=sinks,
                 name="self_attn.scores", causal=ctx.causal, **span)
    p = b.softmax(p, name="self_attn.softmax")
    return b.add_op(OpKind.ATTN_CONTEXT, [p, v], shape, name="self_attn.context",
                    causal=ctx.causal, **span)


def _mla(b: GraphBuilder, c: ModelShape, i: int, x: Tensor, ctx: _Ctx) -> Tensor:
    """Multi-head latent attention (DeepseekV3Attention): q through a low-rank q_a -> norm ->
    q_b (or one q_proj), keys and values from a compressed latent (kv_a_proj_with_mqa ->
    kv_a_layernorm) and a shared RoPE key.

    With a KV cache the latent (kv_lora_rank + qk_rope_head_dim per token) is what is
    cached, and attention runs absorbed (DeepSeek-V2 sec. 2.1.2): kv_b_proj's key half turns
    each head's q_nope into latent space, every head attends over the one cached latent, and
    its value half maps the result back to v_head_dim. Without a cache kv_b_proj decompresses
    per-head keys and values, as the reference does. Same weights either way.
    """
    h, r = c.num_attention_heads, c.kv_lora_rank or 0
    nope, rope, vd = c.qk_nope_head_dim or 0, c.qk_rope_head_dim or 0, c.v_head_dim or 0
    pre, bias = "self_attn.", c.attention_bias
    if c.q_lora_rank:
        q = b.linear(x, c.q_lora_rank, bias=bias, name=pre + "q_a_proj")
        q = b.linear(b.rmsnorm(q, name=pre + "q_a_layernorm"), h * (nope + rope), bias=False,
                     name=pre + "q_b_proj")
    else:
        q = b.linear(x, h * (nope + rope), bias=False, name=pre + "q_proj")
    q = b.reshape(q, ("B", h, "S", nope + rope), name=pre + "q_heads")
    q_nope, q_pe = b.slice(q, 3, nope, name=pre + "q_nope"), b.slice(q, 3, rope, name=pre + "q_pe")
    q_pe = b.rope(q_pe, name=pre + "q_rope")
    kv = b.linear(x, r + rope, bias=bias, name=pre + "kv_a_proj_with_mqa")
    latent = b.rmsnorm(b.slice(kv, 2, r, name=pre + "compressed_kv"), name=pre + "kv_a_layernorm")
    k_pe = b.rope(b.reshape(b.slice(kv, 2, rope, name=pre + "k_pe"), ("B", 1, "S", rope)),
                  name=pre + "k_rope")
    if ctx.cache:
        cached = b.concat([b.reshape(latent, ("B", 1, "S", r)), k_pe], dim=3,
                          name=pre + "latent")
        keys = _cache(b, cached, "latent")
        values = b.slice(keys, 3, r, name=pre + "latent_values")
        q_lat = b.add_op(OpKind.MATMUL, [q_nope], ("B", h, "S", r), weights=[(h, nope, r)],
                         name=pre + "kv_b_proj.k_absorb")  # kv_b_proj's key half
        q = b.concat([q_lat, q_pe], dim=3, name=pre + "q_absorbed")
        o = _attend(b, c, i, q, keys, values, ctx, (h, r))
        o = b.add_op(OpKind.MATMUL, [o], ("B", h, "S", vd), weights=[(h, r, vd)],
                     name=pre + "kv_b_proj.v_absorb")  # kv_b_proj's value half
    else:
        kv = b.reshape(b.linear(latent, h * (nope + vd), bias=False, name=pre + "kv_b_proj"),
                       ("B", h, "S", nope + vd), name=pre + "kv_heads")
        k = b.concat([b.slice(kv, 3, nope, name=pre + "k_nope"),
                      b.reshape(k_pe, ("B", h, "S", rope), name=pre + "k_pe_heads")], dim=3,
                     name=pre + "k")
        v = b.slice(kv, 3, vd, name=pre + "v")
        o = _attend(b, c, i, b.concat([q_nope, q_pe], dim=3, name=pre + "q"), k, v, ctx,
                    (h, vd))
    o = b.reshape(o, ("B", "S", h * vd), name=pre + "merge_heads")
    return b.linear(o, c.hidden_size, bias=bias, name=pre + "o_proj")


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


def _act(b: GraphBuilder, c: ModelShape, x: Tensor, name: str) -> Tensor:
    """The MLP activation; relu2 (Nemotron) is relu(x) squared."""
    if c.activation == "relu2":
        y = b.act(x, OpKind.RELU, name=name)
        return b.mul(y, y, name=name + "_square")
    return b.act(x, c.activation, name=name)


def _mlp(b: GraphBuilder, c: ModelShape, x: Tensor, pre: str = "mlp.",
         width: int | None = None) -> Tensor:
    """Gated (LlamaMLP: down(act(gate(x)) * up(x))) or plain (GPT-2/BERT: fc2(act(fc1(x))),
    Nemotron: down(relu(up(x))^2))."""
    ff, bias = width or c.intermediate_size, c.mlp_bias
    if c.mlp == "gated":
        gate = b.linear(x, ff, bias=bias, name=pre + "gate_proj")
        up = b.linear(x, ff, bias=bias, name=pre + "up_proj")
        h = b.mul(_act(b, c, gate, pre + "act_fn"), up, name=pre + "mul")
        return b.linear(h, c.hidden_size, bias=bias, name=pre + "down_proj")
    h = _act(b, c, b.linear(x, ff, bias=bias, name=pre + "fc1"), pre + "act_fn")
    return b.linear(h, c.hidden_size, bias=bias, name=pre + "fc2")


def _moe(b: GraphBuilder, c: ModelShape, x: Tensor) -> Tensor:
    """MixtralSparseMoeBlock: router, top-k dispatch, expert SwiGLU (w1, w3, w2), combine.

    Each token's k routed copies form a (B, S, k, d) tensor, so expert linears do
    tokens * k * in * out MACs, k/E of running every expert on every token. Experts are
    ``moe_intermediate_size`` wide; the router has a bias where ``router_bias`` (gpt-oss;
    DeepSeek-V3's score-correction bias). Shared experts run on every token beside, one
    gated MLP of ``shared_expert_size`` (DeepSeek-V2 modeling_deepseek.py, DeepseekV2MoE:
    shared_experts = DeepseekV2MLP(moe_intermediate_size * n_shared_experts); Qwen2-MoE's
    shared_expert, scaled by a sigmoid gate, ``shared_expert_gate``).
    """
    e, k, d, ff = c.num_local_experts, c.num_experts_per_tok, c.hidden_size, c.expert_size
    bias = c.mlp_bias
    pre = "block_sparse_moe."
    probs = b.softmax(b.linear(x, e, bias=c.router_bias, name=pre + "gate"),
                      name=pre + "routing_softmax")
    weights = b.slice(probs, 2, k, name=pre + "top_k")  # (B, S, k) routing weights
    routed = b.add_op(OpKind.COPY, [x], ("B", "S", k, d), name=pre + "dispatch")
    w1 = b.linear(routed, ff, bias=bias, experts=e, top_k=k, name=pre + "experts.w1")
    w3 = b.linear(routed, ff, bias=bias, experts=e, top_k=k, name=pre + "experts.w3")
    h = b.mul(_act(b, c, w1, pre + "experts.act_fn"), w3, name=pre + "experts.mul")
    y = b.linear(h, d, bias=bias, experts=e, top_k=k, name=pre + "experts.w2")
    y = b.mul(y, weights, name=pre + "routing_weights")
    y = b.add_op(OpKind.ADD, [y], ("B", "S", d), name=pre + "combine")
    if not c.shared_expert_size:
        return y
    shared = _mlp(b, c, x, pre + "shared_experts.", c.shared_expert_size)
    if c.shared_expert_gate:  # Qwen2MoeSparseMoeBlock: sigmoid(shared_expert_gate(x)) * out
        gate = b.act(b.linear(x, 1, bias=False, name=pre + "shared_expert_gate"),
                     OpKind.SIGMOID, name=pre + "shared_expert_sigmoid")
        shared = b.mul(shared, gate, name=pre + "shared_expert_scale")
    return b.add(y, shared, name=pre + "shared_add")


def _build_seq2seq(c: ModelShape, name: str, meta: Mapping[str, Any],
                   fused: bool) -> ModelGraph:
    """T5 (T5ForConditionalGeneration): an encoder stack over the input and a decoder stack
    with cross-attention over the encoder's output, one shared embedding, RMSNorm without
    bias, relative position biases (an embedding of buckets x heads in each stack's first
    block). Both stacks run on S tokens: a training step or one full forward (no KV cache;
    the graph is not an LLM, so prefill / decode are refused)."""
    b = GraphBuilder(name, shape=c, **{**_meta(c, meta), "is_llm": False})
    with b.scope("embeddings"):
        ids = b.input("input_ids", ("S",), role="index")
        x = b.embedding(ids, c.vocab_size, c.hidden_size, name="shared")
        dec_ids = b.input("decoder_input_ids", ("S",), role="index")
        y = b.add_op(OpKind.EMBEDDING, [dec_ids], ("B", "S", c.hidden_size), tied=True,
                     weights=[(c.vocab_size, c.hidden_size)], name="decoder_embed_tokens")
    enc, dec = c.num_hidden_layers, c.num_decoder_layers or c.num_hidden_layers
    full = _Ctx(causal=False, cache=False, fused=fused)
    for i in range(enc):
        with b.scope(f"layers.{i}"):
            x = _t5_block(b, c, i, x, None, full)
    x = _norm(b, c, x, "encoder_final_layer_norm")
    causal = _Ctx(causal=True, cache=False, fused=fused)
    for j in range(dec):
        with b.scope(f"layers.{enc + j}"):
            y = _t5_block(b, c, j, y, x, causal)
    y = _norm(b, c, y, "decoder_final_layer_norm")
    y = b.slice(y, 1, "L", name="lm_head_tokens")
    b.linear(y, c.vocab_size, bias=False, name="lm_head", tied=c.tie_word_embeddings)
    return b.build()


def _t5_block(b: GraphBuilder, c: ModelShape, i: int, x: Tensor, memory: Tensor | None,
              ctx: _Ctx) -> Tensor:
    """T5Block: self-attention (+ cross-attention in the decoder) + MLP, each pre-norm."""
    if i == 0 and c.relative_attention_num_buckets:  # relative_attention_bias
        buckets = b.input(f"relative_buckets_{'dec' if memory is not None else 'enc'}", ("S", "S"),
                          batch=False, role="index")
        b.embedding(buckets, c.relative_attention_num_buckets, c.num_attention_heads,
                    name="relative_attention_bias")
    x = b.add(x, _attention(b, c, i, _norm(b, c, x, "self_attn_layer_norm"), ctx),
              name="attn_residual")
    if memory is not None:
        h = _cross_attention(b, c, _norm(b, c, x, "cross_attn_layer_norm"), memory, ctx.fused)
        x = b.add(x, h, name="cross_attn_residual")
    return b.add(x, _mlp(b, c, _norm(b, c, x, "final_layer_norm")), name="mlp_residual")


def _cross_attention(b: GraphBuilder, c: ModelShape, x: Tensor, memory: Tensor,
                     fused: bool) -> Tensor:
    """Queries from the decoder, keys and values from the encoder output (T5 EncDecAttention)."""
    h, hd, pre = c.num_attention_heads, c.head_dim, "cross_attn."
    q = b.reshape(b.linear(x, h * hd, bias=False, name=pre + "q"), ("B", h, "S", hd),
                  name=pre + "q_heads")
    k = b.reshape(b.linear(memory, h * hd, bias=False, name=pre + "k"), ("B", h, "S", hd),
                  name=pre + "k_heads")
    v = b.reshape(b.linear(memory, h * hd, bias=False, name=pre + "v"), ("B", h, "S", hd),
                  name=pre + "v_heads")
    if fused:
        o = b.attention(q, k, v, name=pre + "attention")
    else:
        o = b.attn_context(b.softmax(b.attn_score(q, k, name=pre + "scores"),
                                     name=pre + "softmax"), v, name=pre + "context")
    o = b.reshape(o, ("B", "S", h * hd), name=pre + "merge_heads")
    return b.linear(o, c.hidden_size, bias=False, name=pre + "o")


# --- registry ---------------------------------------------------------------------------

CONFIG_NAMES: tuple[str, ...] = (
    "bert-base", "bert-large", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "gpt3-175b",
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b",
    "mixtral-8x7b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-4-scout",
    "qwen2-7b", "qwen3-8b", "qwen3-30b-a3b", "deepseek-v3", "gpt-oss-20b", "gpt-oss-120b",
    "mixtral-8x22b", "gemma-2-9b", "phi-3-mini", "mpt-7b", "falcon-7b",
    "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-14b", "qwen3-32b", "qwen3-235b-a22b",
    "llama-3.2-1b", "llama-3.2-3b", "llama-3.3-70b", "deepseek-v2-lite",
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
