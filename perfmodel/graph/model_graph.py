"""ModelGraph: a model as a networkx DiGraph of Ops, plus metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from perfmodel.graph.op import Op, TensorSpec

__all__ = ["ModelGraph"]


@dataclass(frozen=True)
class ModelGraph:
    """A model: ops in execution order, their data dependencies, and metadata.

    ``graph`` has one node per op name (node attribute ``op``) and an edge from producer
    to consumer. ``ops`` is the same ops in the order they were added (a topological
    order). ``meta`` holds what the builder knows: ``family``, ``source`` (the reference
    implementation the architecture follows), ``default_batch``, ``default_seq``,
    ``is_llm`` and, for transformers, the config.
    """

    name: str
    graph: nx.DiGraph = field(repr=False, compare=False)
    ops: tuple[Op, ...] = field(repr=False)
    inputs: tuple[TensorSpec, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def params(self) -> int:
        """Trainable parameters (tied weights counted once)."""
        return int(sum(w.numel for op in self.ops if not op.tied for w in op.weights))

    @property
    def num_ops(self) -> int:
        return len(self.ops)

    def op(self, name: str) -> Op:
        return self.graph.nodes[name]["op"]

    def __len__(self) -> int:
        return len(self.ops)
