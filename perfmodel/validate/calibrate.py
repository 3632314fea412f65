"""Fit efficiency curves and launch overhead to measurements, cross-validated.

What is fitted (each row priced on its own device's peak P and bandwidth W, with the
fitted launch overhead o taken off the measured time t first):

- launch overhead o: the median of the ``launch`` rows when there are any; else, from
  ``inference`` rows, the o that minimises the mean |relative error| of
  predicted = roofline time + priced ops x o (a weighted median, closed form); else the spec's.
- compute curves, per dtype, over FLOP per op: e = flops / (P (t - o)) of the compute-bound
  gemm / conv / attention rows;
- the memory curve over bytes per op: e = bytes / (W (t - o)) of the membw / elementwise /
  reduction rows and of the memory-bound GEMMs (small m: weight streaming).

Which GEMMs are memory-bound is decided by the fitted model itself (two passes). A curve is
the median efficiency in up to ``points`` bins of log10(size) (at least 4 rows each),
clipped to (0, 1]; a dtype with fewer than 4 compute-bound rows gets no curve and is priced
with the fitted scalar (one published A100 int8 GEMM at 12 % of peak, a FlagPerf torch
run, would otherwise set the efficiency of every TensorRT int8 conv).
Cross-validation: rows are dealt into ``folds`` folds (seeded); each fold is predicted by
curves fitted on the others, so every reported error is on rows the fit did not see.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import MeasurementError
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.spec import DeviceSpec, Efficiency
from perfmodel.progress import track
from perfmodel.validate.compare import ModelResolver, compare, gemm_workload, with_efficiency
from perfmodel.validate.metrics import error_summary, fit_overhead

__all__ = ["Calibration", "calibrate", "fit_efficiency", "calibrated_spec", "fit_overhead"]

COMPUTE_FAMILIES = ("gemm", "conv", "attention")
MEMORY_FAMILIES = ("membw", "elementwise", "reduction")
MIN_PER_BIN = 4  # rows per curve point at least
FLOOR = 1e-3  # smallest efficiency a curve may hold (a 1000x slower kernel is a bug)


@dataclass(frozen=True)
class Calibration:
    """Fitted efficiency, per-group inference overheads, and the cross-validated errors."""

    efficiency: Efficiency
    group_overheads_s: Mapping[str, float]
    cross_validated: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    uncalibrated: pd.DataFrame = field(repr=False)
    rows_used: Mapping[str, int] = field(default_factory=dict)


def _curve(sizes: np.ndarray, effs: np.ndarray, points: int) -> EfficiencyCurve | None:
    ok = np.isfinite(sizes) & np.isfinite(effs) & (sizes > 0) & (effs > 0)
    x, e = np.log10(sizes[ok]), np.clip(effs[ok], FLOOR, 1.0)
    if len(x) == 0:
        return None
    bins = max(1, min(points, len(x) // MIN_PER_BIN))  # a median of few rows is noise
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
    pts = [(10 ** float(np.median(x[which == b])), float(np.median(e[which == b])))
           for b in np.unique(which)]
    return EfficiencyCurve.from_points(pts)


def _compute_eff(eff: Efficiency, flops: np.ndarray, dtypes: np.ndarray) -> np.ndarray:
    out = np.full(len(flops), eff.compute)
    for dt in set(dtypes) & set(eff.compute_curves):
        out[dtypes == dt] = eff.compute_at(flops[dtypes == dt], dt)
    return out


def _peaks(rows: pd.DataFrame, devices: Mapping[str, DeviceSpec]) -> np.ndarray:
    out = np.empty(len(rows))
    for i, (hw, dt) in enumerate(zip(rows["hw"], rows["dtype"], strict=True)):
        out[i] = devices[hw].resolve_unit("tensor", dt or "fp32")[2]
    return out


def _gemm_work(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if rows.empty:
        return np.zeros(0), np.zeros(0)
    wl = gemm_workload(rows["m"], rows["n"], rows["k"], rows["dtype"].to_numpy(dtype=object))
    return wl["flops"].to_numpy(float), wl["bytes"].to_numpy(float)


def fit_efficiency(df: pd.DataFrame, devices: Mapping[str, DeviceSpec], base: Efficiency, *,
                   points: int = 8) -> Efficiency:
    """Curves and overhead fitted to the micro-benchmark rows of ``df`` (see module doc)."""
    launch = df[df["family"] == "launch"]["time_s"].to_numpy(float)
    o = float(np.median(launch)) if len(launch) else base.launch_overhead_s
    comp = df[df["family"].isin(COMPUTE_FAMILIES)]
    mem = df[df["family"].isin(MEMORY_FAMILIES)]
    gemm = comp[comp["family"] == "gemm"]
    flops = np.array(comp["flops"].fillna(0), dtype=float)
    nbytes = np.array(comp["bytes"].fillna(0), dtype=float)
    gf, gb = _gemm_work(gemm)
    is_gemm = (comp["family"] == "gemm").to_numpy()
    flops[is_gemm], nbytes[is_gemm] = gf, gb
    t = np.maximum(comp["time_s"].to_numpy(float) - o, 1e-12)
    peak = _peaks(comp, devices)
    bw = np.array([devices[h].memory_bandwidth for h in comp["hw"]])
    mem_bw = np.array([devices[h].memory_bandwidth for h in mem["hw"]])
    mt = np.maximum(mem["time_s"].to_numpy(float) - o, 1e-12)
    mem_bytes, mem_eff = mem["bytes"].to_numpy(float), mem["bytes"].to_numpy(float) / (
        mem_bw * mt)
    eff = base
    for _ in range(2):  # classify by the current model, refit
        t_c = flops / (peak * _compute_eff(eff, flops, comp["dtype"].to_numpy(dtype=object)))
        t_m = nbytes / (bw * eff.memory_at(nbytes))
        membound = t_m > t_c
        memory_curve = _curve(np.concatenate([mem_bytes, nbytes[membound]]),
                              np.concatenate([mem_eff, nbytes[membound] / (bw * t)[membound]]),
                              points) or base.memory_curve
        curves = {}
        for dt in sorted(set(comp["dtype"][~membound])):
            sel = (~membound) & (comp["dtype"] == dt).to_numpy()
            if sel.sum() < MIN_PER_BIN:  # too few rows: the dtype keeps the scalar
                continue
            c = _curve(flops[sel], flops[sel] / (peak[sel] * t[sel]), points)
            if c is not None:
                curves[dt] = c
        counts = comp["dtype"][~membound].value_counts()
        main_dt = next((d for d in counts.index if d in curves), None)
        eff = Efficiency(  # scalars: the large-kernel end of the most-measured dtype's curve
            compute=curves[main_dt].values[-1] if main_dt else base.compute,
            memory=memory_curve.values[-1] if memory_curve else base.memory,
            launch_overhead_s=o, compute_curves=curves or dict(base.compute_curves),
            memory_curve=memory_curve)
    return eff


def _folds(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % max(k, 1)


def _devices(df: pd.DataFrame, device: DeviceSpec | None) -> dict[str, DeviceSpec]:
    from perfmodel.hardware.load import load_device
    if device is not None:
        return {h: device for h in df["hw"].unique()}
    if (df["hw"] == "").any():
        raise MeasurementError("measurement rows name no device spec (column hw is empty)",
                               "pass --hw NAME_OR_FILE")
    return {h: load_device(h) for h in df["hw"].unique()}


def _inference_cv(inf: pd.DataFrame, folds: np.ndarray, group: tuple[str, ...]
                  ) -> tuple[np.ndarray, dict[str, float], float]:
    """Out-of-fold predictions of inference rows with the overhead fitted on the other folds
    (per value of the ``group`` columns if given); plus the overheads fitted on all rows."""
    base = (inf["predicted_s"] - inf["overhead_s"]).to_numpy(float)
    ops = inf["priced_ops"].to_numpy(float)
    meas = inf["time_s"].to_numpy(float)
    keys = (inf[list(group)].astype(str).agg(" | ".join, axis=1).to_numpy(dtype=object)
            if group else np.array(["all"] * len(inf)))
    pred = np.full(len(inf), np.nan)
    for f in np.unique(folds):
        test = folds == f
        for key in np.unique(keys[test]):
            train = ~test & (keys == key)
            o = fit_overhead(base[train], ops[train], meas[train]) if train.any() else \
                fit_overhead(base[~test], ops[~test], meas[~test])
            sel = test & (keys == key)
            pred[sel] = base[sel] + ops[sel] * o
    groups = {str(k): fit_overhead(base[keys == k], ops[keys == k], meas[keys == k])
              for k in np.unique(keys)}
    return pred, groups, fit_overhead(base, ops, meas)


def calibrate(measurements: pd.DataFrame, device: DeviceSpec | None = None, *,
              folds: int = 5, seed: int = 0, points: int = 8,
              group: str | tuple[str, ...] | None = None,
              models: ModelResolver | None = None) -> Calibration:
    """Fit on all rows; report every row's error from a fit that did not see it.

    ``group`` (a column, e.g. ``"framework"``, or several, comma-separated or a tuple) fits
    the inference launch overhead per value of those columns in the cross-validation
    (software stacks differ in per-kernel cost). ``models`` builds the models inference
    rows name (``perfmodel.load_model``; see validate.compare)."""
    df = measurements.reset_index(drop=True)
    devices = _devices(df, device)
    base = next(iter(devices.values())).efficiency
    uncal = compare(df, device, models=models)
    fold = _folds(len(df), folds, seed)
    micro = ~df["family"].isin(["inference"])
    cv = uncal.copy()
    for f in track(range(max(folds, 1)), "cross-validating", max(folds, 1)):
        train, test = micro & (fold != f), micro & (fold == f)
        if not test.any():
            continue
        eff = fit_efficiency(df[train], devices, base, points=points)
        cv.loc[test] = _compare_with(df[test], device, devices, eff).to_numpy()
    eff_all = fit_efficiency(df[micro], devices, base, points=points)
    inf = df["family"] == "inference"
    groups: dict[str, float] = {}
    if inf.any():
        inf_cmp = _compare_with(df[inf], device, devices, eff_all, models)
        cols = tuple(c.strip() for c in group.split(",")) if isinstance(group, str) else \
            tuple(group or ())
        missing = [c for c in cols if c not in inf_cmp.columns]
        if missing:
            raise MeasurementError(f"--group: no column {missing[0]!r} in the measurements",
                                   "group by columns of the schema, e.g. framework,dtype")
        pred, groups, pooled = _inference_cv(inf_cmp, fold[inf.to_numpy()], cols)
        inf_cmp["predicted_s"] = pred
        inf_cmp["error"] = (pred - inf_cmp["time_s"]) / inf_cmp["time_s"]
        inf_cmp["abs_error"] = inf_cmp["error"].abs()
        cv.loc[inf] = inf_cmp.to_numpy()
        if not (df["family"] == "launch").any():
            eff_all = Efficiency(eff_all.compute, eff_all.memory, pooled,
                                 eff_all.compute_curves, eff_all.memory_curve)
    cv = cv.astype(uncal.dtypes.to_dict())
    used = {"launch": int((df["family"] == "launch").sum()),
            "compute": int(df["family"].isin(COMPUTE_FAMILIES).sum()),
            "memory": int(df["family"].isin(MEMORY_FAMILIES).sum()),
            "inference": int(inf.sum())}
    return Calibration(eff_all, groups, cv, error_summary(cv), error_summary(uncal), used)


def _compare_with(rows: pd.DataFrame, device: DeviceSpec | None,
                  devices: Mapping[str, DeviceSpec], eff: Efficiency,
                  models: ModelResolver | None = None) -> pd.DataFrame:
    if device is not None:
        return compare(rows, with_efficiency(device, eff), models=models)
    return compare(rows, None, efficiency_from=with_efficiency(
        next(iter(devices.values())), eff), models=models)


def _points(curve: EfficiencyCurve) -> list[list[float]]:
    return [[float(f"{s:.4g}"), round(e, 4)] for s, e in curve.to_points()]


def calibrated_spec(device: DeviceSpec, cal: Calibration, measurement_file: str,
                    date: str | None = None) -> dict[str, Any]:
    """A spec mapping (hw_spec format) of ``device`` with the fitted efficiency block; every
    fitted figure's source is the measurement file."""
    date = date or _dt.date.today().isoformat()
    spec = {k: v for k, v in device.raw.items() if k not in ("aliases", "efficiency")}
    spec["name"] = f"{device.name}-calibrated"
    spec["display_name"] = f"{device.display_name} (calibrated)"
    s = cal.summary.set_index("family")
    err = "; ".join(f"{fam} MAPE {100 * s.loc[fam, 'mape']:.1f}% on {s.loc[fam, 'predicted']}"
                    f" held-out rows" for fam in s.index if fam != "all" and
                    np.isfinite(s.loc[fam, "mape"]))
    spec["sources"] = {**(device.raw.get("sources") or {}), "CALIBRATED": (
        f"fitted by `perfmodel calibrate` on {date} from measurement file {measurement_file} "
        f"({', '.join(f'{v} {k} rows' for k, v in cal.rows_used.items() if v)}); "
        f"cross-validated: {err or 'no held-out rows'}")}
    e = cal.efficiency
    block: dict[str, Any] = {
        "compute": {"value": round(e.compute, 4), "source": "CALIBRATED"},
        "memory": {"value": round(e.memory, 4), "source": "CALIBRATED"},
        "launch_overhead_us": {"value": round(e.launch_overhead_s * 1e6, 4),
                               "source": "CALIBRATED"}}
    if e.compute_curves:
        block["compute_curve"] = {dt: {"value": _points(c), "source": "CALIBRATED"}
                                  for dt, c in e.compute_curves.items()}
    if e.memory_curve is not None:
        block["memory_curve"] = {"value": _points(e.memory_curve), "source": "CALIBRATED"}
    spec["efficiency"] = block
    return spec
