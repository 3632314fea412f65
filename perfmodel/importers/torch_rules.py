"""The torch importer's rules: which perfmodel op each traced call becomes.

``FUNCTIONS`` maps a function, method or ATen name onto one small function per family
(convolutions, linear, matmul, attention, ``nn.MultiheadAttention``, recurrent layers,
norms, activations, pools, views, copies); ``MODULES`` names the torch.nn classes priced
as one call (leaves of the trace) and their ``FUNCTIONS`` key. ``map_call`` gives one
call's value: its rule's op, or an op of unsupported kind naming the call. The rules build
ops through :class:`~perfmodel.importers.torch_walk.Walker`; the tracing is in
:mod:`perfmodel.importers.torch_fx`. torch is never imported here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from perfmodel.errors import ShapeError
from perfmodel.graph.builder import Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.op import TensorSpec
from perfmodel.importers.torch_walk import Call, Const, Walker, Weight, as_out, flat, ints

__all__ = ["FUNCTIONS", "MODULES", "Rule", "map_call", "module_key", "function_key"]

log = logging.getLogger(__name__)


# --- rules: one small function per family (a rule returning a Tensor gets the call's
# output shape; a tuple output gets one handle per element) ------------------------------

Rule = Callable[[Walker, Call], Any]


def _op(kind: str, inputs: int | None = None) -> Rule:
    """Ops on their tensor inputs (all, or the first ``inputs``), reading their weights."""
    return lambda w, c: w.emit(c, kind, c.tensors[:inputs])


def _views(w: Walker, c: Call) -> Any:
    """chunk, split, unbind: a tuple of views of the input, no op."""
    return as_out(c.tensors[0], c.out)


def _getitem(w: Walker, c: Call) -> Any:
    base, index = c.args[0], c.args[1]
    if isinstance(base, tuple | list):
        return base[index]
    if any(isinstance(v, Tensor) for v in flat(index)):
        raise TypeError("indexing with a tensor is a gather")
    return w.emit(c, OpKind.RESHAPE, [base])


def _conv(w: Walker, c: Call) -> Any:
    """Any N-d convolution as the conv2d rule's (Co, Ci/groups, kh, kw) weight and 4-D
    output: 1-D and 3-D fold their kernel and output into the last dim (same MACs)."""
    if c.arg(6, "transposed", False) is True:
        raise ValueError("transposed convolution")
    x, wt = c.tensors[0], tuple(c.params[0].shape)
    co, ci_g, k, out = wt[0], wt[1], wt[2:], c.shape
    spatial, n = out[len(out) - len(k):], math.prod(out[:len(out) - len(k) - 1])
    groups = int(x.shape[len(x.shape) - len(k) - 1]) // ci_g
    if len(k) != 2:
        wt, spatial, k = (co, ci_g, 1, math.prod(k)), (1, math.prod(spatial)), (1, math.prod(k))
    weights = [wt, *(tuple(p.shape) for p in c.params[1:])]
    return as_out(w.emit(c, OpKind.CONV2D, [x], (n, co, *spatial), weights=weights,
                          kernel=tuple(k), groups=groups, depthwise=ci_g == 1 < groups), out)


def _linear(w: Walker, c: Call) -> Any:
    if c.params and c.params[0].dim() == 2:
        return w.emit(c, OpKind.LINEAR, c.tensors[:1])
    return w.emit(c, OpKind.MATMUL, c.tensors[:2])


def _matmul(kind: str) -> Rule:
    """a @ b; a weight operand (``x @ W.t()``) makes the op own that weight."""
    def rule(w: Walker, c: Call) -> Any:
        a, b = c.args[1:3] if c.key == "addmm" else c.args[:2]
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return w.emit(c, kind, [a, b])
        if isinstance(a, Tensor) and isinstance(b, Weight) and len(b.shape) == 2:
            return w.emit(c, OpKind.LINEAR, [a], params=b.params)
        if isinstance(a, Weight) and isinstance(b, Tensor):
            return w.emit(c, kind, [Tensor(None, TensorSpec(a.shape)), b], params=a.params)
        raise TypeError("matmul operands")
    return rule


def _heads(t: Tensor, shape: tuple[int, ...] | None = None) -> Tensor:
    """A (B, H, L, d) handle on ``t`` for the attention rules (3-D: one head; more: the
    leading dims folded into the batch)."""
    s = t.spec.shape if shape is None else shape
    lead = list(s[:-2]) or [1]
    return Tensor(t.producer, TensorSpec((math.prod(lead[:-1]), lead[-1], *s[-2:])))


def _sdpa(w: Walker, c: Call) -> Any:
    """F.scaled_dot_product_attention: one fused attention op (FlashAttention-style)."""
    q, k, v = (c.arg(i, n) for i, n in enumerate(("query", "key", "value")))
    mask = c.arg(3, "attn_mask")
    ins = [_heads(q), _heads(k), _heads(v)] + ([mask] if isinstance(mask, Tensor) else [])
    return as_out(w.emit(c, OpKind.ATTENTION, ins, _heads(q).spec.shape,
                          causal=bool(c.arg(5, "is_causal", False))), c.out)


def _mha(w: Walker, c: Call) -> Any:
    """nn.MultiheadAttention as torch computes it: the in-projection (one linear of 3E
    outputs when query, key and value are one tensor), attention over (B, H, L, E/H) heads
    (fused unless need_weights asks for the probabilities), then out_proj."""
    m, (q, k, v) = c.module, c.args[:3]
    e, h, name = m.embed_dim, m.num_heads, c.name

    def batch_len(t: Tensor) -> tuple[int, int]:
        s = ints(t)
        return (1, s[0]) if len(s) == 2 else (s[0], s[1]) if m.batch_first else (s[1], s[0])

    (bq, lq), (_, lk) = batch_len(q), batch_len(k)
    outs = [p for n, p in m.named_parameters() if n.startswith("out_proj.")]
    tied = w.claim([p for p in m.parameters() if all(p is not o for o in outs)], c.scope, name)
    bias = [(e,)] if m.in_proj_bias is not None else []
    if q is k is v:
        qp = kp = vp = w.emit(c, OpKind.LINEAR, [q], (*q.shape[:-1], 3 * e), tied=tied,
                              weights=[(3 * e, e)] + [(3 * e,)] * len(bias),
                              name=f"{name}.in_proj")
    else:
        qp, kp, vp = (w.emit(c, OpKind.LINEAR, [t], (*t.shape[:-1], e), tied=tied,
                             weights=[(e, t.shape[-1]), *bias], name=f"{name}.{n}_proj")
                      for t, n in ((q, "q"), (k, "k"), (v, "v")))
    d, causal = e // h, bool(c.arg(7, "is_causal", False))
    qh, kh, vh = (_heads(qp, (bq, h, lq, d)), _heads(kp, (bq, h, lk, d)),
                  _heads(vp, (bq, h, lk, d)))
    p = None
    if c.arg(4, "need_weights", True):
        p = w.emit(c, OpKind.ATTN_SCORE, [qh, kh], (bq, h, lq, lk), params=(), causal=causal,
                   name=f"{name}.score")
        p = w.emit(c, OpKind.SOFTMAX, [p], p.shape, params=(), name=f"{name}.softmax")
        o = w.emit(c, OpKind.ATTN_CONTEXT, [p, vh], (bq, h, lq, d), params=(), causal=causal,
                   name=f"{name}.context")
    else:
        o = w.emit(c, OpKind.ATTENTION, [qh, kh, vh], (bq, h, lq, d), params=(),
                   causal=causal, name=f"{name}.attention")
    out = w.emit(c, OpKind.LINEAR, [Tensor(o.producer, TensorSpec((bq, lq, e)))], c.shape,
                 params=outs, name=f"{name}.out_proj")
    return as_out(out, c.out[0]), None if p is None else as_out(p, c.out[1])


_CELLS = {"LSTM": OpKind.LSTM_CELL, "GRU": OpKind.GRU_CELL, "RNN_TANH": OpKind.RNN_CELL,
          "RNN_RELU": OpKind.RNN_CELL}


def _recurrent(w: Walker, c: Call) -> Any:
    """nn.LSTM / GRU / RNN: one cell per layer, direction and time step (cuDNN's
    recurrence), x_t (N, I) and h_{t-1} (N, H) -> h_t; steps after the first are tied."""
    m, x = c.module, c.tensors[0]
    if m.proj_size:
        raise ValueError("LSTM with proj_size")
    s = ints(x)
    steps, n = ((s[1], s[0]) if m.batch_first else (s[0], s[1])) if len(s) == 3 else (s[0], 1)
    dirs, hid = 2 if m.bidirectional else 1, m.hidden_size
    inputs = [Tensor(x.producer, TensorSpec((n, s[-1])))] * steps
    for layer in range(m.num_layers):
        outs: list[list[Tensor]] = []
        for d in range(dirs):
            sfx = f"l{layer}" + ("_reverse" if d else "")
            params = [getattr(m, f"{p}_{sfx}") for p in ("weight_ih", "weight_hh", "bias_ih",
                                                          "bias_hh") if hasattr(m, f"{p}_{sfx}")]
            cells: list[Tensor] = []
            for t in (range(steps) if d == 0 else reversed(range(steps))):
                cells.append(w.emit(c, _CELLS[m.mode], [inputs[t], *cells[-1:]], (n, hid),
                                    params=params, hidden=hid, name=f"{c.name}.{sfx}.t{t}"))
            outs.append(cells if d == 0 else cells[::-1])
        inputs = [Tensor(outs[0][t].producer, TensorSpec((n, dirs * hid)))
                  for t in range(steps)]
    return w.emit(c, OpKind.RESHAPE, [t for cells in outs for t in cells], params=(),
                  name=f"{c.name}.output")


def _groupnorm(w: Walker, c: Call) -> Any:
    """group_norm (groups from the module or argument); instance_norm: one group per channel."""
    x = c.tensors[0]
    groups = (x.shape[1] if c.key == "instance_norm" else c.module.num_groups
              if c.module is not None else c.arg(1, "num_groups"))
    return w.emit(c, OpKind.GROUPNORM, [x], groups=int(groups))


def _pool(kind: str) -> Rule:
    """Pooling with its window as the pool rules' (kh, kw); 1-D and 3-D fold it into kw."""
    def rule(w: Walker, c: Call) -> Any:
        x, key = c.tensors[0], c.key.removesuffix("_with_indices")
        dims = int(key[-2]) if key[-2] in "123" else 2
        if key.startswith("adaptive_max"):  # the window each output covers
            k: Any = [-(-i // o) for i, o in zip(ints(x)[-dims:], c.shape[-dims:], strict=True)]
        else:
            k = c.module.kernel_size if c.module is not None else c.arg(1, "kernel_size")
        ks = (k,) * dims if isinstance(k, int) else tuple(k)
        return w.emit(c, kind, [x], kernel=(ks[0], ks[1]) if len(ks) == 2
                      else (1, math.prod(ks)))
    return rule


def _names(rule: Rule, *names: str) -> dict[str, Rule]:
    return dict.fromkeys(names, rule)


_VIEW, _PERMUTE, _DROPOUT, _IDENTITY, _COPY = (_op(k, 1) for k in (
    OpKind.RESHAPE, OpKind.PERMUTE, OpKind.DROPOUT, OpKind.IDENTITY, OpKind.COPY))
FUNCTIONS: dict[str, Rule] = {
    **_names(_conv, "conv1d", "conv2d", "conv3d", "convolution", "_convolution"),
    "linear": _linear, **_names(_matmul(OpKind.MATMUL), "matmul", "mm", "addmm"),
    "bmm": _matmul(OpKind.BMM), "scaled_dot_product_attention": _sdpa,
    "multi_head_attention": _mha, "recurrent": _recurrent,
    "embedding": _op(OpKind.EMBEDDING, 1),
    **_names(_op(OpKind.BATCHNORM, 1), "batch_norm", "_native_batch_norm_legit_no_training"),
    "layer_norm": _op(OpKind.LAYERNORM, 1), "rms_norm": _op(OpKind.RMSNORM, 1),
    **_names(_groupnorm, "group_norm", "instance_norm"),
    **_names(_op(OpKind.RELU), "relu", "leaky_relu"),  # max(x, a x): one select, as relu
    **_names(_op(OpKind.RELU6), "relu6", "hardtanh"),  # a clamp: two compares
    "gelu": _op(OpKind.GELU), "silu": _op(OpKind.SILU), "sigmoid": _op(OpKind.SIGMOID),
    "tanh": _op(OpKind.TANH), "hardswish": _op(OpKind.HARDSWISH),
    "hardsigmoid": _op(OpKind.HARDSIGMOID),
    **_names(_op(OpKind.SOFTMAX, 1), "softmax", "log_softmax", "_softmax", "_log_softmax"),
    **_names(_op(OpKind.ADD), "add", "sub", "rsub"),  # one FLOP per element each
    **_names(_op(OpKind.MUL), "mul", "div", "truediv"),
    **_names(_pool(OpKind.MAXPOOL), "max_pool1d", "max_pool2d", "max_pool3d",
             "max_pool2d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d"),
    **_names(_pool(OpKind.AVGPOOL), "avg_pool1d", "avg_pool2d", "avg_pool3d"),
    **_names(_op(OpKind.ADAPTIVE_AVGPOOL, 1), "adaptive_avg_pool1d", "adaptive_avg_pool2d",
             "adaptive_avg_pool3d", "mean", "sum"),  # a mean or sum reads each input once
    **_names(_op(OpKind.CONCAT), "cat", "concat", "concatenate", "stack"),
    "channel_shuffle": _op(OpKind.CHANNEL_SHUFFLE, 1),
    **_names(_VIEW, "view", "reshape", "_unsafe_view", "unflatten", "squeeze", "unsqueeze",
             "expand", "expand_as", "select", "slice", "narrow", "view_as", "reshape_as",
             "alias", "unfold"),
    "flatten": _op(OpKind.FLATTEN, 1),
    **_names(_PERMUTE, "permute", "transpose", "t", "movedim", "swapaxes"),
    **_names(_DROPOUT, "dropout", "feature_dropout", "alpha_dropout", "dropout1d",
             "dropout2d", "dropout3d", "stochastic_depth"),
    **_names(_IDENTITY, "identity", "contiguous", "detach"),
    **_names(_COPY, "clone", "to", "_to_copy", "float", "half", "bfloat16", "type", "type_as",
             "pad", "constant_pad_nd", "repeat"),
    **_names(_views, "chunk", "split", "unbind", "split_with_sizes", "tensor_split"),
    "getitem": _getitem,
    **_names(lambda w, c: Const(c.shape), "zeros_like", "ones_like", "full_like",
             "empty_like"),
}
# rules that only view their input: on a weight or constant they give a view of it, no op
_VIEW_RULES = frozenset({_VIEW, _PERMUTE, _DROPOUT, _IDENTITY, _COPY, _views, _getitem,
                         FUNCTIONS["flatten"]})
_ALIASES = {"iadd": "add", "isub": "sub", "imul": "mul", "itruediv": "truediv",
            "__getitem__": "getitem"}

# torch.nn classes priced as one call (leaves of the trace) -> their FUNCTIONS key;
# subclasses that keep the forward map to their base (torchvision's out_proj Linear).
MODULES: dict[str, str] = {
    **dict.fromkeys(("Conv1d", "Conv2d", "Conv3d"), "convolution"), "Linear": "linear",
    **dict.fromkeys(("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm"),
                    "batch_norm"),
    **dict.fromkeys(("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"), "instance_norm"),
    "LayerNorm": "layer_norm", "GroupNorm": "group_norm", "RMSNorm": "rms_norm",
    "ReLU": "relu", "ReLU6": "relu6", "Hardtanh": "hardtanh", "LeakyReLU": "leaky_relu",
    "GELU": "gelu", "SiLU": "silu", "Sigmoid": "sigmoid", "Tanh": "tanh",
    "Hardswish": "hardswish", "Hardsigmoid": "hardsigmoid", "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    **{f"MaxPool{d}d": f"max_pool{d}d" for d in (1, 2, 3)},
    **{f"AvgPool{d}d": f"avg_pool{d}d" for d in (1, 2, 3)},
    **{f"AdaptiveAvgPool{d}d": f"adaptive_avg_pool{d}d" for d in (1, 2, 3)},
    **{f"AdaptiveMaxPool{d}d": f"adaptive_max_pool{d}d" for d in (1, 2)},
    **dict.fromkeys(("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"),
                    "dropout"),
    "Identity": "identity", "Flatten": "flatten", "Unflatten": "unflatten",
    "Embedding": "embedding", "MultiheadAttention": "multi_head_attention",
    **dict.fromkeys(("LSTM", "GRU", "RNN"), "recurrent"), "ChannelShuffle": "channel_shuffle",
}


def module_key(m: Any) -> str | None:
    """The FUNCTIONS key of a torch.nn module we price whole, else None (traced through)."""
    for cls in type(m).__mro__:
        if cls.__module__.startswith("torch.nn.") and cls.__name__ in MODULES:
            same = getattr(type(m), "forward", None) is getattr(cls, "forward", None)
            return MODULES[cls.__name__] if same else None
    return None


def function_key(name: str) -> str:
    name = _ALIASES.get(name, name)
    return name[:-1] if name.endswith("_") and name[:-1] in FUNCTIONS else name


# --- dispatch: one call -> its value ----------------------------------------------------

def map_call(w: Walker, c: Call) -> Any:
    """The value of one call: its rule's, or an op of unsupported kind naming it."""
    rule = FUNCTIONS.get(c.key)
    if not c.tensors and not c.params and c.module is None:
        return Const(c.shape)  # computed from constants only
    if not c.tensors and rule in _VIEW_RULES:  # a view of a weight or constant
        x = next((v for v in flat(c.args) if isinstance(v, Weight | Const)), None)
        return Weight(x.params, c.shape) if isinstance(x, Weight) else Const(c.shape)
    if rule is not None:
        try:
            v = rule(w, c)
            return as_out(v, c.out) if isinstance(v, Tensor) else v
        except (ValueError, TypeError, IndexError, AttributeError, KeyError,
                ShapeError) as exc:
            log.debug("%s (%s) not mapped: %s", c.name, c.kind_name, exc)
    return as_out(w.emit(c, c.kind_name), c.out)
