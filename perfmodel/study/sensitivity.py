"""Sensitivity: how much a prediction moves with each figure of a device's spec.

For every numeric figure x of the spec (perfmodel.hardware.overrides.numeric_fields) the
prediction T is recomputed with x scaled by 1 - step and 1 + step, and its elasticity is the
central difference of the logarithms:

    e = (ln T(x (1 + step)) - ln T(x (1 - step))) / (ln(1 + step) - ln(1 - step))

e = -1: T is inversely proportional to x (a memory-bound run and its bandwidth); 0: x does not
matter. Figures that describe no performance (the year) and figures of zero (nothing to
scale) are left out. The table is sorted by
|e|, the order of a tornado chart. A figure that cannot be raised (a fraction already at 1)
gets the one-sided difference below it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from perfmodel.errors import PerfModelError, SpecError
from perfmodel.hardware.overrides import numeric_fields, override_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.progress import track

__all__ = ["sensitivity", "SKIPPED", "SENSITIVITY_COLUMNS"]

SKIPPED = ("year",)
SENSITIVITY_COLUMNS = ("field", "value", "latency_s", "latency_down_s", "latency_up_s",
                       "elasticity")


def sensitivity(metric: Callable[[DeviceSpec], float], device: DeviceSpec, *,
                step: float = 0.1, fields: Iterable[str] | None = None) -> pd.DataFrame:
    """Elasticity of ``metric(device)`` (seconds) to each spec figure (or those in
    ``fields``), by central differences at +-``step``; sorted by |elasticity|."""
    if not 0.0 < step < 0.5:
        raise PerfModelError(f"step must be in (0, 0.5), got {step}", "pass step=0.1 (10 %)")
    base = float(metric(device))
    if not base > 0:
        raise PerfModelError("the prediction is zero: nothing to be sensitive to",
                             "pick a workload that does some work")
    figures = numeric_fields(device)
    chosen = list(fields) if fields is not None else [
        f for f in figures if f not in SKIPPED and figures[f] > 0]  # a zero does not scale
    rows = []
    for f in track(chosen, "sensitivity", len(chosen)):
        if f not in figures:
            override_device(device, {f: 1.0})  # raises the unknown-path error
        x = figures[f]
        down = float(metric(override_device(device, {f: x * (1 - step)})))
        try:
            up = float(metric(override_device(device, {f: x * (1 + step)})))
            e = (math.log(up) - math.log(down)) / (math.log1p(step) - math.log1p(-step))
        except SpecError:  # a fraction already at its bound (an efficiency of 1): one-sided
            up = base
            e = (math.log(base) - math.log(down)) / -math.log1p(-step)
        rows.append((f, x, base, down, up, e))
    df = pd.DataFrame(rows, columns=list(SENSITIVITY_COLUMNS))
    order = np.argsort(-df["elasticity"].abs().to_numpy(), kind="stable")
    return df.iloc[order].reset_index(drop=True)
