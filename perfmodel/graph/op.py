"""Ops and tensor descriptions: frozen values, shapes possibly symbolic.

A shape entry is an int or one of the symbols below, resolved when a Workload is built,
so one graph serves every batch size, sequence length and phase:

* ``B`` batch (sequences or images),
* ``S`` new tokens per sequence in this pass (seq for prefill and training, 1 for decode),
* ``T`` attended context length (the KV-cache length; seq in every phase),
* ``L`` tokens that need logits (seq in training, 1 at inference: only the last token).

A tensor's ``role`` picks its dtype in the workload: ``act`` (activation dtype),
``weight`` (weight dtype) or ``kv`` (KV-cache dtype); ``index`` tensors are int32.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from perfmodel.errors import ShapeError

__all__ = ["Dim", "TensorSpec", "Op", "SYMBOLS", "resolve_dim", "numel"]

Dim = int | str
SYMBOLS = ("B", "S", "T", "L")
ROLES = ("act", "weight", "kv", "index")


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's shape (ints or symbols) and role (act, weight, kv or index)."""

    shape: tuple[Dim, ...]
    role: str = "act"

    def resolve(self, dims: Mapping[str, int]) -> TensorSpec:
        return TensorSpec(tuple(resolve_dim(d, dims) for d in self.shape), self.role)

    @property
    def numel(self) -> int:
        return numel(self.shape)


def resolve_dim(d: Dim, dims: Mapping[str, int]) -> int:
    if isinstance(d, str):
        try:
            return int(dims[d])
        except KeyError:
            raise ShapeError(f"symbolic dimension {d!r} has no value",
                             f"pass one of {', '.join(SYMBOLS)}") from None
    return d


def numel(shape: tuple[Dim, ...]) -> int:
    """Element count of a concrete shape (raises on symbols)."""
    if any(isinstance(d, str) for d in shape):
        raise ShapeError(f"shape {shape} is symbolic", "resolve it with concrete dims first")
    return math.prod(shape)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Op:
    """One operation in a model graph.

    ``weights`` are the op's parameters (no batch dimension). ``attrs`` hold kind-specific
    settings (kernel, stride, groups, causal, ...). ``tied`` ops read weights owned by
    another op (RNN cells after the first time step, a tied LM head): their parameters
    are not counted again, but their weight bytes are still moved.
    """

    name: str
    kind: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    weights: tuple[TensorSpec, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)
    layer: str = ""
    tied: bool = False

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def resolve(self, dims: Mapping[str, int]) -> Op:
        """The same op with every symbolic dimension replaced by its value."""
        return replace(
            self,
            inputs=tuple(t.resolve(dims) for t in self.inputs),
            outputs=tuple(t.resolve(dims) for t in self.outputs),
            weights=tuple(t.resolve(dims) for t in self.weights),
        )

    @property
    def is_symbolic(self) -> bool:
        return any(isinstance(d, str) for t in (*self.inputs, *self.outputs, *self.weights)
                   for d in t.shape)
