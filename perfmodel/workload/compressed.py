"""Per-op compression attributes: what they do to widths, bytes moved and model size.

A compression transform (perfmodel.compress) leaves shapes to the graph and records the
rest as op attributes, which the workload builder reads here:

=================  ===================================================================
weight_dtype       dtype of this op's weights (stored and moved), e.g. int4
act_dtype          dtype of this op's activations (inputs and outputs of role act)
compute_dtype      dtype the op computes in (default: act_dtype, else the workload's)
kv_dtype           dtype of this op's KV-cache tensors (role kv)
sparsity           fraction of zeros in the op's main weight tensor (weights[0]), 0..1
sparse_pattern     unstructured | 2:4 (NVIDIA semi-structured: 2 zeros in every 4)
sparse_format      index (default: index_bits per stored non-zero) | bitmap (1 bit per
                   weight)
index_bits         bits of position per stored non-zero (unstructured, format index)
codebook_bits      bits per weight index into a shared codebook (k-means weight sharing)
codebook_size      entries in that codebook, stored at the weight dtype
=================  ===================================================================

Storage of the main weight tensor (n elements, b bits each; other tensors stay dense):

* dense: n*b bits.
* codebook (Han et al., "Deep Compression", ICLR 2016, sec. 3 and Fig. 3): n*cb bits of
  indices plus k*b bits of codebook; the paper's 16 weights in 4 clusters store
  16*2 + 4*32 = 160 bits instead of 512 (3.2x).
* unstructured: nnz = n*(1-sparsity) values (b bits, or cb with a codebook) plus
  index_bits per non-zero (Deep Compression sec. 2 stores relative indices in 8 bits for
  conv layers, 5 for fc layers), or an n-bit bitmap.
* 2:4: n/2 values plus 2 bits of metadata per kept value (Mishra et al., "Accelerating
  sparse deep neural networks", arXiv:2104.08378, 2021, sec. 2: each kept value of a
  group of 4 carries a 2-bit index).

A sparse format that would be larger than the dense one is not used: the op is stored dense.

Bytes moved: a dense kernel reads the weights dense (zeros included), so ``weight_bytes``
shrinks only with the dtype or a codebook (indices are read, then looked up). A kernel that
reads the sparse format natively reads ``sparse_weight_bytes``; whether the device has such
a kernel is decided by the roofline, from the device spec, not here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from perfmodel.errors import ShapeError, UnknownNameError, did_you_mean
from perfmodel.graph.costs import OpCost
from perfmodel.graph.op import Op
from perfmodel.units import dtype as lookup_dtype

__all__ = ["OpMeta", "COMPRESSION_ATTRS", "SPARSE_PATTERNS", "op_widths", "op_meta",
           "dense_meta", "codebook_bits", "has_compression"]

COMPRESSION_ATTRS = ("weight_dtype", "act_dtype", "compute_dtype", "kv_dtype", "sparsity",
                     "sparse_pattern", "sparse_format", "index_bits", "codebook_bits",
                     "codebook_size")
SPARSE_PATTERNS = ("unstructured", "2:4")
META_BITS_2_4 = 2  # metadata bits per kept value of a 2:4 group (Mishra et al. 2021)


@dataclass(frozen=True)
class OpMeta:
    """The compression columns of one workload row (see perfmodel.workload.schema)."""

    dtype: str
    weight_dtype: str
    sparsity: float = 0.0
    sparse_pattern: str = ""
    storage_bytes: float = 0.0
    sparse_weight_bytes: float = 0.0
    lookups: float = 0.0


def has_compression(op: Op) -> bool:
    """Does the op carry any compression attribute (its own dtype, sparsity, codebook)?"""
    return any(k in op.attrs for k in COMPRESSION_ATTRS)


def op_widths(op: Op, widths: Mapping[str, float]) -> Mapping[str, float]:
    """Bytes per element by role for this op: the workload's, overridden by op attrs."""
    over = {role: lookup_dtype(op.attrs[key]).nbytes
            for role, key in (("weight", "weight_dtype"), ("act", "act_dtype"),
                              ("kv", "kv_dtype")) if key in op.attrs}
    return {**widths, **over} if over else widths


def dense_meta(op: Op, cost: OpCost, act: str, wdt: str, weight_width: float) -> OpMeta:
    """Meta of an op with no compression attrs (the common, fast path)."""
    return OpMeta(act, wdt, storage_bytes=cost.params * weight_width,
                  sparse_weight_bytes=cost.weight_bytes)


