"""Predicted-vs-measured scatter: one point per measurement, log-log, with the y = x line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["plot_validation"]


def plot_validation(compared: pd.DataFrame, path: str | Path, overwrite: bool = False,
                    title: str = "") -> Path:
    """Write the scatter (PNG/SVG/PDF by extension): x measured, y predicted seconds, one
    colour per family, the y = x line and dashed +-25 % lines; MAPE per family in the legend."""
    plt = pyplot()

    out = figure_path(path, overwrite)
    rows = compared[compared["predicted_s"].notna() & (compared["predicted_s"] > 0)]
    fig, ax = plt.subplots(figsize=(6.5, 6))
    for family, grp in rows.groupby("family"):
        mape = 100 * float(grp["abs_error"].mean())
        ax.scatter(grp["time_s"], grp["predicted_s"], s=12, alpha=0.6,
                   label=f"{family}: {len(grp)} rows, MAPE {mape:.1f}%")
    if len(rows):
        lo = float(np.nanmin(rows[["time_s", "predicted_s"]].to_numpy())) / 2
        hi = float(np.nanmax(rows[["time_s", "predicted_s"]].to_numpy())) * 2
        x = np.array([lo, hi])
        ax.plot(x, x, "k-", lw=1, label="y = x")
        ax.plot(x, 1.25 * x, "k--", lw=0.6, label="+-25 %")
        ax.plot(x, x / 1.25, "k--", lw=0.6)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured time (s)")
    ax.set_ylabel("predicted time (s)")
    ax.set_title(title or "perfmodel: predicted vs measured", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return save(fig, out)
