"""The ONNX importer's rules: which perfmodel op each ONNX node becomes.

``RULES`` maps an ONNX op type onto one small function per family (convolutions, MatMul and
Gemm as ``linear`` or ``matmul``, fused attention, elementwise ops, norms, pools, copies,
views, embedding lookups); ``Patterns`` finds the node chains priced as one op (Erf-GELU,
x*sigmoid(x), x*hardsigmoid(x)). The rules build ops through
:class:`~perfmodel.importers.onnx_walk.Converter`; :mod:`perfmodel.importers.onnx_model`
walks the nodes and calls them. onnx is never imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfmodel.graph.kinds import OpKind
from perfmodel.graph.op import Dim
from perfmodel.importers.onnx_walk import (
    Act,
    Converter,
    Unmapped,
    Value,
    Weight,
    act_inputs,
    attr,
    init_shapes,
    weight_inputs,
)

__all__ = ["RULES", "Rule", "Patterns", "lookup", "WHOLE"]

WHOLE = 99          # keep every dim of an op's tensors one entry (rank-sensitive rules)


# --- rules: one small function per family -----------------------------------------------

Rule = Callable[[Converter, Any, list[Value]], None]


def _op(kind: str, upto: int | None = None, **fixed: Any) -> Rule:
    """Elementwise ops, norms, softmax, concat, copies: the activations in, the weights
    among the first ``upto`` inputs read, the output's shape out."""
    def rule(cv: Converter, node: Any, ins: list[Value]) -> None:
        attrs = {k: f(node, cv) if callable(f) else f for k, f in fixed.items()}
        cv.emit(node, kind, [(n, cv.dims(n)) for n in act_inputs(node, ins, upto)],
                cv.dims(node.output[0]), weight_inputs(ins, upto), **attrs)
    return rule


def _view(kind: str) -> Rule:
    """Views: zero cost on an activation; a view of a weight is still that weight."""
    def rule(cv: Converter, node: Any, ins: list[Value]) -> None:
        if isinstance(ins[0], Weight):
            cv.set_outputs(node, ins[0])
        else:
            cv.emit(node, kind, [(node.input[0], cv.dims(node.input[0]))],
                    cv.dims(node.output[0]))
    return rule


def _split(cv: Converter, node: Any, ins: list[Value]) -> None:
    """Split: each output a view of the input (no op)."""
    cv.set_outputs(node, ins[0])


def lookup(cv: Converter, node: Any, ins: list[Value]) -> None:
    """Gather / Slice: of a weight, an embedding lookup (reads the rows it gathers); of an
    activation, a view (constant indices) or a gather we cannot price (computed ones)."""
    data, idx = ins[0], ins[1] if len(ins) > 1 else None
    if isinstance(data, Weight):
        acts = [(node.input[1], cv.dims(node.input[1]))] if isinstance(idx, Act) else []
        cv.emit(node, OpKind.EMBEDDING, acts, cv.dims(node.output[0]), [data])
    elif node.op_type == "Gather" and isinstance(idx, Act):
        raise Unmapped(node.name)
    else:
        _view(OpKind.RESHAPE)(cv, node, ins)


def _fold(shape: tuple[Dim, ...]) -> tuple[Dim, Dim]:
    """Spatial dims as the conv2d rule's (h, w): 1-D as (1, w), 3-D as (d*h, w)."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if any(isinstance(d, str) for d in shape[:-1]):
        raise Unmapped(str(shape))
    return math.prod(shape[:-1]), shape[-1]  # type: ignore[arg-type]


def _kernel(k: Sequence[int]) -> tuple[int, int]:
    """A kernel as the conv2d and pool rules' (kh, kw), folded as ``_fold`` folds dims."""
    return (int(k[0]), int(k[1])) if len(k) == 2 else (math.prod(k[:-1]), int(k[-1]))


