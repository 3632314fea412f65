"""Cost rules: one small pure function per op kind, in one table (``COST_RULES``).

Conventions (DESIGN.md, DOMAIN.md section 2):

* ``macs`` counts multiply-accumulates; for MAC ops ``flops = 2 * macs``. Bias adds are
  not counted separately (they ride in the accumulate, as torchvision/fvcore count).
  The seed documents' conv formula W*H*(k*k*Ci + 1)*Co counts the bias as one extra MAC
  per output; ``seed_conv_macs`` gives that figure.
* Non-MAC ops count their own FLOPs per element, listed in ``ELEMENTWISE_FLOPS``.
* Bytes moved per op assume no reuse across ops (no fusion): read every input and every
  weight once, write every output once, each at its role's dtype width. Exceptions are
  documented on their rule (embedding reads only the gathered rows; mixture-of-experts
  linears read only the experts the batch touches).
* ``params`` counts trainable parameters (BatchNorm running stats are buffers, not
  parameters, as in torch); ``tied`` ops count none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from perfmodel.errors import UnsupportedOpError
from perfmodel.graph.kinds import ZERO_COST_KINDS, OpKind
from perfmodel.graph.op import Op, TensorSpec
from perfmodel.graph.shape import attended_pairs

__all__ = ["OpCost", "COST_RULES", "ELEMENTWISE_FLOPS", "cost_of", "is_costed",
           "seed_conv_macs"]

Widths = Mapping[str, float]  # role -> bytes per element


@dataclass(frozen=True)
class OpCost:
    """Work and traffic of one op (or a sum of ops). FLOP and bytes, SI."""

    macs: float = 0.0
    flops: float = 0.0
    params: float = 0.0
    weight_bytes: float = 0.0
    input_bytes: float = 0.0
    output_bytes: float = 0.0

    @property
    def bytes_read(self) -> float:
        return self.weight_bytes + self.input_bytes

    @property
    def bytes_written(self) -> float:
        return self.output_bytes

    @property
    def total_bytes(self) -> float:
        return self.weight_bytes + self.input_bytes + self.output_bytes

    def __add__(self, other: OpCost) -> OpCost:
        return OpCost(*(a + b for a, b in zip(self._tuple(), other._tuple(), strict=True)))

    def _tuple(self) -> tuple[float, ...]:
        return (self.macs, self.flops, self.params, self.weight_bytes, self.input_bytes,
                self.output_bytes)


def _s(t: TensorSpec) -> tuple[int, ...]:
    """A resolved tensor's shape (rules only ever see resolved ops)."""
    return t.shape  # type: ignore[return-value]


def _nbytes(tensors: tuple[TensorSpec, ...], widths: Widths) -> float:
    return float(sum(t.numel * widths[t.role] for t in tensors))


def _params(op: Op) -> float:
    return 0.0 if op.tied else float(sum(w.numel for w in op.weights))


def _dense(op: Op, widths: Widths, macs: float = 0.0, flops: float | None = None) -> OpCost:
    """Cost with the default traffic rule: read inputs + weights, write outputs."""
    return OpCost(
        macs=float(macs),
        flops=float(2 * macs if flops is None else flops),
        params=_params(op),
        weight_bytes=_nbytes(op.weights, widths),
        input_bytes=_nbytes(op.inputs, widths),
        output_bytes=_nbytes(op.outputs, widths),
    )


# --- multiply-accumulate ops ------------------------------------------------------------

def _conv2d(op: Op, w: Widths) -> OpCost:
    """MACs = N * Co * Ho * Wo * (Ci / groups) * kh * kw (depthwise: groups = Ci)."""
    co, ci_per_group, kh, kw = _s(op.weights[0])
    n, _, ho, wo = _s(op.outputs[0])
    return _dense(op, w, macs=n * co * ho * wo * ci_per_group * kh * kw)


def _linear(op: Op, w: Widths) -> OpCost:
    """MACs = rows * in * out. Weight (out, in), or (experts, out, in) for MoE.

    Mixture of experts (attrs experts=E, top_k=k): the input holds each token's k routed
    copies, (..., k, in), so rows = tokens * k and MACs = rows * in * out. The weights
    read are those of the experts the batch touches: in expectation
    E * (1 - (1 - k/E)^tokens) of them under uniform routing.
    """
    x = op.inputs[0]
    rows = x.numel // _s(x)[-1]
    experts = op.attr("experts", 0)
    if not experts:
        out_f, in_f = _s(op.weights[0])
        return _dense(op, w, macs=rows * in_f * out_f)
    top_k = op.attr("top_k", 1)
    _, out_f, in_f = _s(op.weights[0])
    tokens = rows / top_k
    touched = experts * (1.0 - (1.0 - top_k / experts) ** tokens)
    cost = _dense(op, w, macs=rows * in_f * out_f)
    return OpCost(cost.macs, cost.flops, cost.params, cost.weight_bytes * touched / experts,
                  cost.input_bytes, cost.output_bytes)


