"""Collective charts: link-occupancy Gantt from a simulator timeline; busbw vs message size."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from perfmodel.errors import PerfModelError
from perfmodel.report.figure import figure_path, pyplot, save

if TYPE_CHECKING:  # the simulator (simpy) is only needed by callers that have a timeline
    from perfmodel.sim.engine import Timeline

__all__ = ["plot_link_gantt", "plot_busbw"]

MAX_LINKS = 48  # rows of a readable Gantt chart: the busiest links



def plot_link_gantt(timeline: Timeline, path: str | Path, title: str = "",
                    overwrite: bool = False) -> Path:
    """One row per link direction (the busiest MAX_LINKS), one bar per hold, coloured by the
    first word of its label (the phase or step)."""
    out = figure_path(path, overwrite)
    ev = timeline.events
    if ev.empty:
        raise PerfModelError("the timeline is empty: nothing to plot",
                             "simulate with recording on (record=True)")
    links = timeline.busy_s().index[:MAX_LINKS].tolist()[::-1]
    row = {name: i for i, name in enumerate(links)}
    shown = ev[ev["resource"].isin(row)]
    groups = shown["label"].str.split().str[-1].str.split(".").str[0]
    plt = pyplot()
    cmap = plt.get_cmap("tab20")
    colours = {g: cmap(i % 20) for i, g in enumerate(pd.unique(groups))}
    fig, ax = plt.subplots(figsize=(10, 0.25 * len(links) + 2.2))
    scale = 1e6
    for (res, start, end), grp in zip(shown[["resource", "start", "end"]].itertuples(
            index=False), groups, strict=True):
        ax.barh(row[res], (end - start) * scale, left=start * scale, height=0.8,
                color=colours[grp], edgecolor="none")
    if len(colours) <= 24:
        from matplotlib.patches import Patch
        ax.legend(handles=[Patch(color=c, label=str(k)) for k, c in colours.items()],
                  fontsize=6, ncol=min(len(colours), 8), loc="upper center",
                  bbox_to_anchor=(0.5, -0.12), frameon=False)
    ax.set_yticks(range(len(links)), links, fontsize=6)
    ax.set_xlabel("time (us)")
    note = f" (busiest {len(links)} of {ev['resource'].nunique()} links)" \
        if ev["resource"].nunique() > len(links) else ""
    ax.set_title((title or "link occupancy") + note, fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    return save(fig, out)


def plot_busbw(tables: dict[str, pd.DataFrame], path: str | Path, title: str = "",
               overwrite: bool = False) -> Path:
    """busbw (GB/s) against message size, one line per table (e.g. analytic, simulated,
    measured); tables need size_bytes and busbw_GBps columns."""
    out = figure_path(path, overwrite)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, t in tables.items():
        ax.semilogx(t["size_bytes"], t["busbw_GBps"], marker="o", ms=3, label=name)
    ax.set_xlabel("message size (bytes, nccl-tests convention)")
    ax.set_ylabel("bus bandwidth (GB/s)")
    ax.set_title(title or "busbw vs size", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, out)
