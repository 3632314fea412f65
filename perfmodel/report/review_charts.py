"""The figures of the design-review page (perfmodel.report.review), each returned as an
inline ``<svg>`` element: matplotlib's SVG with no prolog or metadata and its ids prefixed,
so several share one page. They read the review's tables (``ReviewData.predictions``, one
row per device and workload; time columns NaN where a run does not fit) and draw no value
for a run that cannot happen. A user's string goes through ``mpl_text`` (no mathtext)."""

from __future__ import annotations

import io
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.report.figure import pyplot

__all__ = ["inline_svg", "mpl_text", "roofline_chart", "performance_chart", "memory_chart",
           "bound_chart", "tornado_chart", "PERF_METRICS", "BOUNDS", "WIDE_SPAN"]

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")   # the candidate first, in red
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")
NO_RUN = "#b00020"
WIDE_SPAN = 20.0   # a log axis where the values span more than this factor
PERF_METRICS = (("latency_s", "latency (s)", "s"),
                ("throughput_per_s", "throughput (samples/s or tokens/s)", ""),
                ("energy_j", "energy per pass (J, at TDP)", "J"))
BOUNDS = (("compute_bound_s", "compute-bound", "#1f77b4"),
          ("memory_bound_s", "memory-bound", "#ff7f0e"),
          ("overhead_bound_s", "overhead-bound", "#7f7f7f"))
_TAG = re.compile(r"<[^>]+>")


def mpl_text(value: Any) -> str:
    """A user's string, drawn as written by matplotlib (a ``$`` starts no mathtext)."""
    return str(value).replace("$", r"\$")


def inline_svg(text: str, prefix: str) -> str:
    """matplotlib's SVG file as an element of the page: no XML prolog, no metadata, and
    every id (and reference to one) prefixed, so figures do not share ids."""
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)

    def fix(tag: re.Match[str]) -> str:
        t = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', tag.group(0))
        t = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", t)
        return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', t)

    return _TAG.sub(fix, text).strip()


def _svg(fig: Any, prefix: str) -> str:
    buf = io.StringIO()
    try:
        fig.tight_layout()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    finally:
        pyplot().close(fig)
    return inline_svg(buf.getvalue(), prefix)


def _axes(**options: Any) -> tuple[Any, Any]:
    return pyplot().subplots(**options)


def _colors(devices: Sequence[str]) -> dict[str, str]:
    return {dev: COLORS[i % len(COLORS)] for i, dev in enumerate(devices)}


def _log_if_wide(ax: Any, values: np.ndarray, axis: str = "y") -> None:
    v = values[np.isfinite(values) & (values > 0)]
    if len(v) and v.max() / v.min() > WIDE_SPAN:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")


