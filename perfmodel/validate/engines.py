"""Published inference rows priced through their engine (perfmodel.inference), and the engine
profiles' host figures fitted on them — pooled, or leaving each device out.

A row names its stack in ``framework``; the engine profile that claims that text
(``perfmodel.inference.engine.engine_for_framework``) prices it: a generation row (phase
``generate``) as ``infer`` of ``batch`` sequences of ``seq`` prompt and ``out_seq`` generated
tokens, a forward row (phase ``inference``) as one forward; rows on several devices split as
the engine does by default (tensor parallel, or llama.cpp's layer split) on the shipped
system of that device. llama.cpp's rows come from ``llama-bench -p L -n N -pg L,N -b B``:
one sequence, the prompt in micro-batches of min(B, 512) tokens (``-ub`` default), then N
generated tokens (argonne-lcf/LLM-Inference-Bench llama.cpp/*/llama2-7b.sh).

Fitting (``fit_engine``): a profile's host figures enter a row's time as
T = Q(h_eager, h_graph) + n x c, where Q is the run priced with those per-kernel host times
and no per-step cost, n the passes of the run (forward calls, or prefill + decode steps)
and c the per-step (generation) or per-call (forward) cost. For each (h_eager, h_graph) on a
grid, c is the L1 fit of the residual (``metrics.fit_overhead``); the pair with the least
mean absolute relative error wins. Leave-one-device-out (``engine_holdout``) fits on the
other devices' rows of the engine and predicts the device left out; an engine measured on
one device only has no such figure (stated as such).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import PerfModelError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.inference.engine import EngineProfile, engine_for_framework
from perfmodel.inference.run import infer
from perfmodel.validate.metrics import fit_overhead
from perfmodel.validate.reference import REFERENCE_DEVICES
from perfmodel.workload.plan import ParallelPlan

__all__ = ["engine_of_row", "price_row", "fit_engine", "fit_engines", "engine_holdout",
           "fitted_profile",
           "device_family", "HOST_GRID_US", "GRAPH_GRID_US", "LLAMA_BENCH_UBATCH"]

CV_FOLDS = 5
LLAMA_BENCH_UBATCH = 512  # llama-bench -ub default (ggml-org/llama.cpp tools/llama-bench)
# per-kernel host times tried (microseconds): eager dispatch, and per CUDA-graph node
HOST_GRID_US = (0.0, 2.0, 4.0, 6.0, 8.0, 11.0, 15.0, 20.0, 27.0, 36.0, 50.0)
GRAPH_GRID_US = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)

Resolver = Callable[[str], ModelGraph]


def device_family(hw: str) -> str:
    """The reference family (a100, v100, t4, a10, a30) of a spec name, else the name."""
    return next((fam for fam, names in REFERENCE_DEVICES.items()
                 if fam != "all" and hw in names), hw)


def engine_of_row(framework: str) -> EngineProfile | None:
    """The engine profile that prices a row of this framework text (None: unclaimed)."""
    return engine_for_framework(str(framework))


def _request(row: Any, engine: EngineProfile) -> dict[str, Any]:
    """infer keyword arguments for a published row."""
    n = int(row.num_devices) if pd.notna(row.num_devices) else 1
    plan = ParallelPlan()
    if n > 1:
        plan = (ParallelPlan(pipeline_parallel=n) if engine.split == "layer"
                else ParallelPlan(tensor_parallel=n))
    seq = int(row.seq) if pd.notna(row.seq) else None
    batch = int(row.batch)
    dtype = str(row.dtype) if isinstance(row.dtype, str) and row.dtype else None
    if row.phase != "generate":
        return {"batch": batch, "input_len": seq, "plan": plan, "dtype": dtype}
    out = int(row.out_seq) if pd.notna(row.out_seq) else 1
    if engine.name == "llama-cpp":  # llama-bench: one sequence, -b is the prompt's ubatch
        return {"batch": 1, "input_len": seq, "output_len": out + 1, "plan": plan,
                "chunk_tokens": max(1, min(batch, LLAMA_BENCH_UBATCH)), "dtype": dtype}
    return {"batch": batch, "input_len": seq, "output_len": out, "plan": plan,
            "dtype": dtype}


def price_row(row: Any, graph: ModelGraph, device: DeviceSpec, engine: EngineProfile
              ) -> tuple[float, float, float, str]:
    """(predicted seconds, the kernels' launch floor in it, kernels launched, note) of one
    row, every wave counted — the floor and the kernel count as ``compare`` reports them
    for a single pass, so a per-kernel floor fitted on them (calibrate, holdout) means the
    same for engine-priced rows; NaNs and the reason where it cannot be priced (a plan the
    model cannot take)."""
    try:
        pred = infer(graph, device, engine=engine, **_request(row, engine))
    except PerfModelError as exc:
        return np.nan, np.nan, np.nan, f"not predicted: {exc.message}"
    s, p = pred.summary, pred.passes
    note = "" if pred.fits else "DOES NOT FIT: " + pred.warnings[0]
    if s["waves"] > 1:
        note = f"runs in {s['waves']} waves of {s['wave_batch']} (KV cache)"
    w = np.where(p["wave"].to_numpy() == "full", s["batch"] // s["wave_batch"], 1.0)
    return (float(s["total_s"]), float(p["floor_s"].to_numpy(float) @ w),
            float(p["kernels"].to_numpy(float) @ w), note)


def _sums(row: Any, graph: ModelGraph, device: DeviceSpec, engine: EngineProfile
          ) -> tuple[float, float, float, float]:
    """(seconds of the prompt / forward passes, of the decode passes, decode passes, all
    passes) of a row priced with ``engine``, every wave counted."""
    try:
        pred = infer(graph, device, engine=engine, **_request(row, engine))
    except PerfModelError:
        return np.nan, np.nan, np.nan, np.nan
    p, s = pred.passes, pred.summary
    full = s["batch"] // s["wave_batch"]
    w = np.where(p["wave"].to_numpy() == "full", full, 1.0)
    dec = p["pass"].to_numpy() == "decode"
    sec = p["seconds"].to_numpy(float) * w
    return float(sec[~dec].sum()), float(sec[dec].sum()), float(w[dec].sum()), float(w.sum())


def _curves(rows: pd.DataFrame, engine: EngineProfile, models: Resolver,
            devices: dict[str, DeviceSpec]) -> tuple[np.ndarray, np.ndarray]:
    """Q per row and (h_eager, h_graph) pair (rows x len(HOST) x len(GRAPH)), passes per
    row. Prompt and decode passes are priced apart: with graphs in decode, Q(h, g) =
    P(h) + D(g) + decode passes x h (each step's one graph launch), so the grid costs
    len(HOST) + len(GRAPH) runs per row, not their product."""
    graphs = engine.decode_graphs
    g_grid = GRAPH_GRID_US if graphs else (0.0,)
    q = np.full((len(rows), len(HOST_GRID_US), len(g_grid)), np.nan)
    n = np.full(len(rows), np.nan)
    bare = dataclasses.replace(engine, per_step_s=0.0, per_call_s=0.0)
    for i, r in enumerate(rows.itertuples(index=False)):
        graph, dev = models(r.model), devices[r.hw]
        prompt = np.empty(len(HOST_GRID_US))
        decode_eager = np.empty(len(HOST_GRID_US))
        for a, h in enumerate(HOST_GRID_US):
            pre, dec, n_dec, n[i] = _sums(r, graph, dev, dataclasses.replace(
                bare, host_per_kernel_s=h * 1e-6, graph_per_kernel_s=0.0))
            prompt[a], decode_eager[a] = pre, dec
            if np.isnan(pre):
                break
        if np.isnan(n[i]):
            continue
        if not graphs:
            q[i, :, 0] = prompt + decode_eager
            continue
        for b, g in enumerate(g_grid):
            _, dec, n_dec, _ = _sums(r, graph, dev, dataclasses.replace(
                bare, host_per_kernel_s=0.0, graph_per_kernel_s=g * 1e-6))
            q[i, :, b] = prompt + dec + n_dec * np.asarray(HOST_GRID_US) * 1e-6
    return q, n


def _best(q: np.ndarray, n: np.ndarray, meas: np.ndarray, use: np.ndarray
          ) -> tuple[int, int, float, float]:
    """(host index, graph index, per-step seconds, mean |error|) of the best fit on the rows
    ``use``."""
    best = (0, 0, 0.0, np.inf)
    for a in range(q.shape[1]):
        for b in range(q.shape[2]):
            base = q[use, a, b]
            ok = np.isfinite(base)
            if not ok.any():
                continue
            c = fit_overhead(base[ok], n[use][ok], meas[use][ok])
            err = float(np.mean(np.abs(base[ok] + n[use][ok] * c - meas[use][ok])
                                / meas[use][ok]))
            if err < best[3]:
                best = (a, b, c, err)
    return best


def fit_engine(rows: pd.DataFrame, engine: EngineProfile, models: Resolver
               ) -> tuple[dict[str, float], pd.DataFrame]:
    """Fit one engine's host figures on its rows (all of them): the figures, and the rows
    with ``predicted_s`` (in-sample), ``cv_s`` (5-fold by row: fitted without the row's
    fold) and ``holdout_s`` (fitted without the row's device family; NaN where the engine
    has rows on one family only)."""
    rows = rows.reset_index(drop=True)
    devices = {h: load_device(h) for h in rows["hw"].unique()}
    q, n = _curves(rows, engine, models, devices)
    meas = rows["time_s"].to_numpy(float)
    every = np.ones(len(rows), bool)
    a, b, c, err = _best(q, n, meas, every)
    g_grid = GRAPH_GRID_US if q.shape[2] > 1 else (0.0,)
    figures = {"host_per_kernel_us": HOST_GRID_US[a], "graph_per_kernel_us": g_grid[b],
               "per_step_us" if _generates(rows) else "per_call_us": c * 1e6,
               "rows": int(np.isfinite(q[:, a, b]).sum()), "in_sample_mean_abs_error": err}
    out = rows.assign(predicted_s=q[:, a, b] + n * c, passes=n)
    cv = np.full(len(rows), np.nan)  # 5-fold by row: every row from a fit that missed it
    fold = np.random.default_rng(0).permutation(len(rows)) % CV_FOLDS
    for f in range(CV_FOLDS):
        if (fold != f).any():
            a2, b2, c2, _ = _best(q, n, meas, fold != f)
            cv[fold == f] = (q[:, a2, b2] + n * c2)[fold == f]
    out = out.assign(cv_s=cv)
    fam = rows["hw"].map(device_family).to_numpy(object)
    hold = np.full(len(rows), np.nan)
    if len(set(fam)) > 1:
        for f in set(fam):
            a2, b2, c2, _ = _best(q, n, meas, fam != f)
            sel = fam == f
            hold[sel] = q[sel, a2, b2] + n[sel] * c2
    return figures, out.assign(holdout_s=hold)


def _generates(rows: pd.DataFrame) -> bool:
    return bool((rows["phase"] == "generate").any())


def fit_engines(measurements: pd.DataFrame, models: Resolver,
                engines: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit every engine that claims rows (or those named): (one row of figures per
    engine, every priced row with its in-sample and leave-one-device-out predictions)."""
    df = measurements[measurements["family"] == "inference"]
    df = df[df["phase"].isin(["generate", "inference"])].reset_index(drop=True)
    claimed = {fw: engine_of_row(fw) for fw in df["framework"].unique()}
    profiles = {fw: p for fw, p in claimed.items() if p is not None}
    df = df.assign(engine=df["framework"].map(
        lambda f: profiles[f].name if f in profiles else ""))
    df = df[df["engine"] != ""]
    figures, priced = [], []
    for name, rows in df.groupby("engine", sort=True):
        if engines and name not in engines:
            continue
        prof = next(p for p in profiles.values() if p and p.name == name)
        fig, out = fit_engine(rows, prof, models)
        figures.append({"engine": name, **fig,
                        "devices": ",".join(sorted(rows["hw"].map(device_family).unique()))})
        priced.append(out)
    table = pd.concat(priced, ignore_index=True) if priced else df.iloc[:0]
    for col, src in (("error", "predicted_s"), ("cv_error", "cv_s"),
                     ("holdout_error", "holdout_s")):
        if src in table:
            table[col] = (table[src] - table["time_s"]) / table["time_s"]
    return pd.DataFrame(figures), table


def engine_holdout(table: pd.DataFrame) -> pd.DataFrame:
    """Per engine and device family: rows, median and mean absolute error in-sample, 5-fold
    cross-validated, and with the device left out of the fit (``fit_engines``' rows)."""
    t = table.assign(family=table["hw"].map(device_family))
    g = t.groupby(["engine", "family"])
    return pd.DataFrame({
        "rows": g["error"].count(),
        "in_sample_median": g["error"].median(),
        "in_sample_mae": g["error"].apply(lambda e: e.abs().mean()),
        "cv_median": g["cv_error"].median(),
        "cv_mae": g["cv_error"].apply(lambda e: e.abs().mean()),
        "holdout_median": g["holdout_error"].median(),
        "holdout_mae": g["holdout_error"].apply(lambda e: e.abs().mean()),
    }).reset_index()


def fitted_profile(figures: Mapping[str, Any], where: str) -> dict[str, Any]:
    """An engine profile (YAML mapping) that inherits the shipped one named in
    ``figures["engine"]`` and sets the host figures fitted on the rows of ``where``."""
    src = (f"fitted: perfmodel calibrate --group engine on {where} ({figures['rows']} rows, "
           f"{figures['devices']}; in-sample mean |error| "
           f"{100 * figures['in_sample_mean_abs_error']:.1f}%)")
    out: dict[str, Any] = {"schema": 1, "name": f"{figures['engine']}-fitted",
                           "inherits": figures["engine"], "sources": {"FIT": src}}
    for key in ("host_per_kernel_us", "graph_per_kernel_us", "per_step_us", "per_call_us"):
        if key in figures and pd.notna(figures[key]):
            out[key] = {"value": round(float(figures[key]), 3), "source": "FIT"}
    return out

