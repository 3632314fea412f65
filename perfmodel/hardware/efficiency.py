"""Size-dependent efficiency curves: achieved / peak as a function of work per op.

A curve is a list of (size, efficiency) points: size in FLOP (compute curves, one per dtype)
or bytes (the memory curve). Between points the efficiency is interpolated linearly in
log10(size); outside them it holds the end value (numpy.interp clamps). Small kernels reach
a small fraction of peak (too few blocks to fill the chip, fixed start-up cost), large ones
approach the library's best; Calculon's ``gflops_efficiency`` / ``MB_efficiency`` tables in
its system files are the same idea (Isaev et al., "Calculon", SC 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EfficiencyCurve"]


@dataclass(frozen=True)
class EfficiencyCurve:
    """(size, efficiency) points sorted by size; ``at`` evaluates vectorized."""

    sizes: tuple[float, ...]
    values: tuple[float, ...]

    @classmethod
    def from_points(cls, points: list[list[float]] | list[tuple[float, float]]
                    ) -> EfficiencyCurve:
        pts = sorted((float(s), float(e)) for s, e in points)
        return cls(tuple(s for s, _ in pts), tuple(e for _, e in pts))

    def to_points(self) -> list[list[float]]:
        return [[s, e] for s, e in zip(self.sizes, self.values, strict=True)]

    def at(self, size: np.ndarray | float) -> np.ndarray:
        """Efficiency at each size (FLOP or bytes); sizes <= 0 get the first point's value."""
        x = np.log10(np.maximum(np.asarray(size, dtype=float), 1e-300))
        return np.interp(x, np.log10(self.sizes), self.values)
