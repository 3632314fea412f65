"""Memory figures: a stacked breakdown bar, and the memory-wall trend by year."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from perfmodel.hardware.spec import DeviceSpec
from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["breakdown_figure", "plot_breakdown", "plot_memory_wall"]



def breakdown_figure(report: Any, model: str, device: DeviceSpec) -> Any:
    """One stacked bar of the per-device footprint against the device's capacity (GB)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 6))
    bottom = 0.0
    for row in report.breakdown.itertuples():
        if row.bytes > 0:
            ax.bar(0, row.bytes / 1e9, bottom=bottom, label=f"{row.component} "
                   f"{row.bytes / 1e9:.3g} GB", width=0.5)
            bottom += row.bytes / 1e9
    ax.axhline(device.memory_capacity / 1e9, color="k", ls="--",
               label=f"capacity {device.memory_capacity / 1e9:g} GB")
    ax.set_xticks([0], [model])
    ax.set_ylabel("GB per device")
    ax.set_title(f"{model} on {device.display_name}", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def plot_breakdown(report: Any, model: str, device: DeviceSpec, path: str | Path,
                   overwrite: bool = False) -> Path:
    """Write ``breakdown_figure`` to ``path`` (PNG/SVG/PDF by extension); an existing file only
    with ``overwrite``."""
    out = figure_path(path, overwrite)
    return save(breakdown_figure(report, model, device), out)


def plot_memory_wall(table: pd.DataFrame, path: str | Path, overwrite: bool = False) -> Path:
    """Peak FLOP/s, bandwidth and capacity by year (log scale), and FLOP per byte."""
    out = figure_path(path, overwrite)
    plt = pyplot()
    t = table.dropna(subset=["year"])  # every shipped device has a cited year
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    a.semilogy(t["year"], t["peak_flops_per_s"] / 1e12, "o",
               label="peak TFLOP/s (fp16, else bf16, else fp32)")
    a.semilogy(t["year"], t["bandwidth_Bps"] / 1e9, "s", label="bandwidth GB/s")
    a.semilogy(t["year"], t["capacity_bytes"] / 1e9, "^", label="capacity GB")
    a.set_xlabel("year")
    a.set_ylabel("TFLOP/s, GB/s, GB (log scale)")
    a.legend(fontsize=8)
    a.grid(True, which="both", alpha=0.3)
    b.semilogy(t["year"], t["flop_per_byte"], "o")
    for r in t.itertuples():
        b.annotate(r.device, (r.year, r.flop_per_byte), fontsize=6)
    b.set_xlabel("year")
    b.set_ylabel("peak FLOP per byte of bandwidth (ridge point)")
    b.grid(True, which="both", alpha=0.3)
    fig.suptitle("The memory wall across the device library", fontsize=10)
    return save(fig, out)
