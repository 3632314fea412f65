"""Roofline chart: log-log roofs per dtype, the ridge points, one marker per op."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perfmodel.analytic.roofline import Prediction
from perfmodel.errors import PerfModelError
from perfmodel.hardware.spec import DeviceSpec

__all__ = ["plot_roofline", "check_writable"]


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse to overwrite a user's file unless asked; the folder must exist."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise PerfModelError(f"{p} already exists", "pass --force to overwrite it")
    if not p.parent.exists():
        raise PerfModelError(f"folder {p.parent} does not exist", "create it first")
    return p


def plot_roofline(pred: Prediction, device: DeviceSpec, path: str | Path,
                  overwrite: bool = False) -> Path:
    """Write the chart (PNG/SVG/PDF by extension). Markers: area ~ op time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = check_writable(path, overwrite)
    ops = pred.ops[(pred.ops["flops"] > 0) & (pred.ops["bytes"] > 0)]
    bw = device.memory_bandwidth * device.efficiency.memory
    x = np.logspace(-2, 4, 400)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for (unit, dt), peak in sorted(device.peak_flops.items(), key=lambda kv: -kv[1]):
        p = peak * device.efficiency.compute
        ax.loglog(x, np.minimum(p, x * bw), lw=1.2, label=f"{unit} {dt}: {peak / 1e12:g} TFLOP/s")
        ax.plot([p / bw], [p], "k.", ms=4)
    sizes = 400 * ops["time_s"] / max(float(ops["time_s"].max()), 1e-30) + 6
    for kind, grp in ops.groupby("kind"):
        ax.scatter(grp["intensity"], grp["achieved_flops_per_s"], s=sizes[grp.index],
                   alpha=0.6, label=f"op: {kind}")
    s = pred.summary
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attainable FLOP/s (efficiency applied)")
    ax.set_title(f"{s['model']} on {device.display_name}: {s['phase']}, batch {s['batch']}, "
                 f"{s['dtype']}\nlatency {s['latency_s'] * 1e3:.3g} ms, utilization "
                 f"{100 * s['utilization']:.2g}%; dots mark ridge points", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
