"""An ONNX model file -> :class:`~perfmodel.graph.model_graph.ModelGraph`.

``load_onnx(path, batch=, seq=)`` reads the file with ``onnx`` (only the weights' dims, never
their data), infers every tensor's shape and maps each node onto a perfmodel op kind
(``RULES``), so the cost rules of :mod:`perfmodel.graph.costs` price it. A weight operand
makes MatMul/Gemm a ``linear``, two activations a ``matmul``; Erf-GELU, x*sigmoid(x) and
x*hardsigmoid(x) are priced as one gelu, silu or hardswish; Gather/Slice of a weight is an
embedding lookup; resizing and padding are copies (bytes, no arithmetic); views cost
nothing. Any other node becomes an op whose kind names it (``onnx.Where``,
``onnx.com.microsoft.FusedConv``): it has no cost rule, so the workload lists it as
unsupported instead of pricing it at zero.

Parameters are the floating-point initializers (more than one element) that reach an op as
weights, each counted once however many ops read it; BatchNorm running statistics are
buffers, as in torch; Constant nodes are constants.

Dynamic dims: a graph input's dim_param (or unnamed dim) is the batch (``batch``-like names,
else axis 0) or the sequence (``seq``-like names, else axis 1). Shapes are inferred at the
requested batch and seq and once more with each one larger, so every dim that grows with
them becomes the symbol ``B`` or ``S`` (:mod:`perfmodel.graph.op`), and ``build_workload``
prices the graph at any batch and seq, as a zoo model. A dim that is no multiple of them
(S+1 after a class token) keeps the whole graph at the sizes it was loaded with
(``meta["fixed_dims"]``, and a warning).

onnx is imported on first use (``pip install ".[onnx]"``); the core never needs it.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfmodel.errors import PerfModelError, ShapeError, SpecError
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Dim, TensorSpec

__all__ = ["load_onnx", "RULES", "INSTALL"]

log = logging.getLogger(__name__)

INSTALL = 'pip install ".[onnx]"'
BATCH_NAME = re.compile(r"batch|^(n|b|bs)$", re.IGNORECASE)
SEQ_NAME = re.compile(r"seq|len|token|time|step|position|^(s|t)$", re.IGNORECASE)
WHOLE = 99          # keep every dim of an op's tensors one entry (rank-sensitive rules)
INLINE_LIMIT = 64   # float initializers at most this big stay in the shape-inference model
FOLD_LIMIT = 4096   # shape computations folded for shape inference: at most this big
FOLD_ROUNDS = 4     # infer, fold what became known, infer again
SHAPE_OPS = frozenset({"Shape", "Size"})  # outputs are constants, whatever the input
# never folded: they make big tensors from a shape (whose output shapes infer without it)
NO_FOLD = frozenset({"ConstantOfShape", "Expand", "Tile", "If", "Loop", "Scan"})
Shapes = dict[str, tuple[int | None, ...]]


def _onnx() -> Any:
    """onnx, or one PerfModelError naming the install command."""
    try:
        return importlib.import_module("onnx")
    except ImportError:
        raise PerfModelError("reading .onnx files needs the onnx package, which is not "
                             "installed", INSTALL) from None


# --- values flowing along the graph -----------------------------------------------------

@dataclass(frozen=True)
class _Act:
    """An activation: the perfmodel op that produced it (None for a graph input)."""

    producer: str | None


@dataclass(frozen=True)
class _Weight:
    """Initializers (or a view of them) reaching an op: counted on the op that reads them."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class _Const:
    """A constant: Constant nodes, integer and scalar initializers, shapes of tensors."""


Value = _Act | _Weight | _Const | None
Factor = tuple[int, tuple[str, ...]]  # a dim as coefficient x symbols: 12 B is (12, ("B",))


class _Fixed(Exception):
    """A dim that is no multiple of the symbols: the graph keeps concrete shapes."""


class _Unmapped(Exception):
    """A node its rule cannot map (a computed weight, a 1-D operand): priced as unsupported."""


# --- reading and shape inference --------------------------------------------------------

