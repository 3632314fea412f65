"""Error statistics of predictions against measurements, split by benchmark family.

Per row: error = (predicted - measured) / measured (signed: > 0 means perfmodel predicted
slower than measured). Per family: MAPE = mean |error|, the median and 90th percentile of
|error|, and the median signed error (bias). Rows with no prediction are counted apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["error_summary", "SUMMARY_COLUMNS", "fit_overhead"]

SUMMARY_COLUMNS = ("family", "rows", "predicted", "mape", "median_abs_error",
                   "p90_abs_error", "median_error")


def _stats(family: str, grp: pd.DataFrame) -> dict:
    err = grp["error"].dropna().to_numpy(float)
    a = np.abs(err)
    has = len(err) > 0
    return {"family": family, "rows": len(grp), "predicted": len(err),
            "mape": float(a.mean()) if has else np.nan,
            "median_abs_error": float(np.median(a)) if has else np.nan,
            "p90_abs_error": float(np.percentile(a, 90)) if has else np.nan,
            "median_error": float(np.median(err)) if has else np.nan}


def error_summary(compared: pd.DataFrame, by: str = "family") -> pd.DataFrame:
    """One row per group (default: family) plus ``all``; errors as fractions (0.1 = 10 %)."""
    rows = [_stats(str(k), g) for k, g in compared.groupby(by, sort=True)]
    rows.append(_stats("all", compared))
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return out.rename(columns={"family": by}) if by != "family" else out


def fit_overhead(base_s: np.ndarray, ops: np.ndarray, measured_s: np.ndarray) -> float:
    """The o >= 0 minimising mean |base + ops o - measured| / measured: the median of
    (measured - base) / ops weighted by ops / measured (L1 regression through one slope)."""
    ok = np.isfinite(base_s) & (ops > 0) & (measured_s > 0)
    if not ok.any():
        return 0.0
    cand = (measured_s[ok] - base_s[ok]) / ops[ok]
    w = ops[ok] / measured_s[ok]
    order = np.argsort(cand)
    cum = np.cumsum(w[order])
    return float(max(cand[order][np.searchsorted(cum, cum[-1] / 2)], 0.0))
