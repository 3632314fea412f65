"""Leave-one-device-out: how well perfmodel predicts a device it was not fitted on.

For each device (chip) in a measurement set, three predictions of its rows:

- ``before``: every device priced with the single efficiency block fitted on A100 rows
  (``hw_specs/_defaults.yaml``: 0.72 of the tensor peak, 0.88 of the memory bandwidth,
  3.3 us per kernel), as perfmodel did before per-device models. On A100 rows this is in
  sample.
- ``model``: the shipped spec as it is: the kernel model built from the device's own
  figures and its architecture's cited factors (perfmodel.hardware.kernel_model). Nothing
  in it is fitted to the measurement set, so it is out of sample on every device.
- ``refit``: the kernel model with its only fitted figures (``hw_specs/_architectures.yaml``:
  the issue fraction of the tensor unit, fitted on A100 and V100 GEMMs; the memory
  technologies' level, fitted on V100 STREAM rows; the per-kernel floor, from A100
  inference) refitted on every OTHER chip's rows and applied to this one. On A100 and V100
  the ``model`` column is in sample for those figures; ``refit`` is the out-of-sample one.
- ``fitted``: efficiency curves and the per-kernel overhead fitted (perfmodel.validate.
  calibrate.fit_efficiency, fit_overhead) on the rows of every OTHER device, then applied
  to this one: what calibration on the devices one has buys on one not yet measured.

Devices are grouped by chip (``chip_of``): the 40 GB and 80 GB A100 are one chip, so one is
never fitted on the other.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perfmodel.analytic.roofline import roofline
from perfmodel.hardware.load import load_defaults, load_device
from perfmodel.hardware.spec import DeviceSpec, Efficiency
from perfmodel.validate.calibrate import fit_efficiency, fit_overhead
from perfmodel.validate.compare import (
    ModelResolver,
    compare,
    micro_workload,
    with_efficiency,
)
from perfmodel.validate.metrics import error_summary

__all__ = ["chip_of", "leave_one_device_out", "Holdout", "PREDICTIONS", "HOLDOUT_COLUMNS"]

PREDICTIONS = ("before", "model", "refit", "fitted")
HOLDOUT_COLUMNS = ("held_out", "family", "rows", *(f"{p}_{s}" for p in PREDICTIONS
                                                   for s in ("mape", "median", "bias")))
MICRO = ("gemm", "conv", "attention", "membw", "elementwise", "reduction", "l2", "launch")


def chip_of(hw: str) -> str:
    """The chip a device spec name stands for: memory size and form factor dropped.

    >>> chip_of("a100-sxm4-80gb"), chip_of("v100-sxm2-16gb"), chip_of("t4")
    ('a100', 'v100', 't4')
    """
    return re.sub(r"(-(sxm\d?|pcie|nvl))?(-\d+gb)?$", "", hw.lower())


@dataclass(frozen=True)
class Holdout:
    """Per (held-out chip, family) error statistics (``table``, HOLDOUT_COLUMNS, errors as
    fractions) and every row's three predictions (``rows``)."""

    table: pd.DataFrame
    rows: pd.DataFrame = field(repr=False)


def _defaults_efficiency() -> Efficiency:
    eff = load_defaults().get("efficiency") or {}
    return Efficiency(compute=float(eff["compute"]["value"]),
                      memory=float(eff["memory"]["value"]),
                      launch_overhead_s=float(eff["launch_overhead_us"]["value"]) * 1e-6)


def _priced(rows: pd.DataFrame, devices: Mapping[str, DeviceSpec], eff: Efficiency | None,
            models: ModelResolver | None) -> pd.DataFrame:
    """``rows`` compared on their own devices, with ``eff`` in place of each spec's block."""
    parts = []
    for hw, g in rows.groupby("hw", sort=False):
        dev = devices[str(hw)] if eff is None else with_efficiency(devices[str(hw)], eff)
        parts.append(compare(g, dev, models=models).set_axis(g.index))
    return pd.concat(parts).loc[rows.index]


def _fit_on(train: pd.DataFrame, devices: Mapping[str, DeviceSpec],
            models: ModelResolver | None) -> Efficiency:
    """Curves on the training devices' micro-benchmarks, then the per-kernel overhead that
    best prices their inference rows with those curves."""
    base = _defaults_efficiency()
    micro = train[train["family"].isin(MICRO)]
    eff = fit_efficiency(micro, devices, base) if len(micro) else base
    inf = train[train["family"] == "inference"]
    if len(inf) and not (micro["family"] == "launch").any():
        c = _priced(inf, devices, eff, models)
        o = fit_overhead((c["predicted_s"] - c["overhead_s"]).to_numpy(float),
                         c["priced_ops"].to_numpy(float), c["time_s"].to_numpy(float))
        eff = Efficiency(eff.compute, eff.memory, o, eff.compute_curves, eff.memory_curve)
    return eff


def _ratios(rows: pd.DataFrame, devices: Mapping[str, DeviceSpec], column: str,
            bound: str) -> np.ndarray:
    """Per row bound by ``bound`` (compute or memory) under the spec's model: the model's
    time (``column``) over the measured time less the launch overhead. A ratio r says the
    model's efficiency factor should be r times what it is."""
    out = []
    for hw, g in rows.groupby("hw", sort=False):
        dev = devices[str(hw)]
        ops = _ops(g, dev)
        t = g["time_s"].to_numpy(float) - ops["overhead_s"].to_numpy(float)
        sel = (ops["bound"].to_numpy() == bound) & (t > 0)
        out.append(ops[column].to_numpy(float)[sel] / t[sel])
    return np.concatenate(out) if out else np.zeros(0)