def _conv(cv: Converter, node: Any, ins: list[Value]) -> None:
    """Conv: weight (Co, Ci/groups, *k), MACs = N * Co * out spatial * Ci/groups * prod(k).

    ConvTranspose is the data gradient of the conv from its output to its input (cuDNN runs
    it as that conv's dgrad): weight (Ci, Co/groups, *k), MACs = N * Ci * in spatial *
    Co/groups * prod(k), as fvcore counts it. It is priced as that conv, so its reads and
    writes are swapped: the total bytes are right, not the split between them."""
    if not isinstance(ins[1], Weight) or not isinstance(ins[0], Act):
        raise Unmapped(node.name)
    co, ci_g, *k = cv.concrete(node.input[1])
    x, y = node.input[0], node.output[0]
    if node.op_type == "ConvTranspose":
        x, y = y, x
    batch, c, *spatial = cv.dims(y, WHOLE)
    xb, xc, *xspatial = cv.dims(x, WHOLE)
    groups, n = int(attr(node, "group", 1)), len(k)
    cv.emit(node, OpKind.CONV2D, [(node.input[0], (xb, xc, *_fold(tuple(xspatial))))],
            (batch, c, *_fold(tuple(spatial))), weight_inputs(ins),
            [(co, ci_g, *_kernel(k)), *init_shapes(cv, weight_inputs(ins)[1:])],
            kernel=_kernel(k), stride=tuple(attr(node, "strides", [1] * n)),
            padding=tuple(attr(node, "pads", [0] * 2 * n)[:n]),
            dilation=tuple(attr(node, "dilations", [1] * n)), groups=groups,
            depthwise=groups > 1 and ci_g == 1,
            **({"transposed": True} if node.op_type == "ConvTranspose" else {}))


