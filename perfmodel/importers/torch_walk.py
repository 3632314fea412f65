"""The torch importer's walk state: the values flowing along a traced graph and the walker.

The values a traced node can hold besides a graph ``Tensor`` (``Weight``: parameters,
``Const``: buffers and tensors built from nothing the model reads), one traced ``Call``
with its arguments mapped to values, the ``Walker`` that builds the graph and counts each
parameter once, and the small helpers the rules (:mod:`perfmodel.importers.torch_rules`)
and the tracer (:mod:`perfmodel.importers.torch_fx`) share. torch is never imported here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.op import TensorSpec

__all__ = ["Weight", "Const", "Call", "Walker", "flat", "meta_shape", "as_out", "ints",
           "params_of"]


# --- values flowing along the traced graph ----------------------------------------------

@dataclass(frozen=True)
class Weight:
    """Parameters (or a view of them): counted on the op that reads them."""

    params: tuple[Any, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Const:
    """A buffer, or a tensor built from nothing the model reads (position ids, masks)."""

    shape: tuple[int, ...]


@dataclass
class Call:
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
        return [v for v in flat((self.args, self.kwargs)) if isinstance(v, Tensor)]

    @property
    def shape(self) -> tuple[int, ...]:
        out = self.out
        while isinstance(out, list):
            out = next(o for o in out if o is not None)
        return out  # type: ignore[no-any-return]


def flat(v: Any) -> Iterator[Any]:
    v = list(v.values()) if isinstance(v, dict) else v
    if isinstance(v, tuple | list):
        for x in v:
            yield from flat(x)
    else:
        yield v


def meta_shape(meta: Any) -> Any:
    """A tensor's (or TensorMetadata's) shape as ints, a list for a tuple, else None."""
    if hasattr(meta, "shape") and hasattr(meta, "dtype"):
        return tuple(int(d) for d in meta.shape)
    if isinstance(meta, tuple | list):
        inner = [meta_shape(m) for m in meta]
        return inner if any(s is not None for s in inner) else None
    return None


def as_out(t: Tensor, out: Any) -> Any:
    """``t`` as the call's output: for a tuple output, one handle (view) per element."""
    if isinstance(out, list):
        return tuple(None if o is None else as_out(t, o) for o in out)
    return t if t.spec.shape == out else Tensor(t.producer, TensorSpec(out, t.spec.role))


def ints(t: Tensor) -> tuple[int, ...]:
    """A traced tensor's shape (always concrete here)."""
    return tuple(int(d) for d in t.shape)


def params_of(values: Any) -> tuple[Any, ...]:
    """The parameters behind ``values``' weights, each once."""
    found = (p for v in flat(values) if isinstance(v, Weight) for p in v.params)
    return tuple({id(p): p for p in found}.values())


# --- the walk: calls -> ops -------------------------------------------------------------

@dataclass
class Walker:
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

    def emit(self, c: Call, kind: str, inputs: Sequence[Tensor] | None = None,
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
