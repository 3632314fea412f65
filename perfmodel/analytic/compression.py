"""How compressed ops run on a device: dtype fallbacks, sparse formats, codebook look-ups.

The rules are hardware-honest and read only the device spec (DOMAIN.md section 3):

* **A dtype with no unit on the device** runs at the next wider format that has one
  (``DTYPE_FALLBACKS``): int4 weights on a device with no int4 unit are dequantized and
  computed in int8, else fp16; fp8 on an A100 computes in fp16. Bytes keep the narrow
  width; FLOP/s does not rise. Only with ``fallback=True`` (compressed workloads): a plain
  workload asking for a dtype the device lacks is an error, as before.
* **2:4 semi-structured sparsity** doubles the matrix-engine rate, and the kernel reads the
  compressed weights (half the values plus 2-bit metadata), only where the spec declares
  ``compute.sparse_2_4`` and the op runs on the tensor unit (NVIDIA A100 whitepaper,
  "Fine-grained structured sparsity": 2x math throughput on Sparse Tensor Cores).
* **Unstructured sparsity** runs at dense speed reading dense weights (the zeros are
  multiplied) unless the spec declares ``compute.sparse_unstructured``; where it does, the
  ideal is assumed: MACs and weight bytes scale with the density.
* **Codebook (shared) weights** cost one gather per weight per execution, on the vector
  unit at its rate for the op's dtype, added to the compute time.
* **Binarized ops** (int1) use an int1 (bitwise) rate only if the spec lists one;
  otherwise the dtype fallback applies (int1 -> int4 -> int8 -> ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perfmodel.analytic.op_table import FrameLike
from perfmodel.errors import UnsupportedOpError
from perfmodel.hardware.spec import DeviceSpec

__all__ = ["DTYPE_FALLBACKS", "Execution", "resolve_peak", "execution", "native_sparse"]

# Wider formats to try, in order, when a device has no unit for a dtype: dequantize up,
# never silently down (fp32 has no fallback).
DTYPE_FALLBACKS: dict[str, tuple[str, ...]] = {
    "int1": ("int4", "int8", "fp16", "bf16", "fp32"),
    "int4": ("int8", "fp16", "bf16", "fp32"),
    "fp4": ("fp6", "fp8", "fp16", "bf16", "fp32"),
    "fp6": ("fp8", "fp16", "bf16", "fp32"),
    "fp8": ("fp16", "bf16", "fp32"),
    "int8": ("fp16", "bf16", "fp32"),
    "fp16": ("bf16", "fp32"),
    "bf16": ("fp16", "fp32"),
    "tf32": ("fp32",),
}


def resolve_peak(device: DeviceSpec, unit: str, dtype: str,
                 fallback: bool = False) -> tuple[str, str, float, str]:
    """(unit, dtype, FLOP/s, note) an op of ``dtype`` wanting ``unit`` runs at.

    Without ``fallback`` this is ``device.resolve_unit`` (which raises for a dtype the
    device lacks); with it, the formats of ``DTYPE_FALLBACKS[dtype]`` are tried in order.
    """
    try:
        return device.resolve_unit(unit, dtype)
    except UnsupportedOpError:
        if not fallback:
            raise
    for wider in DTYPE_FALLBACKS.get(dtype, ()):
        try:
            u, d, p, note = device.resolve_unit(unit, wider)
        except UnsupportedOpError:
            continue
        why = f"no {dtype} unit on {device.name}: dequantized, computed in {d}"
        return u, d, p, why + (f"; {note}" if note else "")
    raise UnsupportedOpError(
        f"device {device.name!r} has no compute figure for {dtype!r} or any wider format",
        f"use one of its dtypes: {', '.join(device.dtypes)}")


@dataclass(frozen=True)
class Execution:
    """Per-row effect of compression on one device.

    ``speedup``: factor on the compute rate (2 for native 2:4, 1 / density for native
    unstructured sparsity, else 1); ``weight_bytes``: weight bytes actually moved;
    ``lookup_s``: codebook gather time; ``native``: the sparse format runs natively.
    """

    speedup: np.ndarray
    weight_bytes: np.ndarray
    lookup_s: np.ndarray
    native: np.ndarray
    notes: tuple[str, ...]


def _column(df: FrameLike, name: str, default: object) -> np.ndarray:
    """A workload column, or a default for tables built before compression columns."""
    if name in df:
        return np.asarray(df[name])
    return np.full(len(df), default, dtype=object if isinstance(default, str) else float)


def execution(df: FrameLike, device: DeviceSpec, unit_used: Sequence[str] | np.ndarray,
              dtype_used: Sequence[str] | np.ndarray, fallback: bool = False) -> Execution:
    """How each row's sparsity and codebook run on ``device`` (see the module rules)."""
    n = len(df)
    pattern = _column(df, "sparse_pattern", "").astype(str)
    sparsity = _column(df, "sparsity", 0.0).astype(float)
    lookups = _column(df, "lookups", 0.0).astype(float)
    dense_w = np.asarray(df["weight_bytes"], dtype=float)
    sparse_w = _column(df, "sparse_weight_bytes", np.nan).astype(float)
    sparse_w = np.where(np.isnan(sparse_w), dense_w, sparse_w)
    on_tensor = np.asarray(unit_used, dtype=object) == "tensor"
    native = native_sparse(df, bool(device.sparse_2_4),
                           bool(device.extras.get("sparse_unstructured", False)), on_tensor)
    two_four = native & (pattern == "2:4")
    unstructured = native & (pattern == "unstructured")
    speedup = np.ones(n)
    speedup[two_four] = 2.0
    speedup[unstructured] = 1.0 / np.maximum(1.0 - sparsity[unstructured], 1e-9)
    lookup_s = np.zeros(n)
    if lookups.any():
        lookup_s = _lookup_time(lookups, dtype_used, device, fallback)
    notes = _notes(device, pattern, native, int((lookups > 0).sum()))
    return Execution(speedup, np.where(native, sparse_w, dense_w), lookup_s, native,
                     tuple(notes))