def _read(onnx: Any, path: Path) -> Any:
    """The model proto without its weights' data, or one SpecError saying what is wrong."""
    hint = "give an .onnx model file (torch.onnx.export, tf2onnx, optimum-cli export onnx)"
    problem = ("no such file" if not path.exists() else "not a file" if not path.is_file()
               else "the file is empty" if path.stat().st_size == 0 else "")
    if problem:
        raise SpecError(f"{path}: {problem}", hint)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the bytes are no model
        why = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise SpecError(f"{path}: not an ONNX model ({type(exc).__name__}: {why})",
                        hint) from None
    if not model.HasField("graph") or not model.graph.node:
        raise SpecError(f"{path}: not an ONNX model (no graph nodes)", hint)
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"
    return model


def _dtype(onnx: Any, elem_type: int) -> str:
    """``float``, ``int`` (integers and bools) or ``other`` for an ONNX element type."""
    name = str(onnx.TensorProto.DataType.Name(elem_type))
    return ("float" if "FLOAT" in name or name == "DOUBLE"
            else "int" if name.startswith(("INT", "UINT")) or name == "BOOL" else "other")


def _light(onnx: Any, model: Any, folder: Path) -> tuple[Any, list[Any]]:
    """A copy for shape inference, and its real inputs: big float initializers become typed
    inputs (their values never matter); the others stay, their external data loaded (Reshape
    targets, Resize scales). Declared shapes are dropped but for custom-domain outputs."""
    g, helper = model.graph, onnx.helper
    big = {t.name for t in g.initializer
           if _dtype(onnx, t.data_type) == "float" and math.prod(t.dims) > INLINE_LIMIT}
    kept = []
    for t in g.initializer:
        if t.name not in big:
            kept.append(onnx.TensorProto())
            kept[-1].CopyFrom(t)
            if t.data_location == onnx.TensorProto.EXTERNAL:
                onnx.external_data_helper.load_external_data_for_tensor(kept[-1], str(folder))
    inputs = [i for i in g.input if i.name not in {t.name for t in g.initializer}]
    custom = {o for n in g.node if n.domain not in ("", "ai.onnx") for o in n.output}
    graph = helper.make_graph(
        list(g.node), g.name or "graph", [*inputs, *(helper.make_tensor_value_info(
            t.name, t.data_type, list(t.dims)) for t in g.initializer if t.name in big)],
        [helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None)
         for o in g.output], initializer=kept,
        value_info=[v for v in g.value_info if v.name in custom and all(
            d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)])
    light = helper.make_model(graph, opset_imports=list(model.opset_import),
                              ir_version=max(model.ir_version, 4))
    return light, list(light.graph.input)[:len(inputs)]


def _dynamic_dims(inputs: list[Any]) -> dict[tuple[str, int], str]:
    """(input, axis) -> symbol for every dynamic dim of the real graph inputs."""
    out: dict[tuple[str, int], str] = {}
    for i in inputs:
        t = i.type.tensor_type
        if not t.HasField("shape"):
            raise ShapeError(f"input {i.name!r} has no shape",
                             "export the model with input shapes (torch.onnx.export does)")
        for axis, d in enumerate(t.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            name = d.dim_param
            sym = ("B" if BATCH_NAME.search(name) else "S" if SEQ_NAME.search(name)
                   else {0: "B", 1: "S"}.get(axis))
            if sym is None:
                raise ShapeError(
                    f"input {i.name!r} dim {axis} ({name or 'unnamed'}) is dynamic, and only "
                    "batch and sequence dims can be",
                    "fix it first: onnx.tools.update_model_dims.update_inputs_outputs_dims")
            out[(i.name, axis)] = sym
    return out


def _infer(onnx: Any, light: Any, dynamic: dict[tuple[str, int], str],
           sizes: dict[str, int]) -> tuple[Shapes, dict[str, int]]:
    """Every tensor's shape and element type with the dynamic dims set to ``sizes``.

    ONNX shape inference cannot see through values computed from tensor shapes (torch's
    ``arange(seq)`` is Shape -> Gather -> Range), so those nodes are evaluated (onnx's
    reference evaluator), replaced by their values, and shapes inferred again."""
    m = onnx.ModelProto()
    m.CopyFrom(light)
    for i in m.graph.input:
        for axis, d in enumerate(i.type.tensor_type.shape.dim):
            if (i.name, axis) in dynamic:
                d.Clear()
                d.dim_value = sizes[dynamic[(i.name, axis)]]
    for _ in range(FOLD_ROUNDS):
        g = onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=True,
                                              data_prop=True).graph
        shapes: Shapes = {t.name: tuple(t.dims) for t in g.initializer}
        types = {t.name: t.data_type for t in g.initializer}
        for v in (*g.input, *g.value_info, *g.output):
            t = v.type.tensor_type
            types[v.name] = t.elem_type
            if t.HasField("shape"):
                shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                       for d in t.shape.dim)
        if not _fold_constants(onnx, m, shapes):
            break
    return shapes, types


