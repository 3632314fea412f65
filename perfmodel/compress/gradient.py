"""Gradient sparsification for data-parallel training: fewer bytes in the exchange.

Only the largest gradients (top-k, or those above a threshold) are sent each step; the
rest accumulate locally (Lin et al., "Deep Gradient Compression", ICLR 2018: "99.9 % of
the gradient exchange in distributed SGD is redundant"; seed document
004_182038fb51ab488a.txt lines 161 and 178: "99.9%的梯度交换都是冗余的" and "可以将
ResNet-50模型训练的梯度交换参数量从97MB压缩为0.35MB"). The forward graph is unchanged;
the transform records the compression in ``graph.meta["gradient_compression"]``.

Payload per worker and step (SI bytes):

* dense: every parameter's gradient at ``value_dtype`` (fp32: 4 B).
* sparse: weight tensors of rank >= 2 send nnz = (1 - sparsity) * n values of
  ``value_dtype`` plus ``index_bits`` each; tensors of rank 1 (biases, norm scales), a
  tiny share of the bytes but the most sensitive, are sent dense. At the 99.9 % sparsity
  of Deep Gradient Compression, 16-bit indices reproduce its published sizes: ResNet-50
  97 MB -> 0.35 MB (MB = 2^20 B here: 25,557,032 x 4 B = 97.5 MiB; sent 0.352 MiB, 277x,
  the paper's ratio) and AlexNet (torchvision) 233 MB -> 0.39 MB.

Pricing (perfmodel.report.compress, with perfmodel.analytic.collectives; DOMAIN.md section
4): a dense gradient is ring all-reduced, 2(p-1)/p * V/b + 2(p-1)*alpha; a sparse one cannot
be summed in place (each worker's non-zeros sit at different indices), so it is
all-gathered, (p-1) * V_s/b + (p-1)*alpha (each worker receives everyone else's V_s).
Selecting the top-k reads every gradient once more from memory.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from perfmodel.compress.rewrite import renamed
from perfmodel.errors import ShapeError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.units import dtype as lookup_dtype

__all__ = ["GradientCompression", "GradientExchange", "sparsify_gradients",
           "gradient_exchange"]


@dataclass(frozen=True)
class GradientCompression:
    """Top-k gradient sparsification: drop ``sparsity`` of each weight tensor's entries."""

    sparsity: float
    value_dtype: str = "fp32"
    index_bits: int = 16


@dataclass(frozen=True)
class GradientExchange:
    """Bytes one worker contributes to one step's gradient exchange."""

    params: int
    dense_bytes: float
    sent_bytes: float
    sparse: bool

    @property
    def ratio(self) -> float:
        return self.dense_bytes / self.sent_bytes if self.sent_bytes else float("inf")


def sparsify_gradients(graph: ModelGraph, sparsity: float, *, value_dtype: str = "fp32",
                       index_bits: int = 16) -> ModelGraph:
    """The same graph, exchanging only the top (1 - sparsity) of each weight gradient."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, int | float) \
            or not 0 <= sparsity < 1:
        raise ShapeError(f"gradient sparsity must be in [0, 1), got {sparsity!r}",
                         "e.g. gradsparse:0.999 sends 0.1 % of the gradients")
    lookup_dtype(value_dtype)
    comp = GradientCompression(float(sparsity), value_dtype, int(index_bits))
    return replace(graph, name=renamed(graph, f"gradsparse{sparsity:g}"),
                   meta={**graph.meta, "gradient_compression": comp})


def gradient_exchange(graph: ModelGraph, value_dtype: str = "fp32") -> GradientExchange:
    """Dense and sent bytes per worker and step, for the graph's gradient compression."""
    comp: GradientCompression | None = graph.meta.get("gradient_compression")
    width = lookup_dtype(comp.value_dtype if comp else value_dtype).nbytes
    tensors = [w for op in graph.ops if not op.tied for w in op.weights]
    params = sum(w.numel for w in tensors)
    dense = params * width
    if comp is None:
        return GradientExchange(params, dense, dense, False)
    keep = 1.0 - comp.sparsity
    sent = sum(w.numel * (keep * (width + comp.index_bits / 8) if len(w.shape) >= 2
                          else width) for w in tensors)
    return GradientExchange(params, dense, min(sent, dense), True)
