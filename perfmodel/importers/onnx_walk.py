"""The ONNX importer's walk state: the values flowing along the graph and the converter.

The values a tensor can hold (``Act``, ``Weight``, ``Const``), the inferred shapes with
their batch and sequence symbols (``InferredShapes``), the ``Converter`` that builds the
graph node by node and counts each initializer once, and the small helpers the rules
(:mod:`perfmodel.importers.onnx_rules`) and the loader
(:mod:`perfmodel.importers.onnx_model`) share. ``attr`` imports onnx on first use;
importing this module never does.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.op import Dim, TensorSpec

__all__ = ["Act", "Weight", "Const", "Value", "Factor", "Shapes", "Fixed", "Unmapped",
           "InferredShapes", "Converter", "dtype", "attr", "act_inputs", "weight_inputs",
           "init_shapes"]

Shapes = dict[str, tuple[int | None, ...]]


# --- values flowing along the graph -----------------------------------------------------

@dataclass(frozen=True)
class Act:
    """An activation: the perfmodel op that produced it (None for a graph input)."""

    producer: str | None


@dataclass(frozen=True)
class Weight:
    """Initializers (or a view of them) reaching an op: counted on the op that reads them."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Const:
    """A constant: Constant nodes, integer and scalar initializers, shapes of tensors."""


Value = Act | Weight | Const | None
Factor = tuple[int, tuple[str, ...]]  # a dim as coefficient x symbols: 12 B is (12, ("B",))


class Fixed(Exception):
    """A dim that is no multiple of the symbols: the graph keeps concrete shapes."""


class Unmapped(Exception):
    """A node its rule cannot map (a computed weight, a 1-D operand): priced as unsupported."""


def dtype(onnx: Any, elem_type: int) -> str:
    """``float``, ``int`` (integers and bools) or ``other`` for an ONNX element type."""
    name = str(onnx.TensorProto.DataType.Name(elem_type))
    return ("float" if "FLOAT" in name or name == "DOUBLE"
            else "int" if name.startswith(("INT", "UINT")) or name == "BOOL" else "other")


@dataclass
class InferredShapes:
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
                    raise Fixed(name)
                w = int(other[axis] or 0)
                if w == v:
                    continue
                if v * (value + 1) != w * value or c % value:  # not proportional to sym
                    raise Fixed(name)
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
            raise Fixed(str(factors))
    return tuple(out)


# --- the walk: nodes -> ops -------------------------------------------------------------

@dataclass
class Converter:
    """Builds the graph node by node; remembers which initializers are already counted."""

    onnx: Any
    b: GraphBuilder
    shapes: InferredShapes
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
            raise Unmapped(name)
        return self.inits[name] if f is None else tuple(c for c, _ in f)

    def producer(self, name: str) -> str | None:
        v = self.values.get(name)
        return v.producer if isinstance(v, Act) else None

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
             out: tuple[Dim, ...], weights: Sequence[Weight] = (),
             specs: list[tuple[int, ...]] | None = None, **attrs: Any) -> None:
        """One op for ``node``: inputs as (tensor, shape), its weight specs (default: the
        initializers' shapes); every output of the node becomes its activation."""
        names = list(dict.fromkeys(n for w in weights for n in w.names))
        specs = [self.inits[n] for n in names] if specs is None else specs
        tied = self.claim(node, names, specs)
        ins = [Tensor(self.producer(n), TensorSpec(s, "index" if dtype(
            self.onnx, self.types.get(n, 1)) == "int" else "act")) for n, s in inputs]
        t = self.b.add_op(kind, ins, out, weights=specs, name=node.name.lstrip("/"),
                          tied=tied, onnx_op=node.op_type, **attrs)
        self.set_outputs(node, Act(t.producer))

    def unsupported(self, node: Any, ins: list[Value]) -> None:
        domain = "" if node.domain in ("", "ai.onnx") else f"{node.domain}."
        out = self.dims(node.output[0], required=False) if node.output else ()
        self.emit(node, f"onnx.{domain}{node.op_type}",
                  [(n, self.dims(n)) for n in act_inputs(node, ins)], out, weight_inputs(ins))

    def set_outputs(self, node: Any, value: Value) -> None:
        self.values.update((o, value) for o in node.output if o)


def attr(node: Any, name: str, default: Any = None) -> Any:
    helper = importlib.import_module("onnx.helper")
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name),
                default)


def act_inputs(node: Any, ins: list[Value], upto: int | None = None) -> list[str]:
    return [n for n, v in zip(node.input[:upto], ins[:upto], strict=False)
            if isinstance(v, Act)]


def weight_inputs(ins: list[Value], upto: int | None = None) -> list[Weight]:
    return [v for v in ins[:upto] if isinstance(v, Weight)]


def init_shapes(cv: Converter, weights: Sequence[Weight]) -> list[tuple[int, ...]]:
    return [cv.inits[n] for w in weights for n in w.names]