def _matmul(op: Op, w: Widths) -> OpCost:
    """(..., M, K) @ (..., K, N): MACs = batch * M * N * K (batch from the output)."""
    k = _s(op.inputs[0])[-1]
    return _dense(op, w, macs=op.outputs[0].numel * k)


def _attention_pairs(op: Op) -> tuple[int, int, int, int, float]:
    """(batch, query heads, head_dim, queries, query-key pairs computed per head).

    Causal: query i of the Q new tokens sits at position T-Q+i and sees T-Q+i+1 keys, so
    pairs = Q*T - Q*(Q-1)/2 (a causal-aware kernel such as FlashAttention skips the rest);
    for Q = T this is T(T+1)/2, for decode (Q = 1) it is T. A ``window`` (sliding-window
    layer) or ``chunk`` (chunked-attention layer) attr caps the keys each query sees
    (perfmodel.graph.shape.attended_pairs).
    """
    b, h, q, d = _s(op.inputs[0])
    t = _s(op.inputs[1])[2]
    return b, h, d, q, _pairs(op, q, t)


def _pairs(op: Op, q: int, t: int) -> float:
    return attended_pairs(q, t, causal=bool(op.attr("causal", False)),
                          window=op.attr("window", None), chunk=op.attr("chunk", None))


def _attn_score(op: Op, w: Widths) -> OpCost:
    """Q (B,H,Q,d) x K (B,Hkv,T,d)^T -> (B,H,Q,T): MACs = B*H*d*pairs. GQA/MQA: K has Hkv heads."""
    b, h, d, _, pairs = _attention_pairs(op)
    return _dense(op, w, macs=b * h * d * pairs)


def _attn_context(op: Op, w: Widths) -> OpCost:
    """P (B,H,Q,T) x V (B,Hkv,T,d) -> (B,H,Q,d): MACs = B*H*d*pairs."""
    b, h, q, _ = _s(op.inputs[0])
    d = _s(op.inputs[1])[3]
    t = _s(op.inputs[1])[2]
    return _dense(op, w, macs=b * h * d * _pairs(op, q, t))


def _attention(op: Op, w: Widths) -> OpCost:
    """Fused attention (Q, K, V in; O out): both matmuls, B*H*pairs*(d_qk + d_v) MACs (d_v
    the value heads' width: MLA's absorbed attention has d_qk = latent + rope, d_v =
    latent), plus the softmax's ELEMENTWISE_FLOPS['softmax'] per score. Scores never leave
    on-chip memory (Dao et al. 2022), so bytes are Q, K, V read and O written."""
    b, h, d, _, pairs = _attention_pairs(op)
    d_v = _s(op.inputs[2])[3] if len(op.inputs) > 2 else d
    macs = b * h * (d + d_v) * pairs
    return _dense(op, w, macs=macs, flops=2 * macs + ELEMENTWISE_FLOPS["softmax"] * b * h * pairs)


def _recurrent(gates: int, elementwise_per_hidden: int) -> Callable[[Op, Widths], OpCost]:
    """One time step of an RNN/LSTM/GRU layer (PyTorch layout: W_ih (G*H, I), W_hh (G*H, H),
    biases b_ih and b_hh). MACs = N * G*H * (I + H); the gate nonlinearities and state
    updates add ``elementwise_per_hidden`` FLOPs per hidden unit."""

    def rule(op: Op, w: Widths) -> OpCost:
        n, i = _s(op.inputs[0])
        hidden = op.attr("hidden")
        macs = n * gates * hidden * (i + hidden)
        return _dense(op, w, macs=macs, flops=2 * macs + elementwise_per_hidden * n * hidden)

    rule.__doc__ = f"{gates}-gate recurrent cell. " + (_recurrent.__doc__ or "")
    return rule


# --- elementwise and data-movement ops --------------------------------------------------

