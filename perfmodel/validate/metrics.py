"""Error statistics of predictions against measurements, split by benchmark family.

Per row: error = (predicted - measured) / measured (signed: > 0 means perfmodel predicted
slower than measured). Per family: MAPE = mean |error|, the median and 90th percentile of
|error|, and the median signed error (bias). Rows with no prediction are counted apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["error_summary", "SUMMARY_COLUMNS"]

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
