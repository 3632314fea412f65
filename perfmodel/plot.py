"""``pm.plot``: every chart perfmodel draws, as a matplotlib Figure for a notebook, or
written to a file with ``path=`` (PNG / SVG / PDF by extension; an existing file only with
``overwrite=True``). The CLI's ``--plot`` flags and the review report draw through the same
functions (perfmodel.report), and matplotlib is imported only when one is called.

    >>> import perfmodel as pm
    >>> df = pm.sweep(model="resnet50", hw=["a100", "t4"], batch=[1, 8, 64])
    >>> fig = pm.plot.sweep(df, x="batch", y="latency_s", hue="hw")
    >>> fig.axes[0].get_xlabel()
    'batch (sequences or samples)'

Each function states the units on its axes; a point that cannot run (it does not fit in
memory) is drawn as such, never as a plain point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from perfmodel.analytic.roofline import Prediction
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.report.figure import figure_path, pyplot, save
from perfmodel.report.memory import breakdown_figure
from perfmodel.report.pipeline import pipeline_figure
from perfmodel.report.roofline import roofline_figure
from perfmodel.report.sensitivity import tornado_figure
from perfmodel.report.serve import serving_figure
from perfmodel.report.sweep import sweep_figure

__all__ = ["sweep", "roofline", "tornado", "serving", "pipeline", "breakdown"]


def _out(fig: Any, path: str | Path | None, overwrite: bool) -> Any:
    """The figure, laid out, written to ``path`` where one is given, and released from
    pyplot (a notebook shows the returned figure once, not a second time as a pyplot one)."""
    if path is not None:
        save(fig, figure_path(path, overwrite))
    else:
        fig.tight_layout()
        pyplot().close(fig)
    return fig


def sweep(df: pd.DataFrame, x: str, y: str = "latency_s", hue: str | None = None,
          col: str | None = None, *, path: str | Path | None = None, overwrite: bool = False,
          **kw: Any) -> Any:
    """A sweep table (``pm.sweep``): ``y`` vs ``x``, a line per ``hue``, a panel per
    ``col``, the prediction interval as a band, points that do not fit as crosses
    (perfmodel.report.sweep.sweep_figure: band, logx, logy, title, col_wrap)."""
    return _out(sweep_figure(df, x, y, hue, col, **kw), path, overwrite)


def roofline(pred: Prediction, device: DeviceSpec, *, path: str | Path | None = None,
             overwrite: bool = False) -> Any:
    """A prediction's ops on the device's roofs (log-log: FLOP/byte vs TFLOP/s)."""
    return _out(roofline_figure(pred, device), path, overwrite)


def tornado(table: pd.DataFrame, *, title: str = "", top: int = 12,
            path: str | Path | None = None, overwrite: bool = False) -> Any:
    """A sensitivity table (``pm.sensitivity``): latency change (%) per spec figure."""
    return _out(tornado_figure(table, title, top), path, overwrite)


def serving(requests: pd.DataFrame, iterations: pd.DataFrame, *, title: str = "",
            slo_ttft: float | None = None, slo_tpot: float | None = None,
            path: str | Path | None = None, overwrite: bool = False) -> Any:
    """A serving simulation (``pm.serve``): batch, queue and KV occupancy over time (s),
    and the TTFT / TPOT / end-to-end CDFs with the SLOs."""
    return _out(serving_figure(requests, iterations, title, slo_ttft, slo_tpot), path,
                overwrite)


def pipeline(compute: pd.DataFrame, *, title: str = "", annotate: bool = True,
             path: str | Path | None = None, overwrite: bool = False) -> Any:
    """A pipeline schedule's Gantt chart (time in s, one row per device)."""
    return _out(pipeline_figure(compute, title, annotate), path, overwrite)


def breakdown(report: Any, model: str, device: DeviceSpec, *,
              path: str | Path | None = None, overwrite: bool = False) -> Any:
    """A memory report (``pm.memory_report``) as one stacked bar (GB) against capacity."""
    return _out(breakdown_figure(report, model, device), path, overwrite)
