"""A ``torch.nn.Module`` -> :class:`~perfmodel.graph.model_graph.ModelGraph`, via torch.fx.

``from_torch(module, example_inputs)`` traces the module with ``torch.fx`` (the torch.nn
layers we price are leaves), propagates the example inputs' shapes with fake tensors
(nothing is computed) and maps every call onto a perfmodel op kind, so the cost rules of
:mod:`perfmodel.graph.costs` price it. Where symbolic tracing fails (Python control flow
on shapes or values) it falls back to ``torch.export.export`` and walks its ATen graph.

``FUNCTIONS`` (by function, method or ATen name) and ``MODULES`` (by torch.nn class) say
what maps to what: convolutions (any groups), linear, matmul/bmm/``@``, scaled-dot-product
attention (one fused ``attention`` op), ``nn.MultiheadAttention`` (in-projection,
attention, out-projection), embedding, norms, activations, pools, softmax, add/sub,
mul/div, concat, views (zero cost), copies, mean/sum (priced as average pooling) and
``nn.LSTM``/``GRU``/``RNN`` (one cell per time step, later steps tied to the first). Any
other call becomes an op whose kind names it (``torch.nn.functional.interpolate``,
``Tensor.masked_fill``, ``aten.erf.default``): it has no cost rule, so the workload lists
it as unsupported instead of pricing it at zero.

Parameters are counted once each, as ``sum(p.numel() for p in module.parameters())``: an
op reading weights already counted (a shared module called again) is ``tied``; parameters
the forward never reads (a training-only head) sit on zero-cost ``identity`` ops named
``<module>.unused_parameters``. Shapes are concrete, for the example inputs' batch
(``meta["default_batch"]``). torch is imported on first use (``pip install ".[torch]"``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfmodel.errors import PerfModelError, ShapeError, SpecError, UnknownNameError, did_you_mean
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import TensorSpec

__all__ = ["from_torch", "from_factory", "FUNCTIONS", "MODULES", "METHODS", "INSTALL"]

log = logging.getLogger(__name__)

INSTALL = 'pip install ".[torch]"'
METHODS = ("auto", "fx", "export")
IMAGE = (3, 224, 224)  # a factory's example image, unless it defines example_inputs()


def _torch() -> Any:
    """torch, or one PerfModelError naming the install command."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise PerfModelError("the torch.fx importer needs torch, which is not installed",
                             INSTALL) from None


# --- values flowing along the traced graph ----------------------------------------------

