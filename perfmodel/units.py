"""Data types (bit widths), unit constants and SI formatting.

Everything inside perfmodel is SI: seconds, bytes, FLOP, FLOP/s, bytes/s. Decimal
prefixes for display (1 GB = 1e9 B); binary ones only when labelled (GiB). Message sizes
typed by a user (``256M``) are binary, as nccl-tests reads its ``-b``/``-e`` flags.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from perfmodel.errors import ShapeError, UnknownNameError, did_you_mean

__all__ = [
    "DType",
    "DTYPES",
    "DTYPE_ALIASES",
    "dtype",
    "dtype_bytes",
    "format_si",
    "parse_bytes",
    "sweep_sizes",
    "MAX_BYTES",
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


# nccl-tests (src/common.cu, parsesize) reads -b/-e sizes with binary K/M/G suffixes.
_BYTE_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_BYTE_COUNT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", re.IGNORECASE)
MAX_BYTES = 1 << 60  # 1 EiB: far past any message or memory, and safe in an int64 column


def parse_bytes(text: str) -> int:
    """A byte count as a user types it: K/M/G/T are binary, as nccl-tests ``-b``/``-e``.

    Parameters
    ----------
    text : str
        Digits with an optional fraction, suffix and ``B``: ``8``, ``64K``, ``1.5k``,
        ``256MB`` (case-insensitive).

    Returns
    -------
    int
        Bytes, from 1 up to ``MAX_BYTES`` (2**60); a fraction of a byte is dropped.

    Raises
    ------
    ShapeError
        Unreadable text, a count under one byte, or one over ``MAX_BYTES`` (past that the
        int64 size columns would overflow).

    Examples
    --------
    >>> parse_bytes("256M"), parse_bytes("1.5k"), parse_bytes("8")
    (268435456, 1536, 8)
    """
    m = _BYTE_COUNT.fullmatch(str(text))
    if not m:
        raise ShapeError(f"cannot read a byte count from {text!r}",
                         "write it like 8, 64K, 256M or 8G (binary, as nccl-tests)")
    scaled = float(m.group(1)) * _BYTE_SUFFIX[m.group(2).upper()]
    if not scaled <= MAX_BYTES:  # also inf, from a few hundred digits
        raise ShapeError(f"byte count {text!r} is over 2**60 B (1 EiB)",
                         "a message size is at most a few T, e.g. --bytes 8G")
    value = int(scaled)
    if value <= 0:
        raise ShapeError(f"byte count must be positive, got {text!r}", "e.g. --bytes 1M")
    return value


def sweep_sizes(min_bytes: float, max_bytes: float, factor: float = 2.0,
                limit: int = 200) -> np.ndarray:
    """Message sizes from ``min_bytes`` up to ``max_bytes``, each the last x ``factor``
    rounded down (and at least one byte more than the last, so a factor close to 1 never
    repeats a size), at most ``limit`` of them: nccl-tests' ``-b -e -f`` sweep.

    Parameters
    ----------
    min_bytes, max_bytes : float
        First size, and the largest a size may be (bytes; ``max_bytes`` itself is in the
        sweep when a step lands on it).
    factor : float
        Step factor, > 1 (nccl-tests ``-f``).
    limit : int
        Most sizes returned (a small factor would otherwise give thousands).

    Returns
    -------
    numpy.ndarray
        The sizes as floats, ascending.

    Raises
    ------
    ShapeError
        ``max_bytes < min_bytes``, ``factor <= 1``, or ``limit < 1``.

    Examples
    --------
    >>> sweep_sizes(8, 64).tolist()
    [8.0, 16.0, 32.0, 64.0]
    >>> sweep_sizes(1000, 4000, 1.5).tolist()
    [1000.0, 1500.0, 2250.0, 3375.0]
    >>> sweep_sizes(8, 11, 1.0001).tolist()
    [8.0, 9.0, 10.0, 11.0]
    """
    if max_bytes < min_bytes or not factor > 1:
        raise ShapeError(f"a sweep needs min <= max and --step-factor > 1, got "
                         f"{min_bytes}..{max_bytes} x{factor}",
                         "e.g. --min-bytes 8 --max-bytes 8G")
    if limit < 1:
        raise ShapeError(f"a sweep needs a limit of at least one size, got {limit}",
                         "leave the limit at its default, 200")
    out: list[float] = []
    v = float(min_bytes)
    while v <= max_bytes and len(out) < limit:
        out.append(v)
        v = max(float(math.floor(v * factor)), v + 1.0)
    return np.array(out)
