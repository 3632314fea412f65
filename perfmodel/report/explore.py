"""The Pareto scatter of a design-space exploration (perfmodel.study.explore): every design's
objective against its cost, the front highlighted, the best design marked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["pareto_figure", "plot_pareto", "axis_label"]

# how a spec path's last segment ends -> its unit on an axis
_UNITS = (("_TFLOPS", "TFLOP/s"), ("_GBps", "GB/s"), ("_GB", "GB"), ("_MB", "MB"),
          ("_W", "W"), ("_MHz", "MHz"), ("_us", "us"), ("_ns", "ns"))
_PATH = re.compile(r"^[A-Za-z_][\w.]*$")


def axis_label(expr: str) -> str:
    """An axis label for a cost: a bare spec path with its unit (``power.tdp_W`` ->
    ``power.tdp_W (W)``), an expression as written, in cost units.

    >>> axis_label("power.tdp_W"), axis_label("2 * power.tdp_W")
    ('power.tdp_W (W)', 'cost = 2 * power.tdp_W (cost units)')
    """
    if _PATH.match(expr):
        unit = next((u for end, u in _UNITS if expr.endswith(end)), "")
        return f"{expr} ({unit})" if unit else expr
    return f"cost = {expr} (cost units)"


def pareto_figure(points: pd.DataFrame, *, objective_column: str, objective_label: str,
                  cost_label: str, best: pd.Series | None = None, title: str = "") -> Any:
    """The scatter of ``points`` (an ``explore`` table): feasible designs in grey, designs
    outside a budget faint, the front as a line of red points (cheapest first), ``best`` as
    a star; objective on y, cost on x."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    ok = points["feasible"].to_numpy(dtype=bool)
    ax.scatter(points.loc[~ok, "cost"], points.loc[~ok, objective_column], s=12,
               color="lightgray", marker="x", label="outside the budget")
    ax.scatter(points.loc[ok, "cost"], points.loc[ok, objective_column], s=14,
               color="tab:gray", alpha=0.6, label="design")
    front = points[points["pareto"]].sort_values(["cost", objective_column])
    ax.plot(front["cost"], front[objective_column], "o-", color="tab:red", ms=5,
            label=f"Pareto front ({len(front)})")
    if best is not None:
        ax.scatter([best["cost"]], [best[objective_column]], s=160, marker="*",
                   color="gold", edgecolor="black", zorder=5, label="best design")
    ax.axhline(1.0, color="black", lw=0.6, ls=":")
    ax.set_xlabel(cost_label)
    ax.set_ylabel(objective_label)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_pareto(points: pd.DataFrame, path: str | Path, *, objective_column: str,
                objective_label: str, cost_label: str, best: pd.Series | None = None,
                overwrite: bool = False, title: str = "") -> Path:
    """Write ``pareto_figure`` to ``path`` (PNG/SVG/PDF by extension); an existing file
    only with ``overwrite``."""
    out = figure_path(path, overwrite)
    return save(pareto_figure(points, objective_column=objective_column,
                              objective_label=objective_label, cost_label=cost_label,
                              best=best, title=title), out)