def op_meta(op: Op, cost: OpCost, widths: Mapping[str, float], act: str,
            wdt: str) -> tuple[OpCost, OpMeta]:
    """The op's cost with weight bytes as a dense kernel moves them, and its meta."""
    if not has_compression(op):
        return cost, dense_meta(op, cost, act, wdt, widths["weight"])
    compute = str(op.attrs.get("compute_dtype") or op.attrs.get("act_dtype") or act)
    weight_dtype = str(op.attrs.get("weight_dtype") or wdt)
    for name in (compute, weight_dtype):
        lookup_dtype(name)  # unknown names fail here, with a did-you-mean
    if not op.weights:
        return cost, OpMeta(compute, weight_dtype)
    fmt = _format(op, widths["weight"] * 8)
    dense_bits = fmt.dense_bits
    moved_ratio = fmt.dense_kernel_bits / dense_bits if dense_bits else 1.0
    sparse_ratio = fmt.stored_bits / dense_bits if dense_bits else 1.0
    weight_bytes = cost.weight_bytes * moved_ratio
    adjusted = OpCost(cost.macs, cost.flops, cost.params, weight_bytes, cost.input_bytes,
                      cost.output_bytes)
    storage = 0.0 if op.tied else fmt.stored_bits / 8
    # one look-up per weight read: all of them, or the gathered rows of an embedding and
    # the touched experts of a mixture (the share of the dense bytes the cost rule read)
    read = cost.weight_bytes / (dense_bits / 8) if dense_bits else 1.0
    lookups = float(op.weights[0].numel) * read if fmt.codebook else 0.0
    return adjusted, OpMeta(compute, weight_dtype, fmt.sparsity, fmt.pattern, storage,
                            cost.weight_bytes * sparse_ratio, lookups)


@dataclass(frozen=True)
class _Format:
    dense_bits: float         # all weights, dense, at the weight dtype
    dense_kernel_bits: float  # what a dense kernel reads (codebook indices, no sparsity)
    stored_bits: float        # the stored format: sparse values + indices + codebook
    sparsity: float
    pattern: str
    codebook: bool


def _check_attrs(op: Op) -> tuple[float, str]:
    s = op.attrs.get("sparsity", 0.0) or 0.0
    pattern = str(op.attrs.get("sparse_pattern", "unstructured" if s else ""))
    if pattern == "2:4":
        s = 0.5
    if isinstance(s, bool) or not isinstance(s, int | float) or not 0 <= s < 1:
        raise ShapeError(f"op {op.name!r}: sparsity must be a fraction in [0, 1), got {s!r}",
                         "e.g. 0.9 for 90 % zeros")
    if pattern and pattern not in SPARSE_PATTERNS:
        raise UnknownNameError(f"op {op.name!r}: unknown sparse_pattern {pattern!r}",
                               did_you_mean(pattern, SPARSE_PATTERNS))
    return float(s), pattern


def _format(op: Op, bits: float) -> _Format:
    """Bits of the op's weights: dense, as a dense kernel reads them, and as stored."""
    sparsity, pattern = _check_attrs(op)
    n = float(op.weights[0].numel)
    rest = float(sum(w.numel for w in op.weights[1:])) * bits
    cb = op.attrs.get("codebook_bits")
    table = float(op.attrs.get("codebook_size", 2 ** int(cb) if cb else 0)) * bits
    value_bits = float(cb) if cb else bits
    dense_main = n * value_bits + (table if cb else 0.0)
    nnz = n * (1.0 - sparsity)
    if pattern == "2:4":
        index = nnz * META_BITS_2_4
    elif pattern and op.attrs.get("sparse_format", "index") == "bitmap":
        index = n
    elif pattern:
        index = nnz * float(op.attrs.get("index_bits", 8))
    else:
        index = 0.0
    stored_main = nnz * value_bits + index + (table if cb else 0.0)
    if pattern and stored_main > dense_main:  # a format worse than dense is not used
        stored_main = dense_main
    return _Format(n * bits + rest, dense_main + rest, stored_main + rest, sparsity,
                   pattern, bool(cb))


def codebook_bits(clusters: int) -> int:
    """Index width for k clusters: ceil(log2 k) bits (at least 1)."""
    return max(1, math.ceil(math.log2(clusters)))
