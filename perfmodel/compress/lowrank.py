"""Low-rank factorization: one m x n weight matrix becomes m x r and r x n.

A linear layer (out x in) becomes in -> r -> out; a k x k conv (Co x Ci*k*k, as a matrix)
becomes a k x k conv Ci -> r followed by a 1 x 1 conv r -> Co (Jaderberg et al., "Speeding
up convolutional neural networks with low rank expansions", BMVC 2014; Zhang et al.,
"Accelerating very deep convolutional networks for classification and detection", TPAMI
2016). Parameters and MACs fall from m*n to r*(m + n) per output position (DOMAIN.md
section 3). The rank is ``ratio`` of the smaller dimension: r = max(1, round(ratio *
min(m, n))); a layer is left alone where r*(m + n) >= m*n (factorizing would not help).
"""

from __future__ import annotations

from dataclasses import replace

from perfmodel.compress.rewrite import Replacement, renamed, rewrite, subgraph
from perfmodel.compress.select import ALL, Selection
from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op
from perfmodel.workload.compressed import COMPRESSION_ATTRS

__all__ = ["factorize_low_rank", "low_rank_dims", "carry_attrs"]


def low_rank_dims(op: Op) -> tuple[int, int] | None:
    """(m, n) of the op's weight as a matrix, or None if it cannot be factorized."""
    if op.tied or not op.weights or op.attr("experts", 0):
        return None
    w = op.weights[0].shape
    if op.kind == OpKind.LINEAR:
        return int(w[0]), int(w[1])
    if op.kind == OpKind.CONV2D and op.attr("groups", 1) == 1:
        return int(w[0]), int(w[1]) * int(w[2]) * int(w[3])
    return None


def carry_attrs(old: Op, r: Replacement) -> Replacement:
    """New ops keep the compression attrs (dtypes, sparsity) of the op they replace."""
    keep = {k: v for k, v in old.attrs.items() if k in COMPRESSION_ATTRS}
    if not keep:
        return r
    return replace(r, ops=tuple(replace(op, attrs={**op.attrs, **keep}) for op in r.ops))


def _factor(op: Op, rank: int) -> Replacement:
    bias = len(op.weights) > 1
    out = int(op.weights[0].shape[0])

    def build(b: GraphBuilder, x: Tensor) -> Tensor:
        if op.kind == OpKind.LINEAR:
            y = b.linear(x, rank, bias=False, name=f"{op.name}.v")
            return b.linear(y, out, bias=bias, name=f"{op.name}.u")
        y = b.conv2d(x, rank, op.attr("kernel"), op.attr("stride"), op.attr("padding"),
                     op.attr("dilation", 1), bias=False, name=f"{op.name}.v")
        return b.conv2d(y, out, 1, bias=bias, name=f"{op.name}.u")

    return carry_attrs(op, subgraph(op, build))


def factorize_low_rank(graph: ModelGraph, ratio: float, select: Selection = ALL) -> ModelGraph:
    """Factorize every selected linear and conv layer at rank ``ratio`` of min(m, n)."""
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        raise ShapeError(f"low-rank ratio must be in (0, 1), got {ratio!r}",
                         "e.g. lowrank:0.25 keeps a quarter of the rank")
    reps = []
    for op in select.pick(graph, graph.ops):
        dims = low_rank_dims(op)
        if dims is None:
            continue
        m, n = dims
        rank = max(1, round(ratio * min(m, n)))
        if rank * (m + n) < m * n:
            reps.append(_factor(op, rank))
    return rewrite(graph, reps, name=renamed(graph, f"lowrank{ratio:g}"))
