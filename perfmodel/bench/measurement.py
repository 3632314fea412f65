"""The Measurement schema: one CSV format written by every backend, read by validate/calibrate.

One row is one timed piece of work (a GEMM of one shape, one STREAM kernel at one size,
one model's end-to-end latency). SI units inside; units appear in column names.

=====================  ========  ===============================================================
column                 type      meaning
=====================  ========  ===============================================================
benchmark              str       what ran: gemm_cublas, gemm_numpy, stream_triad, launch_plain, ...
family                 str       gemm | membw | l2 | latency | launch | elementwise | reduction |
                                 conv | attention | collective | inference (see FAMILIES)
backend                str       cuda | cpu | torch | reference (published data, converted)
device                 str       the device as the backend reports it (nvidia-smi name, CPU model)
hw                     str       perfmodel spec that prices the row (name or file); empty: --hw
dtype                  str       compute dtype (perfmodel name: fp32, tf32, fp16, bf16, int8, ...)
m, n, k                int       GEMM dimensions: C[m, n] = A[m, k] @ B[k, n]
batch, seq, out_seq    int       batch size; sequence / prompt length; generated tokens (LLMs)
model, phase           str       inference rows: zoo model name; inference | generate |
                                 prefill | decode (one token against a KV cache of seq)
framework              str       software that ran the work (cuBLAS 13.0, numpy 2.1, vLLM, ...)
num_devices            int       devices that ran it together (1 unless a collective / parallel)
flops                  float     FLOP of one repetition (perfmodel's count: 2 x MACs)
bytes                  float     bytes one repetition moves (each input read once, output once)
working_set_bytes      float     bytes of the buffers touched (cache-residency questions)
repeats                int       timed repetitions after warm-up (time_s is their median)
time_s                 float     median seconds of one repetition (required, > 0)
time_p10_s, time_p90_s float     10th / 90th percentile of the repetitions (the spread)
cycles                 float     latency rows: clock cycles per dependent access
achieved_TFLOPS        float     flops / time_s / 1e12
achieved_GBps          float     bytes / time_s / 1e9 (collectives: algorithm bandwidth)
busbw_GBps             float     collectives: bus bandwidth (nccl-tests convention)
check_rel_err          float     ||out - ref|| / ||ref|| of the result check (empty: unchecked)
driver_version         str       GPU driver (nvidia-smi), empty on CPU
cuda_version           str       CUDA toolkit the benchmark was built with
sm_clock_MHz           float     SM (or CPU) clock read when the run started, if readable
mem_clock_MHz          float     memory clock read when the run started, if readable
method                 str       how it was timed (events after warm-up, median of N, ...)
timestamp              str       ISO 8601 time of the run (UTC)
source, locator        str       reference rows: where the number was published
quote_or_note          str       reference rows: the quoted figure, or how it was derived
confidence             str       reference rows: high | medium | low
row_id                 str       reference rows: the id in shared/reference/measurements
=====================  ========  ===============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import MeasurementError, did_you_mean, raise_problems

__all__ = ["COLUMNS", "FAMILIES", "BACKENDS", "REQUIRED", "check_measurements",
           "read_measurements", "write_measurements", "measurement_frame", "add_derived"]

STR, INT, FLOAT = "str", "int", "float"
COLUMNS: dict[str, str] = {
    "benchmark": STR, "family": STR, "backend": STR, "device": STR, "hw": STR, "dtype": STR,
    "m": INT, "n": INT, "k": INT, "batch": INT, "seq": INT, "out_seq": INT,
    "model": STR, "phase": STR, "framework": STR, "num_devices": INT,
    "flops": FLOAT, "bytes": FLOAT, "working_set_bytes": FLOAT,
    "repeats": INT, "time_s": FLOAT, "time_p10_s": FLOAT, "time_p90_s": FLOAT,
    "cycles": FLOAT, "achieved_TFLOPS": FLOAT, "achieved_GBps": FLOAT, "busbw_GBps": FLOAT,
    "check_rel_err": FLOAT, "driver_version": STR, "cuda_version": STR,
    "sm_clock_MHz": FLOAT, "mem_clock_MHz": FLOAT, "method": STR, "timestamp": STR,
    "source": STR, "locator": STR, "quote_or_note": STR, "confidence": STR, "row_id": STR,
}
REQUIRED = ("benchmark", "family", "backend", "device", "time_s")
FAMILIES = ("gemm", "membw", "l2", "latency", "launch", "elementwise", "reduction", "conv",
            "attention", "collective", "inference")
BACKENDS = ("cuda", "cpu", "torch", "reference")
# Per family, the columns a row needs besides REQUIRED so that validate can price it.
NEEDS: Mapping[str, tuple[str, ...]] = {
    "gemm": ("m", "n", "k", "dtype"), "membw": ("bytes",), "l2": ("bytes",),
    "elementwise": ("bytes",), "reduction": ("bytes",), "inference": ("model", "batch"),
}


def measurement_frame(rows: list[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Rows -> a DataFrame with every schema column, in schema order, with schema dtypes.

    Unknown keys raise MeasurementError; missing columns are filled with empty values.
    """
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    unknown = [c for c in df.columns if c not in COLUMNS]
    if unknown:
        raise MeasurementError(
            f"unknown measurement column(s): {', '.join(map(str, unknown))}",
            did_you_mean(str(unknown[0]), COLUMNS) + " (schema: perfmodel.bench.measurement)")
    for col, kind in COLUMNS.items():
        if col not in df:
            df[col] = pd.Series([None] * len(df), dtype=object if kind == STR else float)
    df = df[list(COLUMNS)]
    for col, kind in COLUMNS.items():
        if kind == STR:
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
        elif kind == INT:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df.reset_index(drop=True)


