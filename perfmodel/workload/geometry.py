"""The GEMM each matrix-engine op runs, as (batch, M, N): the output tile grid a library
kernel covers (K follows from the op's MACs: K = MACs / (batch M N)).

Read off the op's first output shape, per kind (``GEOMETRY``):

- linear: output (..., out) -> one GEMM of M = rows, N = out (K = in);
- matmul, bmm, attention scores / context, fused attention: output (..., M, N) -> a batch
  of prod(leading dims) GEMMs (fused attention: a query block of M queries by the head
  dimension N, as FlashAttention tiles it, Dao et al. 2022);
- conv2d: output (batch, C_out, H, W) -> the implicit GEMM of M = batch H W, N = C_out
  (cuDNN's implicit-GEMM convolution; NVIDIA "Convolutional Layers User's Guide").

Other kinds have no GEMM shape (NaN): the kernel model prices them as large kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from perfmodel.graph.kinds import OpKind
from perfmodel.graph.op import Op

__all__ = ["GEOMETRY", "gemm_geometry", "NO_GEMM"]

Geometry = tuple[float, float, float]
NO_GEMM: Geometry = (math.nan, math.nan, math.nan)


def _rows_by_last(shape: tuple[int, ...]) -> Geometry:
    return 1.0, float(math.prod(shape[:-1])), float(shape[-1])


def _batched(shape: tuple[int, ...]) -> Geometry:
    if len(shape) < 2:
        return _rows_by_last(shape)
    return float(math.prod(shape[:-2])), float(shape[-2]), float(shape[-1])


def _conv(shape: tuple[int, ...]) -> Geometry:
    n, c, *spatial = shape
    return 1.0, float(n * math.prod(spatial)), float(c)


GEOMETRY: dict[OpKind, Callable[[tuple[int, ...]], Geometry]] = {
    OpKind.LINEAR: _rows_by_last,
    OpKind.MATMUL: _batched, OpKind.BMM: _batched, OpKind.ATTN_SCORE: _batched,
    OpKind.ATTN_CONTEXT: _batched, OpKind.ATTENTION: _batched,
    OpKind.CONV2D: _conv,
}


def gemm_geometry(op: Op) -> Geometry:
    """(batch, M, N) of a resolved op's GEMM, NaN where the kind has none.

    >>> from perfmodel.graph import GraphBuilder
    >>> b = GraphBuilder("m")
    >>> _ = b.linear(b.input("x", (5, 8)), 3)
    >>> gemm_geometry(b.build().ops[0].resolve({"B": 2}))   # M = 2 x 5 rows, N = 3
    (1.0, 10.0, 3.0)
    """
    rule = GEOMETRY.get(OpKind(op.kind))
    if rule is None or not op.outputs or op.attr("depthwise", False):
        return NO_GEMM
    shape = op.outputs[0].shape
    if any(not isinstance(x, int) for x in shape) or not shape:
        return NO_GEMM
    return rule(tuple(int(x) for x in shape))