def _fold_constants(onnx: Any, m: Any, shapes: Shapes) -> bool:
    """Replace the nodes computed from constants and known shapes by initializers holding
    their values (none over FOLD_LIMIT elements); True if any was replaced."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    np = importlib.import_module("numpy")
    known = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    opsets = {o.domain: o.version for o in m.opset_import}
    keep, folded = [], []
    for node in m.graph.node:
        shape = shapes.get(node.input[0]) if node.input else None
        try:
            if node.op_type in SHAPE_OPS and shape is not None and None not in shape:
                dims = np.array(shape, dtype=np.int64)
                lo, hi = _attr(node, "start", 0), _attr(node, "end", len(dims))
                outs = [dims[lo:hi] if node.op_type == "Shape" else np.array(dims.prod())]
            elif node.op_type in NO_FOLD or node.op_type.startswith("Random") or \
                    node.domain not in ("", "ai.onnx") or any(i and i not in known
                                                              for i in node.input):
                raise _Unmapped(node.op_type)
            else:
                outs = list(ReferenceEvaluator(node, opsets=opsets).run(
                    None, {i: known[i] for i in node.input if i}))
        except Exception:  # not computable here: the node stays for shape inference
            outs = []
        if not outs or any(np.asarray(o).size > FOLD_LIMIT for o in outs):
            keep.append(node)
            continue
        for name, value in zip(node.output, outs, strict=False):
            known[name] = np.asarray(value)
            folded.append(numpy_helper.from_array(known[name], name))
    if folded:
        del m.graph.node[:]
        m.graph.node.extend(keep)
        m.graph.initializer.extend(folded)
    return bool(folded)


@dataclass
class _Shapes:
    """The inferred shapes at the requested sizes (``base``) and, per symbol, at that symbol
    one larger (``probes``: symbol, its value, that run's shapes; none: fixed shapes)."""

    base: Shapes
    probes: list[tuple[str, int, Shapes]]

    def factors(self, name: str) -> tuple[Factor, ...] | None:
        """Each dim of ``name`` as coefficient x symbols; None if its shape is unknown."""
        base = self.base.get(name)
        if base is None or any(d is None or d <= 0 for d in base):
            return None
        out: list[Factor] = []
        for axis, d in enumerate(base):
            v = int(d or 0)
            c, syms = v, tuple[str, ...]()
            for sym, value, run in self.probes:
                other = run.get(name)
                if other is None or len(other) != len(base) or other[axis] is None:
                    raise _Fixed(name)
                w = int(other[axis] or 0)
                if w == v:
                    continue
                if v * (value + 1) != w * value or c % value:  # not proportional to sym
                    raise _Fixed(name)
                c, syms = c // value, (*syms, sym)
            out.append((c, syms))
        return tuple(out)


def _expand(factors: tuple[Factor, ...], keep: int) -> tuple[Dim, ...]:
    """Dims as perfmodel shape entries: 12 B becomes two dims (B, 12), B S two (B, S), which
    keeps numel and GEMM rows; the last ``keep`` dims must stay one entry each."""
    out: list[Dim] = []
    for i, (c, syms) in enumerate(factors):
        if not syms or (c == 1 and len(syms) == 1):
            out.append(syms[0] if syms else c)
        elif i < len(factors) - keep:
            out.extend([*syms, *([c] if c != 1 else [])])
        else:
            raise _Fixed(str(factors))
    return tuple(out)


# --- the walk: nodes -> ops -------------------------------------------------------------

@dataclass
class _Converter:
    """Builds the graph node by node; remembers which initializers are already counted."""

    onnx: Any
    b: GraphBuilder
    shapes: _Shapes
    types: dict[str, int]
    inits: dict[str, tuple[int, ...]]
    where: str
    values: dict[str, Value] = field(default_factory=dict)
    producers: dict[str, Any] = field(default_factory=dict)
    claimed: set[str] = field(default_factory=set)

    def dims(self, name: str, keep: int = 0, required: bool = True) -> tuple[Dim, ...]:
        f = self.shapes.factors(name)
        if f is not None:
            return _expand(f, keep)
        if not required:
            return ()
        node = self.producers.get(name)
        made = f" (output of {node.op_type} node {node.name!r})" if node is not None else ""
        raise ShapeError(f"{self.where}: the shape of tensor {name!r}{made} cannot be "
                         "inferred", "ONNX shape inference needs every op to be known to it; "
                         "declare the tensor's shape in the model's value_info")

    def concrete(self, name: str) -> tuple[int, ...]:
        f = self.shapes.factors(name) if name not in self.inits else None
        if name not in self.inits and (f is None or any(syms for _, syms in f)):
            raise _Unmapped(name)
        return self.inits[name] if f is None else tuple(c for c, _ in f)

    def producer(self, name: str) -> str | None:
        v = self.values.get(name)
        return v.producer if isinstance(v, _Act) else None

    def claim(self, node: Any, names: list[str], specs: list[tuple[int, ...]]) -> bool:
        """Count ``names`` once: True (tied) when the op must not count them again. When the
        op's weight specs do not hold exactly these initializers (a slice, a computed
        weight), the new ones ride on a zero-cost identity op of their own."""
        new = [n for n in names if n not in self.claimed]
        self.claimed.update(new)
        exact = sum(map(math.prod, specs)) == sum(math.prod(self.inits[n]) for n in names)
        if not names or (len(new) == len(names) and exact):
            return False
        if new:
            self.b.add_op(OpKind.IDENTITY, [], (), weights=[self.inits[n] for n in new],
                          name=f"{node.name.lstrip('/')}.params")
        return True

    def emit(self, node: Any, kind: str, inputs: Sequence[tuple[str, tuple[Dim, ...]]],
             out: tuple[Dim, ...], weights: Sequence[_Weight] = (),
             specs: list[tuple[int, ...]] | None = None, **attrs: Any) -> None:
        """One op for ``node``: inputs as (tensor, shape), its weight specs (default: the
        initializers' shapes); every output of the node becomes its activation."""
        names = list(dict.fromkeys(n for w in weights for n in w.names))
        specs = [self.inits[n] for n in names] if specs is None else specs
        tied = self.claim(node, names, specs)
        ins = [Tensor(self.producer(n), TensorSpec(s, "index" if _dtype(
            self.onnx, self.types.get(n, 1)) == "int" else "act")) for n, s in inputs]
        t = self.b.add_op(kind, ins, out, weights=specs, name=node.name.lstrip("/"),
                          tied=tied, onnx_op=node.op_type, **attrs)
        self.set_outputs(node, _Act(t.producer))

    def unsupported(self, node: Any, ins: list[Value]) -> None:
        domain = "" if node.domain in ("", "ai.onnx") else f"{node.domain}."
        out = self.dims(node.output[0], required=False) if node.output else ()
        self.emit(node, f"onnx.{domain}{node.op_type}",
                  [(n, self.dims(n)) for n in _acts(node, ins)], out, _weights(ins))

    def set_outputs(self, node: Any, value: Value) -> None:
        self.values.update((o, value) for o in node.output if o)


def _attr(node: Any, name: str, default: Any = None) -> Any:
    helper = importlib.import_module("onnx.helper")
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name),
                default)


