"""Pipeline Gantt chart: one row per device, forward and backward ops as bars (the classic
GPipe / PipeDream / interleaved figures of Narayanan et al. 2021, Fig. 3-4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from perfmodel.errors import PerfModelError
from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["pipeline_figure", "plot_pipeline_gantt"]

MAX_DEVICES = 64


def pipeline_figure(compute: pd.DataFrame, title: str = "", annotate: bool = True) -> Any:
    """``compute``: resource (device), start, end, label ("F3", "B0.1") rows, as
    PipelineRun.compute() returns them. Forwards blue, backwards green; chunks shaded."""
    if compute.empty:
        raise PerfModelError("the pipeline timeline is empty: nothing to plot",
                             "simulate at least one micro-batch")
    plt = pyplot()

    devices = list(dict.fromkeys(compute.sort_values("start")["resource"]))
    devices = sorted(devices, key=lambda d: (len(d), d))[:MAX_DEVICES]
    row = {d: i for i, d in enumerate(devices)}
    shown = compute[compute["resource"].isin(row)]
    fig, ax = plt.subplots(figsize=(11, 0.4 * len(devices) + 1.6))
    span = float(shown["end"].max()) or 1.0
    labels = shown["label"].astype(str)
    chunk = pd.to_numeric(labels.str.split(".").str[1], errors="coerce").fillna(0).astype(int)
    kind = labels.str[0]
    keys = pd.DataFrame({"row": shown["resource"].map(row), "kind": kind, "chunk": chunk % 3})
    spans = pd.DataFrame({"start": shown["start"], "width": shown["end"] - shown["start"]})
    for (r, k, c), idx in keys.groupby(["row", "kind", "chunk"]).groups.items():
        colour = plt.get_cmap("Blues" if k == "F" else "Greens")(0.55 + 0.15 * c)
        ax.broken_barh(list(spans.loc[idx].itertuples(index=False, name=None)),
                       (r - 0.4, 0.8), facecolors=colour, edgecolor="white", linewidth=0.5)
    if annotate:
        big = spans["width"] / span > 0.012
        for (res, start, width), lab in zip(
                pd.concat([shown["resource"], spans], axis=1)[big].itertuples(
                    index=False, name=None), labels[big], strict=True):
            ax.text(start + width / 2, row[res], lab.split(".")[0][1:], ha="center",
                    va="center", fontsize=6)
    ax.set_yticks(range(len(devices)), devices, fontsize=7)
    ax.invert_yaxis()
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=plt.get_cmap("Blues")(0.7), label="forward"),
                       Patch(color=plt.get_cmap("Greens")(0.7), label="backward")],
              fontsize=7, loc="upper right")
    ax.set_xlabel("time (s)")
    ax.set_title(title or "pipeline schedule", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def plot_pipeline_gantt(compute: pd.DataFrame, path: str | Path, title: str = "",
                        overwrite: bool = False, annotate: bool = True) -> Path:
    """Write ``pipeline_figure`` to ``path`` (PNG/SVG/PDF by extension); an existing file only
    with ``overwrite``."""
    out = figure_path(path, overwrite)
    return save(pipeline_figure(compute, title, annotate), out)
