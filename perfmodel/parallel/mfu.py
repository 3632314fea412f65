"""Model FLOP per token and MFU as each training framework counts them.

Frameworks report MFU = model FLOP per second / peak, but count the model FLOP differently;
a predicted MFU compares with a published one only under the same convention. Each
convention is the training FLOP of one token (forward + backward = 3 x forward, 2 FLOP per
multiply-add), from the model's shape, and ``CONVENTIONS`` maps its name to a small function:

* ``narayanan`` — Narayanan et al. SC 2021, eq. 3: 72 B s l h^2 (1 + s/6h + V/12hl) for B s
  tokens, i.e. 72 l h^2 + 12 l h s + 6 h V per token. A GPT layer (4h MLP, multi-head
  attention, no causal halving); other layers are read as if they were one.
* ``megatron`` — the extended formula of Megatron-LM ``num_floating_point_operations``
  (``megatron/training/training.py`` @ d98e8a64, ``transformer_flops``), which NeMo 2
  (``nemo/utils/flops_formulas.py`` @ 8cfedd72, ``llama3``, ``mixtral``, ``deepseekv3``) and
  Megatron-Bridge report: 6 x (projection weights of Q, K, V (GQA widths) and O, the MLP (3
  matrices if gated), the top-k routed and shared experts, MLA's low-rank projections, the
  logits h V) + the core attention 6 x heads x (d_qk + d_v) / 2 x s per layer: causal, so
  half the s^2 scores. The router is not counted.
* ``maxtext`` — MaxText ``calculate_tflops_training_per_device``
  (``src/maxtext/utils/maxtext_utils.py`` @ e591f30c): the same weight terms plus the MoE
  router (2 h E forward per token), and the attention "divided by 2 due to causal mask".
* ``palm`` — Chowdhery et al. 2022, app. B: 6 N + 12 L H Q T, N the matmul parameters, with no
  causal halving. llm-foundry (``llmfoundry/models/mpt/modeling_mpt.py`` @ 8c8dd48f,
  ``flops_per_batch``: 3 x (2 N + 4 L d_model s) per token, N without the input embedding
  unless tied) and torchtitan (``torchtitan/models/utils.py`` @ b5bcd76c,
  ``get_dense_model_nparams_and_flops``: 6 (N - embedding) + 6 L H (d_qk + d_v) s, "we do not
  account for sparsity in causal attention"; ``get_moe_model_nparams_and_flops``: experts
  x top_k / E, router and shared experts in full). N here counts the output projection once
  and the router.
* ``6n`` — 6 x the non-embedding parameters (Kaplan et al. 2020, sec. 2.1: C = 6N, N without
  the embedding and unembedding matrices), attention scores not counted.

Every convention counts the parameters a token runs through: a mixture-of-experts layer's
top-k experts, its shared experts in full (activated parameters). Norm weights and biases
(< 0.1 % of a model's weights) and multi-token-prediction heads are left out by all of them
here; sliding windows and chunked attention are read as full attention, as the frameworks'
own formulas do.

>>> from perfmodel import load_model
>>> shape = load_model("llama-3-8b").shape
>>> round(flops_per_token(shape, 8192, "megatron") / 1e9, 2)
51.47
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perfmodel.errors import PlanError, check_choice
from perfmodel.graph.shape import ModelShape

__all__ = ["flops_per_token", "mfu", "matmul_counts", "MatmulCounts", "CONVENTIONS"]


@dataclass(frozen=True)
class MatmulCounts:
    """Multiply-adds one token makes in the forward pass, by kind (summed over layers).

    ``layers``: the projection and MLP weights a token runs through (top-k experts, shared
    experts), router excluded; ``router``: the MoE routers' h x E; ``attention``: per key
    the token attends to, the score and value widths heads x (d_qk + d_v); ``logits``: h x V.
    """

    layers: float
    router: float
    attention: float
    logits: float


def _projections(s: ModelShape) -> float:
    """Q, K, V and output projection weights of one attention layer."""
    h, heads = s.hidden_size, s.num_attention_heads
    if s.is_mla:  # DeepSeek-V2 sec. 2.1: low-rank Q and joint KV compression
        nope, rope, v = s.qk_nope_head_dim or 0, s.qk_rope_head_dim or 0, s.v_head_dim or 0
        ql, kvl = s.q_lora_rank, s.kv_lora_rank or 0
        q = ql * (h + heads * (nope + rope)) if ql else h * heads * (nope + rope)
        kv = h * (kvl + rope) + kvl * heads * (nope + v)
        return float(q + kv + heads * v * h)
    q = heads * s.head_dim
    return float(h * (q + 2 * s.kv_dim) + q * h)


def _attention_width(s: ModelShape) -> float:
    """heads x (d_qk + d_v): multiply-adds per attended key in QK^T and softmax(.)V."""
    if s.is_mla:
        d_qk = (s.qk_nope_head_dim or 0) + (s.qk_rope_head_dim or 0)
        return float(s.num_attention_heads * (d_qk + (s.v_head_dim or 0)))
    return float(2 * s.num_attention_heads * s.head_dim)


def _mlp(s: ModelShape, layer: int) -> tuple[float, float]:
    """(weights a token runs through, router weights) of one layer's MLP."""
    mats, h = (3 if s.gated else 2), s.hidden_size
    if not s.is_moe_layer(layer):
        return float(mats * h * s.intermediate_size), 0.0
    routed = s.num_experts_per_tok * mats * h * s.expert_size
    return float(routed + mats * h * s.shared_expert_size), float(h * s.num_local_experts)


