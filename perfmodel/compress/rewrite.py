"""Graph rewriting for compression: swap ops in place, or replace regions by new ops.

Every function returns a new ModelGraph; the input graph is never changed. New ops are
built with the GraphBuilder (``subgraph``), so their shapes are inferred and checked the
same way as the zoo's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op

__all__ = ["Replacement", "with_ops", "with_attrs", "rewrite", "subgraph", "renamed"]


def renamed(graph: ModelGraph, suffix: str) -> str:
    """The name of a compressed graph: ``resnet50+int8``."""
    return f"{graph.name}+{suffix}"


def with_ops(graph: ModelGraph, new: Mapping[str, Op], *, name: str | None = None,
             meta: Mapping[str, Any] | None = None, keep_shape: bool = True) -> ModelGraph:
    """The same graph with the ops named in ``new`` swapped for new versions (same names,
    same edges). ``keep_shape=False`` drops the shape record where the new ops change the
    dimensions it states (structured pruning)."""
    ops = tuple(new.get(op.name, op) for op in graph.ops)
    return ModelGraph(name or graph.name, ops, graph.edges, graph.inputs,
                      dict(graph.meta if meta is None else meta),
                      graph.shape if keep_shape else None)


def with_attrs(graph: ModelGraph, attrs: Mapping[str, Mapping[str, Any]],
               name: str) -> ModelGraph:
    """The same graph with extra attrs on the named ops (existing keys overwritten)."""
    new = {n: replace(graph.op(n), attrs={**graph.op(n).attrs, **a}) for n, a in attrs.items()}
    return with_ops(graph, new, name=name)


@dataclass(frozen=True)
class Replacement:
    """Replace the ops named in ``region`` by ``ops``.

    The region's outside producers feed ``entries`` (new ops that read the region's
    input); the consumers of ``old_exit`` read ``exit`` instead. ``edges`` connect the new
    ops among themselves.
    """

    region: tuple[str, ...]
    ops: tuple[Op, ...]
    edges: tuple[tuple[str, str], ...]
    entries: tuple[str, ...]
    exit: str
    old_exit: str


def subgraph(old: Op, build: Callable[[GraphBuilder, Tensor], Tensor],
             region: Sequence[str] | None = None, x: Tensor | None = None) -> Replacement:
    """A Replacement of ``old`` (or of ``region``, exiting at ``old``) by what ``build``
    adds to a fresh builder given the region's input tensor; new ops keep ``old.layer``."""
    b = GraphBuilder("sub")
    build(b, x or Tensor(None, old.inputs[0]))
    sub = b.build()
    ops = tuple(replace(op, layer=old.layer) for op in sub.ops)
    entries = tuple(n for n in sub.graph.nodes if sub.graph.in_degree(n) == 0)
    return Replacement(tuple(region or (old.name,)), ops, tuple(sub.graph.edges), entries,
                       ops[-1].name, old.name)


def rewrite(graph: ModelGraph, replacements: Sequence[Replacement], *, name: str,
            meta: Mapping[str, Any] | None = None) -> ModelGraph:
    """Apply non-overlapping replacements in one pass; new ops sit where the last op of
    their region was, so the op order stays topological."""
    g = graph.graph
    removed: dict[str, Replacement] = {}
    for r in replacements:
        for n in r.region:
            if n in removed:
                raise ShapeError(f"op {n!r} is in two rewrite regions",
                                 "apply one transform to each op")
            removed[n] = r
    position = {op.name: i for i, op in enumerate(graph.ops)}
    anchor = {max(r.region, key=position.__getitem__): r for r in replacements}
    ops: list[Op] = []
    for op in graph.ops:
        if op.name in anchor:
            ops.extend(anchor[op.name].ops)
        elif op.name not in removed:
            ops.append(op)
    edges = [(u, v) for u, v in g.edges if u not in removed and v not in removed]
    for r in replacements:
        edges += list(r.edges)
        region = set(r.region)
        outside_in = {p for n in region for p in g.predecessors(n)} - region
        edges += [(p, e) for p in _exits(outside_in, removed) for e in r.entries]
        for n in region:
            leaving = set(g.successors(n)) - region
            if leaving and n != r.old_exit:
                raise ShapeError(f"op {n!r} feeds ops outside its rewrite region",
                                 "only the region's last op may have outside consumers")
        # a consumer replaced in turn is reached through its own region's outside_in
        edges += [(r.exit, c) for c in g.successors(r.old_exit) if c not in removed]
    names = {op.name for op in ops}
    kept = tuple(dict.fromkeys(e for e in edges if e[0] in names and e[1] in names))
    # the block structure (layers, heads, KV) is unchanged: the shape record still holds
    return ModelGraph(name, tuple(ops), kept, graph.inputs,
                      dict(graph.meta if meta is None else meta), graph.shape)


def _exits(producers: set[str], removed: Mapping[str, Replacement]) -> set[str]:
    """Producers that were themselves replaced are now their replacement's exit op."""
    return {removed[p].exit if p in removed else p for p in producers}
