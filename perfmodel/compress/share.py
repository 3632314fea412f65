"""Weight sharing: k-means clusters of each layer's weights, stored as indices + codebook.

n weights clustered into k centroids are stored as n indices of ceil(log2 k) bits plus a
k-entry codebook at the weight dtype (Han et al., "Deep Compression", ICLR 2016, sec. 3;
their Fig. 3: 16 fp32 weights in 4 clusters take 16*2 + 4*32 = 160 bits instead of 512,
3.2x). The seed document (000_b09e94c4aa0114f1.txt, "权重共享") uses the same 16 -> 4
example and notes the price: every weight is looked up in the table at inference time
("在计算时再查表搜索权重值"), which the roofline charges as one gather per weight.
"""

from __future__ import annotations

from perfmodel.compress.rewrite import renamed, with_attrs
from perfmodel.compress.select import ALL, Selection
from perfmodel.errors import ShapeError
from perfmodel.graph.kinds import TENSOR_KINDS, OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.workload.compressed import codebook_bits

__all__ = ["share_weights"]


def share_weights(graph: ModelGraph, clusters: int, select: Selection = ALL) -> ModelGraph:
    """One codebook of ``clusters`` centroids per selected layer (matrix ops, embeddings)."""
    if isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 2:
        raise ShapeError(f"weight sharing needs at least 2 clusters, got {clusters!r}",
                         "e.g. share:16 for 4-bit indices")
    attrs = {"codebook_bits": codebook_bits(clusters), "codebook_size": clusters}
    ops = select.pick(graph, [op for op in graph.ops if op.weights and (
        op.kind in TENSOR_KINDS or op.kind == OpKind.EMBEDDING)])
    return with_attrs(graph, {op.name: attrs for op in ops}, renamed(graph, f"share{clusters}"))