def native_sparse(df: FrameLike, sparse_2_4: bool, sparse_unstructured: bool,
                  on_tensor: np.ndarray | None = None) -> np.ndarray:
    """Rows whose sparse weight format the device runs natively: 2:4 where the spec
    declares ``compute.sparse_2_4`` and the op runs on the tensor unit (``on_tensor``;
    default: the row wants it), unstructured where it declares ``sparse_unstructured``."""
    pattern = _column(df, "sparse_pattern", "").astype(str)
    if on_tensor is None:
        on_tensor = _column(df, "unit", "").astype(str) == "tensor"
    return (((pattern == "2:4") & on_tensor & sparse_2_4)
            | ((pattern == "unstructured") & sparse_unstructured))


def _lookup_time(lookups: np.ndarray, dtype_used: Sequence[str] | np.ndarray, device: DeviceSpec,
                 fallback: bool) -> np.ndarray:
    """One gather per shared weight, on the vector unit at its rate for the row's dtype."""
    out = np.zeros(len(lookups))
    dts = np.asarray(dtype_used, dtype=object)
    for dt in set(dts[lookups > 0]):
        rows = (lookups > 0) & (dts == dt)
        rate = resolve_peak(device, "vector", str(dt), fallback)[2]
        out[rows] = lookups[rows] / (rate * device.efficiency.compute)
    return out


def _notes(device: DeviceSpec, pattern: np.ndarray, native: np.ndarray,
           n_codebook: int) -> list[str]:
    notes = []
    for pat in ("2:4", "unstructured"):
        rows = pattern == pat
        if not rows.any():
            continue
        fast, slow = int((rows & native).sum()), int((rows & ~native).sum())
        if fast:
            how = "2x matrix throughput" if pat == "2:4" else "MACs and weight bytes x density"
            notes.append(f"{pat} sparsity on {fast} op(s): {device.name} declares support: "
                         f"{how}, compressed weights read")
        if slow:
            why = ("the spec declares no sparse_2_4" if not device.sparse_2_4 else
                   "only tensor-unit ops gain") if pat == "2:4" else \
                "the spec declares no sparse_unstructured support"
            notes.append(f"{pat} sparsity on {slow} op(s) runs at dense speed with dense "
                         f"weights ({why}); only the stored size shrinks")
    if n_codebook:
        notes.append(f"codebook weights on {n_codebook} op(s): one gather per weight per "
                     "execution on the vector unit, added to compute time")
    return notes
