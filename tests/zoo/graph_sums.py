"""Sums over a built graph's ops, shared by the zoo tests."""

from __future__ import annotations

from perfmodel.graph.costs import cost_of
from perfmodel.graph.model_graph import ModelGraph

WIDTHS = {"act": 4, "weight": 4, "kv": 4, "index": 4}


def macs(g: ModelGraph, prefix: str = "", kind: str | None = None) -> float:
    """MACs at batch 1 of the ops whose name starts with ``prefix`` (and of ``kind``)."""
    return sum(cost_of(op.resolve({"B": 1}), WIDTHS).macs for op in g.ops
               if op.name.startswith(prefix) and (kind is None or op.kind == kind))


def params(g: ModelGraph, prefix: str) -> int:
    """Weights (tied ones too) of the ops whose name starts with ``prefix``."""
    return sum(w.numel for op in g.ops if op.name.startswith(prefix) for w in op.weights)


def out_shape(g: ModelGraph, name: str) -> tuple:
    return g.op(name).outputs[0].shape