def _acts(node: Any, ins: list[Value], upto: int | None = None) -> list[str]:
    return [n for n, v in zip(node.input[:upto], ins[:upto], strict=False)
            if isinstance(v, _Act)]


def _weights(ins: list[Value], upto: int | None = None) -> list[_Weight]:
    return [v for v in ins[:upto] if isinstance(v, _Weight)]


def _init_shapes(cv: _Converter, weights: Sequence[_Weight]) -> list[tuple[int, ...]]:
    return [cv.inits[n] for w in weights for n in w.names]


# --- rules: one small function per family -----------------------------------------------

Rule = Callable[[_Converter, Any, list[Value]], None]


def _op(kind: str, upto: int | None = None, **fixed: Any) -> Rule:
    """Elementwise ops, norms, softmax, concat, copies: the activations in, the weights
    among the first ``upto`` inputs read, the output's shape out."""
    def rule(cv: _Converter, node: Any, ins: list[Value]) -> None:
        attrs = {k: f(node, cv) if callable(f) else f for k, f in fixed.items()}
        cv.emit(node, kind, [(n, cv.dims(n)) for n in _acts(node, ins, upto)],
                cv.dims(node.output[0]), _weights(ins, upto), **attrs)
    return rule


def _view(kind: str) -> Rule:
    """Views: zero cost on an activation; a view of a weight is still that weight."""
    def rule(cv: _Converter, node: Any, ins: list[Value]) -> None:
        if isinstance(ins[0], _Weight):
            cv.set_outputs(node, ins[0])
        else:
            cv.emit(node, kind, [(node.input[0], cv.dims(node.input[0]))],
                    cv.dims(node.output[0]))
    return rule


