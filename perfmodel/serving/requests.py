"""Serving traffic: request arrivals and lengths, generated from a seed or read from a trace.

Arrivals: ``poisson`` (exponential gaps of mean 1 / rate) or ``gamma:CV`` (gamma gaps of
mean 1 / rate and coefficient of variation CV: burstier traffic above 1, smoother below;
CV 1 is Poisson). Lengths: a fixed number (``1024``) or a distribution, ``lognormal:MEAN,
SIGMA`` (of the underlying normal: sigma; scaled so the mean is MEAN), ``uniform:LO,HI`` or
``exponential:MEAN``, rounded to whole tokens, at least 1. A trace is a CSV with columns
``arrival_s``, ``input_len``, ``output_len``. The same inputs and seed give the same table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from perfmodel.errors import MeasurementError, PlanError, ShapeError
from perfmodel.workload.job import check_positive

__all__ = ["requests", "read_trace", "lengths", "arrivals", "TRACE_COLUMNS"]

TRACE_COLUMNS = ("arrival_s", "input_len", "output_len")
LIMIT = 1 << 24


def _numbers(spec: str, what: str, count: int) -> list[float]:
    parts = spec.split(",")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise ShapeError(f"{what} {spec!r}: not numbers", f"e.g. {what} 1024 or "
                         "lognormal:1024,0.5") from None
    if len(vals) != count or any(not np.isfinite(v) or v < 0 for v in vals):
        raise ShapeError(f"{what} {spec!r}: needs {count} non-negative number(s)",
                         f"e.g. {what} 1024, lognormal:1024,0.5, uniform:128,2048")
    return vals


def lengths(spec: str | int, n: int, rng: np.random.Generator, what: str = "length"
            ) -> np.ndarray:
    """``n`` token counts from a length spec (see the module docstring)."""
    text = str(spec).strip().lower()
    kind, _, args = text.partition(":")
    if not args:
        try:
            value = int(text)
        except ValueError:
            raise ShapeError(f"{what} {spec!r}: not a whole number of tokens or a "
                             "distribution", "e.g. 1024, lognormal:1024,0.5, uniform:128,2048, "
                             "exponential:512") from None
        check_positive(what.lstrip("-").replace("-", "_"), value, ShapeError, what,
                       LIMIT)
        return np.full(n, value, dtype=np.int64)
    if kind == "lognormal":
        mean, sigma = _numbers(args, what, 2)
        mu = np.log(max(mean, 1.0)) - sigma ** 2 / 2  # E[X] = exp(mu + sigma^2 / 2) = mean
        x = rng.lognormal(mu, sigma, n)
    elif kind == "uniform":
        lo, hi = _numbers(args, what, 2)
        if hi < lo:
            raise ShapeError(f"{what} {spec!r}: high below low", "uniform:LO,HI with LO <= HI")
        x = rng.uniform(lo, hi, n)
    elif kind == "exponential":
        (mean,) = _numbers(args, what, 1)
        x = rng.exponential(mean, n)
    else:
        raise ShapeError(f"{what} {spec!r}: unknown distribution {kind!r}",
                         "use lognormal:MEAN,SIGMA, uniform:LO,HI or exponential:MEAN")
    return np.clip(np.rint(x), 1, LIMIT).astype(np.int64)


def arrivals(rate: float, n: int, rng: np.random.Generator, process: str = "poisson"
             ) -> np.ndarray:
    """Arrival times (seconds) of ``n`` requests at ``rate`` per second."""
    if not np.isfinite(rate) or rate <= 0:
        raise PlanError(f"arrival rate must be positive requests per second, got {rate}",
                        "pass --rate 10")
    kind, _, arg = str(process).lower().partition(":")
    if kind == "poisson" and not arg:
        gaps = rng.exponential(1.0 / rate, n)
    elif kind == "gamma":
        (cv,) = _numbers(arg or "1", "--arrival gamma:CV", 1)
        if cv <= 0:
            raise PlanError(f"gamma arrivals need a positive CV, got {cv}",
                            "pass --arrival gamma:2 (burstier) or gamma:0.5 (smoother)")
        shape = 1.0 / cv ** 2
        gaps = rng.gamma(shape, 1.0 / (rate * shape), n)
    else:
        raise PlanError(f"unknown arrival process {process!r}",
                        "use poisson or gamma:CV (e.g. gamma:2)")
    return np.cumsum(gaps) - gaps[0]  # the first request arrives at 0


def requests(n: int, rate: float, input_len: str | int, output_len: str | int, *,
             seed: int = 0, process: str = "poisson") -> pd.DataFrame:
    """``n`` requests: id, arrival_s, input_len, output_len."""
    check_positive("requests", n, ShapeError, "--requests", 10_000_000)
    rng = np.random.default_rng(seed)
    t = arrivals(rate, n, rng, process)
    return pd.DataFrame({"request_id": np.arange(n), "arrival_s": t,
                         "input_len": lengths(input_len, n, rng, "--input-len"),
                         "output_len": lengths(output_len, n, rng, "--output-len")})


def read_trace(path: str | Path) -> pd.DataFrame:
    """A request trace CSV (``arrival_s``, ``input_len``, ``output_len``), checked."""
    p = Path(path)
    if not p.is_file():
        raise MeasurementError(f"trace not found: {p}", "give a CSV with columns "
                               + ", ".join(TRACE_COLUMNS))
    try:
        df = pd.read_csv(p)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise MeasurementError(f"{p}: not a readable CSV ({type(exc).__name__})",
                               "give a text CSV with columns "
                               + ", ".join(TRACE_COLUMNS)) from None
    missing = [c for c in TRACE_COLUMNS if c not in df.columns]
    if missing:
        raise MeasurementError(f"{p}: missing column(s) {', '.join(missing)}",
                               "a trace has columns " + ", ".join(TRACE_COLUMNS))
    df = df[list(TRACE_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    bad = df.isna().any(axis=1) | (df["arrival_s"] < 0) | (df["input_len"] < 1) \
        | (df["output_len"] < 1)
    if bad.any():
        raise MeasurementError(f"{p}: {int(bad.sum())} row(s) with a missing, negative or "
                               f"zero value (first at line {int(np.argmax(bad.to_numpy())) + 2})",
                               "arrival_s >= 0, input_len and output_len >= 1")
    if df.empty:
        raise MeasurementError(f"{p}: no requests", "add rows to the trace")
    df = df.sort_values("arrival_s", kind="stable").reset_index(drop=True)
    df[["input_len", "output_len"]] = df[["input_len", "output_len"]].astype(np.int64)
    return df.assign(request_id=np.arange(len(df)))[["request_id", *TRACE_COLUMNS]]
