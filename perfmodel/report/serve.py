"""A serving simulation drawn: batch size, queue length and KV occupancy over time, and the
latency distributions (TTFT, TPOT, end-to-end) as CDFs with the SLOs marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.report.figure import figure_path, pyplot, save

__all__ = ["serving_figure", "plot_serving"]


def serving_figure(requests: pd.DataFrame, iterations: pd.DataFrame, title: str = "",
                   slo_ttft: float | None = None, slo_tpot: float | None = None) -> Any:
    """Write the timeline (left: per iteration of every replica, sequences decoding,
    requests waiting, KV occupancy) and the latency CDFs (right)."""
    plt = pyplot()
    fig, (ax, cdf) = plt.subplots(1, 2, figsize=(12, 4.5))
    it = iterations.sort_values("start_s")
    ax.step(it["start_s"], it["decode_seqs"], where="post", lw=0.8, label="decoding")
    ax.step(it["start_s"], it["waiting"], where="post", lw=0.8, label="waiting")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("sequences")
    kv = ax.twinx()
    kv.plot(it["start_s"], 100 * it["kv_occupancy"], color="tab:red", lw=0.6, alpha=0.7)
    kv.set_ylabel("KV cache occupancy (%)", color="tab:red")
    kv.set_ylim(0, 105)
    ax.legend(loc="upper left")
    for col, label, slo in (("ttft_s", "TTFT", slo_ttft), ("tpot_s", "TPOT", slo_tpot),
                            ("e2e_s", "end-to-end", None)):
        v = np.sort(requests[col].dropna().to_numpy(float))
        if len(v):
            line, = cdf.plot(v, np.arange(1, len(v) + 1) / len(v), label=label)
            if slo is not None:
                cdf.axvline(slo, color=line.get_color(), ls="--", lw=0.8)
    cdf.set_xscale("log")
    cdf.set_xlabel("seconds (dashed: SLO)")
    cdf.set_ylabel("share of requests")
    cdf.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def plot_serving(requests: pd.DataFrame, iterations: pd.DataFrame, path: str | Path,
                 overwrite: bool = False, title: str = "", slo_ttft: float | None = None,
                 slo_tpot: float | None = None) -> Path:
    """Write ``serving_figure`` to ``path`` (PNG/SVG/PDF by extension); an existing file only
    with ``overwrite``."""
    out = figure_path(path, overwrite)
    return save(serving_figure(requests, iterations, title, slo_ttft, slo_tpot), out)
