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
    launched back to back (launch + tail). ``attention_forward`` / ``attention_backward``:
    achieved / clock-scaled peak of the best published fused (flash) attention kernel of a
    training step, forward and backward (None: priced as a GEMM). ``provenance``: key ->
    citation.
    """

    name: str
    vendor: str
    gemm_tile: tuple[int, int]
    tiles_per_unit: int
    issue_fraction: float
    k_overhead: float
    kernel_floor_s: float
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False)
    attention_forward: float | None = None
    attention_backward: float | None = None


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
    cache_ridge: float | None = None    # tensor peak / cache bandwidth, FLOP per byte

    @property
    def large(self) -> float:
        """Efficiency of a large, full-wave GEMM: clock factor x issue fraction."""
        return self.clock_factor * self.architecture.issue_fraction

    def tiles(self) -> tuple[tuple[int, int], ...]:
        """The tile family the library chooses from: the architecture's large tile and its
        halvings (one side at a time) down to 64 x 64, as CUTLASS / cuBLAS kernel families
        step (e.g. 256x128, 128x128, 128x64, 64x64)."""
        tm, tn = self.architecture.gemm_tile
        out = [(tm, tn)]
        while max(tm, tn) > 64:
            if tm >= tn:
                tm //= 2
            else:
                tn //= 2
            out.append((tm, tn))
        return tuple(out)

    def gemm(self, batch: np.ndarray, m: np.ndarray, n: np.ndarray, k: np.ndarray
             ) -> np.ndarray:
        """Efficiency (achieved / peak) of each GEMM; see the module docstring.

        The ``units x tiles_per_unit`` slots each compute one tile at a time at their share
        of the peak; the busiest slot's tiles set the time (waves = ceil(tiles / slots)).
        The library takes the tile of its family with the shortest time (its heuristics aim
        at that). A tile's rate is the unit's share of the clock-scaled peak, capped where
        its operand traffic ((tm + tn) K elements per tile from the last-level cache)
        outruns the cache: a tile does
        2 tm tn / ((tm + tn) w) FLOP per operand byte of width w, and keeps the matrix
        engine fed only above ``cache_ridge`` = tensor peak / cache bandwidth (both scale
        with 1 / w, so the fp16 figures serve every dtype). Small tiles re-read operands more.

        A GEMM of 133 full 64 x 64 tiles (the whole family of a 64 x 64 architecture) on
        132 units needs 2 waves, so it runs at 133 / 264 of the full-wave rate:

        >>> arch = Architecture("x", "v", (64, 64), 1, 1.0, 0.0, 0.0)
        >>> km = KernelModel(arch, units=132, clock_factor=1.0)
        >>> round(float(km.gemm(np.array([1.0]), np.array([133 * 64.0]),
        ...                     np.array([64.0]), np.array([4096.0]))[0]), 4)
        0.5038
        """
        a = self.architecture
        b, m, n, k = (np.asarray(v, float) for v in (batch, m, n, k))
        units = (self.units or 0) * a.tiles_per_unit      # tile slots
        known = np.isfinite(b * m * n * k) & (b * m * n * k > 0) & (units > 0)
        if not known.any():
            return np.full(np.shape(b), self.large)
        big = a.gemm_tile[0] * a.gemm_tile[1]
        best = np.full(np.shape(b), np.inf)
        for tm, tn in self.tiles():
            busiest = np.ceil(b * np.ceil(m / tm) * np.ceil(n / tn) / units)  # tiles
            cap = 1.0
            if self.cache_ridge:
                cap = min(1.0, 2 * tm * tn / ((tm + tn) * 2.0) / self.cache_ridge)
            # time in units of one large tile's K loop at the slot's full rate
            best = np.minimum(best, busiest * tm * tn / big / cap)
        with np.errstate(divide="ignore", invalid="ignore"):
            fill = b * m * n / (best * units * big)
            k_fill = k / (k + a.k_overhead)
        return self.large * np.where(known, np.minimum(fill, 1.0) * k_fill, 1.0)
