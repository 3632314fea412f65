"""Data types (bit widths), unit constants and SI formatting.

Everything inside perfmodel is SI: seconds, bytes, FLOP, FLOP/s, bytes/s. Decimal
prefixes for display (1 GB = 1e9 B); binary ones only when labelled (GiB).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perfmodel.errors import UnknownNameError, did_you_mean

__all__ = [
    "DType",
    "DTYPES",
    "DTYPE_ALIASES",
    "dtype",
    "dtype_bytes",
    "format_si",
    "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB",
]

KB, MB, GB, TB = 1e3, 1e6, 1e9, 1e12
KiB, MiB, GiB = 2.0**10, 2.0**20, 2.0**30


@dataclass(frozen=True)
class DType:
    """A numeric format: name, storage width in bits, float or integer."""

    name: str
    bits: int
    is_float: bool

    @property
    def nbytes(self) -> float:
        """Bytes per element (fractional for sub-byte formats: int4 = 0.5)."""
        return self.bits / 8


# Storage widths of the formats hardware specs quote. tf32 is stored as fp32 (32 bits)
# and only computed at 19 bits on NVIDIA tensor cores (NVIDIA A100 whitepaper).
DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("fp64", 64, True),
        DType("fp32", 32, True),
        DType("tf32", 32, True),
        DType("fp16", 16, True),
        DType("bf16", 16, True),
        DType("fp8", 8, True),
        DType("fp6", 6, True),
        DType("fp4", 4, True),
        DType("int32", 32, False),
        DType("int8", 8, False),
        DType("int4", 4, False),
        DType("int1", 1, False),
    )
}

DTYPE_ALIASES: dict[str, str] = {
    "float64": "fp64", "double": "fp64",
    "float32": "fp32", "float": "fp32",
    "float16": "fp16", "half": "fp16",
    "bfloat16": "bf16",
    "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "float8": "fp8",
    "binary": "int1", "bit": "int1",
}


def dtype(name: str) -> DType:
    """Look up a dtype by name or alias (case-insensitive)."""
    key = str(name).strip().lower()
    key = DTYPE_ALIASES.get(key, key)
    try:
        return DTYPES[key]
    except KeyError:
        raise UnknownNameError(
            f"unknown dtype {name!r}", did_you_mean(key, [*DTYPES, *DTYPE_ALIASES])
        ) from None


def dtype_bytes(name: str) -> float:
    """Bytes per element of a dtype name."""
    return dtype(name).nbytes


_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
             (1e-3, "m"), (1e-6, "u"), (1e-9, "n"))


def format_si(value: float, unit: str = "", digits: int = 3) -> str:
    """Format with a decimal SI prefix: format_si(3.2e12, 'FLOP/s') == '3.2 TFLOP/s'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}".strip()
    return f"{value:.{digits}g} {unit}".strip()
