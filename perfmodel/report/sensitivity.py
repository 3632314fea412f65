"""The tornado chart of a sensitivity table: per spec figure, the latency at -step and
+step around the base, largest effect on top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["tornado_figure", "plot_tornado"]


def tornado_figure(table: pd.DataFrame, title: str = "", top: int = 12) -> Any:
    """Write the tornado (``perfmodel.study.sensitivity`` table): horizontal bars of the
    latency change (%) when each figure is lowered and raised, elasticity in the labels."""
    plt = pyplot()
    t = table.head(top).iloc[::-1]
    base = t["latency_s"].to_numpy()
    down = 100 * (t["latency_down_s"].to_numpy() / base - 1)
    up = 100 * (t["latency_up_s"].to_numpy() / base - 1)
    labels = [f"{f} (e = {e:+.2f})" for f, e in zip(t["field"], t["elasticity"], strict=True)]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(t) + 1.5))
    ax.barh(labels, down, color="tab:blue", label="figure lowered")
    ax.barh(labels, up, color="tab:orange", label="figure raised")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("latency change (%)")
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    return fig


def plot_tornado(table: pd.DataFrame, path: str | Path, overwrite: bool = False,
                 title: str = "", top: int = 12) -> Path:
    """Write ``tornado_figure`` to ``path`` (PNG/SVG/PDF by extension); an existing file only
    with ``overwrite``."""
    out = figure_path(path, overwrite)
    return save(tornado_figure(table, title, top), out)