def _ops(rows: pd.DataFrame, dev: DeviceSpec) -> pd.DataFrame:
    """The roofline table of micro-benchmark rows of one family (GEMMs or streaming
    kernels), as validate.compare prices them."""
    return roofline(micro_workload(rows, str(rows["family"].iloc[0])), dev)


def _with_issue(dev: DeviceSpec, issue: float | None, scale: float | None,
                launch_s: float | None) -> DeviceSpec:
    """The device with its architecture's issue fraction, its memory technology's level
    (x scale, capped at 1) and its kernel floor replaced where given."""
    e = dev.efficiency
    model, tech = e.compute_model, e.memory_model
    if model is not None and issue is not None:
        model = dataclasses.replace(model, architecture=dataclasses.replace(
            model.architecture, issue_fraction=issue))
    if tech is not None and scale is not None:
        tech = dataclasses.replace(tech, **{k: min(1.0, getattr(tech, k) * scale)
                                            for k in ("read", "triad", "copy", "write")})
    eff = dataclasses.replace(
        e, compute_model=model, memory_model=tech,
        compute=model.large if model is not None else e.compute,
        memory=tech.copy if tech is not None else e.memory,
        launch_overhead_s=e.launch_overhead_s if launch_s is None else launch_s)
    return dataclasses.replace(dev, efficiency=eff)


def _refit_model(train: pd.DataFrame, devices: Mapping[str, DeviceSpec],
                 models: ModelResolver | None) -> dict[str, DeviceSpec]:
    """Every device with the kernel model's fitted figures refitted on ``train``: one issue
    fraction (the median ratio over the compute-bound GEMMs, at issue fraction 1), one
    memory level scale (over the streaming rows), one kernel floor (over the inference
    rows, as calibration fits it)."""
    unit = {h: _with_issue(d, 1.0, None, None) for h, d in devices.items()}
    gemm = train[train["family"] == "gemm"]
    r = _ratios(gemm, unit, "compute_s", "compute") if len(gemm) else np.zeros(0)
    issue = float(np.median(r)) if len(r) else None
    mem = train[train["family"] == "membw"]
    m = _ratios(mem, devices, "memory_s", "memory") if len(mem) else np.zeros(0)
    scale = float(np.median(m)) if len(m) else None
    refit = {h: _with_issue(d, issue, scale, None) for h, d in devices.items()}
    inf = train[train["family"] == "inference"]
    if len(inf):
        parts = [compare(g, refit[str(hw)], models=models) for hw, g in inf.groupby("hw")]
        c = pd.concat(parts)
        o = fit_overhead((c["predicted_s"] - c["overhead_s"]).to_numpy(float),
                         c["priced_ops"].to_numpy(float), c["time_s"].to_numpy(float))
        refit = {h: _with_issue(d, None, None, o) for h, d in refit.items()}
    return refit


def leave_one_device_out(measurements: pd.DataFrame, *,
                         models: ModelResolver | None = None) -> Holdout:
    """Leave each chip out in turn (module docstring); statistics per chip and family."""
    df = measurements.reset_index(drop=True)
    devices = {str(h): load_device(str(h)) for h in df["hw"].unique()}
    chips = df["hw"].map(chip_of)
    before = _priced(df, devices, _defaults_efficiency(), models)
    model = _priced(df, devices, None, models)
    fitted, refit = model.copy(), model.copy()
    for chip in sorted(chips.unique()):
        test = chips == chip
        if (~test).sum() == 0:
            continue
        eff = _fit_on(df[~test], devices, models)
        fitted.loc[test] = _priced(df[test], devices, eff, models).to_numpy()
        refit.loc[test] = _priced(df[test], _refit_model(df[~test], devices, models), None,
                                  models).to_numpy()
    out = df.assign(held_out=chips)
    for name, c in zip(PREDICTIONS, (before, model, refit, fitted), strict=True):
        out[f"{name}_s"] = c["predicted_s"].astype(float).to_numpy()
        out[f"{name}_error"] = (out[f"{name}_s"] - out["time_s"]) / out["time_s"]
    return Holdout(_table(out), out)


def _table(rows: pd.DataFrame) -> pd.DataFrame:
    recs = []
    rows = rows[rows[[f"{p}_s" for p in PREDICTIONS]].notna().any(axis=1)]  # priced rows only
    for (chip, fam), g in [*rows.groupby(["held_out", "family"], sort=True),
                           *((("all", f), g) for f, g in rows.groupby("family", sort=True))]:
        rec: dict[str, object] = {"held_out": chip, "family": fam, "rows": len(g)}
        for p in PREDICTIONS:
            s = error_summary(g.assign(error=g[f"{p}_error"])).iloc[-1]
            rec.update({f"{p}_mape": s["mape"], f"{p}_median": s["median_abs_error"],
                        f"{p}_bias": s["median_error"]})
        recs.append(rec)
    return pd.DataFrame(recs, columns=list(HOLDOUT_COLUMNS))