def _swap(shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
    return (*shape[:-2], shape[-1], shape[-2]) if len(shape) >= 2 else shape


def _product(cv: Converter, node: Any, a: tuple[str, Value, bool],
             b: tuple[str, Value, bool], extra: list[Weight]) -> None:
    """a @ b (each operand maybe transposed): two activations make a matmul; a 2-D weight
    operand a linear (x W: weight (N, K); W x: the linear over x transposed); a weight of
    more dims a matmul reading it as weights."""
    (an, av, ta), (bn, bv, tb) = a, b
    out = node.output[0]
    if isinstance(av, Act) and isinstance(bv, Act):
        ad, bd = cv.dims(an, 2), cv.dims(bn, 2)
        cv.emit(node, OpKind.MATMUL, [(an, _swap(ad) if ta else ad),
                                      (bn, _swap(bd) if tb else bd)], cv.dims(out, 2), extra)
    elif isinstance(av, Act) and isinstance(bv, Weight) and not ta:
        wd = cv.concrete(bn)
        if len(wd) == 2:
            cv.emit(node, OpKind.LINEAR, [(an, cv.dims(an, 1))], cv.dims(out, 1), [bv, *extra],
                    [wd if tb else (wd[1], wd[0]), *init_shapes(cv, extra)])
        elif not tb:
            cv.emit(node, OpKind.MATMUL, [(an, cv.dims(an, 2))], cv.dims(out, 2), [bv, *extra])
        else:
            raise Unmapped(node.name)
    elif isinstance(av, Weight) and isinstance(bv, Act) and not tb \
            and len(wd := cv.concrete(an)) == 2:
        cv.emit(node, OpKind.LINEAR, [(bn, _swap(cv.dims(bn, 2)))], _swap(cv.dims(out, 2)),
                [av, *extra], [(wd[1], wd[0]) if ta else wd, *init_shapes(cv, extra)])
    else:
        raise Unmapped(node.name)


def _matmul(cv: Converter, node: Any, ins: list[Value]) -> None:
    if any(len(cv.shapes.base.get(n) or ()) < 2 for n in node.input[:2]):
        raise Unmapped(node.name)  # a vector operand: numpy's 1-D rules
    _product(cv, node, (node.input[0], ins[0], False), (node.input[1], ins[1], False), [])


def _gemm(cv: Converter, node: Any, ins: list[Value]) -> None:
    """Gemm: A (M, K) x B (K, N) + C, either transposed; a weight C is the bias."""
    _product(cv, node, (node.input[0], ins[0], bool(attr(node, "transA", 0))),
             (node.input[1], ins[1], bool(attr(node, "transB", 0))), weight_inputs(ins[2:]))


def _heads(shape: tuple[Dim, ...], heads: int | None) -> tuple[Dim, ...]:
    """(B, H, S, d) as is; (B, S, H*d) split into ``heads`` heads."""
    if len(shape) == 4:
        return shape
    if not heads or not isinstance(shape[2], int):
        raise Unmapped(str(shape))
    return shape[0], heads, shape[1], shape[2] // heads


def _attention(cv: Converter, node: Any, ins: list[Value]) -> None:
    """ONNX Attention (opset 23): one fused attention op (FlashAttention-style)."""
    if not all(isinstance(v, Act) for v in ins[:3]):
        raise Unmapped(node.name)
    kv = attr(node, "kv_num_heads")
    q, k, v = (_heads(cv.dims(n, WHOLE), h) for n, h in
               zip(node.input[:3], (attr(node, "q_num_heads"), kv, kv), strict=True))
    cv.emit(node, OpKind.ATTENTION, [*zip(node.input[:3], (q, k, v), strict=True),
                                     *((n, cv.dims(n)) for n in act_inputs(node, ins)[3:4])],
            (*q[:3], v[3]), causal=bool(attr(node, "is_causal", 0)))


def _pool(kind: str) -> Rule:
    def rule(cv: Converter, node: Any, ins: list[Value]) -> None:
        k = attr(node, "kernel_shape") or cv.concrete(node.input[0])[2:]  # global: all
        n = len(k)
        _op(kind, 1, kernel=_kernel(k), stride=tuple(attr(node, "strides", [1] * n)),
            padding=tuple(attr(node, "pads", [0] * 2 * n)[:n]))(cv, node, ins)
    return rule


def _names(rule: Rule, *names: str) -> dict[str, Rule]:
    return dict.fromkeys(names, rule)


RULES: dict[str, Rule] = {
    **_names(_conv, "Conv", "ConvTranspose"), "Gemm": _gemm, "MatMul": _matmul,
    "Attention": _attention,
    **_names(_op(OpKind.ADD), "Add", "Sub", "Sum"),  # one FLOP per element each
    # mul and its relatives: one FLOP (or one special-function op) per element
    **_names(_op(OpKind.MUL), "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg"),
    **_names(_op(OpKind.RELU), "Relu", "LeakyRelu", "PRelu"),  # max(x, a x): one select
    "Clip": _op(OpKind.RELU6, 1),  # a clamp: two compares (torch's relu6 exports as Clip)
    "Sigmoid": _op(OpKind.SIGMOID), "Tanh": _op(OpKind.TANH), "Gelu": _op(OpKind.GELU),
    "HardSwish": _op(OpKind.HARDSWISH), "HardSigmoid": _op(OpKind.HARDSIGMOID),
    **_names(_op(OpKind.SOFTMAX), "Softmax", "LogSoftmax"),
    "LayerNormalization": _op(OpKind.LAYERNORM),
    **_names(_op(OpKind.RMSNORM), "RMSNormalization", "SimplifiedLayerNormalization"),
    "BatchNormalization": _op(OpKind.BATCHNORM, 3),  # scale and shift; mean, var are buffers
    "GroupNormalization": _op(OpKind.GROUPNORM, groups=lambda n, cv: attr(n, "num_groups")),
    "InstanceNormalization": _op(OpKind.GROUPNORM,
                                 groups=lambda n, cv: cv.concrete(n.input[0])[1]),
    **_names(_pool(OpKind.MAXPOOL), "MaxPool", "GlobalMaxPool"),
    "AveragePool": _pool(OpKind.AVGPOOL), "GlobalAveragePool": _op(OpKind.ADAPTIVE_AVGPOOL),
    # a mean or sum over dims: one read and one add per input element, as average pooling
    **_names(_op(OpKind.ADAPTIVE_AVGPOOL, 1), "ReduceMean", "ReduceSum"),
    "Concat": _op(OpKind.CONCAT, dim=lambda n, cv: attr(n, "axis")),
    # data movement without arithmetic we count: read the input, write the output
    **_names(_op(OpKind.COPY, 1), "Resize", "Upsample", "Pad", "Tile", "Cast"),
    **_names(_view(OpKind.RESHAPE), "Reshape", "Squeeze", "Unsqueeze", "Expand"),
    "Flatten": _view(OpKind.FLATTEN), "Transpose": _view(OpKind.PERMUTE),
    "Identity": _view(OpKind.IDENTITY), "Dropout": _view(OpKind.DROPOUT),
    **_names(lookup, "Gather", "Slice"), "Split": _split,
}


# --- patterns: several nodes priced as one op -------------------------------------------

@dataclass
class Patterns:
    """x*0.5*(1+erf(x/sqrt 2)) (torch's exact GELU before opset 20) is a gelu, x*sigmoid(x)
    a silu, x*hardsigmoid(x) a hardswish. ``ends``: index of the node ending a pattern ->
    (kind, its input x); ``inner``: the other nodes of the patterns."""

    nodes: Sequence[Any]
    consts: set[str]
    ends: dict[int, tuple[str, str]] = field(default_factory=dict)
    inner: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.made = {o: i for i, n in enumerate(self.nodes) for o in n.output}
        self.readers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for t in n.input:
                self.readers.setdefault(t, []).append(i)
        for i, n in enumerate(self.nodes):
            if n.op_type in ("Sigmoid", "HardSigmoid"):
                m = self.only(i, "Mul")
                if m >= 0 and self.other(m, self.out(i)) == n.input[0]:
                    kind = OpKind.SILU if n.op_type == "Sigmoid" else OpKind.HARDSWISH
                    self.found(m, kind, n.input[0], i)
            elif n.op_type == "Erf":
                self._gelu(i)

    def out(self, i: int) -> str:
        return str(self.nodes[i].output[0])

    def only(self, i: int, op: str) -> int:
        """The one node reading node ``i``'s output, if it is an ``op`` (else -1)."""
        r = self.readers.get(self.out(i), []) if i >= 0 else []
        return r[0] if len(r) == 1 and self.nodes[r[0]].op_type == op else -1

    def other(self, i: int, t: str) -> str:
        """The input of binary node ``i`` that is not ``t``."""
        ins = list(self.nodes[i].input)
        return ins[1] if ins[0] == t else ins[0]

    def found(self, end: int, kind: str, x: str, *inner: int) -> None:
        self.ends[end] = (kind, x)
        self.inner.update(inner)

    def _gelu(self, e: int) -> None:
        d = self.made.get(self.nodes[e].input[0], -1)
        xs = [t for t in self.nodes[d].input if t not in self.consts] if d >= 0 else []
        a = self.only(e, "Add")
        m1 = self.only(a, "Mul")
        if (len(xs) != 1 or self.nodes[d].op_type not in ("Div", "Mul") or m1 < 0
                or self.only(d, "Erf") != e or self.other(a, self.out(e)) not in self.consts):
            return
        x, half = xs[0], self.other(m1, self.out(a))
        m2 = self.only(m1, "Mul")
        h = self.made.get(half, -1)
        if half == x and m2 >= 0 and self.other(m2, self.out(m1)) in self.consts:
            self.found(m2, OpKind.GELU, x, d, e, a, m1)  # (x * (1 + erf)) * 0.5
        elif h >= 0 and self.nodes[h].op_type == "Mul" and self.only(h, "Mul") == m1 \
                and self.other(h, x) in self.consts:
            self.found(m1, OpKind.GELU, x, d, e, a, h)  # (x * 0.5) * (1 + erf)