# FLOPs per output element. There is no universal standard; these are the operation
# counts of the textbook formulas, stated so predictions can be compared honestly.
ELEMENTWISE_FLOPS: dict[str, float] = {
    "softmax": 5,      # max, subtract, exp, sum, divide
    "layernorm": 5,    # mean, variance, normalize, scale, shift
    "groupnorm": 5,
    "rmsnorm": 4,      # square, mean, rsqrt-multiply, scale
    "batchnorm": 2,    # inference: folded into one scale and one shift
    "relu": 1, "relu6": 2,
    "gelu": 8,         # tanh approximation: x*0.5*(1+tanh(c*(x+0.044715x^3)))
    "silu": 4,         # x * sigmoid(x)
    "sigmoid": 4,
    "tanh": 5,
    "hardswish": 4, "hardsigmoid": 3,
    "add": 1, "mul": 1,
    "rope": 3,         # x*cos + rotate(x)*sin per element
    "copy": 0, "concat": 0, "channel_shuffle": 0,
}


def _elementwise(op: Op, w: Widths) -> OpCost:
    """ELEMENTWISE_FLOPS[kind] per output element; an n-input add does n-1 adds."""
    per = ELEMENTWISE_FLOPS[str(op.kind)]
    extra_inputs = max(len(op.inputs) - 1, 1) if op.kind in (OpKind.ADD, OpKind.MUL) else 1
    return _dense(op, w, flops=per * op.outputs[0].numel * extra_inputs)


def _pool(op: Op, w: Widths) -> OpCost:
    """Max/avg pooling: kh*kw compares or adds per output element (adaptive/global: the
    input window each output covers)."""
    if op.kind == OpKind.ADAPTIVE_AVGPOOL:
        per = op.inputs[0].numel / op.outputs[0].numel
    else:
        kh, kw = op.attr("kernel")
        per = kh * kw
    return _dense(op, w, flops=per * op.outputs[0].numel)


def _embedding(op: Op, w: Widths) -> OpCost:
    """Gather: reads the looked-up rows (not the whole table) and the indices, writes them."""
    table = op.weights[0]
    out_bytes = _nbytes(op.outputs, w)
    rows_bytes = op.outputs[0].numel * w[table.role]
    return OpCost(params=_params(op), weight_bytes=float(rows_bytes),
                  input_bytes=_nbytes(op.inputs, w), output_bytes=out_bytes)


def _zero(op: Op, w: Widths) -> OpCost:
    """Views and no-ops: nothing computed, nothing moved (params still counted)."""
    return OpCost(params=_params(op))


COST_RULES: dict[str, Callable[[Op, Widths], OpCost]] = {
    OpKind.CONV2D: _conv2d,
    OpKind.LINEAR: _linear,
    OpKind.MATMUL: _matmul,
    OpKind.BMM: _matmul,
    OpKind.ATTN_SCORE: _attn_score,
    OpKind.ATTN_CONTEXT: _attn_context,
    OpKind.ATTENTION: _attention,
    OpKind.RNN_CELL: _recurrent(1, 5),    # tanh
    OpKind.LSTM_CELL: _recurrent(4, 22),  # 3 sigmoids, 2 tanh, 3 mul, 1 add
    OpKind.GRU_CELL: _recurrent(3, 19),   # 2 sigmoids, 1 tanh, 3 mul, 2 add, 1 sub
    OpKind.MAXPOOL: _pool,
    OpKind.AVGPOOL: _pool,
    OpKind.ADAPTIVE_AVGPOOL: _pool,
    OpKind.EMBEDDING: _embedding,
    **{k: _elementwise for k in (
        OpKind.SOFTMAX, OpKind.LAYERNORM, OpKind.GROUPNORM, OpKind.RMSNORM, OpKind.BATCHNORM,
        OpKind.RELU, OpKind.RELU6, OpKind.GELU, OpKind.SILU, OpKind.SIGMOID, OpKind.TANH,
        OpKind.HARDSWISH, OpKind.HARDSIGMOID, OpKind.ADD, OpKind.MUL, OpKind.ROPE,
        OpKind.COPY, OpKind.CONCAT, OpKind.CHANNEL_SHUFFLE)},
    **{k: _zero for k in ZERO_COST_KINDS},
}


def is_costed(kind: str) -> bool:
    return kind in COST_RULES


def cost_of(op: Op, widths: Widths) -> OpCost:
    """Cost of a resolved op. Raises UnsupportedOpError for a kind with no rule."""
    try:
        rule = COST_RULES[op.kind]
    except KeyError:
        raise UnsupportedOpError(
            f"op {op.name!r} has kind {op.kind!r}, which has no cost rule",
            "add a rule to perfmodel.graph.costs.COST_RULES") from None
    return rule(op, widths)


def seed_conv_macs(op: Op) -> float:
    """The seed documents' conv count W*H*(k*k*Ci + 1)*Co per sample (bias as one MAC)."""
    co, ci_per_group, kh, kw = _s(op.weights[0])
    _, _, ho, wo = _s(op.outputs[0])
    return float(ho * wo * (kh * kw * ci_per_group + 1) * co)