def _split(cv: _Converter, node: Any, ins: list[Value]) -> None:
    """Split: each output a view of the input (no op)."""
    cv.set_outputs(node, ins[0])


def _lookup(cv: _Converter, node: Any, ins: list[Value]) -> None:
    """Gather / Slice: of a weight, an embedding lookup (reads the rows it gathers); of an
    activation, a view (constant indices) or a gather we cannot price (computed ones)."""
    data, idx = ins[0], ins[1] if len(ins) > 1 else None
    if isinstance(data, _Weight):
        acts = [(node.input[1], cv.dims(node.input[1]))] if isinstance(idx, _Act) else []
        cv.emit(node, OpKind.EMBEDDING, acts, cv.dims(node.output[0]), [data])
    elif node.op_type == "Gather" and isinstance(idx, _Act):
        raise _Unmapped(node.name)
    else:
        _view(OpKind.RESHAPE)(cv, node, ins)


def _fold(shape: tuple[Dim, ...]) -> tuple[Dim, Dim]:
    """Spatial dims as the conv2d rule's (h, w): 1-D as (1, w), 3-D as (d*h, w)."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if any(isinstance(d, str) for d in shape[:-1]):
        raise _Unmapped(str(shape))
    return math.prod(shape[:-1]), shape[-1]  # type: ignore[arg-type]


def _kernel(k: Sequence[int]) -> tuple[int, int]:
    """A kernel as the conv2d and pool rules' (kh, kw), folded as ``_fold`` folds dims."""
    return (int(k[0]), int(k[1])) if len(k) == 2 else (math.prod(k[:-1]), int(k[-1]))


def _conv(cv: _Converter, node: Any, ins: list[Value]) -> None:
    """Conv: weight (Co, Ci/groups, *k), MACs = N * Co * out spatial * Ci/groups * prod(k).

    ConvTranspose is the data gradient of the conv from its output to its input (cuDNN runs
    it as that conv's dgrad): weight (Ci, Co/groups, *k), MACs = N * Ci * in spatial *
    Co/groups * prod(k), as fvcore counts it. It is priced as that conv, so its reads and
    writes are swapped: the total bytes are right, not the split between them."""
    if not isinstance(ins[1], _Weight) or not isinstance(ins[0], _Act):
        raise _Unmapped(node.name)
    co, ci_g, *k = cv.concrete(node.input[1])
    x, y = node.input[0], node.output[0]
    if node.op_type == "ConvTranspose":
        x, y = y, x
    batch, c, *spatial = cv.dims(y, WHOLE)
    xb, xc, *xspatial = cv.dims(x, WHOLE)
    groups, n = int(_attr(node, "group", 1)), len(k)
    cv.emit(node, OpKind.CONV2D, [(node.input[0], (xb, xc, *_fold(tuple(xspatial))))],
            (batch, c, *_fold(tuple(spatial))), _weights(ins),
            [(co, ci_g, *_kernel(k)), *_init_shapes(cv, _weights(ins)[1:])],
            kernel=_kernel(k), stride=tuple(_attr(node, "strides", [1] * n)),
            padding=tuple(_attr(node, "pads", [0] * 2 * n)[:n]),
            dilation=tuple(_attr(node, "dilations", [1] * n)), groups=groups,
            depthwise=groups > 1 and ci_g == 1,
            **({"transposed": True} if node.op_type == "ConvTranspose" else {}))