def _numeric_problems(raw: pd.DataFrame) -> list[str]:
    problems = []
    for col, kind in COLUMNS.items():
        if kind == STR or col not in raw:
            continue
        given = raw[col].notna() & (raw[col].astype(str).str.strip() != "")
        bad = given & pd.to_numeric(raw[col], errors="coerce").isna()
        for i in np.flatnonzero(bad.to_numpy())[:3]:
            problems.append(f"row {i}: {col}={raw[col].iloc[i]!r} is not a number")
    return problems


def check_measurements(df: pd.DataFrame, where: str = "measurements") -> pd.DataFrame:
    """Validate a measurement table; returns it in schema form or raises MeasurementError
    listing every problem (row numbers count data rows from 0)."""
    problems = _numeric_problems(df)
    m = measurement_frame(df)
    for col in REQUIRED:
        missing = m[col].isna() if COLUMNS[col] != STR else m[col].str.strip() == ""
        problems += [f"row {i}: {col} is missing" for i in np.flatnonzero(missing)[:3]]
    fam = ~m["family"].isin(FAMILIES) & (m["family"] != "")
    problems += [f"row {i}: family {m['family'][i]!r} unknown "
                 f"({did_you_mean(m['family'][i], FAMILIES)})" for i in np.flatnonzero(fam)[:3]]
    back = ~m["backend"].isin(BACKENDS) & (m["backend"] != "")
    problems += [f"row {i}: backend {m['backend'][i]!r} unknown "
                 f"({did_you_mean(m['backend'][i], BACKENDS)})" for i in np.flatnonzero(back)[:3]]
    for col in ("time_s", "flops", "bytes", "m", "n", "k", "batch", "repeats"):
        vals = m[col].astype(float)
        bad = vals.notna() & (vals <= 0)
        problems += [f"row {i}: {col} must be positive, got {vals[i]:g}"
                     for i in np.flatnonzero(bad.to_numpy())[:3]]
    for family, cols in NEEDS.items():
        rows = m["family"] == family
        for col in cols:
            empty = m[col].isna() if COLUMNS[col] != STR else m[col] == ""
            bad = np.flatnonzero((rows & empty).to_numpy())
            problems += [f"row {i}: a {family} row needs {col}" for i in bad[:3]]
    raise_problems(where, problems,
                   "fix these rows (schema: perfmodel.bench.measurement COLUMNS)",
                   error=MeasurementError)
    return m


def add_derived(df: pd.DataFrame) -> pd.DataFrame:
    """Fill achieved_TFLOPS / achieved_GBps from flops, bytes and time_s where empty."""
    out = df.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        tf = out["flops"] / out["time_s"] / 1e12
        gb = out["bytes"] / out["time_s"] / 1e9
    out["achieved_TFLOPS"] = out["achieved_TFLOPS"].fillna(tf)
    out["achieved_GBps"] = out["achieved_GBps"].fillna(gb)
    return out


def read_measurements(path: str | Path) -> pd.DataFrame:
    """Read and validate a measurement CSV (MeasurementError if missing or malformed)."""
    p = Path(path)
    if not p.is_file():
        raise MeasurementError(f"measurement file not found: {p}",
                               "check the path, or make one with `perfmodel bench --out FILE`")
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MeasurementError(f"{p}: not a readable CSV: {exc}",
                               "a measurement file is a CSV with a header row") from None
    return check_measurements(raw, str(p))


def write_measurements(df: pd.DataFrame, path: str | Path, overwrite: bool = False) -> Path:
    """Write a checked measurement table as CSV; never overwrites unless asked."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise MeasurementError(f"{p} already exists", "pass --force to overwrite it")
    if not p.parent.exists():
        raise MeasurementError(f"folder {p.parent} does not exist", "create it first")
    check_measurements(df, str(p)).to_csv(p, index=False, float_format="%.10g")
    return p
