"""The compression trade-off chart: speed-up against model size, one point per strategy
(the table: perfmodel.compress.tradeoff)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["plot_tradeoff"]


def plot_tradeoff(table: pd.DataFrame, path: str | Path, overwrite: bool = False,
                  title: str = "") -> Path:
    """Speed-up vs model size on disk, one labelled point per strategy."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter

    out = figure_path(path, overwrite)
    fig, ax = plt.subplots(figsize=(7, 5))
    size_mb = table["size_on_disk_bytes"] / 1e6
    ax.scatter(size_mb, table["speedup"], s=40, zorder=3)
    points: dict[tuple[float, float], list[str]] = {}
    for x, y, label in zip(size_mb, table["speedup"], table["strategy"], strict=True):
        points.setdefault((round(x, 6), round(y, 6)), []).append(str(label))
    for (x, y), labels in points.items():  # strategies that land on one point share a label
        ax.annotate(", ".join(labels), (x, y), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("model size on disk (MB)")
    ax.set_ylabel("speed-up vs baseline (x)")
    ax.set_title(title or "compression: speed-up vs size", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, out)