def _swap(shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
    return (*shape[:-2], shape[-1], shape[-2]) if len(shape) >= 2 else shape


def _product(cv: _Converter, node: Any, a: tuple[str, Value, bool],
             b: tuple[str, Value, bool], extra: list[_Weight]) -> None:
    """a @ b (each operand maybe transposed): two activations make a matmul; a 2-D weight
    operand a linear (x W: weight (N, K); W x: the linear over x transposed); a weight of
    more dims a matmul reading it as weights."""
    (an, av, ta), (bn, bv, tb) = a, b
    out = node.output[0]
    if isinstance(av, _Act) and isinstance(bv, _Act):
        ad, bd = cv.dims(an, 2), cv.dims(bn, 2)
        cv.emit(node, OpKind.MATMUL, [(an, _swap(ad) if ta else ad),
                                      (bn, _swap(bd) if tb else bd)], cv.dims(out, 2), extra)
    elif isinstance(av, _Act) and isinstance(bv, _Weight) and not ta:
        wd = cv.concrete(bn)
        if len(wd) == 2:
            cv.emit(node, OpKind.LINEAR, [(an, cv.dims(an, 1))], cv.dims(out, 1), [bv, *extra],
                    [wd if tb else (wd[1], wd[0]), *_init_shapes(cv, extra)])
        elif not tb:
            cv.emit(node, OpKind.MATMUL, [(an, cv.dims(an, 2))], cv.dims(out, 2), [bv, *extra])
        else:
            raise _Unmapped(node.name)
    elif isinstance(av, _Weight) and isinstance(bv, _Act) and not tb \
            and len(wd := cv.concrete(an)) == 2:
        cv.emit(node, OpKind.LINEAR, [(bn, _swap(cv.dims(bn, 2)))], _swap(cv.dims(out, 2)),
                [av, *extra], [(wd[1], wd[0]) if ta else wd, *_init_shapes(cv, extra)])
    else:
        raise _Unmapped(node.name)


def _matmul(cv: _Converter, node: Any, ins: list[Value]) -> None:
    if any(len(cv.shapes.base.get(n) or ()) < 2 for n in node.input[:2]):
        raise _Unmapped(node.name)  # a vector operand: numpy's 1-D rules
    _product(cv, node, (node.input[0], ins[0], False), (node.input[1], ins[1], False), [])


def _gemm(cv: _Converter, node: Any, ins: list[Value]) -> None:
    """Gemm: A (M, K) x B (K, N) + C, either transposed; a weight C is the bias."""
    _product(cv, node, (node.input[0], ins[0], bool(_attr(node, "transA", 0))),
             (node.input[1], ins[1], bool(_attr(node, "transB", 0))), _weights(ins[2:]))


def _heads(shape: tuple[Dim, ...], heads: int | None) -> tuple[Dim, ...]:
    """(B, H, S, d) as is; (B, S, H*d) split into ``heads`` heads."""
    if len(shape) == 4:
        return shape
    if not heads or not isinstance(shape[2], int):
        raise _Unmapped(str(shape))
    return shape[0], heads, shape[1], shape[2] // heads


def _attention(cv: _Converter, node: Any, ins: list[Value]) -> None:
    """ONNX Attention (opset 23): one fused attention op (FlashAttention-style)."""
    if not all(isinstance(v, _Act) for v in ins[:3]):
        raise _Unmapped(node.name)
    kv = _attr(node, "kv_num_heads")
    q, k, v = (_heads(cv.dims(n, WHOLE), h) for n, h in
               zip(node.input[:3], (_attr(node, "q_num_heads"), kv, kv), strict=True))
    cv.emit(node, OpKind.ATTENTION, [*zip(node.input[:3], (q, k, v), strict=True),
                                     *((n, cv.dims(n)) for n in _acts(node, ins)[3:4])],
            (*q[:3], v[3]), causal=bool(_attr(node, "is_causal", 0)))


def _pool(kind: str) -> Rule:
    def rule(cv: _Converter, node: Any, ins: list[Value]) -> None:
        k = _attr(node, "kernel_shape") or cv.concrete(node.input[0])[2:]  # global: all
        n = len(k)
        _op(kind, 1, kernel=_kernel(k), stride=tuple(_attr(node, "strides", [1] * n)),
            padding=tuple(_attr(node, "pads", [0] * 2 * n)[:n]))(cv, node, ins)
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
    "GroupNormalization": _op(OpKind.GROUPNORM, groups=lambda n, cv: _attr(n, "num_groups")),
    "InstanceNormalization": _op(OpKind.GROUPNORM,
                                 groups=lambda n, cv: cv.concrete(n.input[0])[1]),
    **_names(_pool(OpKind.MAXPOOL), "MaxPool", "GlobalMaxPool"),
    "AveragePool": _pool(OpKind.AVGPOOL), "GlobalAveragePool": _op(OpKind.ADAPTIVE_AVGPOOL),
    # a mean or sum over dims: one read and one add per input element, as average pooling
    **_names(_op(OpKind.ADAPTIVE_AVGPOOL, 1), "ReduceMean", "ReduceSum"),
    "Concat": _op(OpKind.CONCAT, dim=lambda n, cv: _attr(n, "axis")),
    # data movement without arithmetic we count: read the input, write the output
    **_names(_op(OpKind.COPY, 1), "Resize", "Upsample", "Pad", "Tile", "Cast"),
    **_names(_view(OpKind.RESHAPE), "Reshape", "Squeeze", "Unsqueeze", "Expand"),
    "Flatten": _view(OpKind.FLATTEN), "Transpose": _view(OpKind.PERMUTE),
    "Identity": _view(OpKind.IDENTITY), "Dropout": _view(OpKind.DROPOUT),
    **_names(_lookup, "Gather", "Slice"), "Split": _split,
}


