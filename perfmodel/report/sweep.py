"""A sweep drawn: one line per hue value, one panel per column value, the prediction
interval as a band, and the points that cannot run marked so (never a plain point for a
run that does not fit in memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import PerfModelError, did_you_mean
from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["sweep_figure", "plot_sweep", "UNITS"]

# axis labels with units for the sweep's columns (a column not named here is shown as is)
UNITS = {
    "latency_s": "latency (s)", "latency_lo": "latency, interval low (s)",
    "latency_hi": "latency, interval high (s)", "throughput_per_s": "throughput (items/s)",
    "batch": "batch (sequences or samples)", "seq": "sequence length (tokens)",
    "energy_j": "energy per pass (J, at TDP)", "utilization": "utilization (achieved / peak)",
    "memory_bytes": "memory (bytes)", "flops": "work (FLOP)", "bytes_moved": "bytes moved",
    "achieved_flops_per_s": "achieved FLOP/s", "memory.bandwidth_GBps": "main-memory "
    "bandwidth (GB/s)", "memory.capacity_GB": "main-memory capacity (GB)",
    "power.tdp_W": "TDP (W)",
}


def _label(col: str, df: pd.DataFrame) -> str:
    if col == "throughput_per_s" and "throughput_unit" in df:
        units = sorted(set(df["throughput_unit"].dropna()))
        return f"throughput ({' or '.join(units)})" if units else UNITS[col]
    if col in UNITS:
        return UNITS[col]
    if ".tensor_TFLOPS." in col or ".vector_TFLOPS." in col:
        return f"{col} (TFLOP/s)"
    return col


def _wide(values: np.ndarray) -> bool:
    """Spans more than a factor of 20 (and positive): a log axis reads better."""
    v = values[np.isfinite(values) & (values > 0)]
    return len(v) > 1 and v.max() / v.min() > 20


def _text(v: Any) -> str:
    """A value as a label: whole floats without their ``.0`` (a seq of 1024.0 is 1024)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def sweep_figure(df: pd.DataFrame, x: str, y: str = "latency_s", hue: str | None = None,
                 col: str | None = None, *, band: bool = True, logx: bool | None = None,
                 logy: bool | None = None, title: str = "", col_wrap: int = 4) -> Any:
    """A matplotlib Figure of a sweep table (``pm.sweep``): ``y`` against ``x``, one line
    per ``hue`` value, one panel per ``col`` value; rows with the same x, hue and panel but
    other axes must not be mixed (filter first), else this raises. The latency's interval
    (``latency_lo``/``latency_hi``) is drawn as a band where present; points that do not
    fit in memory are drawn as crosses in their line's colour, points that could not be
    priced are left out. ``logx``/``logy``: None chooses log where the values span more
    than 20x; at most ``col_wrap`` panels per row."""
    for name in (x, y, hue, col):
        if name is not None and name not in df:
            raise PerfModelError(f"no column {name!r} in the sweep table",
                                 did_you_mean(name, list(df.columns)))
    plt = pyplot()
    data = df[df[y].notna()] if y in df else df
    keys = [k for k in (col, hue, x) if k is not None]
    if data.duplicated(keys).any():
        other = [c for c in ("model", "hw", "phase", "batch", "seq", "dtype") if c not in keys
                 and c in data and data[c].nunique() > 1]
        raise PerfModelError(f"several rows per {', '.join(keys)}: the sweep also varies "
                             f"{', '.join(other) or 'other axes'}",
                             "filter the table to one value of those (or pass them as hue "
                             "or col)")
    panels = list(dict.fromkeys(data[col])) if col else [None]
    ncols = max(1, min(len(panels), col_wrap))
    nrows = -(-len(panels) // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4 * nrows), squeeze=False,
                             sharey=True)
    for ax in grid.flat[len(panels):]:
        ax.set_visible(False)
    axes = [list(grid.flat[:len(panels)])]
    lo, hi = f"{y.removesuffix('_s')}_lo", f"{y.removesuffix('_s')}_hi"
    for ax, panel in zip(axes[0], panels, strict=True):
        part = data if col is None else data[data[col] == panel]
        groups = part.groupby(hue, sort=False) if hue else [(None, part)]
        for name, g in groups:
            g = g.sort_values(x)
            xs, ys = g[x].to_numpy(float), g[y].to_numpy(float)
            line, = ax.plot(xs, ys, marker="o", ms=3, lw=1.2,
                            label=_text(name) if hue else y)
            if band and lo in g and hi in g and g[lo].notna().any():
                ax.fill_between(xs, g[lo].to_numpy(float), g[hi].to_numpy(float),
                                color=line.get_color(), alpha=0.18, lw=0)
            if "fits" in g:
                bad = (g["fits"] == False).to_numpy()  # noqa: E712 (None: not known)
                if bad.any():  # the line's own colour, so each device's misfits show
                    ax.plot(xs[bad], ys[bad], "x", color=line.get_color(), ms=9, mew=2.5)
        ax.set_xlabel(_label(x, data))
        if logx or (logx is None and _wide(data[x].to_numpy(float))):
            ax.set_xscale("log")
        if logy or (logy is None and _wide(data[y].to_numpy(float))):
            ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        if col is not None:
            ax.set_title(f"{col} = {_text(panel)}", fontsize=9)
    for row in grid:
        row[0].set_ylabel(_label(y, data))
    handles, labels = axes[0][0].get_legend_handles_labels()
    if "fits" in data and (data["fits"] == False).any():  # noqa: E712
        handles.append(axes[0][0].plot([], [], "x", color="black", ms=9, mew=2.5)[0])
        labels.append("x: does not fit in memory")
    if band and lo in data and data[lo].notna().any():
        from matplotlib.patches import Patch
        handles.append(Patch(color="grey", alpha=0.3))
        labels.append("prediction interval")
    axes[0][-1].legend(handles, labels, fontsize=7, loc="best", title=hue,
                       title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_sweep(df: pd.DataFrame, path: str | Path, x: str, y: str = "latency_s",
               hue: str | None = None, col: str | None = None, *, overwrite: bool = False,
               **kw: Any) -> Path:
    """Write ``sweep_figure`` to ``path`` (PNG/SVG/PDF by extension)."""
    out = figure_path(path, overwrite)
    return save(sweep_figure(df, x, y, hue, col, **kw), out)
