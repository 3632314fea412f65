"""DeviceSpec: one device's figures, in SI units, frozen, with the source of each figure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfmodel.errors import UnsupportedOpError, did_you_mean
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.kernel_model import KernelModel, MemoryTechnology

__all__ = ["DeviceSpec", "MemoryLevel", "Efficiency", "UNITS"]

UNITS = ("tensor", "vector")


@dataclass(frozen=True)
class MemoryLevel:
    """A memory level: capacity in bytes, bandwidth in bytes/s (None if not published).

    ``achieved``: the bandwidth is a measured, achieved figure (``achieved_GBps`` in the
    file), used as it is; otherwise it is a peak, and the device's memory efficiency
    applies to it.
    """

    name: str
    role: str  # "main" or "cache"
    capacity_bytes: float | None
    bandwidth_Bps: float | None
    achieved: bool = False


@dataclass(frozen=True)
class Efficiency:
    """Achieved / peak factors and the fixed cost of launching one kernel.

    ``compute`` applies to the compute-bound time, ``memory`` to the memory-bound time;
    ``launch_overhead_s`` is added once per op that does any work. What applies to one op,
    first match wins:

    - compute (matrix-engine ops): the spec's curve for the dtype (``compute_curves``, over
      FLOP per op; written by calibration), else the kernel model (``compute_model``:
      clock, tile and wave quantization; perfmodel.hardware.kernel_model) where the
      device's architecture is known and its spec sets no ``compute`` factor of its own,
      else the scalar ``compute``;
    - memory: the spec's ``memory_curve`` (over bytes per op), else the memory technology's
      efficiency at the op's write fraction (``memory_model``), else the scalar ``memory``.

    Where a model applies, the scalars hold its large-kernel values (full-wave GEMM; a copy).
    """

    compute: float
    memory: float
    launch_overhead_s: float
    compute_curves: Mapping[str, EfficiencyCurve] = field(default_factory=dict)
    memory_curve: EfficiencyCurve | None = None
    compute_model: KernelModel | None = None
    memory_model: MemoryTechnology | None = None

    def compute_at(self, flops: np.ndarray, dtype: str,
                   gemm: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
                   ) -> np.ndarray:
        """Compute efficiency of matrix-engine ops of ``flops`` FLOP each in ``dtype``;
        ``gemm`` = (batch, M, N, K) per op where known (NaN where not)."""
        curve = self.compute_curves.get(dtype)
        if curve:
            return curve.at(flops)
        if self.compute_model is not None:
            if gemm is None:
                return np.full(np.shape(flops), self.compute_model.large)
            return self.compute_model.gemm(*gemm)
        return np.full(np.shape(flops), self.compute)

    def memory_at(self, nbytes: np.ndarray, write_fraction: np.ndarray | None = None
                  ) -> np.ndarray:
        """Memory efficiency of ops moving ``nbytes`` bytes each, ``write_fraction`` of them
        written (None: a copy's 1/2)."""
        if self.memory_curve is not None:
            return self.memory_curve.at(nbytes)
        if self.memory_model is not None:
            wf = 0.5 if write_fraction is None else write_fraction
            return np.broadcast_to(self.memory_model.at(wf), np.shape(nbytes)).copy()
        return np.full(np.shape(nbytes), self.memory)


@dataclass(frozen=True)
class DeviceSpec:
    """A device as read from a spec file (see docs/hw_spec_format.md).

    ``peak_flops`` maps (unit, dtype) -> dense peak in FLOP/s (integer dtypes: op/s).
    ``provenance`` maps each figure's key path to its source citation.
    """

    name: str
    display_name: str
    vendor: str
    category: str
    peak_flops: Mapping[tuple[str, str], float]
    memory: tuple[MemoryLevel, ...]
    efficiency: Efficiency
    tdp_w: float | None = None
    year: int | None = None
    architecture: str = ""
    aliases: tuple[str, ...] = ()
    sparse_2_4: bool = False
    extras: Mapping[str, Any] = field(default_factory=dict, compare=False)
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False)
    path: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def main_memory(self) -> MemoryLevel:
        return next(m for m in self.memory if m.role == "main")

    @property
    def memory_bandwidth(self) -> float:
        """Main-memory bandwidth, bytes/s."""
        return float(self.main_memory.bandwidth_Bps or 0.0)

    @property
    def memory_capacity(self) -> float:
        return float(self.main_memory.capacity_bytes or 0.0)

    @property
    def cache(self) -> MemoryLevel | None:
        """The first cache level with both a capacity and a bandwidth (the hierarchical
        roofline's second roof), or None."""
        return next((m for m in self.memory if m.role == "cache" and m.bandwidth_Bps
                     and m.capacity_bytes), None)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(sorted({d for _, d in self.peak_flops}))

    @property
    def default_dtype(self) -> str:
        """The dtype a user most likely means on this device: fp16, else bf16, else fp32,
        else the first it supports."""
        for d in ("fp16", "bf16", "fp32"):
            if d in self.dtypes:
                return d
        return self.dtypes[0]

    def peak(self, unit: str, dtype: str) -> float | None:
        return self.peak_flops.get((unit, dtype))

    def resolve_unit(self, unit: str, dtype: str) -> tuple[str, str, float, str]:
        """The (unit, dtype, FLOP/s, note) an op of ``dtype`` wanting ``unit`` runs at.

        Fallbacks, each stated in the note: a tensor-unit op on a device with no matrix
        engine for the dtype runs on the vector unit; a vector-unit op with no published
        vector rate for its dtype computes in fp32 on the vector unit, else uses the
        tensor rate (TPUs publish none for their vector units).
        """
        chain = [(unit, dtype, "")]
        if unit == "tensor":
            chain.append(("vector", dtype, "no tensor unit for this dtype: vector unit"))
        else:
            chain += [("vector", "fp32", "no vector rate for this dtype: computed in fp32"),
                      ("tensor", dtype, "no vector rate published: tensor-unit peak used")]
        for u, d, note in chain:
            p = self.peak_flops.get((u, d))
            if p:
                return u, d, p, note
        raise UnsupportedOpError(
            f"device {self.name!r} has no compute figure for dtype {dtype!r}",
            f"use one of its dtypes: {', '.join(self.dtypes)}")

    def ridge_point(self, dtype: str, unit: str = "tensor") -> float:
        """Arithmetic intensity (FLOP/byte) where the roofline turns compute-bound."""
        return self.resolve_unit(unit, dtype)[2] / self.memory_bandwidth

    def check_dtype(self, dtype: str) -> None:
        if dtype not in self.dtypes:
            hint = did_you_mean(dtype, self.dtypes)
            raise UnsupportedOpError(
                f"device {self.name!r} does not support dtype {dtype!r}",
                hint if hint.startswith("did you mean") else
                f"use one of: {', '.join(self.dtypes)}")