# --- patterns: several nodes priced as one op -------------------------------------------

@dataclass
class _Patterns:
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


# --- the importer -----------------------------------------------------------------------

def _sizes(dynamic: dict[tuple[str, int], str], batch: int | None, seq: int | None,
           where: str) -> dict[str, int]:
    """The value of each symbol the inputs use: B batch (default 1), S seq (required)."""
    for label, v in (("batch", batch), ("seq", seq)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise ShapeError(f"{label} must be a positive integer, got {v!r}",
                             f"pass --{label} N with N >= 1")
    used = set(dynamic.values())
    if "S" in used and seq is None:
        first = min(i for (i, _), s in dynamic.items() if s == "S")
        raise ShapeError(f"{where}: input {first!r} has a dynamic sequence dimension and no "
                         "sequence length was given", "pass --seq N (load_onnx(..., seq=N))")
    return {s: v for s, v in (("B", batch or 1), ("S", seq or 1)) if s in used}


def _static_batch(inputs: list[Any], batch: int | None, where: str) -> int | None:
    """A model without a dynamic batch: its first input's leading dim, which a requested
    batch must equal (a graph of fixed batch cannot be priced at another)."""
    dims = inputs[0].type.tensor_type.shape.dim if inputs else []
    fixed = dims[0].dim_value if dims and dims[0].HasField("dim_value") else None
    if batch is not None and fixed is not None and batch != fixed:
        raise ShapeError(f"{where}: the model's batch is fixed at {fixed} (input "
                         f"{inputs[0].name!r}), and batch {batch} was asked for",
                         "export it with a dynamic batch axis (torch.onnx.export(..., "
                         "dynamic_axes={'input': {0: 'batch'}})) or ask for its batch")
    return fixed


def load_onnx(path: str | Path, *, batch: int | None = None, seq: int | None = None,
              name: str | None = None) -> ModelGraph:
    """The ModelGraph of an ONNX model file (module docstring: what maps to what).

    ``batch`` (default 1) and ``seq`` size the inputs' dynamic dims and become the graph's
    ``default_batch`` / ``default_seq``; ``seq`` is required when an input has a sequence
    dim. ``name`` defaults to the file's stem. Raises SpecError for a missing, empty or
    non-ONNX file, ShapeError for shapes that cannot be inferred.

    Examples
    --------
    >>> from perfmodel.workload.build import build_workload
    >>> g = load_onnx("resnet18.onnx")                    # doctest: +SKIP
    >>> build_workload(g, batch=8).table["macs"].sum()    # doctest: +SKIP
    14512586752.0
    """
    onnx, p = _onnx(), Path(path)
    where = str(p)
    model = _read(onnx, p)
    light, inputs = _light(onnx, model, p.parent)
    dynamic = _dynamic_dims(inputs)
    sizes = _sizes(dynamic, batch, seq, where)
    fixed = None if "B" in sizes else _static_batch(inputs, batch, where)
    try:
        base, types = _infer(onnx, light, dynamic, sizes)
    except onnx.shape_inference.InferenceError as exc:
        why = " ".join(str(exc).replace("[ShapeInferenceError] Inference error(s): ", "")
                       .split())[:300]
        raise ShapeError(f"{where}: ONNX shape inference failed: {why}", "check the model: "
                         "onnx.checker.check_model(path, full_check=True)") from None
    probes, fixed_dims = [], {}
    for sym, v in sizes.items():
        try:
            probes.append((sym, v, _infer(onnx, light, dynamic, {**sizes, sym: v + 1})[0]))
        except onnx.shape_inference.InferenceError:  # the export baked this size in
            fixed_dims[sym] = v
    meta = {"family": "onnx", "source": where, "default_batch": batch or fixed or 1,
            "is_llm": False, "producer": model.producer_name,
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                         default=0), **({"default_seq": sizes["S"]} if "S" in sizes else {})}
    args = (onnx, model, types, name or p.stem, where)
    reason = f"its shapes infer only at {fixed_dims} (sizes the export fixed)"
    try:
        graph = _convert(*args, {**meta, **({"fixed_dims": fixed_dims} if fixed_dims else {})},
                         _Shapes(base, probes))
    except _Fixed as exc:
        reason, fixed_dims = f"tensor {exc} is no multiple of batch and seq", sizes
        graph = _convert(*args, {**meta, "fixed_dims": sizes}, _Shapes(base, []))
    if fixed_dims:
        log.warning("%s: %s; the graph is for %s only", where, reason, fixed_dims)
    return graph


