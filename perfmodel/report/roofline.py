"""Roofline chart: log-log roofs per dtype, the ridge points, one marker per op."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perfmodel.analytic.roofline import Prediction
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["roofline_figure", "plot_roofline"]


def roofline_figure(pred: Prediction, device: DeviceSpec) -> Any:
    """Write the chart (PNG/SVG/PDF by extension). Markers: area ~ op time."""
    plt = pyplot()

    ops = pred.ops[(pred.ops["flops"] > 0) & (pred.ops["bytes"] > 0)]
    bw = device.memory_bandwidth * device.efficiency.memory
    x = np.logspace(-2, 4, 400)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for (unit, dt), peak in sorted(device.peak_flops.items(), key=lambda kv: -kv[1]):
        p = peak * device.efficiency.compute / 1e12
        rate = "TOPS" if dt.startswith("int") else "TFLOP/s"  # integer ops are not FLOP
        ax.loglog(x, np.minimum(p, x * bw / 1e12), lw=1.2,
                  label=f"{unit} {dt}: {peak / 1e12:g} {rate}")
        ax.plot([p * 1e12 / bw], [p], "k.", ms=4)
    sizes = 400 * ops["time_s"] / max(float(ops["time_s"].max()), 1e-30) + 6
    for kind, grp in ops.groupby("kind"):
        ax.scatter(grp["intensity"], grp["achieved_flops_per_s"] / 1e12, s=sizes[grp.index],
                   alpha=0.6, label=f"op: {kind}")
    s = pred.summary
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attainable TFLOP/s (integer roofs: TOPS; efficiency applied)")
    ax.set_title(f"{s['model']} on {device.display_name}: {s['phase']}, batch {s['batch']}, "
                 f"{s['dtype']}\nlatency {s['latency_s'] * 1e3:.3g} ms, utilization "
                 f"{100 * s['utilization']:.2g}%; dots mark ridge points", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    return fig


def plot_roofline(pred: Prediction, device: DeviceSpec, path: str | Path,
                  overwrite: bool = False) -> Path:
    """Write ``roofline_figure`` to ``path`` (PNG/SVG/PDF by extension); an existing file only
    with ``overwrite``."""
    out = figure_path(path, overwrite)
    return save(roofline_figure(pred, device), out)