@dataclass(frozen=True)
class _Weight:
    """Parameters (or a view of them): counted on the op that reads them."""

    params: tuple[Any, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class _Const:
    """A buffer, or a tensor built from nothing the model reads (position ids, masks)."""

    shape: tuple[int, ...]


@dataclass
class _Call:
    """One call of the traced graph, its arguments mapped to values (Tensor handles,
    weights, constants, Python values); ``out`` is its shape, or a list for a tuple."""

    key: str          # FUNCTIONS key
    kind_name: str    # the call's full name: the kind of an op we cannot price
    scope: str
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: Any
    module: Any = None
    params: tuple[Any, ...] = ()

    def arg(self, i: int, key: str, default: Any = None) -> Any:
        return self.args[i] if len(self.args) > i else self.kwargs.get(key, default)

    @property
    def tensors(self) -> list[Tensor]:
        return [v for v in _flat((self.args, self.kwargs)) if isinstance(v, Tensor)]

    @property
    def shape(self) -> tuple[int, ...]:
        out = self.out
        while isinstance(out, list):
            out = next(o for o in out if o is not None)
        return out  # type: ignore[no-any-return]


def _flat(v: Any) -> Iterator[Any]:
    v = list(v.values()) if isinstance(v, dict) else v
    if isinstance(v, tuple | list):
        for x in v:
            yield from _flat(x)
    else:
        yield v


def _shapes(meta: Any) -> Any:
    """A tensor's (or TensorMetadata's) shape as ints, a list for a tuple, else None."""
    if hasattr(meta, "shape") and hasattr(meta, "dtype"):
        return tuple(int(d) for d in meta.shape)
    if isinstance(meta, tuple | list):
        inner = [_shapes(m) for m in meta]
        return inner if any(s is not None for s in inner) else None
    return None


def _as_out(t: Tensor, out: Any) -> Any:
    """``t`` as the call's output: for a tuple output, one handle (view) per element."""
    if isinstance(out, list):
        return tuple(None if o is None else _as_out(t, o) for o in out)
    return t if t.spec.shape == out else Tensor(t.producer, TensorSpec(out, t.spec.role))


def _ints(t: Tensor) -> tuple[int, ...]:
    """A traced tensor's shape (always concrete here)."""
    return tuple(int(d) for d in t.shape)


def _params(values: Any) -> tuple[Any, ...]:
    """The parameters behind ``values``' weights, each once."""
    found = (p for v in _flat(values) if isinstance(v, _Weight) for p in v.params)
    return tuple({id(p): p for p in found}.values())


# --- the walk: calls -> ops -------------------------------------------------------------

@dataclass
class _Walker:
    """Builds the graph call by call; remembers which parameters are already counted."""

    b: GraphBuilder
    seen: set[int] = field(default_factory=set)

    def claim(self, params: Sequence[Any], scope: str, name: str) -> bool:
        """Count ``params`` once: True (tied) when all were counted before. A mix puts the
        new ones on an identity op of their own, so each is counted exactly once."""
        new = [p for p in params if id(p) not in self.seen]
        self.seen.update(id(p) for p in new)
        if not params or len(new) == len(params):
            return False
        if new:
            self.add(OpKind.IDENTITY, [], (), scope, f"{name}.params",
                     [tuple(p.shape) for p in new])
        return True

    def emit(self, c: _Call, kind: str, inputs: Sequence[Tensor] | None = None,
             shape: tuple[Any, ...] | None = None, *, params: Sequence[Any] | None = None,
             weights: Sequence[tuple[int, ...]] | None = None, tied: bool | None = None,
             name: str | None = None, **attrs: Any) -> Tensor:
        """One op for call ``c``: its tensors, shape and parameters unless given."""
        params = c.params if params is None else params
        tied = self.claim(params, c.scope, c.name) if tied is None else tied
        return self.add(kind, c.tensors if inputs is None else inputs,
                        c.shape if shape is None else shape, c.scope, name or c.name,
                        [tuple(p.shape) for p in params] if weights is None else weights,
                        tied, **attrs)

    def add(self, kind: str, inputs: Sequence[Tensor], shape: tuple[Any, ...], scope: str,
            name: str, weights: Sequence[tuple[int, ...]], tied: bool = False,
            **attrs: Any) -> Tensor:
        with self.b.scope(scope) if scope else contextlib.nullcontext():
            return self.b.add_op(kind, inputs, shape, weights=weights, name=name, tied=tied,
                                 **attrs)

    def call(self, c: _Call) -> Any:
        """The value of one call: its rule's, or an op of unsupported kind naming it."""
        rule = FUNCTIONS.get(c.key)
        if not c.tensors and not c.params and c.module is None:
            return _Const(c.shape)  # computed from constants only
        if not c.tensors and rule in _VIEW_RULES:  # a view of a weight or constant
            w = next((v for v in _flat(c.args) if isinstance(v, _Weight | _Const)), None)
            return _Weight(w.params, c.shape) if isinstance(w, _Weight) else _Const(c.shape)
        if rule is not None:
            try:
                v = rule(self, c)
                return _as_out(v, c.out) if isinstance(v, Tensor) else v
            except (ValueError, TypeError, IndexError, AttributeError, KeyError,
                    ShapeError) as exc:
                log.debug("%s (%s) not mapped: %s", c.name, c.kind_name, exc)
        return _as_out(self.emit(c, c.kind_name), c.out)


# --- rules: one small function per family (a rule returning a Tensor gets the call's
# output shape; a tuple output gets one handle per element) ------------------------------

Rule = Callable[[_Walker, _Call], Any]


def _op(kind: str, inputs: int | None = None) -> Rule:
    """Ops on their tensor inputs (all, or the first ``inputs``), reading their weights."""
    return lambda w, c: w.emit(c, kind, c.tensors[:inputs])


def _views(w: _Walker, c: _Call) -> Any:
    """chunk, split, unbind: a tuple of views of the input, no op."""
    return _as_out(c.tensors[0], c.out)


def _getitem(w: _Walker, c: _Call) -> Any:
    base, index = c.args[0], c.args[1]
    if isinstance(base, tuple | list):
        return base[index]
    if any(isinstance(v, Tensor) for v in _flat(index)):
        raise TypeError("indexing with a tensor is a gather")
    return w.emit(c, OpKind.RESHAPE, [base])


def _conv(w: _Walker, c: _Call) -> Any:
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
    return _as_out(w.emit(c, OpKind.CONV2D, [x], (n, co, *spatial), weights=weights,
                          kernel=tuple(k), groups=groups, depthwise=ci_g == 1 < groups), out)


def _linear(w: _Walker, c: _Call) -> Any:
    if c.params and c.params[0].dim() == 2:
        return w.emit(c, OpKind.LINEAR, c.tensors[:1])
    return w.emit(c, OpKind.MATMUL, c.tensors[:2])


def _matmul(kind: str) -> Rule:
    """a @ b; a weight operand (``x @ W.t()``) makes the op own that weight."""
    def rule(w: _Walker, c: _Call) -> Any:
        a, b = c.args[1:3] if c.key == "addmm" else c.args[:2]
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return w.emit(c, kind, [a, b])
        if isinstance(a, Tensor) and isinstance(b, _Weight) and len(b.shape) == 2:
            return w.emit(c, OpKind.LINEAR, [a], params=b.params)
        if isinstance(a, _Weight) and isinstance(b, Tensor):
            return w.emit(c, kind, [Tensor(None, TensorSpec(a.shape)), b], params=a.params)
        raise TypeError("matmul operands")
    return rule


def _heads(t: Tensor, shape: tuple[int, ...] | None = None) -> Tensor:
    """A (B, H, L, d) handle on ``t`` for the attention rules (3-D: one head; more: the
    leading dims folded into the batch)."""
    s = t.spec.shape if shape is None else shape
    lead = list(s[:-2]) or [1]
    return Tensor(t.producer, TensorSpec((math.prod(lead[:-1]), lead[-1], *s[-2:])))


def _sdpa(w: _Walker, c: _Call) -> Any:
    """F.scaled_dot_product_attention: one fused attention op (FlashAttention-style)."""
    q, k, v = (c.arg(i, n) for i, n in enumerate(("query", "key", "value")))
    mask = c.arg(3, "attn_mask")
    ins = [_heads(q), _heads(k), _heads(v)] + ([mask] if isinstance(mask, Tensor) else [])
    return _as_out(w.emit(c, OpKind.ATTENTION, ins, _heads(q).spec.shape,
                          causal=bool(c.arg(5, "is_causal", False))), c.out)


def _mha(w: _Walker, c: _Call) -> Any:
    """nn.MultiheadAttention as torch computes it: the in-projection (one linear of 3E
    outputs when query, key and value are one tensor), attention over (B, H, L, E/H) heads
    (fused unless need_weights asks for the probabilities), then out_proj."""
    m, (q, k, v) = c.module, c.args[:3]
    e, h, name = m.embed_dim, m.num_heads, c.name

    def batch_len(t: Tensor) -> tuple[int, int]:
        s = _ints(t)
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
    return _as_out(out, c.out[0]), None if p is None else _as_out(p, c.out[1])


_CELLS = {"LSTM": OpKind.LSTM_CELL, "GRU": OpKind.GRU_CELL, "RNN_TANH": OpKind.RNN_CELL,
          "RNN_RELU": OpKind.RNN_CELL}


def _recurrent(w: _Walker, c: _Call) -> Any:
    """nn.LSTM / GRU / RNN: one cell per layer, direction and time step (cuDNN's
    recurrence), x_t (N, I) and h_{t-1} (N, H) -> h_t; steps after the first are tied."""
    m, x = c.module, c.tensors[0]
    if m.proj_size:
        raise ValueError("LSTM with proj_size")
    s = _ints(x)
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


def _groupnorm(w: _Walker, c: _Call) -> Any:
    """group_norm (groups from the module or argument); instance_norm: one group per channel."""
    x = c.tensors[0]
    groups = (x.shape[1] if c.key == "instance_norm" else c.module.num_groups
              if c.module is not None else c.arg(1, "num_groups"))
    return w.emit(c, OpKind.GROUPNORM, [x], groups=int(groups))


def _pool(kind: str) -> Rule:
    """Pooling with its window as the pool rules' (kh, kw); 1-D and 3-D fold it into kw."""
    def rule(w: _Walker, c: _Call) -> Any:
        x, key = c.tensors[0], c.key.removesuffix("_with_indices")
        dims = int(key[-2]) if key[-2] in "123" else 2
        if key.startswith("adaptive_max"):  # the window each output covers
            k: Any = [-(-i // o) for i, o in zip(_ints(x)[-dims:], c.shape[-dims:], strict=True)]
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
    **_names(lambda w, c: _Const(c.shape), "zeros_like", "ones_like", "full_like",
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


def _module_key(m: Any) -> str | None:
    """The FUNCTIONS key of a torch.nn module we price whole, else None (traced through)."""
    for cls in type(m).__mro__:
        if cls.__module__.startswith("torch.nn.") and cls.__name__ in MODULES:
            same = getattr(type(m), "forward", None) is getattr(cls, "forward", None)
            return MODULES[cls.__name__] if same else None
    return None


def _key(name: str) -> str:
    name = _ALIASES.get(name, name)
    return name[:-1] if name.endswith("_") and name[:-1] in FUNCTIONS else name


# --- tracing: torch.fx first, torch.export where fx cannot -------------------------------

def _tracer(torch: Any) -> Any:
    """An fx Tracer whose leaves are the modules we price whole, and which tags every
    node with the module it was traced in (``meta["perfmodel_scope"]``)."""

    class _Tracer(torch.fx.Tracer):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.scopes: list[str] = []

        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return _module_key(m) is not None

        def call_module(self, m: Any, forward: Any, args: Any, kwargs: Any) -> Any:
            try:
                self.scopes.append(self.path_of_module(m))
            except NameError:  # a module made inside forward: the caller's scope
                self.scopes.append(self.scopes[-1] if self.scopes else "")
            try:
                return super().call_module(m, forward, args, kwargs)
            finally:
                self.scopes.pop()

        def create_node(self, *args: Any, **kwargs: Any) -> Any:
            node = super().create_node(*args, **kwargs)
            node.meta["perfmodel_scope"] = self.scopes[-1] if self.scopes else ""
            return node

    return _Tracer


def _trace_fx(torch: Any, module: Any, inputs: tuple[Any, ...]) -> Any:
    """Symbolic trace, then shapes from the example inputs: fake tensors first (nothing
    computed), the real inputs where an op needs values."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.passes.shape_prop import ShapeProp

    gm = torch.fx.GraphModule(module, _tracer(torch)().trace(module))
    with contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints a failing node's trace
        try:
            ShapeProp(gm, FakeTensorMode(allow_non_fake_inputs=True)).propagate(*inputs)
        except Exception:  # noqa: BLE001 - data-dependent ops: run the real inputs
            with torch.no_grad():
                ShapeProp(gm).propagate(*inputs)
    return gm


def _walk(torch: Any, graph: Any, meta: str, value: Callable[..., Any]) -> None:
    """Every node with a tensor output (``node.meta[meta]``) -> its ``value``."""
    env: dict[Any, Any] = {}
    for node in graph.nodes:
        out = _shapes(node.meta.get(meta))
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), env.get)
        env[node] = None if out is None or node.op == "output" else value(node, args, kwargs,
                                                                           out)


def _input(w: _Walker, name: str, meta: Any) -> Tensor:
    role = "act" if meta.dtype.is_floating_point or meta.dtype.is_complex else "index"
    return w.b.input(name, _shapes(meta), batch=False, role=role)


def _walk_fx(w: _Walker, torch: Any, gm: Any) -> None:
    def value(node: Any, args: Any, kwargs: Any, out: Any) -> Any:
        if node.op == "placeholder":
            return _input(w, node.name, node.meta["tensor_meta"])
        if node.op == "get_attr":
            obj = gm
            for part in node.target.split("."):
                obj = getattr(obj, part)
            return _Weight((obj,), out) if isinstance(obj, torch.nn.Parameter) else _Const(out)
        if node.op == "call_module":
            m, (parent, _, last) = gm.get_submodule(node.target), node.target.rpartition(".")
            return w.call(_Call(_module_key(m) or "", f"{type(m).__module__}."
                                f"{type(m).__qualname__}", parent, last, args, kwargs, out, m,
                                _params([_Weight((p,), ()) for p in m.parameters()])))
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__",
                                                                       str(node.target))
        full = (f"Tensor.{name}" if node.op == "call_method" else
                f"{getattr(node.target, '__module__', None) or 'builtins'}.{name}")
        return w.call(_Call(_key(name), full, node.meta.get("perfmodel_scope", ""), node.name,
                            args, kwargs, out, None, _params((args, kwargs))))

    _walk(torch, gm.graph, "tensor_meta", value)


def _walk_export(w: _Walker, torch: Any, ep: Any, root: Any) -> None:
    params, users = dict(ep.graph_signature.inputs_to_parameters), ep.graph_signature.user_inputs

    def value(node: Any, args: Any, kwargs: Any, out: Any) -> Any:
        if node.op == "placeholder":
            return (_Weight((root.get_parameter(params[node.name]),), out)
                    if node.name in params else _input(w, node.name, node.meta["val"])
                    if node.name in users else _Const(out))
        if node.op != "call_function":
            return None
        packet = getattr(node.target, "overloadpacket", None)
        name = getattr(packet or node.target, "__name__", str(node.target))
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        return w.call(_Call(_key(name), str(node.target) if packet else name,
                            stack[-1][0] if stack else "", node.name, args, kwargs, out, None,
                            _params((args, kwargs))))

    _walk(torch, ep.graph, "val", value)


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """Trace the inference graph; every submodule's mode is put back afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _why(exc: BaseException) -> str:
    """The root cause's first line (ShapeProp wraps the failing op's error)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def _trace(torch: Any, module: Any, inputs: tuple[Any, ...],
           method: str) -> tuple[Callable[[_Walker], None], str]:
    """(walk, tracer) from the first tracer that takes the module, else one SpecError."""
    errors = []
    if method in ("auto", "fx"):
        try:
            gm = _trace_fx(torch, module, inputs)
            return (lambda w: _walk_fx(w, torch, gm)), "torch.fx"
        except Exception as exc:  # noqa: BLE001 - any failure: try export, then report
            errors.append(f"torch.fx: {_why(exc)}")
    if method in ("auto", "export"):
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                ep = torch.export.export(module, inputs)
            return (lambda w: _walk_export(w, torch, ep, module)), "torch.export"
        except Exception as exc:  # noqa: BLE001
            errors.append(f"torch.export: {_why(exc)}")
    raise SpecError(f"cannot trace {type(module).__name__}: " + "; ".join(errors),
                    "make forward traceable (no Python control flow on tensor values) and "
                    "check that the example inputs fit the model")


# --- the public functions ---------------------------------------------------------------

def from_torch(module: Any, example_inputs: Any, *, name: str | None = None,
               method: str = "auto") -> ModelGraph:
    """The ModelGraph of a ``torch.nn.Module`` run on ``example_inputs``.

    ``example_inputs``: a tensor or a tuple of the forward's positional arguments; only
    shapes and dtypes matter. ``method``: ``auto`` (torch.fx, else torch.export), ``fx``
    or ``export``. The module is traced in eval mode (its modes are restored); ops are
    named by module path (``layer1.0.conv1``).

    >>> import torch                                             # doctest: +SKIP
    >>> g = from_torch(torch.nn.Linear(4, 2), torch.zeros(3, 4))  # doctest: +SKIP
    >>> g.params, [str(op.kind) for op in g.ops]                 # doctest: +SKIP
    (10, ['linear'])
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"from_torch takes a torch.nn.Module, not {type(module).__name__}",
                        "pass the model object (e.g. torchvision.models.resnet50())")
    if method not in METHODS:
        raise UnknownNameError(f"unknown trace method {method!r}", did_you_mean(method, METHODS))
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(
        example_inputs)
    with _eval_mode(module):
        walk, how = _trace(torch, module, inputs, method)
    shapes = [tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    cls = type(module)
    w = _Walker(GraphBuilder(
        name or cls.__name__, family="torch", source=f"{cls.__module__}.{cls.__qualname__}",
        tracer=how, input=", ".join("x".join(map(str, s)) for s in shapes), is_llm=False,
        default_batch=int(shapes[0][0]) if shapes and shapes[0] else 1))
    walk(w)
    owners: dict[str, list[tuple[int, ...]]] = {}  # parameters the forward never read
    for pname, p in module.named_parameters():
        if id(p) not in w.seen:
            owners.setdefault(pname.rpartition(".")[0], []).append(tuple(p.shape))
    for owner, weights in owners.items():
        w.add(OpKind.IDENTITY, [], (), owner, "unused_parameters", weights, unused=True)
    return w.b.build()


def from_factory(spec: str, *, batch: int = 1, seq: int | None = None) -> ModelGraph:
    """``pkg.module:factory``: import ``pkg.module``, call ``factory()`` for a torch module
    and trace it (:func:`from_torch`) on an example input of ``batch`` samples: the
    module's own ``example_inputs(batch, seq)`` if it has one, else ``seq`` token ids
    (int64 zeros) when ``seq`` is given, else a 3x224x224 image. The current folder is
    importable. Every failure (no such module or factory, a factory that raises or returns
    no module, a model neither tracer takes) is one PerfModelError.
    """
    module_name, sep, attr = spec.partition(":")
    if not (sep and attr.isidentifier() and all(map(str.isidentifier,
                                                    module_name.split(".")))):
        raise SpecError(f"{spec!r} is not pkg.module:factory",
                        "give the module's dotted path, a colon and the factory's name")
    for what, v in (("batch", batch), ("seq", 1 if seq is None else seq)):
        if not isinstance(v, int) or v < 1:
            raise ShapeError(f"{what} must be a positive integer, got {v!r}", f"use {what} >= 1")
    torch = _torch()
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    sys.path[:0] = [cwd] if added else []
    try:
        mod = _user(spec, f"import {module_name}", importlib.import_module, module_name,
                    hint="check the module path (the current folder and PYTHONPATH are "
                    "searched)")
        factory = getattr(mod, attr, None)
        if not callable(factory):
            names = [n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")]
            raise UnknownNameError(f"{spec}: {module_name!r} has no factory {attr!r}",
                                   did_you_mean(attr, names))
        model = _user(spec, f"{attr}()", factory)
        if not isinstance(model, torch.nn.Module):
            raise SpecError(f"{spec}: {attr}() returned {type(model).__name__}, not a "
                            "torch.nn.Module", "return the model object")
        hook = getattr(mod, "example_inputs", None)
        inputs = (_user(spec, f"example_inputs({batch}, {seq})", hook, batch, seq)
                  if callable(hook) else torch.zeros((batch, seq), dtype=torch.long)
                  if seq is not None else torch.zeros((batch, *IMAGE)))
        graph = from_torch(model, inputs, name=spec)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    meta = {**graph.meta, "factory": spec, **({"default_seq": seq} if seq else {})}
    return ModelGraph(graph.name, graph.ops, graph.edges, graph.inputs, meta, graph.shape)


def _user(spec: str, what: str, fn: Callable[..., Any], *args: Any,
          hint: str = "run it in Python to see the traceback") -> Any:
    """Run the user's code; any failure is one SpecError naming what failed."""
    try:
        return fn(*args)
    except PerfModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code failed
        raise SpecError(f"{spec}: {what} failed: {_why(exc)}", hint) from None
