"""Pruning: unstructured, 2:4 semi-structured, structured (channels) and whole layers.

What each does to the hardware cost (DOMAIN.md section 3; seed document
000_b09e94c4aa0114f1.txt, "网络剪枝": unstructured pruning cuts parameters and theoretical
compute, "但是现有硬件架构的计算方式无法对其进行加速" — existing hardware cannot
speed it up; structured pruning keeps the structure and "仍然能够通过 GPU 或其他硬件来加速"):

* ``unstructured``: shapes and MACs unchanged; the stored size shrinks to the non-zeros
  plus their indices; it runs faster only on a device that declares sparse support.
* ``2:4``: two zeros in every group of four weights; half the values plus 2-bit
  metadata stored; 2x matrix throughput only where the device declares ``sparse_2_4``.
* ``structured``: whole output channels (filters) removed, so shapes shrink and every
  device runs the smaller dense layers (see perfmodel.compress.channels).
* ``layers``: whole residual blocks with the same input and output shape removed (the
  deepest first, keeping the last, as Gromov et al., "The unreasonable ineffectiveness of
  the deeper layers", arXiv:2403.17887, 2024, find least harmful).
"""

from __future__ import annotations

from collections.abc import Sequence

from perfmodel.compress.channels import channel_groups, shrink_groups
from perfmodel.compress.rewrite import renamed, with_attrs, with_ops
from perfmodel.compress.select import ALL, Selection
from perfmodel.errors import ShapeError
from perfmodel.graph.kinds import TENSOR_KINDS
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op

__all__ = ["prune_unstructured", "prune_2_4", "prune_structured", "prune_layers",
           "DEFAULT_INDEX_BITS"]

# Deep Compression (Han et al., ICLR 2016, sec. 2) stores the index difference between
# non-zeros in 8 bits for conv layers (5 for fc layers): 8 is the conservative default.
DEFAULT_INDEX_BITS = 8


def _check_fraction(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ShapeError(f"{name} must be a fraction in [0, 1), got {value!r}",
                         "e.g. 0.5 to remove half")


def _matrix_ops(graph: ModelGraph, select: Selection) -> list[Op]:
    """Matrix-engine ops with weights (tied copies included: they share the pattern)."""
    return select.pick(graph, [op for op in graph.ops
                               if op.weights and op.kind in TENSOR_KINDS])


def prune_unstructured(graph: ModelGraph, sparsity: float, *,
                       index_bits: int = DEFAULT_INDEX_BITS, bitmap: bool = False,
                       select: Selection = ALL) -> ModelGraph:
    """Zero a fraction ``sparsity`` of each selected layer's weights, anywhere."""
    _check_fraction("sparsity", sparsity)
    attrs = {"sparsity": float(sparsity), "sparse_pattern": "unstructured",
             "sparse_format": "bitmap" if bitmap else "index", "index_bits": int(index_bits)}
    ops = _matrix_ops(graph, select)
    return with_attrs(graph, {op.name: attrs for op in ops},
                      renamed(graph, f"prune{sparsity:g}u"))


def prune_2_4(graph: ModelGraph, select: Selection = ALL) -> ModelGraph:
    """NVIDIA 2:4 semi-structured sparsity on each selected layer (50 % zeros)."""
    attrs = {"sparsity": 0.5, "sparse_pattern": "2:4"}
    return with_attrs(graph, {op.name: attrs for op in _matrix_ops(graph, select)},
                      renamed(graph, "prune2:4"))


def prune_structured(graph: ModelGraph, ratio: float, select: Selection = ALL) -> ModelGraph:
    """Remove a fraction ``ratio`` of the output channels of every prunable channel group
    whose producers are all selected; keep = max(1, round(channels * (1 - ratio)))."""
    _check_fraction("ratio", ratio)
    chosen = {op.name for op in select.pick(graph, graph.ops)}
    plan = [(g, max(1, round(g.channels * (1 - ratio)))) for g in channel_groups(graph)
            if g.prunable and set(g.producers) <= chosen]
    new = shrink_groups(graph, [(g, keep) for g, keep in plan if keep < g.channels])
    meta = {**graph.meta, "pruned_channel_groups": len(plan)}
    return with_ops(graph, new, name=renamed(graph, f"prune{ratio:g}s"), meta=meta,
                    keep_shape=False)


def _block_of(op: Op) -> str:
    """The residual block an op belongs to: its scope up to the first numeric part
    (``layer3.2.downsample`` -> ``layer3.2``, ``layers.7.mlp`` -> ``layers.7``)."""
    parts = op.layer.split(".")
    for i, p in enumerate(parts):
        if p.isdigit():
            return ".".join(parts[:i + 1])
    return ""


def _removable(graph: ModelGraph, names: Sequence[str]) -> tuple[str, str] | None:
    """(input producer, exit op) if the block maps one tensor to one of the same shape."""
    g, region = graph.graph, set(names)
    preds = {p for n in names for p in g.predecessors(n)} - region
    exits = [n for n in names if set(g.successors(n)) - region]
    reads_input = any(len(list(g.predecessors(n))) < len(graph.op(n).inputs) for n in names)
    if len(preds) != 1 or len(exits) != 1 or reads_input:
        return None
    (src,) = preds
    if graph.op(src).outputs[0].shape != graph.op(exits[0]).outputs[0].shape:
        return None
    return src, exits[0]


def prune_layers(graph: ModelGraph, ratio: float) -> ModelGraph:
    """Remove round(ratio * n) of the n shape-preserving residual blocks, deepest first
    but never the last one."""
    _check_fraction("ratio", ratio)
    blocks: dict[str, list[str]] = {}
    for op in graph.ops:
        if (b := _block_of(op)):
            blocks.setdefault(b, []).append(op.name)
    candidates = [(b, r) for b, names in blocks.items() if (r := _removable(graph, names))]
    n = round(ratio * len(candidates))
    drop = candidates[:-1][::-1][:n] if n else []
    removed = {name for b, _ in drop for name in blocks[b]}
    bypass = {exit_: src for _, (src, exit_) in drop}
    ops = tuple(op for op in graph.ops if op.name not in removed)
    edges: dict[tuple[str, str], None] = {}
    for u, v in graph.edges:
        while u in bypass:
            u = bypass[u]
        if u not in removed and v not in removed:
            edges[(u, v)] = None
    meta = {**graph.meta, "removed_blocks": [b for b, _ in drop]}
    # fewer blocks: the shape record (if any) no longer states the depth
    return ModelGraph(renamed(graph, f"prune{ratio:g}l"), ops, tuple(edges), graph.inputs,
                      meta)
