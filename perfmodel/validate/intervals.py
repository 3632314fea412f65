"""Prediction intervals on every latency, from leave-one-device-out residuals.

A latency perfmodel predicts, t, gets a band [t exp(q_lo), t exp(q_hi)] (seconds), where
q_lo and q_hi are the empirical (1 - level) / 2 and (1 + level) / 2 quantiles of the log
residuals r = ln(measured / predicted) of the shipped reference rows of the same kind, each
row predicted with its chip left out (``holdout.leave_one_device_out``, its ``refit``
column: the kernel model's fitted figures refitted on the other chips). This is a split
conformal interval with the held-out rows as the calibration set (Lei, G'Sell, Rinaldo,
Tibshirani and Wasserman, "Distribution-Free Predictive Inference for Regression", JASA
113(523), 2018, sec. 2.2), in log space so that the band scales with the latency and may be
asymmetric. Quantiles are numpy's default ``method="linear"`` (Hyndman and Fan 1996,
definition 7); Lei et al.'s finite-sample guarantee takes the order statistic of rank
ceil((n + 1) p) instead, about one order statistic away at the n >= 30 of every class.
The default level is 0.8 (a 10 %-90 % band); 0.5, 0.8 and 0.9 ship. Out of sample the 0.8
band holds 78 % of the roofline rows and 78 % of the LLM rows (``interval_coverage.csv``;
per chip 70-96 %: the chips' own biases are what a new chip's band cannot know).

Kinds (the residual classes; rows of the shipped reference set):

- ``roofline``: one forward pass priced by the roofline (ResNet-50, BERT inference rows of
  phase ``inference``, each with its framework's engine profile; A100, V100, A10, A30, T4;
  measured ``prefill`` or ``decode`` passes would join it).
- ``infer``: an LLM generation (prefill + decode steps) priced through its serving engine
  (phase ``generate``; LLM-Inference-Bench, A100 40GB only: no other device has such rows,
  so these residuals are out of sample for the kernel model's figures but not across
  devices, and the engines' host figures, ``engine_fit.csv``, were fitted on these rows).
- ``train``: a training step (``validate.training``: 16 published A100 runs, priced with
  the A100 refitted on the other chips). Under MIN_ROWS rows, so its band is the pooled
  class ``all``.
- ``all``: every row above, pooled.

No class is split by phase: the reference rows are whole generations or single forwards
(no separate TTFT / TPOT latencies), so a ``phase`` (prefill, decode, ...) gets its kind's
band (phase ``any`` in the table); a table row with its own phase would take precedence.
The residuals are out of sample for the kernel model's fitted figures; the engine
profiles' host figures (``engine_fit.csv``) were fitted on these same rows, all devices
together (their 5-fold and leave-one-device-out errors, ``engine_fit_by_device.csv``, are
within a few points of the in-sample ones except MXNet on the A100).

Files (``measurements/reference/``, written by ``write_intervals``):
``interval_residuals.csv`` (one row per priced reference row: the slow part, minutes),
``intervals.csv`` (the band table read at run time) and ``interval_coverage.csv`` (how
often the bands hold, out of sample and in sample; ``coverage``). To regenerate::

    python -c "import perfmodel as pm; from perfmodel.validate.intervals import \\
        write_intervals; print(write_intervals(pm.load_model, 'measurements/reference'))"
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from perfmodel.errors import MeasurementError, PerfModelError
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import load_system
from perfmodel.parallel.step import predict_step
from perfmodel.validate.engines import engine_of_row
from perfmodel.validate.holdout import _priced, _refit_model, chip_of
from perfmodel.validate.reference import load_reference, reference_dir
from perfmodel.validate.training import DEVICE, SYSTEM, load_cases
from perfmodel.workload.job import PHASES as JOB_PHASES

__all__ = ["latency_band", "band_of", "band_table", "coverage", "holdout_residuals",
           "band_quantiles", "residual_quantiles", "residual_table", "write_intervals",
           "KINDS", "LEVELS", "DEFAULT_LEVEL", "PHASES", "MIN_ROWS", "RESIDUAL_COLUMNS",
           "BAND_COLUMNS", "COVERAGE_COLUMNS", "FILES"]

LEVELS = (0.5, 0.8, 0.9)
DEFAULT_LEVEL = 0.8
MIN_ROWS = 30  # a class with fewer rows takes the pooled class's quantiles
QUANTILE_METHOD: Final = "linear"  # numpy.quantile default: Hyndman and Fan (1996) definition 7
PREDICTION = "refit"  # holdout column: the kernel model refitted without the chip
POOLED = "all"
# measurement phase -> kind (a whole generation is 'infer'; one forward pass 'roofline')
KIND_OF_PHASE = {"inference": "roofline", "prefill": "roofline", "decode": "roofline",
                 "generate": "infer"}
LATENCY_FAMILY = "inference"  # measurement rows of a whole model's latency
ANY_PHASE = "any"  # a band row for every phase of its kind
KINDS = ("roofline", "infer", "train", POOLED)
PHASES = (*JOB_PHASES, "generate")
FILES = {"residuals": "interval_residuals.csv", "bands": "intervals.csv",
         "coverage": "interval_coverage.csv"}
RESIDUAL_COLUMNS = ("row_id", "kind", "phase", "hw", "chip", "engine", "model", "time_s",
                    "predicted_s", "residual")
BAND_COLUMNS = ("kind", "phase", "level", "q_lo", "q_hi", "class", "n_rows", "chips",
                "note")
TEXT_COLUMNS = ("row_id", "kind", "phase", "hw", "chip", "engine", "model", "class", "chips",
                "note", "scheme", "held_out")
COVERAGE_COLUMNS = ("kind", "class", "level", "scheme", "held_out", "n_rows", "covered",
                    "coverage", "q_lo", "q_hi")
SOURCE = (f"ln(measured / predicted) of the shipped reference rows, each predicted with its "
          f"chip left out (holdout.leave_one_device_out, '{PREDICTION}'); "
          f"numpy.quantile method={QUANTILE_METHOD}")

ModelResolver = Callable[..., Any]  # perfmodel.load_model: a name or shape -> ModelGraph


def residual_quantiles(residuals: Sequence[float] | np.ndarray, level: float
                       ) -> tuple[float, float]:
    """(q_lo, q_hi): the (1 - level) / 2 and (1 + level) / 2 empirical quantiles of log
    residuals (numpy's linear interpolation, Hyndman and Fan 1996 definition 7).

    >>> residual_quantiles([-0.2, -0.1, 0.0, 0.1, 0.2], 0.8)  # -0.2 + 0.4 x 0.1
    (-0.16, 0.16)
    """
    r = np.asarray(residuals, dtype=float)
    r = r[np.isfinite(r)]
    if not 0 < level < 1 or len(r) == 0:
        raise PerfModelError(f"no band at level {level} from {len(r)} residual(s)",
                             "give a level in (0, 1) and at least one finite residual")
    lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2], method=QUANTILE_METHOD)
    return float(lo), float(hi)


# ---- residuals (slow: prices every reference row with each chip left out) ----

def _refit_predictions(df: pd.DataFrame, models: ModelResolver
                       ) -> tuple[pd.Series, dict[str, DeviceSpec]]:
    """Holdout's ``refit`` prediction (seconds) of each latency row (LATENCY_FAMILY, a phase
    of KIND_OF_PHASE; others NaN), and each chip's refitted devices. The same calls as
    ``leave_one_device_out`` (``_refit_model`` on the other chips' rows, ``_priced`` on the
    chip's) without its three other predictions: 5 pricings of the rows, not 12."""
    chips = df["hw"].map(chip_of)
    devices = {h: load_device(h) for h in {*df["hw"].unique(), DEVICE}}
    latency = (df["family"] == LATENCY_FAMILY) & df["phase"].isin(list(KIND_OF_PHASE))
    pred = pd.Series(np.nan, index=df.index)
    refits: dict[str, dict[str, DeviceSpec]] = {}
    for chip in sorted(chips.unique()):
        test = chips == chip
        if (~test).sum() == 0:  # a lone chip: nothing to hold its rows out of (unpriced)
            continue
        refits[chip] = _refit_model(df[~test], devices, models)
        rows = df[test & latency]
        if len(rows):
            pred[rows.index] = _priced(rows, refits[chip], None, models)["predicted_s"]
    train_chip = chip_of(DEVICE)
    if train_chip not in refits and len(df):  # no A100 rows: every row is another chip's
        refits[train_chip] = _refit_model(df, devices, models)
    return pred, refits.get(train_chip, devices)


def _training_rows(device: DeviceSpec, models: ModelResolver) -> pd.DataFrame:
    """The published A100 training runs (validate.training) priced on ``device``: the A100
    with the kernel model's fitted figures refitted on the other chips' rows."""
    system, recs = load_system(SYSTEM), []
    for c in load_cases():
        pred = predict_step(c.graph(models), c.job, c.plan, system, device)
        # a throughput row's step time is inverse to its tokens/s: the same log ratio
        r = (np.log(c.published / pred.step_s) if c.metric == "step_s" else
             np.log(pred.tokens_per_s / c.plan.devices / c.published))
        recs.append((c.row_id, "train", "train", DEVICE, chip_of(DEVICE), "", c.label,
                     pred.step_s * np.exp(r), pred.step_s, r))
    return pd.DataFrame(recs, columns=list(RESIDUAL_COLUMNS))


def holdout_residuals(models: ModelResolver, measurements: pd.DataFrame | None = None, *,
                      training: bool = True) -> pd.DataFrame:
    """One row per priced latency (RESIDUAL_COLUMNS): its kind, chip, measured and
    held-out predicted seconds and r = ln(measured / predicted).

    ``measurements`` (default: every shipped reference row) are priced as
    ``holdout.leave_one_device_out`` prices its ``refit`` column: each chip's rows with the
    kernel model's fitted figures refitted on every OTHER chip's rows (GEMM, STREAM and
    inference rows alike). The inference rows are kept (kind by phase, KIND_OF_PHASE).
    With ``training`` the published training runs are added (kind ``train``), on the A100
    refitted without the A100's rows. Minutes: the rows are priced once per chip.
    """
    df = (load_reference("all") if measurements is None else measurements
          ).reset_index(drop=True)
    pred, refit = _refit_predictions(df, models)
    rows = df[pred.notna()]
    engines = {f: engine_of_row(f) for f in rows["framework"].unique()}
    out = pd.DataFrame({
        "row_id": rows["row_id"], "kind": rows["phase"].map(KIND_OF_PHASE),
        "phase": rows["phase"], "hw": rows["hw"], "chip": rows["hw"].map(chip_of),
        "engine": rows["framework"].map(lambda f: getattr(engines[f], "name", "")),
        "model": rows["model"], "time_s": rows["time_s"].astype(float),
        "predicted_s": pred[rows.index].astype(float)})
    out["residual"] = np.log(out["time_s"] / out["predicted_s"])
    out = out[np.isfinite(out["residual"])]
    if training:
        out = pd.concat([out, _training_rows(refit[DEVICE], models)], ignore_index=True)
    return out.reset_index(drop=True)[list(RESIDUAL_COLUMNS)]


# ---- the band table and its coverage (fast: from the residual table) ----

def _class_of(residuals: pd.DataFrame, min_rows: int) -> dict[str, str]:
    """The residual class of each kind: its own rows, or the pooled class under min_rows."""
    n = residuals["kind"].value_counts()
    kinds = [k for k in KINDS if k == POOLED or n.get(k, 0) > 0]
    return {k: k if k == POOLED or n[k] >= min_rows else POOLED for k in kinds}


def _pool(residuals: pd.DataFrame, cls: str) -> pd.DataFrame:
    return residuals if cls == POOLED else residuals[residuals["kind"] == cls]


def _note(kind: str, cls: str, pool: pd.DataFrame, n_kind: int, min_rows: int) -> str:
    if cls != kind:
        return (f"{n_kind} rows of its own (< {min_rows}): the pooled class '{cls}'; "
                + SOURCE)
    if pool["chip"].nunique() == 1:
        return (f"one chip only ({pool['chip'].iloc[0]}): not out of sample across "
                "devices; " + SOURCE)
    return SOURCE


def band_quantiles(residuals: pd.DataFrame, levels: Sequence[float] = LEVELS,
                   min_rows: int = MIN_ROWS) -> pd.DataFrame:
    """The band table (BAND_COLUMNS): per kind and level, the quantiles of its class's
    residuals, the class, its rows and chips; phase ANY_PHASE (every phase of the kind)."""
    recs = []
    n = residuals["kind"].value_counts()
    for kind, cls in _class_of(residuals, min_rows).items():
        pool = _pool(residuals, cls)
        note = _note(kind, cls, pool, int(n.get(kind, len(residuals))), min_rows)
        for level in levels:
            lo, hi = residual_quantiles(pool["residual"], level)
            recs.append((kind, ANY_PHASE, float(level), lo, hi, cls, len(pool),
                         " ".join(sorted(pool["chip"].unique())), note))
    return pd.DataFrame(recs, columns=list(BAND_COLUMNS))


def _covered(r: pd.Series, lo: float, hi: float) -> int:
    return int(((r >= lo) & (r <= hi)).sum())


def _coverage_rows(kind: str, cls: str, level: float, rows: pd.DataFrame,
                   pool: pd.DataFrame) -> list[tuple]:
    """Out of sample: each group's rows (chip; engine where the class has one chip) against
    the quantiles of the class's OTHER groups; then in sample, against all of them."""
    by = "chip" if pool["chip"].nunique() > 1 else "engine"
    scheme = f"leave_one_{'device' if by == 'chip' else 'engine'}_out"
    out, total = [], 0
    for g, part in rows.groupby(by, sort=True):
        others = pool[pool[by] != g]["residual"]
        if len(others) == 0:
            continue
        lo, hi = residual_quantiles(others, level)
        c = _covered(part["residual"], lo, hi)
        total += c
        out.append((kind, cls, level, scheme, g, len(part), c, c / len(part), lo, hi))
    n_out = sum(o[5] for o in out)
    if n_out:
        out.append((kind, cls, level, scheme, POOLED, n_out, total, total / n_out,
                    np.nan, np.nan))
    lo, hi = residual_quantiles(pool["residual"], level)
    c = _covered(rows["residual"], lo, hi)
    out.append((kind, cls, level, "in_sample", POOLED, len(rows), c, c / len(rows), lo, hi))
    return out


def coverage(residuals: pd.DataFrame | None = None, levels: Sequence[float] = LEVELS,
             min_rows: int = MIN_ROWS) -> pd.DataFrame:
    """How often the measured latency falls inside the band (COVERAGE_COLUMNS), per kind and
    level. Scheme ``leave_one_device_out`` (nested): the rows of each chip against quantiles
    from the OTHER chips' residuals of the class only, so the figure is out of sample; per
    chip, then pooled (``held_out`` = all). A class measured on one chip (``infer``) is
    checked leaving each engine out instead (``leave_one_engine_out``). Scheme
    ``in_sample``: against the shipped quantiles (all rows; near ``level`` by
    construction). ``residuals`` default to the shipped ones (``residual_table``)."""
    res = residual_table() if residuals is None else residuals
    recs = []
    for kind, cls in _class_of(res, min_rows).items():
        rows = res if kind == POOLED else res[res["kind"] == kind]
        for level in levels:
            recs += _coverage_rows(kind, cls, float(level), rows, _pool(res, cls))
    return pd.DataFrame(recs, columns=list(COVERAGE_COLUMNS))


def write_intervals(models: ModelResolver, out_dir: str | Path | None = None,
                    measurements: pd.DataFrame | None = None) -> list[Path]:
    """Price the reference rows (``holdout_residuals``), then write FILES to ``out_dir``
    (default: the shipped reference folder). Returns the paths written."""
    folder = Path(out_dir) if out_dir is not None else reference_dir()
    paths = [folder / FILES[key] for key in ("residuals", "bands", "coverage")]
    holdout_residuals(models, measurements).to_csv(paths[0], index=False,
                                                   float_format="%.10g")
    res = residual_table(folder)  # the tables from the residuals as written (10 digits)
    band_quantiles(res).to_csv(paths[1], index=False, float_format="%.10g")
    coverage(res).to_csv(paths[2], index=False, float_format="%.10g")
    return paths


# ---- run time: the shipped table, read once ----

def _read(key: str, directory: Path | None) -> pd.DataFrame:
    path = (directory or reference_dir()) / FILES[key]
    if not path.is_file():
        raise MeasurementError(f"shipped interval file missing: {path}",
                               "reinstall perfmodel, or regenerate it with "
                               "perfmodel.validate.intervals.write_intervals")
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    text = [c for c in df.columns if c in TEXT_COLUMNS]
    df[text] = df[text].fillna("").astype(str)  # an empty engine is '', not NaN
    return df


@functools.lru_cache(maxsize=4)
def _bands(directory: Path | None) -> pd.DataFrame:
    return _read("bands", directory)


def band_table(directory: Path | None = None) -> pd.DataFrame:
    """The shipped band table (BAND_COLUMNS; ``measurements/reference/intervals.csv``): per
    kind, phase (``any``: every phase) and level, the log-residual quantiles q_lo, q_hi,
    the residual class they come from, its rows and chips, and how they were computed."""
    return _bands(directory).copy()


def residual_table(directory: Path | None = None) -> pd.DataFrame:
    """The shipped per-row residuals (RESIDUAL_COLUMNS; ``interval_residuals.csv``)."""
    return _read("residuals", directory)


def _lookup(table: pd.DataFrame, kind: str, level: float) -> dict[str, tuple[float, float]]:
    """{phase: (q_lo, q_hi)} of one kind at one level, checked against what ships."""
    kinds = sorted(table["kind"].unique())
    if kind not in kinds:
        raise PerfModelError(f"no latency band for kind {kind!r}",
                             f"choose one of: {', '.join(kinds)}")
    rows = table[table["kind"] == kind]
    hit = rows[np.isclose(rows["level"].to_numpy(float), level)]
    if hit.empty:
        shipped = ", ".join(f"{v:g}" for v in sorted(rows["level"].unique()))
        raise PerfModelError(f"no latency band at level {level:g}",
                             f"shipped levels: {shipped}")
    return {str(p): (float(lo), float(hi))
            for p, lo, hi in zip(hit["phase"], hit["q_lo"], hit["q_hi"], strict=True)}


def latency_band(latency_s: Any, kind: str = "roofline", phase: Any = None,
                 level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The prediction interval (lo, hi), in seconds, around predicted latencies, from the
    shipped band table (``band_of(band_table(), ...)``).

    Parameters
    ----------
    latency_s : float or array of float
        Predicted latencies, seconds (>= 0; NaN gives NaN).
    kind : str
        ``roofline`` (one forward pass), ``infer`` (an LLM generation through its engine),
        ``train`` (a training step; the pooled band), or ``all`` (pooled); module
        docstring.
    phase : str, array of str, or None
        A phase of PHASES per latency (broadcast with ``latency_s``); None, '' or ``any``
        for any.
        No shipped class is split by phase: every phase gets its kind's band.
    level : float
        Nominal coverage: 0.5, 0.8 (default) or 0.9 ship.

    Returns
    -------
    lo, hi : numpy.ndarray
        latency x exp(q_lo), latency x exp(q_hi), of the broadcast shape of ``latency_s``
        and ``phase``; q from ``band_table()``.

    Examples
    --------
    >>> lo, hi = latency_band([0.01, 0.02], kind="roofline")
    >>> bool((lo < [0.01, 0.02]).all() and (hi > [0.01, 0.02]).all())
    True
    """
    return band_of(_bands(None), latency_s, kind, phase, level)


def band_of(table: pd.DataFrame, latency_s: Any, kind: str = "roofline", phase: Any = None,
            level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """``latency_band`` with the quantiles of ``table`` (BAND_COLUMNS, e.g. from
    ``band_quantiles``) in place of the shipped ones."""
    q = _lookup(table, kind, float(level))
    t = np.asarray(latency_s, dtype=float)
    if (t < 0).any():
        raise PerfModelError("a latency band needs latencies >= 0 seconds",
                             f"got {float(t[t < 0].flat[0])}")
    ph = np.asarray(ANY_PHASE if phase is None else phase, dtype=object)
    ph = np.where(pd.isna(ph), ANY_PHASE, ph).astype(str) if ph.ndim else np.asarray(str(ph))
    ph = np.where(ph == "", ANY_PHASE, ph)
    bad = sorted(set(ph.ravel()) - {ANY_PHASE, *PHASES})
    if bad:
        raise PerfModelError(f"unknown phase {bad[0]!r} for a latency band",
                             f"choose one of: {', '.join(PHASES)} (or None: any)")
    t, ph = np.broadcast_arrays(t, ph)
    missing = sorted(set(ph.ravel()) - set(q)) if ANY_PHASE not in q else []
    if missing:
        raise PerfModelError(f"no {kind} band for phase {missing[0]!r} at level {level:g}",
                             f"phases with a band: {', '.join(sorted(q))}")
    q_lo = np.vectorize(lambda p: q.get(p, q[ANY_PHASE])[0], otypes=[float])(ph)
    q_hi = np.vectorize(lambda p: q.get(p, q[ANY_PHASE])[1], otypes=[float])(ph)
    return np.asarray(t * np.exp(q_lo)), np.asarray(t * np.exp(q_hi))  # 0-d for a scalar
