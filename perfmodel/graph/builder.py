"""GraphBuilder: add layers, get shapes inferred, build a ModelGraph.

Reads like a paper's architecture table::

    b = GraphBuilder("tiny")
    x = b.input("image", (3, 32, 32))          # batch dim "B" is prepended
    x = b.relu(b.conv2d(x, 16, 3, padding=1))
    x = b.linear(b.flatten(x), 10)
    g = b.build()

Shapes use the symbols of :mod:`perfmodel.graph.op` (B, S, T, L) where they depend on
the workload; weights are always concrete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from perfmodel.errors import ShapeError
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Dim, Op, TensorSpec
from perfmodel.graph.shape import ModelShape

__all__ = ["GraphBuilder", "Tensor"]


@dataclass(frozen=True)
class Tensor:
    """A handle to a tensor in the graph being built: its producer op (or None) and spec."""

    producer: str | None
    spec: TensorSpec

    @property
    def shape(self) -> tuple[Dim, ...]:
        return self.spec.shape


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _check_positive(name: str, *, minimum: int = 1, **values: Any) -> None:
    """Every value (or tuple entry) must be an int >= minimum (1, or 0 for padding)."""
    for key, v in values.items():
        for x in (v if isinstance(v, tuple | list) else (v,)):
            if not isinstance(x, int) or x < minimum:
                what = "a positive integer" if minimum else "an integer >= 0"
                raise ShapeError(f"{name}: {key} must be {what}, got {v!r}",
                                 f"use {key} >= {minimum}")


def _broadcast(x: tuple[Dim, ...], y: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """Broadcast two batch shapes (numpy rules: align right, 1 stretches)."""
    n = max(len(x), len(y))
    x, y = (1,) * (n - len(x)) + x, (1,) * (n - len(y)) + y
    out: list[Dim] = []
    for p, q in zip(x, y, strict=True):
        if p != q and 1 not in (p, q):
            raise ShapeError(f"matmul: batch dims {x} and {y} do not broadcast",
                             "batch dims must be equal or 1")
        out.append(q if p == 1 else p)
    return tuple(out)


def _conv_out(size: Dim, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    if isinstance(size, str):
        raise ShapeError(f"spatial size {size!r} must be concrete", "give the input H and W")
    span = size + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise ShapeError(f"kernel {k} (dilation {d}) is larger than padded input {size + 2 * p}",
                         "use a larger input or more padding")
    out = -(-span // s) + 1 if ceil else span // s + 1
    if ceil and (out - 1) * s >= size + p:  # PyTorch: last window must start inside input
        out -= 1
    return out


class GraphBuilder:
    """Collects ops with inferred shapes; ``build()`` freezes them into a ModelGraph.

    ``shape`` (transformers) is carried on the graph for the models that read dimensions;
    ``meta`` (family, source, default_batch, ...) goes to ``ModelGraph.meta``.
    """

    def __init__(self, name: str, *, shape: ModelShape | None = None, **meta: Any) -> None:
        self.name = name
        self.shape = shape
        self.meta: dict[str, Any] = dict(meta)
        self._ops: list[Op] = []
        self._edges: list[tuple[str, str]] = []
        self._inputs: list[TensorSpec] = []
        self._names: set[str] = set()
        self._counts: dict[str, int] = {}
        self._scope: list[str] = []

    # --- bookkeeping --------------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Name ops inside as ``<scope>.<op>`` and tag them with the layer ``<scope>``."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def _name(self, kind: str, name: str | None) -> str:
        if name is None:
            n = self._counts.get(kind, 0)
            self._counts[kind] = n + 1
            name = f"{kind}{n}" if n else kind
        full = ".".join([*self._scope, name])
        while full in self._names:
            n = self._counts.get(full, 0) + 1
            self._counts[full] = n
            full = f"{'.'.join([*self._scope, name])}_{n}"
        self._names.add(full)
        return full

    def add_op(self, kind: str, inputs: Sequence[Tensor], out_shape: tuple[Dim, ...], *,
               weights: Sequence[tuple[Dim, ...]] = (), name: str | None = None,
               role: str = "act", tied: bool = False, **attrs: Any) -> Tensor:
        """Append one op; the general entry point every layer method uses."""
        op_name = self._name(str(kind), name)
        out = TensorSpec(tuple(out_shape), role)
        op = Op(name=op_name, kind=kind, inputs=tuple(t.spec for t in inputs), outputs=(out,),
                weights=tuple(TensorSpec(tuple(w), "weight") for w in weights),
                attrs=attrs, layer=".".join(self._scope), tied=tied)
        self._ops.append(op)
        self._edges.extend((t.producer, op_name) for t in inputs if t.producer)
        return Tensor(op_name, out)

    def input(self, name: str, shape: Sequence[Dim], *, batch: bool = True,
              role: str = "act") -> Tensor:
        """A graph input; ``batch=True`` prepends the symbolic batch dimension B."""
        full = ("B", *shape) if batch else tuple(shape)
        for d in full:
            if isinstance(d, int) and d <= 0:
                raise ShapeError(f"input {name!r} has a non-positive size in {tuple(shape)}",
                                 "use sizes >= 1")
        spec = TensorSpec(tuple(full), role)
        self._inputs.append(spec)
        return Tensor(None, spec)

    def build(self) -> ModelGraph:
        return ModelGraph(self.name, tuple(self._ops), tuple(dict.fromkeys(self._edges)),
                          tuple(self._inputs), dict(self.meta), self.shape)

    # --- convolution and linear ---------------------------------------------------------
    def conv2d(self, x: Tensor, out_channels: int, kernel: int | Sequence[int],
               stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
               dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True,
               name: str | None = None) -> Tensor:
        """2-D convolution on (N, C, H, W). Depthwise is groups = C."""
        n, c, h, w = x.shape
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride)
        ph, pw = _pair(padding)
        dh, dw = _pair(dilation)
        _check_positive("conv2d", out_channels=out_channels, kernel=(kh, kw), groups=groups,
                        stride=(sh, sw), dilation=(dh, dw))
        _check_positive("conv2d", minimum=0, padding=(ph, pw))
        if c % groups or out_channels % groups:  # type: ignore[operator]
            raise ShapeError(f"conv2d: groups={groups} must divide in ({c}) and out "
                             f"({out_channels}) channels", "pick groups dividing both")
        ho, wo = _conv_out(h, kh, sh, ph, dh), _conv_out(w, kw, sw, pw, dw)
        weights: list[tuple[Dim, ...]] = [(out_channels, int(c) // groups, kh, kw)]
        weights += [(out_channels,)] if bias else []
        return self.add_op(OpKind.CONV2D, [x], (n, out_channels, ho, wo), weights=weights,
                           name=name, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw),
                           dilation=(dh, dw), groups=groups,
                           depthwise=groups == c and groups > 1)

    def linear(self, x: Tensor, out_features: int, bias: bool = True, name: str | None = None,
               experts: int = 0, top_k: int = 1, tied: bool = False) -> Tensor:
        """y = x W^T + b over the last dim; ``experts`` > 0 makes a mixture-of-experts layer."""
        in_f = x.shape[-1]
        _check_positive("linear", out_features=out_features)
        w: tuple[Dim, ...] = (out_features, in_f)
        weights = [(experts, *w) if experts else w]
        if bias:
            weights.append((experts, out_features) if experts else (out_features,))
        attrs: dict[str, Any] = {"experts": experts, "top_k": top_k} if experts else {}
        return self.add_op(OpKind.LINEAR, [x], (*x.shape[:-1], out_features), weights=weights,
                           name=name, tied=tied, **attrs)

    def matmul(self, a: Tensor, b: Tensor, name: str | None = None,
               kind: str = OpKind.MATMUL) -> Tensor:
        """(..., M, K) @ (..., K, N) -> (..., M, N); leading dims broadcast as in torch.matmul."""
        if len(a.shape) < 2 or len(b.shape) < 2 or a.shape[-1] != b.shape[-2]:
            raise ShapeError(f"matmul: inner dims differ: {a.shape} @ {b.shape}",
                             "the last dim of a must equal the second-to-last of b")
        lead = _broadcast(a.shape[:-2], b.shape[:-2])
        return self.add_op(kind, [a, b], (*lead, a.shape[-2], b.shape[-1]), name=name)

    # --- attention ----------------------------------------------------------------------
    def attn_score(self, q: Tensor, k: Tensor, causal: bool = False,
                   name: str | None = None) -> Tensor:
        """Q (B,H,Q,d) x K (B,Hkv,T,d) -> scores (B,H,Q,T)."""
        b, h, sq, _ = q.shape
        return self.add_op(OpKind.ATTN_SCORE, [q, k], (b, h, sq, k.shape[2]), name=name,
                           causal=causal)

    def attn_context(self, p: Tensor, v: Tensor, causal: bool = False,
                     name: str | None = None) -> Tensor:
        """P (B,H,Q,T) x V (B,Hkv,T,d) -> (B,H,Q,d)."""
        b, h, sq, _ = p.shape
        return self.add_op(OpKind.ATTN_CONTEXT, [p, v], (b, h, sq, v.shape[3]), name=name,
                           causal=causal)

    def attention(self, q: Tensor, k: Tensor, v: Tensor, causal: bool = False,
                  name: str | None = None) -> Tensor:
        """Fused attention: Q (B,H,Q,d), K and V (B,Hkv,T,d) -> O (B,H,Q,d)."""
        h, hkv = q.shape[1], k.shape[1]
        if isinstance(h, int) and isinstance(hkv, int) and h % hkv:
            raise ShapeError(f"attention: {h} query heads not divisible by {hkv} kv heads",
                             "num_heads must be a multiple of num_kv_heads")
        return self.add_op(OpKind.ATTENTION, [q, k, v], q.shape, name=name, causal=causal)

    # --- normalization, activations, elementwise ----------------------------------------
    def batchnorm(self, x: Tensor, name: str | None = None) -> Tensor:
        """BatchNorm over channel dim 1: 2*C parameters (running stats are buffers)."""
        return self.add_op(OpKind.BATCHNORM, [x], x.shape, weights=[(x.shape[1],)] * 2,
                           name=name)

    def layernorm(self, x: Tensor, bias: bool = True, name: str | None = None,
                  channels_dim: int = -1) -> Tensor:
        c = x.shape[channels_dim]
        return self.add_op(OpKind.LAYERNORM, [x], x.shape,
                           weights=[(c,)] * (2 if bias else 1), name=name)

    def rmsnorm(self, x: Tensor, name: str | None = None) -> Tensor:
        return self.add_op(OpKind.RMSNORM, [x], x.shape, weights=[(x.shape[-1],)], name=name)

    def groupnorm(self, x: Tensor, groups: int, name: str | None = None) -> Tensor:
        c = x.shape[1]
        if isinstance(c, int) and c % groups:
            raise ShapeError(f"groupnorm: {groups} groups do not divide {c} channels",
                             "pick groups dividing the channel count")
        return self.add_op(OpKind.GROUPNORM, [x], x.shape, weights=[(c,)] * 2, name=name,
                           groups=groups)

    def act(self, x: Tensor, kind: str, name: str | None = None) -> Tensor:
        """An elementwise activation (relu, relu6, gelu, silu, sigmoid, tanh, hardswish, ...)."""
        return self.add_op(OpKind(kind), [x], x.shape, name=name)

    def relu(self, x: Tensor, name: str | None = None) -> Tensor:
        return self.act(x, OpKind.RELU, name)

    def softmax(self, x: Tensor, name: str | None = None) -> Tensor:
        return self.add_op(OpKind.SOFTMAX, [x], x.shape, name=name)

    def add(self, *xs: Tensor, name: str | None = None) -> Tensor:
        shapes = {x.shape for x in xs}
        if len(shapes) != 1:
            raise ShapeError(f"add: shapes differ: {sorted(map(str, shapes))}",
                             "residual branches must produce the same shape")
        return self.add_op(OpKind.ADD, list(xs), xs[0].shape, name=name)

    def mul(self, x: Tensor, other: Tensor | None = None, *, weight: tuple[int, ...] = (),
            name: str | None = None) -> Tensor:
        """x * other (broadcast, e.g. squeeze-excite scale), or x * a learned weight."""
        ins = [x] if other is None else [x, other]
        return self.add_op(OpKind.MUL, ins, x.shape, weights=[weight] if weight else [],
                           name=name)

    def rope(self, x: Tensor, name: str | None = None) -> Tensor:
        return self.add_op(OpKind.ROPE, [x], x.shape, name=name)

    def copy(self, x: Tensor, role: str = "act", name: str | None = None) -> Tensor:
        """A copy kernel, e.g. writing new keys/values into the KV cache (role 'kv')."""
        return self.add_op(OpKind.COPY, [x], x.shape, name=name, role=role)

    # --- pooling and data movement ------------------------------------------------------
    def _pool(self, kind: OpKind, x: Tensor, kernel: int | Sequence[int],
              stride: int | Sequence[int] | None, padding: int | Sequence[int],
              ceil_mode: bool, name: str | None) -> Tensor:
        n, c, h, w = x.shape
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride if stride is not None else kernel)
        ph, pw = _pair(padding)
        _check_positive(str(kind), kernel=(kh, kw), stride=(sh, sw))
        _check_positive(str(kind), minimum=0, padding=(ph, pw))
        if 2 * ph > kh or 2 * pw > kw:  # PyTorch: "pad should be at most half of kernel size"
            raise ShapeError(f"{kind}: padding {padding} exceeds half the kernel {kernel}",
                             "use padding <= kernel // 2")
        ho, wo = _conv_out(h, kh, sh, ph, 1, ceil_mode), _conv_out(w, kw, sw, pw, 1, ceil_mode)
        return self.add_op(kind, [x], (n, c, ho, wo), name=name, kernel=(kh, kw),
                           stride=(sh, sw), padding=(ph, pw))

    def maxpool(self, x: Tensor, kernel: int | Sequence[int],
                stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
                ceil_mode: bool = False, name: str | None = None) -> Tensor:
        return self._pool(OpKind.MAXPOOL, x, kernel, stride, padding, ceil_mode, name)

    def avgpool(self, x: Tensor, kernel: int | Sequence[int],
                stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
                ceil_mode: bool = False, name: str | None = None) -> Tensor:
        return self._pool(OpKind.AVGPOOL, x, kernel, stride, padding, ceil_mode, name)

    def adaptive_avgpool(self, x: Tensor, output_size: int | Sequence[int] = 1,
                         name: str | None = None) -> Tensor:
        """Adaptive average pooling to ``output_size`` (1 = global average pooling)."""
        n, c = x.shape[:2]
        oh, ow = _pair(output_size)
        _check_positive("adaptive_avgpool", output_size=(oh, ow))
        return self.add_op(OpKind.ADAPTIVE_AVGPOOL, [x], (n, c, oh, ow), name=name)

    def concat(self, xs: Sequence[Tensor], dim: int = 1, name: str | None = None) -> Tensor:
        ref = list(xs[0].shape)
        for x in xs[1:]:
            other = list(x.shape)
            same = len(other) == len(ref) and all(
                a == b for i, (a, b) in enumerate(zip(ref, other, strict=True))
                if i != dim % len(ref))
            if not same:
                raise ShapeError(f"concat: shapes {xs[0].shape} and {x.shape} differ outside "
                                 f"dim {dim}", "concatenated tensors must match elsewhere")
        total = sum(int(x.shape[dim]) for x in xs)
        ref[dim] = total
        return self.add_op(OpKind.CONCAT, list(xs), tuple(ref), name=name, dim=dim)

    def channel_shuffle(self, x: Tensor, groups: int, name: str | None = None) -> Tensor:
        c = x.shape[1]
        _check_positive("channel_shuffle", groups=groups)
        if isinstance(c, int) and c % groups:
            raise ShapeError(f"channel_shuffle: {groups} groups do not divide {c} channels",
                             "pick groups dividing the channel count")
        return self.add_op(OpKind.CHANNEL_SHUFFLE, [x], x.shape, name=name, groups=groups)

    def flatten(self, x: Tensor, start_dim: int = 1, name: str | None = None) -> Tensor:
        rest = x.shape[start_dim:]
        if any(isinstance(d, str) for d in rest):
            raise ShapeError("flatten over a symbolic dimension", "flatten concrete dims only")
        size = 1
        for d in rest:
            size *= int(d)
        return self.add_op(OpKind.FLATTEN, [x], (*x.shape[:start_dim], size), name=name)

    def reshape(self, x: Tensor, shape: Sequence[Dim], name: str | None = None) -> Tensor:
        return self.add_op(OpKind.RESHAPE, [x], tuple(shape), name=name)

    def permute(self, x: Tensor, order: Sequence[int], name: str | None = None) -> Tensor:
        return self.add_op(OpKind.PERMUTE, [x], tuple(x.shape[i] for i in order), name=name)

    def dropout(self, x: Tensor, name: str | None = None) -> Tensor:
        return self.add_op(OpKind.DROPOUT, [x], x.shape, name=name)

    def slice(self, x: Tensor, dim: int, size: Dim, name: str | None = None) -> Tensor:
        """A view selecting ``size`` entries along ``dim`` (e.g. the class token)."""
        shape = list(x.shape)
        shape[dim] = size
        return self.add_op(OpKind.RESHAPE, [x], tuple(shape), name=name)

    # --- embeddings and recurrent cells -------------------------------------------------
    def embedding(self, idx: Tensor, num: int, dim: int, name: str | None = None) -> Tensor:
        """Table lookup: indices (..., ) -> (..., dim); the table has num x dim parameters."""
        _check_positive("embedding", num=num, dim=dim)
        return self.add_op(OpKind.EMBEDDING, [idx], (*idx.shape, dim), weights=[(num, dim)],
                           name=name)

    def recurrent_cell(self, kind: str, x: Tensor, h: Tensor | None, hidden: int,
                       tied: bool = False, bias: bool = True,
                       name: str | None = None) -> Tensor:
        """One time step of an RNN/LSTM/GRU layer: x (N, I), h (N, H) -> h' (N, H).

        PyTorch's parameter layout: W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh (G*H).
        Cells after the first time step are ``tied`` to it (same weights).
        """
        gates = {OpKind.RNN_CELL: 1, OpKind.LSTM_CELL: 4, OpKind.GRU_CELL: 3}[OpKind(kind)]
        n, i = x.shape
        weights: list[tuple[Dim, ...]] = [(gates * hidden, i), (gates * hidden, hidden)]
        if bias:
            weights += [(gates * hidden,), (gates * hidden,)]
        ins = [x] if h is None else [x, h]
        return self.add_op(kind, ins, (n, hidden), weights=weights, name=name, tied=tied,
                           hidden=hidden)