def roofline_chart(predictions: pd.DataFrame, devices: pd.DataFrame,
                   workloads: Sequence[str], candidate: str) -> str:
    """Each device's attainable roof (peak x compute efficiency, bandwidth x memory
    efficiency) at each dtype it runs, and each run's achieved FLOP/s at its intensity."""
    p = predictions[predictions["status"] == "ok"]
    dev = devices.set_index("device")
    colors = _colors(list(devices["device"]))
    fig, ax = _axes(figsize=(9, 5.8))
    ridge = [float(r.peak_flops_per_s) * dev.loc[r.device, "compute_efficiency"]
             / (dev.loc[r.device, "memory_bandwidth_Bps"] * dev.loc[r.device,
                                                                 "memory_efficiency"])
             for r in p.itertuples()]
    span = np.array([*p["intensity"].replace([np.inf, -np.inf], np.nan).dropna(), *ridge])
    span = span if len(span) else np.array([1.0, 100.0])
    x = np.logspace(np.log10(span.min()) - 1, np.log10(span.max()) + 1, 400)
    for name, row in dev.iterrows():
        bw = row["memory_bandwidth_Bps"] * row["memory_efficiency"]
        mine = p[p["device"] == name]
        for k, (dt, peak) in enumerate(mine[["dtype", "peak_flops_per_s"]].drop_duplicates()
                                       .itertuples(index=False)):
            ax.loglog(x, np.minimum(peak * row["compute_efficiency"], x * bw) / 1e12,
                      color=colors[name], lw=2.4 if name == candidate else 1.3,
                      ls=("-", "--", ":")[k % 3],
                      label=mpl_text(f"{name} {dt}: {peak / 1e12:g} TFLOP/s peak, "
                                     f"{row['memory_bandwidth_Bps'] / 1e9:g} GB/s"))
        for r in mine.itertuples():
            ax.scatter(r.intensity, r.achieved_flops_per_s / 1e12, color=colors[name],
                       marker=MARKERS[list(workloads).index(r.workload) % len(MARKERS)],
                       s=55, edgecolors="black", linewidths=0.6, zorder=3)
    ax.add_artist(ax.legend(fontsize=7, loc="upper left", title="roofs (attainable)"))
    marks = [ax.scatter([], [], marker=MARKERS[i % len(MARKERS)], color="white",
                        edgecolors="black", label=mpl_text(w)) for i, w in enumerate(workloads)]
    ax.legend(handles=marks, fontsize=7, loc="lower right", title="workloads")
    ax.set_xlabel("arithmetic intensity (FLOP/byte moved)")
    ax.set_ylabel("TFLOP/s (attainable roofs: peak × efficiency; points: achieved)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"Roofline: {len(dev)} devices, {len(workloads)} workloads", fontsize=10)
    return _svg(fig, "roofline")


def _by_run(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions.set_index(["device", "workload"])


def performance_chart(predictions: pd.DataFrame, devices: Sequence[str],
                      workloads: Sequence[str], bands: pd.DataFrame | None) -> str:
    """Latency, throughput and energy: grouped bars per workload, one per device, a red
    cross where the run has no value, the latency's band as error bars."""
    from matplotlib.transforms import blended_transform_factory

    runs = _by_run(predictions.join(bands) if bands is not None else predictions)
    colors = _colors(devices)
    fig, axes = _axes(nrows=3, figsize=(10, 11), sharex=True)
    width = 0.8 / len(devices)
    for ax, (col, label, _) in zip(axes, PERF_METRICS, strict=True):
        ax.set_ylabel(label, fontsize=9)
        mark = blended_transform_factory(ax.transData, ax.transAxes)
        for j, dev in enumerate(devices):
            xs = np.arange(len(workloads)) + (j - (len(devices) - 1) / 2) * width
            rows = runs.loc[[(dev, w) for w in workloads]]
            vals = rows[col].to_numpy(float)
            yerr = None
            if col == "latency_s" and bands is not None:
                yerr = np.nan_to_num(np.vstack([vals - rows["lo_s"].to_numpy(float),
                                                rows["hi_s"].to_numpy(float) - vals])).clip(0)
            ax.bar(xs, np.nan_to_num(vals), width, color=colors[dev], label=mpl_text(dev),
                   yerr=yerr, capsize=2)
            for x in xs[np.isnan(vals)]:
                ax.text(x, 0.03, "✗", transform=mark, ha="center", color=NO_RUN,
                        fontsize=11, fontweight="bold")
        _log_if_wide(ax, predictions[col].to_numpy(float))
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=8, ncol=min(len(devices), 5), loc="lower left",
                   bbox_to_anchor=(0, 1.01), frameon=False, title_fontsize=9,
                   alignment="left", title="Latency, throughput and energy per workload "
                                           "(✗: does not fit / unsupported)")
    axes[-1].set_xticks(np.arange(len(workloads)), [mpl_text(w) for w in workloads],
                        rotation=25, ha="right", fontsize=8)
    return _svg(fig, "performance")


def memory_chart(predictions: pd.DataFrame, devices: Sequence[str],
                 workloads: Sequence[str]) -> str:
    """Memory needed as a share of each device's capacity, past 100 % in red."""
    runs = _by_run(predictions)
    colors = _colors(devices)
    fig, ax = _axes(figsize=(9, 0.2 * len(workloads) * len(devices) + 1.5))
    height = 0.8 / len(devices)
    shares = []
    for j, dev in enumerate(devices):
        ys = np.arange(len(workloads)) + (j - (len(devices) - 1) / 2) * height
        for y, w in zip(ys, workloads, strict=True):
            r = runs.loc[(dev, w)]
            if pd.isna(r["memory_bytes"]) or not r["capacity_bytes"]:
                continue
            share = 100 * float(r["memory_bytes"]) / float(r["capacity_bytes"])
            shares.append(share)
            over = share > 100
            ax.barh(y, share, height, color=NO_RUN if over else colors[dev],
                    hatch="//" if over else None, edgecolor="black" if over else None,
                    label=mpl_text(dev) if w == workloads[0] else None)
            if over:
                ax.text(share, y, "does not fit ", va="center", ha="right", fontsize=7,
                        color="white", fontweight="bold")
    ax.axvline(100, color="black", lw=1)
    _log_if_wide(ax, np.array(shares), axis="x")
    ax.set_yticks(np.arange(len(workloads)), [mpl_text(w) for w in workloads], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("memory needed (% of the device's capacity; line: 100 %)")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.01), frameon=False,
              ncol=min(len(devices), 5))
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return _svg(fig, "memory")


def bound_chart(runs: pd.DataFrame) -> str:
    """Each run's time split by the bound of its ops (100 % stacked bars)."""
    fig, ax = _axes(figsize=(9, 0.22 * len(runs) + 1.4))
    total = runs[[c for c, _, _ in BOUNDS]].sum(axis=1).replace(0, np.nan).to_numpy(float)
    left = np.zeros(len(runs))
    for col, label, color in BOUNDS:
        share = np.nan_to_num(100 * runs[col].to_numpy(float) / total)
        ax.barh(np.arange(len(runs)), share, left=left, color=color, label=label)
        left += share
    ax.set_yticks(np.arange(len(runs)), [mpl_text(f"{r.workload} · {r.device}")
                                         for r in runs.itertuples()], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the run's time (%) in compute-, memory- and overhead-bound ops")
    ax.legend(fontsize=8, ncol=3, loc="lower left", bbox_to_anchor=(0, 1.01), frameon=False)
    return _svg(fig, "bound")


def tornado_chart(table: pd.DataFrame, title: str) -> str:
    """The sensitivity tornado of ``perfmodel sensitivity --plot`` (report.sensitivity),
    inline."""
    from perfmodel.report.sensitivity import plot_tornado

    with tempfile.TemporaryDirectory() as tmp:
        out = plot_tornado(table, Path(tmp) / "tornado.svg", title=mpl_text(title),
                           top=len(table))
        return inline_svg(out.read_text(encoding="utf-8"), "tornado")
