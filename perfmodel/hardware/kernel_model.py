"""Efficiency as a model: what fraction of a device's peak one kernel reaches, from the
device's own figures and its architecture's, not from a number measured on another chip.

Matrix-engine kernels (NVIDIA, "Matrix Multiplication Background User's Guide",
docs.nvidia.com/deeplearning/performance, sections "Tile Quantization" and "Wave
Quantization"): a GEMM C[M, N] += A[M, K] B[K, N] (``batch`` of them) is cut into output
tiles of tm x tn; each of the device's ``units`` (SMs, CUs, MXUs) holds
``tiles_per_unit`` tiles at once, so the tiles run in

    waves = ceil(batch ceil(M / tm) ceil(N / tn) / (units x tiles_per_unit))

and every wave costs one full tile's time, whether the tile is full (tile quantization) or
the wave is (wave quantization). A tile's main loop runs over K, plus a prologue/epilogue
worth ``k_overhead`` elements of K (software-pipeline fill, writing C). Each unit computes at
its share of the tensor peak, scaled to the clock it holds under sustained matrix load and by
the fraction of its issue slots the library's kernel fills. The efficiency (achieved / peak)
is therefore

    e = (sustained clock / peak clock) x issue_fraction
        x (batch M N) / (waves x units x tiles_per_unit x tm x tn)
        x K / (K + k_overhead)

An op whose GEMM shape is not known (a measured kernel given only as FLOP) is taken as a
large, full-wave GEMM: e = clock factor x issue fraction.

Memory (per access pattern, per memory technology): the achievable fraction of the peak
bandwidth differs between pure reads, pure writes and mixes (read/write bus turnaround),
so each technology gives read, triad (2 reads : 1 write), copy (1 : 1) and write figures,
and an op is read off them at its own write fraction w = written / moved bytes (0, 1/3, 1/2,
1), linearly in between.

The per-architecture and per-technology figures live in ``hw_specs/_architectures.yaml``,
each with its source; the device file names its ``architecture`` and its memory technology
(the main memory level's ``name``), and gives its units and clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Architecture", "MemoryTechnology", "KernelModel", "PATTERN_WRITE_FRACTION"]

# write fraction of each access pattern: read, triad (a = b + s c), copy, write
PATTERN_WRITE_FRACTION = {"read": 0.0, "triad": 1 / 3, "copy": 0.5, "write": 1.0}


@dataclass(frozen=True)
class Architecture:
    """One architecture's kernel figures (``hw_specs/_architectures.yaml``).

    ``gemm_tile`` (tm, tn): the output tile of the vendor library's large-GEMM kernel;
    ``tiles_per_unit``: such tiles one SM / CU / MXU computes at once; ``issue_fraction``:
    achieved / clock-scaled peak of a full-wave large-K GEMM; ``k_overhead``: a tile's
    prologue + epilogue in elements of K; ``kernel_floor_s``: the shortest time of one kernel
    launched back to back (launch + tail). ``provenance``: key -> citation.
    """

    name: str
    vendor: str
    gemm_tile: tuple[int, int]
    tiles_per_unit: int
    issue_fraction: float
    k_overhead: float
    kernel_floor_s: float
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class MemoryTechnology:
    """Achievable / peak bandwidth of one memory technology per access pattern."""

    name: str
    read: float
    triad: float
    copy: float
    write: float
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False)

    def at(self, write_fraction: np.ndarray | float) -> np.ndarray:
        """Efficiency at each write fraction (0 = pure reads, 1 = pure writes).

        >>> MemoryTechnology("m", 0.9, 0.8, 0.7, 0.6).at(np.array([0.0, 0.5, 0.75]))
        array([0.9 , 0.7 , 0.65])
        """
        xs = [PATTERN_WRITE_FRACTION[p] for p in ("read", "triad", "copy", "write")]
        return np.interp(np.asarray(write_fraction, dtype=float), xs,
                         [self.read, self.triad, self.copy, self.write])


@dataclass(frozen=True)
class KernelModel:
    """A device's kernel-efficiency model: its architecture's figures, its unit count and
    the clock it holds under sustained matrix load (``clock_factor`` = sustained / the clock
    its tensor peak is quoted at)."""

    architecture: Architecture
    units: int | None
    clock_factor: float
    clock_note: str = ""

    @property
    def large(self) -> float:
        """Efficiency of a large, full-wave GEMM: clock factor x issue fraction."""
        return self.clock_factor * self.architecture.issue_fraction

    def waves(self, batch: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Waves of output tiles per GEMM (NaN where the shape is unknown or no units)."""
        tm, tn = self.architecture.gemm_tile
        tiles = np.asarray(batch, float) * np.ceil(np.asarray(m, float) / tm) \
            * np.ceil(np.asarray(n, float) / tn)
        slots = (self.units or 0) * self.architecture.tiles_per_unit
        return np.ceil(tiles / slots) if slots else np.full(np.shape(tiles), np.nan)

    def gemm(self, batch: np.ndarray, m: np.ndarray, n: np.ndarray, k: np.ndarray
             ) -> np.ndarray:
        """Efficiency (achieved / peak) of each GEMM; see the module docstring.

        A GEMM of 133 full 128 x 128 tiles on 132 units needs 2 waves, so it runs at
        133 / 264 of the full-wave rate:

        >>> arch = Architecture("x", "v", (128, 128), 1, 1.0, 0.0, 0.0)
        >>> km = KernelModel(arch, units=132, clock_factor=1.0)
        >>> round(float(km.gemm(np.array([1.0]), np.array([133 * 128.0]),
        ...                     np.array([128.0]), np.array([4096.0]))[0]), 4)
        0.5038
        """
        a = self.architecture
        tm, tn = a.gemm_tile
        b, m, n, k = (np.asarray(v, float) for v in (batch, m, n, k))
        waves = self.waves(b, m, n)
        slots = (self.units or 0) * a.tiles_per_unit
        with np.errstate(divide="ignore", invalid="ignore"):
            fill = b * m * n / (waves * slots * tm * tn)
            k_fill = np.where(k > 0, k / (k + a.k_overhead), 1.0)
        shape_known = np.isfinite(fill) & (fill > 0) & np.isfinite(k_fill)
        return self.large * np.where(shape_known, np.minimum(fill, 1.0) * k_fill, 1.0)