def matmul_counts(shape: ModelShape) -> MatmulCounts:
    """The forward multiply-adds of one token, by kind (see :class:`MatmulCounts`)."""
    layers = router = 0.0
    for i in range(shape.num_hidden_layers):
        mlp, gate = _mlp(shape, i)
        layers += _projections(shape) + mlp
        router += gate
    return MatmulCounts(layers=layers, router=router,
                        attention=shape.num_hidden_layers * _attention_width(shape),
                        logits=float(shape.hidden_size * shape.vocab_size))


# 6 = 3 passes (forward, backward data and weight gradients) x 2 FLOP per multiply-add
_TRAIN = 6.0


def _narayanan(s: ModelShape, seq: int) -> float:
    # Narayanan et al. 2021 eq. 3 divided by the B s tokens it counts
    n_l, h, v = s.num_hidden_layers, s.hidden_size, s.vocab_size
    return 72.0 * n_l * h * h * (1 + seq / (6 * h) + v / (12 * h * n_l))


def _megatron(s: ModelShape, seq: int) -> float:
    c = matmul_counts(s)
    return _TRAIN * (c.layers + c.logits + c.attention * seq / 2)


def _maxtext(s: ModelShape, seq: int) -> float:
    c = matmul_counts(s)
    return _TRAIN * (c.layers + c.router + c.logits + c.attention * seq / 2)


def _palm(s: ModelShape, seq: int) -> float:
    c = matmul_counts(s)
    return _TRAIN * (c.layers + c.router + c.logits + c.attention * seq)


def _six_n(s: ModelShape, seq: int) -> float:
    c = matmul_counts(s)
    return _TRAIN * (c.layers + c.router)


CONVENTIONS: dict[str, Callable[[ModelShape, int], float]] = {
    "narayanan": _narayanan,
    "megatron": _megatron,
    "maxtext": _maxtext,
    "palm": _palm,
    "6n": _six_n,
}


def flops_per_token(shape: ModelShape, seq: int, convention: str) -> float:
    """Training FLOP of one token of a ``seq``-token sequence, counted as ``convention``
    counts it (a key of ``CONVENTIONS``; see the module docstring).

    >>> from perfmodel import load_model
    >>> s = load_model("llama-3-8b").shape
    >>> [round(flops_per_token(s, 8192, c) / 1e9, 2) for c in ("palm", "6n")]
    [57.91, 41.88]
    """
    fn = CONVENTIONS[check_choice("MFU convention", convention, tuple(CONVENTIONS))]
    if seq <= 0:
        raise PlanError(f"sequence length must be positive, got {seq}", "pass --seq 1 or more")
    return fn(shape, seq)


def mfu(shape: ModelShape, seq: int, tokens_per_s_per_device: float, peak_flops: float,
        convention: str) -> float:
    """Model FLOP utilization: ``flops_per_token`` x tokens per second per device / the
    device's peak FLOP/s (in the training dtype), as ``convention`` counts the model FLOP.

    >>> from perfmodel import load_model
    >>> s = load_model("llama-3-8b").shape
    >>> round(mfu(s, 8192, 10_000, 1e15, "palm"), 3)   # 10k tok/s on a 1 PFLOP/s device
    0.579
    """
    if peak_flops <= 0:
        raise PlanError(f"peak FLOP/s must be positive, got {peak_flops}",
                        "give the device's dense peak in the training dtype")
    return flops_per_token(shape, seq, convention) * tokens_per_s_per_device / peak_flops
