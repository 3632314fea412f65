"""Measured collectives against the alpha-beta model, and a fit of a system's figures to them.

A user with their own nccl-tests output (``perfmodel.bench.nccl_tests``) or the bundled
suite's collective rows asks two things: how far is perfmodel from my cluster, and what
system file would make it right. ``compare_collectives`` answers the first, row by row;
``fit_collectives`` the second, with the same method as the shipped FIT-* figures
(benchmarks/bench_collectives.py):

1. Latency, from the rows of at most ``SMALL_BYTES`` (transfer under 1 us on any fabric): a
   least-squares fit of t = launch + a_net x d(latency)/d(a_net) + rest over the rows, the
   derivative taken from the model itself (so ring and tree rows mix). Runs on one node, or
   at one node count, cannot tell launch from per-hop latency; then only the launch latency
   is fitted and the network's per-step latency stays the system's.
2. Efficiency, per level, from the ring rows of at least ``CURVE_MIN_BYTES`` whose binding
   level it is: the efficiency that makes the model's transfer time equal to the measured
   time less the fitted latency, eff_fit = eff_model x transfer_model / (t - latency), read
   where the model reads it (the per-step message: V / g on the scale-up fabric, V / p on the
   network; ``analytic.network.Level``); medians at 4x size steps (``median_knots``). Rows of
   one node fit the scale-up curve (the PCIe uplink's where a ring is uplink-paced), rows of
   several nodes the network's. Knots of the system's curve outside the measured range stay
   (a tree reads the curve's large-message end, which a sweep at 1,000 GPUs never reaches).

``cross_validate`` fits on every other size and reports the error on the rest, so the figure
a user reads is not the fit's own residual. ``check_collectives`` does it all for a set of
runs: the comparison, and with ``calibrate`` the fit, the system file it gives (checked by
loading it) and the error before, after and held out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from perfmodel.analytic.collectives import BUS_FACTOR, check_primitive
from perfmodel.analytic.network import levels, predict_collective, uplink_paced
from perfmodel.errors import MeasurementError
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.system import SystemSpec, system_from_dict, system_to_dict

__all__ = ["MeasuredRun", "runs_frame", "compare_collectives", "error_summary", "fit_collectives",
           "CollectiveFit", "calibrated_system", "cross_validate", "median_knots",
           "CollectiveCheck", "check_collectives", "SIZE_RANGES", "SMALL_BYTES",
           "CURVE_MIN_BYTES"]

KIB, MIB = 1024, 1024 * 1024
SMALL_BYTES = 8 * KIB          # latency rows: 8 KiB moves in < 1 us at >= 10 GB/s
CURVE_MIN_BYTES = 64 * KIB     # efficiency rows
SIZE_RANGES = [(0, 64 * KIB, "< 64 KiB"), (64 * KIB, MIB, "64 KiB - 1 MiB"),
               (MIB, 64 * MIB, "1 - 64 MiB"), (64 * MIB, np.inf, ">= 64 MiB")]
FIT_PRIMITIVES = ("all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce")


class MeasuredRun(Protocol):
    """One measured run as ``perfmodel.bench.nccl_tests.NcclTestsRun`` holds it: rows with
    size_bytes and time_us (us), the collective and the run's shape where the file states
    them (None where not)."""

    @property
    def path(self) -> str: ...
    @property
    def collective(self) -> str | None: ...
    @property
    def ranks(self) -> int | None: ...
    @property
    def nodes(self) -> int | None: ...
    @property
    def per_node(self) -> int | None: ...
    @property
    def rows(self) -> pd.DataFrame: ...


def median_knots(sizes: np.ndarray, eff: np.ndarray, lo: float | None = None
                 ) -> list[list[float]]:
    """Curve knots at 4x size steps from ``lo`` (default: the power of 4 at or below the
    smallest size), each the median efficiency of the points in [k/2, 2k), clamped to
    [0.01, 1].

    >>> median_knots(np.array([1024., 2048., 4096.]), np.array([.2, .4, .6]))
    [[1024, 0.2], [4096, 0.5]]
    """
    sizes, eff = np.asarray(sizes, dtype=float), np.asarray(eff, dtype=float)
    out: list[list[float]] = []
    if sizes.size == 0:
        return out
    k = float(lo) if lo else 4.0 ** np.floor(np.log(sizes.min()) / np.log(4.0))
    while k <= sizes.max() * 2:
        sel = (sizes >= k / 2) & (sizes < 2 * k)
        if sel.any():
            out.append([int(k), round(float(np.clip(np.median(eff[sel]), 0.01, 1.0)), 3)])
        k *= 4
    return out


def runs_frame(runs: Iterable[MeasuredRun], collective: str | None = None,
               nodes: int | None = None, per_node: int | None = None) -> pd.DataFrame:
    """One row per measured size: source, collective, nodes, per_node, size_bytes, t_meas_us.

    ``collective`` / ``nodes`` / ``per_node`` override what each file states; a file that
    states neither is a MeasurementError naming the flag that fixes it.
    """
    frames = []
    for run in runs:
        prim = collective or run.collective
        if prim is None:
            raise MeasurementError(
                f"{run.path}: cannot tell which collective ran (no 'Collective test "
                "starting' line, no collective in the file name)",
                "name the collective: perfmodel collective all_reduce --nccl-tests FILE")
        check_primitive(prim)
        if collective and run.collective and run.collective != collective:
            raise MeasurementError(f"{run.path} is an {run.collective} run, not {collective}",
                                   f"use perfmodel collective {run.collective} (or check)")
        n = nodes if nodes is not None else run.nodes
        g = per_node if per_node is not None else run.per_node
        if g is None and n is not None and run.ranks:
            g = run.ranks // n
        if n is None or g is None:
            raise MeasurementError(
                f"{run.path}: the run's GPU count is not in the file (no '#  Rank' lines, or "
                "hosts with different GPU counts)", "pass --nodes N and --gpus G")
        if n * g < 2:
            raise MeasurementError(f"{run.path}: {n} node(s) x {g} GPU(s) is not a collective",
                                   "pass --nodes and --gpus for a run of >= 2 GPUs")
        r = run.rows
        frames.append(pd.DataFrame({
            "source": run.path, "collective": prim, "nodes": int(n), "per_node": int(g),
            "size_bytes": r["size_bytes"].astype(float), "t_meas_us": r["time_us"]}))
    if not frames:
        raise MeasurementError("no nccl-tests runs given", "pass --nccl-tests FILE")
    return pd.concat(frames, ignore_index=True)


def compare_collectives(system: SystemSpec, frame: pd.DataFrame, algorithm: str = "auto"
                        ) -> pd.DataFrame:
    """``frame`` (runs_frame) with the model's time and busbw beside the measured ones.

    Added columns: t_pred_us, algorithm, latency_us, transfer_us, efficiency, busbw_meas,
    busbw_pred (GB/s, nccl-tests factors), time_err ((pred - meas) / meas, signed).
    """
    d = frame.reset_index(drop=True)
    for c in ("t_pred_us", "latency_us", "transfer_us", "efficiency"):
        d[c] = np.nan
    d["algorithm"] = ""
    for (prim, n, g), grp in d.groupby(["collective", "nodes", "per_node"], sort=False):
        t = predict_collective(system, str(prim), grp["size_bytes"].to_numpy(), int(n),
                               int(g), algorithm).table
        d.loc[grp.index, ["t_pred_us", "latency_us", "transfer_us", "efficiency"]] = t[
            ["time_us", "latency_us", "transfer_us", "efficiency"]].to_numpy()
        d.loc[grp.index, "algorithm"] = t["algorithm"].to_numpy()
    factor = np.array([float(BUS_FACTOR[c](np.asarray(float(n * g)))) for c, n, g in
                       zip(d["collective"], d["nodes"], d["per_node"], strict=True)])
    d["busbw_meas"] = d["size_bytes"] * factor / (d["t_meas_us"] * 1e3)
    d["busbw_pred"] = d["size_bytes"] * factor / (d["t_pred_us"] * 1e3)
    d["time_err"] = (d["t_pred_us"] - d["t_meas_us"]) / d["t_meas_us"]
    return d


def error_summary(compared: pd.DataFrame, err: str = "time_err") -> pd.DataFrame:
    """Rows and median / mean |error| (of time and busbw) per size range and >= 1 MiB."""
    d = compared.assign(abs_time=compared[err].abs(), abs_busbw=(
        compared["busbw_pred"] - compared["busbw_meas"]).abs() / compared["busbw_meas"])
    out = []
    for lo, hi, label in [*SIZE_RANGES, (MIB, np.inf, ">= 1 MiB")]:
        sel = d[(d["size_bytes"] >= lo) & (d["size_bytes"] < hi)]
        if len(sel):
            out.append({"sizes": label, "rows": len(sel),
                        "median_abs_time_err": float(sel["abs_time"].median()),
                        "mean_abs_time_err": float(sel["abs_time"].mean()),
                        "median_abs_busbw_err": float(sel["abs_busbw"].median())})
    return pd.DataFrame(out)


@dataclass(frozen=True)
class CollectiveFit:
    """What ``fit_collectives`` found: {system key: value} in file units, and how."""

    values: dict[str, Any]
    rows_used: dict[str, int]
    notes: list[str] = field(default_factory=list)


FIT_SOURCE = "FIT-USER"


def _fitted_dict(system: SystemSpec, values: dict[str, Any],
                 cite: str = "perfmodel collective --calibrate-out") -> dict[str, Any]:
    """The system's file form with ``values`` ({'scale_out.latency_us': 6.1, ...}) put in,
    each citing FIT_SOURCE, which ``cite`` describes (a curve keeps its reference_GBps)."""
    d = copy.deepcopy(system_to_dict(system))
    for key, value in values.items():
        section, leaf = key.split(".")
        node = d.setdefault(section, {})
        old = node.get(leaf) if isinstance(node.get(leaf), dict) else {}
        node[leaf] = {**{k: v for k, v in old.items() if k == "reference_GBps"},
                      "value": value, "source": FIT_SOURCE}
    d.setdefault("sources", {})[FIT_SOURCE] = cite
    return d


def _with(system: SystemSpec, values: dict[str, Any]) -> SystemSpec:
    """The system with ``values`` in place (``_fitted_dict``), checked as a file would be."""
    return system_from_dict(_fitted_dict(system, values), system.path or system.name)


def _network_latency_slope(system: SystemSpec, a_net: float, grp: pd.DataFrame
                           ) -> np.ndarray:
    """d(model latency) / d(network per-step latency, ``a_net`` us now), per row of one run,
    in us per us (NaN where a 1 us change would flip the algorithm)."""
    prim, n, g = grp["collective"].iloc[0], int(grp["nodes"].iloc[0]), int(grp["per_node"].iloc[0])
    v = grp["size_bytes"].to_numpy()
    a = predict_collective(system, prim, v, n, g).table
    b = predict_collective(_with(system, {"scale_out.latency_us": a_net + 1.0}), prim, v, n,
                           g).table
    same = a["algorithm"].to_numpy() == b["algorithm"].to_numpy()
    return np.where(same, b["latency_us"].to_numpy() - a["latency_us"].to_numpy(), np.nan)


def _fit_latency(system: SystemSpec, d: pd.DataFrame, notes: list[str]
                 ) -> tuple[dict[str, Any], int]:
    small = d[d["size_bytes"] <= SMALL_BYTES]
    if small.empty:
        notes.append(f"no rows <= {SMALL_BYTES} B: latencies kept from the system file")
        return {}, 0
    launch = system.launch_latency_s * 1e6
    rest = small["latency_us"].to_numpy() - launch   # the model's per-step part
    fit: dict[str, Any] = {}
    multi = small[small["nodes"] > 1]
    if system.scale_out is not None and multi["nodes"].nunique() >= 2:
        a_net = system.scale_out.latency_s * 1e6
        slope = pd.concat([pd.Series(_network_latency_slope(system, a_net, grp),
                                     index=grp.index)
                           for _, grp in multi.groupby(["collective", "nodes", "per_node"])])
        x = slope.reindex(small.index).fillna(0.0).to_numpy()
        y = small["t_meas_us"].to_numpy() - (rest - x * a_net)
        A = np.column_stack([np.ones_like(x), x])
        (c0, c1), *_ = np.linalg.lstsq(A, y, rcond=None)
        if c0 >= 0 and c1 > 0:
            fit["scale_out.latency_us"] = round(float(c1), 3)
            fit["collective.launch_latency_us"] = round(float(c0), 2)
            return fit, len(small)
        notes.append("launch and network per-step latency did not separate (a negative "
                     "figure): fitted the launch latency only")
    fit["collective.launch_latency_us"] = round(max(float(np.median(
        small["t_meas_us"].to_numpy() - rest)), 0.0), 2)
    if system.scale_out is not None and len(multi) and multi["nodes"].nunique() < 2:
        notes.append("multi-node rows at one node count cannot tell launch from network "
                     "per-hop latency: the launch latency absorbs both (valid at that count)")
    return fit, len(small)


def _curve_key(system: SystemSpec, n: int, g: int) -> str:
    if n > 1 and system.scale_out is not None:
        return "scale_out.efficiency"
    return ("scale_up.uplink_efficiency" if uplink_paced(system.scale_up, g)
            else "scale_up.efficiency")


def _curve(system: SystemSpec, key: str) -> EfficiencyCurve:
    if key == "scale_out.efficiency" and system.scale_out is not None:
        return system.scale_out.efficiency
    f = system.scale_up
    return f.uplink_efficiency if key.endswith("uplink_efficiency") and f.uplink_efficiency \
        else f.efficiency


def _curve_points(system: SystemSpec, d: pd.DataFrame) -> dict[str, tuple[list, list]]:
    """(index, efficiency) points per curve key from the ring rows each level binds."""
    pts: dict[str, tuple[list, list]] = {}
    rows = d[(d["size_bytes"] >= CURVE_MIN_BYTES) & (d["algorithm"] == "ring")
             & d["collective"].isin(FIT_PRIMITIVES)]
    for (n, g), grp in rows.groupby(["nodes", "per_node"]):
        n, g = int(n), int(g)
        intra, inter = levels(system, n, g)
        v = grp["size_bytes"].to_numpy()
        key = _curve_key(system, n, g)
        if inter is not None:
            lvl, pieces = inter, n * g
            binds = inter.ring_Bps * inter.eff(v, pieces) <= intra.ring_Bps * intra.eff(v, g)
        else:
            lvl, pieces, binds = intra, g, np.ones(v.shape, bool)
        spare = grp["t_meas_us"].to_numpy() - grp["latency_us"].to_numpy()
        ok = binds & (spare > 0)
        eff = grp["efficiency"].to_numpy() * grp["transfer_us"].to_numpy() / np.where(
            ok, spare, 1.0)
        xs, es = pts.setdefault(key, ([], []))
        xs.extend((v * lvl.eff_scale / pieces)[ok])
        es.extend(eff[ok])
    return pts


def fit_collectives(system: SystemSpec, frame: pd.DataFrame) -> CollectiveFit:
    """Fit launch / network latency and the efficiency curves to measured rows (runs_frame);
    the method is in the module docstring."""
    notes: list[str] = []
    first = compare_collectives(system, frame)
    fit, n_small = _fit_latency(system, first, notes)
    used = {"latency": n_small}
    if fit:
        system = _with(system, fit)
    d = compare_collectives(system, frame)
    for key, (xs, es) in _curve_points(system, d).items():
        knots = median_knots(np.asarray(xs), np.asarray(es))
        if knots:
            lo, hi = knots[0][0] / 2, knots[-1][0] * 2
            kept = [[int(s) if float(s).is_integer() else s, e]
                    for s, e in _curve(system, key).to_points() if not lo <= s < hi]
            fit[key] = sorted(knots + kept)
            used[key] = len(xs)
            if kept:
                notes.append(f"{key}: knots outside the measured {lo:.0f} .. {hi:.0f} B "
                             "(per-step message) kept from the system file")
    if not any(k.endswith("efficiency") for k in fit):
        notes.append(f"no ring rows >= {CURVE_MIN_BYTES} B with time above the fitted "
                     "latency: efficiency curves kept from the system file")
    return CollectiveFit(fit, used, notes)


def calibrated_system(system: SystemSpec, fit: CollectiveFit, source: str,
                      name: str | None = None) -> dict[str, Any]:
    """The system file (a mapping) with the fitted figures, each cited to ``source``; load it
    with ``system_from_dict`` to check it."""
    d = _fitted_dict(system, fit.values, (
        f"fitted by perfmodel collective --calibrate-out to {source} (perfmodel.validate."
        f"collectives.fit_collectives; rows used: {fit.rows_used})"))
    if name:
        d["name"] = name
        d["aliases"] = []
    d["display_name"] = f"{system.display_name}, calibrated to measured collectives"
    return d


def cross_validate(system: SystemSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """Held-out comparison: fit on every other size of each run, predict the others, and the
    other way round; the rows of ``compare_collectives`` for every size, each predicted by
    the fit that did not see it."""
    d = frame.sort_values(["source", "collective", "nodes", "per_node", "size_bytes"]
                          ).reset_index(drop=True)
    fold = d.groupby(["source", "collective", "nodes", "per_node"]).cumcount() % 2
    parts = []
    for k in (0, 1):
        train, test = d[fold != k], d[fold == k]
        if train.empty or test.empty:
            continue
        fitted = _with(system, fit_collectives(system, train).values)
        parts.append(compare_collectives(fitted, test))
    if not parts:
        raise MeasurementError("cross-validation needs at least 2 sizes per run",
                               "run nccl-tests over a size sweep (-b 8 -e 8G -f 2)")
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class CollectiveCheck:
    """What ``check_collectives`` found.

    ``rows``: ``compare_collectives`` of every measured size (the model as shipped);
    ``summary``: its ``error_summary``. With ``calibrate``, also ``fit`` (the fitted
    figures), ``spec`` (the calibrated system file as a mapping, already loaded once with
    ``system_from_dict``), ``fitted_summary`` (error with the calibrated system on the same
    rows, the fit's own residual) and ``held_out_summary`` (``cross_validate``'s error, the
    figure to trust); None without.
    """

    rows: pd.DataFrame
    summary: pd.DataFrame
    fit: CollectiveFit | None = None
    spec: dict[str, Any] | None = None
    fitted_summary: pd.DataFrame | None = None
    held_out_summary: pd.DataFrame | None = None


def check_collectives(system: SystemSpec, runs: Iterable[MeasuredRun],
                      collective: str | None = None, nodes: int | None = None,
                      per_node: int | None = None, algorithm: str = "auto", *,
                      calibrate: bool = False, source: str = "", name: str = ""
                      ) -> CollectiveCheck:
    """Measured runs beside the model, and with ``calibrate`` a system fitted to them.

    Parameters
    ----------
    system : SystemSpec
        The system the runs are predicted on (and the fit starts from).
    runs : iterable of MeasuredRun
        Measured runs (``perfmodel.bench.nccl_tests.read_nccl_tests``).
    collective, nodes, per_node : optional
        Override what each run states (``runs_frame``).
    algorithm : str
        The model's algorithm for the comparison (``auto``: as NCCL picks). The fit always
        compares with ``auto``.
    calibrate : bool
        Also fit the system's latencies and efficiency curves (``fit_collectives``),
        cross-validate the fit and build the calibrated system file.
    source : str
        What the calibrated file cites as measured (default: the runs' paths).
    name : str
        The calibrated system's name (default: the system's).

    Returns
    -------
    CollectiveCheck

    Raises
    ------
    MeasurementError
        A run without its collective or GPU count, none at all, or (``calibrate``) fewer
        than 2 sizes per run.
    SpecError
        The calibrated system does not load (a fit outside what a system file allows).
    """
    runs = list(runs)
    frame = runs_frame(runs, collective, nodes, per_node)
    rows = compare_collectives(system, frame, algorithm)
    summary = error_summary(rows)
    if not calibrate:
        return CollectiveCheck(rows, summary)
    fit = fit_collectives(system, frame)
    held = cross_validate(system, frame)
    cited = source or ", ".join(run.path for run in runs)
    spec = calibrated_system(system, fit, cited, name or None)
    fitted = system_from_dict(spec, f"{name or system.name} (calibrated)")
    return CollectiveCheck(rows, summary, fit, spec,
                           error_summary(compare_collectives(fitted, frame)),
                           error_summary(held))