def _convert(onnx: Any, model: Any, types: dict[str, int], name: str, where: str,
             meta: dict[str, Any], shapes: _Shapes) -> ModelGraph:
    g = model.graph
    inits = {t.name: tuple(int(d) for d in t.dims) for t in g.initializer}
    cv = _Converter(onnx, GraphBuilder(name, **meta), shapes, types, inits, where)
    for t in g.initializer:
        cv.values[t.name] = (_Weight((t.name,)) if _dtype(onnx, t.data_type) == "float"
                             and math.prod(t.dims) > 1 else _Const())
    for i in g.input:
        if i.name not in inits:
            cv.b.input(i.name, cv.dims(i.name), batch=False, role="index" if _dtype(
                onnx, types.get(i.name, 1)) == "int" else "act")
            cv.values[i.name] = _Act(None)
    consts = {t for t, v in cv.values.items() if isinstance(v, _Const)}
    found = _Patterns(g.node, consts | {o for n in g.node if n.op_type == "Constant"
                                        for o in n.output})
    for i, node in enumerate(g.node):
        cv.producers.update((o, node) for o in node.output)
        if i not in found.inner:
            _visit(cv, node, found.ends.get(i))
    graph = cv.b.build()
    unsupported = Counter(str(op.kind) for op in graph.ops if str(op.kind).startswith("onnx."))
    if unsupported:
        log.info("%s: ops with no cost rule: %s", where, dict(unsupported))
    return graph


def _visit(cv: _Converter, node: Any, pattern: tuple[str, str] | None) -> None:
    """Map one node: a recognised pattern's op, a constant, a weight computed from weights,
    its rule's op, or (no rule, or the rule cannot map it) an unsupported op."""
    ins: list[Value] = [cv.values.get(n) if n else None for n in node.input]
    if pattern is not None:
        cv.emit(node, pattern[0], [(pattern[1], cv.dims(pattern[1]))], cv.dims(node.output[0]))
        return
    default = node.domain in ("", "ai.onnx")
    rule = RULES.get(node.op_type) if default else None
    if default and node.op_type in (*SHAPE_OPS, "Constant"):
        cv.set_outputs(node, _Const())
    elif not any(isinstance(v, _Act) for v in ins) and not (
            rule is _lookup and isinstance(ins[0], _Weight)):
        names = tuple(n for w in _weights(ins) for n in w.names)
        cv.set_outputs(node, _Weight(names) if names else _Const())
    else:
        try:
            if rule is None:
                raise _Unmapped(node.op_type)
            rule(cv, node, ins)
        except (_Unmapped, ValueError, TypeError, IndexError) as exc:
            log.debug("%s (%s) not mapped: %s", node.name, node.op_type, exc)
            cv.unsupported(node, ins)
