"""Run a sweep: every point of a Grid priced by the vectorized roofline, on this process, a
local process pool or a Dask cluster, with a progress bar and resumable parts.

One row per point: the grid's axes (model, strategy, hw, device, phase, batch, seq, dtype and
one column per override path), the roofline summary (perfmodel.study.vectorized.
POINT_COLUMNS: latency, throughput, utilization, bound, energy, memory and the capacity
verdict ``fits``), the latency's prediction interval (``latency_lo``/``latency_hi``, from
the held-out validation residuals where perfmodel.validate.intervals ships them) and
``error``: why a point cannot be priced (a dtype the device lacks, an override path its spec
does not have), its figures left empty. Nothing is ever reported for a point that was not
priced, and a point that does not fit in memory says so in ``fits``.

With an output file, each finished task is written at once to ``<out>.parts/`` (with the
grid's digest); a run stopped half way and started again with the same grid and output
computes only the tasks that have no part yet, and the parts are removed once the output is
written.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.op_table import OpTable
from perfmodel.compress.registry import parse_strategy
from perfmodel.errors import PerfModelError, UnknownNameError, did_you_mean
from perfmodel.files import check_writable
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.overrides import numeric_fields
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec, load_system
from perfmodel.progress import track
from perfmodel.study.grid import Grid, Task, axis_names, tasks_of
from perfmodel.study.plans import price_plans
from perfmodel.study.vectorized import (
    POINT_COLUMNS,
    Effect,
    Overrides,
    effect_of,
    price_overrides,
)
from perfmodel.validate.intervals import latency_band
from perfmodel.workload.build import build_workload, model_context

__all__ = ["run_sweep", "run_task", "OUTPUT_SUFFIXES", "WORKPOINTS_PER_TASK"]

OUTPUT_SUFFIXES = (".csv", ".parquet")
_TEXT = ("model", "strategy", "hw", "device", "phase", "dtype", "throughput_unit", "bound",
         "fits", "error", "seq")  # columns kept as Python objects while a task is built
WORKPOINTS_PER_TASK = 16  # workloads per task: the unit of parallel work and of resuming

ModelResolver = Callable[[Any], ModelGraph]
DeviceResolver = Callable[[Any], DeviceSpec]


def _applies(graph: ModelGraph) -> tuple[bool, frozenset[str]]:
    """(the model takes a sequence length, the phases it runs)."""
    phases = {"inference", "train"} | ({"prefill", "decode"} if graph.meta.get("is_llm")
                                       else set())
    return model_context(graph) is not None, frozenset(phases)


def _extend(table: dict[str, list[Any]], n: int, ident: Mapping[str, Any],
            values: Mapping[str, Any] | None, error: str | None) -> None:
    """Append ``n`` rows to ``table`` (column -> list of chunks): the identifying columns,
    the point columns (empty on an error), the error."""
    for k, v in ident.items():
        table.setdefault(k, []).append(v if isinstance(v, list) else [v] * n)
    for col in POINT_COLUMNS:
        table.setdefault(col, []).append(values[col] if values is not None else [None] * n)
    table.setdefault("error", []).append([error] * n)


class _Once(logging.Filter):
    """Drops the workload builder's per-point warning that a seq is past the model's
    trained context: a sweep says it once for the whole grid."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "trained context" not in record.getMessage()


def _label(given: Any, name: str) -> str:
    """How a row names its model or device: a shipped name as the user gave it; a file or
    a record by the name it declares (a path would be a column of long temporary names)."""
    if isinstance(given, str) and not given.endswith((".yaml", ".yml", ".json", ".onnx")) \
            and "/" not in given and "\\" not in given:
        return given
    return name


def run_task(task: Task, graph: ModelGraph, devices: Mapping[Any, DeviceSpec],
             effects: Mapping[Any, Mapping[str, Effect] | str], grid: Grid,
             resolve_model: ModelResolver) -> pd.DataFrame:
    """Every point of one task: its model's ``graph`` (compressed here by the task's
    strategy), each of its workloads on every device under every override setting.
    ``effects[hw]``: each override path's Effect on that device, or why it has none."""
    settings = grid.settings
    over = {p: [s[p] for s in settings] for p in grid.override}
    columns = Overrides.of(settings)
    label = _label(task.model, graph.name)
    if task.strategy is not None:
        graph = parse_strategy(task.strategy, resolve_model=resolve_model)(graph)
    table: dict[str, list[Any]] = {}
    n = len(settings)
    quiet = _Once()  # the seq-past-context warning was given once, by _resolve
    logging.getLogger("perfmodel.workload.build").addFilter(quiet)
    try:
        for wp in task.workpoints:
            workloads: dict[str, Any] = {}  # by dtype: one build for every device sharing it
            for hw, dev in devices.items():
                dtype = wp.dtype or dev.default_dtype
                ident = {"model": label, **({"strategy": task.strategy}
                                            if grid.strategy != (None,) else {}),
                         "hw": _label(hw, dev.name),
                         "device": dev.name, "phase": wp.phase, "batch": wp.batch, "seq": wp.seq,
                         "dtype": dtype, **over}
                eff = effects[hw]
                if isinstance(eff, str):
                    _extend(table, n, ident, None, eff)
                    continue
                try:
                    if dtype not in workloads:
                        wl = build_workload(graph, batch=wp.batch, seq=wp.seq, dtype=dtype,
                                            phase=wp.phase)
                        workloads[dtype] = (wl, OpTable.of(wl.table), {})
                    wl, ops, footprints = workloads[dtype]
                    values = price_overrides(wl, dev, columns, ops=ops, fusion=grid.fusion,
                                             dtype_fallback=True, effects=eff,
                                             footprints=footprints)
                    _extend(table, n, ident, values, None)
                except PerfModelError as exc:
                    _extend(table, n, ident, None, str(exc))
    finally:
        logging.getLogger("perfmodel.workload.build").removeFilter(quiet)
    frame = pd.DataFrame({k: np.concatenate([np.asarray(c, dtype=object) if k in _TEXT
                                             else np.asarray(c) for c in v])
                          for k, v in table.items()})
    frame.insert(0, "task", task.index)
    return _typed(frame, grid)


def _typed(frame: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """One set of column types, whether a task was just computed or read back from its part
    file: numbers as floats, text as objects, ``fits`` as True / False / None."""
    for col in ("batch", "task"):
        frame[col] = frame[col].astype("int64")
    floats = ["seq", *grid.override, *(c for c in POINT_COLUMNS if c not in
                                      ("throughput_unit", "bound", "fits"))]
    for col in floats:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("throughput_unit", "bound", "error", "dtype", "model", "hw", "device",
                "phase", *(("strategy",) if "strategy" in frame else ())):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    frame["fits"] = [None if (v is None or (isinstance(v, float) and np.isnan(v)))
                     else v in (True, "True", "true") for v in frame["fits"]]
    frame["fits"] = frame["fits"].astype(object)
    return frame


@dataclass(frozen=True)
class _Resolved:
    """The grid's names as records, resolved once: graphs by model, devices by hw, each
    override path's effect per device (or why the device has none), phases per model."""

    graphs: Mapping[Any, ModelGraph]
    devices: Mapping[Any, DeviceSpec]
    effects: Mapping[Any, Mapping[str, Effect] | str]
    applies: Mapping[Any, tuple[bool, frozenset[str]]]


def _resolve(grid: Grid, resolve_model: ModelResolver, resolve_device: DeviceResolver
             ) -> _Resolved:
    """Resolve every name once (an unknown model, device or strategy fails the sweep at
    once), check each override path exists on some device, and find each model's phases."""
    graphs = {m: resolve_model(m) for m in grid.models}
    devices = {hw: resolve_device(hw) for hw in grid.hw}
    fields = [numeric_fields(d) for d in devices.values()] if grid.override else []
    for path in grid.override:
        if not any(path in f for f in fields):
            raise UnknownNameError(f"override path {path!r} is in none of the devices' specs",
                                   did_you_mean(path, sorted(set().union(*fields))))
    effects: dict[Any, Mapping[str, Effect] | str] = {}
    for hw, dev in devices.items():
        try:
            effects[hw] = {p: effect_of(dev, p) for p in grid.override}
        except PerfModelError as exc:  # a path this device's spec does not have
            effects[hw] = str(exc)
    for s in grid.strategy:
        if s is not None:
            parse_strategy(s, resolve_model=resolve_model)  # an unknown strategy fails now
    applies = {m: _applies(g) for m, g in graphs.items()}
    longest = max((q for q in grid.seq if q is not None), default=0)
    contexts = {m: model_context(g) or 0 for m, g in graphs.items()}
    past = [f"{m} ({contexts[m]:,} tokens)" for m in graphs
            if applies[m][0] and 0 < contexts[m] < longest]
    if past:
        warnings.warn(f"seq up to {longest:,} is past the trained context of "
                      + ", ".join(past) + ": priced as asked", stacklevel=4)
    dropped = [(m, p) for m in grid.models for p in grid.phase if p not in applies[m][1]]
    if dropped:
        warnings.warn("left out of the grid, the phase does not apply to the model: "
                      + ", ".join(f"{m} {p}" for m, p in dropped), stacklevel=4)
    return _Resolved(graphs, devices, effects, applies)


def _execute(pending: Sequence[Task], fn: Callable[[Task], pd.DataFrame], workers: int,
             dask: Any) -> Iterator[pd.DataFrame]:
    """Each pending task's table as it finishes: here, in a process pool, or on Dask."""
    if dask is not None:
        yield from _on_dask(pending, fn, dask)
    elif workers <= 1 or len(pending) <= 1:
        for t in pending:
            yield fn(t)
    else:
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(fn, t) for t in pending]
            try:
                for f in concurrent.futures.as_completed(futures):
                    yield f.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise


def _on_dask(pending: Sequence[Task], fn: Callable[[Task], pd.DataFrame], dask: Any
             ) -> Iterator[pd.DataFrame]:
    """Tasks on a Dask cluster: ``dask`` is a distributed.Client, a scheduler address
    (tcp://host:8786) or ``local`` (a LocalCluster on this machine)."""
    try:
        import distributed
    except ImportError:
        raise PerfModelError("a Dask cluster needs the distributed package",
                             'pip install "perfmodel[dask]"') from None
    own = not isinstance(dask, distributed.Client)
    if own:
        try:
            client = (distributed.Client(processes=False, dashboard_address=None)
                      if dask == "local" else distributed.Client(str(dask), timeout="10s"))
        except OSError as exc:
            raise PerfModelError(f"cannot reach the Dask scheduler at {dask}: {exc}",
                                 "start one (dask scheduler) or pass --dask local") from None
    else:
        client = dask
    try:
        futures = client.map(fn, list(pending), pure=False)
        for f in distributed.as_completed(futures):
            yield f.result()
    finally:
        if own:
            client.close()


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _open_parts(parts: Path, grid: Grid, force: bool) -> set[int]:
    """The finished tasks in ``parts`` (a previous run of this grid), after checking they
    are this grid's; a fresh folder otherwise."""
    manifest = parts / "grid.json"
    if parts.exists():
        try:
            key = json.loads(manifest.read_text())["grid"]
        except (OSError, ValueError, KeyError, TypeError):
            key = None
        if key != grid.key() and not force:
            raise PerfModelError(f"{parts} holds the parts of another sweep",
                                 "remove it, or pass --force (force=True) to start over")
        if key != grid.key():
            shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"grid": grid.key()}))
    return {int(p.stem.split("-")[1]) for p in parts.glob("task-*.csv")}


def _read_part(path: Path, grid: Grid) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=True)
    return _typed(frame, grid)


def _write(frame: pd.DataFrame, out: Path) -> None:
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)


def _check_out(out: Path, force: bool) -> Path:
    out = check_writable(out, force, OUTPUT_SUFFIXES)
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise PerfModelError("writing Parquet needs the pyarrow package",
                                 'pip install "perfmodel[sweep]", or write .csv') from None
    return out


def _bands(frame: pd.DataFrame) -> pd.DataFrame:
    """latency_lo / latency_hi from the shipped held-out residual quantiles
    (perfmodel.validate.intervals.latency_band; empty where a point has no latency)."""
    lo = np.full(len(frame), np.nan)
    hi = np.full(len(frame), np.nan)
    latency = frame["latency_s"].to_numpy()
    ok = frame["latency_s"].notna().to_numpy()
    train = (frame["phase"] == "train").to_numpy()
    for kind, rows in (("train", ok & train), ("roofline", ok & ~train)):
        if rows.any():
            lo[rows], hi[rows] = latency_band(latency[rows], kind=kind,
                                              phase=frame["phase"].to_numpy()[rows])
    at = frame.columns.get_loc("latency_s") + 1
    frame.insert(at, "latency_lo", lo)
    frame.insert(at + 1, "latency_hi", hi)
    return frame


def run_sweep(grid: Grid, resolve_model: ModelResolver, resolve_device: DeviceResolver, *,
              workers: int = 1, dask: Any = None, out: str | Path | None = None,
              force: bool = False, yes: bool = False,
              on_task: Callable[[Task], None] | None = None,
              resolve_system: Callable[[Any], SystemSpec] = load_system) -> pd.DataFrame:
    """Every point of ``grid`` (see the module docstring), sorted as the grid lists them.

    ``resolve_model`` / ``resolve_device`` turn the grid's names into records, once, here;
    ``resolve_model`` also reaches the workers (for a distillation strategy's student), so
    it must be a module-level function. ``workers`` > 1: a
    local process pool; ``dask``: a distributed.Client, a scheduler address or ``local``.
    ``out`` (.csv or .parquet): write the table there (never over a file unless ``force``),
    keeping finished tasks in ``<out>.parts/`` until then so a stopped run resumes.
    ``yes``: allow a grid of more than LARGE_GRID points. ``on_task``: called with each task
    before it is computed here (tests count what a resumed run recomputes). A grid of
    plans (``Grid.plan``) prices training steps on ``resolve_system``'s systems instead
    (perfmodel.study.plans: each point on its own, here).
    """
    if workers < 1:
        raise PerfModelError(f"workers must be at least 1, got {workers}", "pass workers=2")
    grid.check_size(yes)
    out_path = _check_out(Path(out), force) if out is not None else None
    if grid.plan:  # training steps of plans on systems (study.plans), priced here
        result = price_plans({_label(m, g.name): g for m in grid.models
                              for g in [resolve_model(m)]},
                             {_label(s, sy.name): sy for s in grid.system
                              for sy in [resolve_system(s)]},
                             grid.plan, grid.batch, grid.seq, grid.dtype)
        if out_path is not None:
            _write(result, out_path)
        return result
    r = _resolve(grid, resolve_model, resolve_device)
    tasks = tasks_of(grid, r.applies, WORKPOINTS_PER_TASK)
    if not tasks:
        raise PerfModelError("no point of the grid applies: every phase asked is one the "
                             "models do not run", "use phase inference or train for "
                             "models that are not language models")
    parts = _parts_dir(out_path) if out_path is not None else None
    done = _open_parts(parts, grid, force) if parts is not None else set()
    pending = [t for t in tasks if t.index not in done]
    fn = functools.partial(_counted, on_task=on_task, resolved=r, grid=grid,
                           resolve_model=resolve_model)
    frames = []
    for frame in track(_execute(pending, fn, workers, dask), "sweep", len(pending)):
        if parts is not None:
            frame.to_csv(parts / f"task-{int(frame['task'].iloc[0]):05d}.csv", index=False)
        else:
            frames.append(frame)
    if parts is not None:
        frames = [_read_part(parts / f"task-{t.index:05d}.csv", grid) for t in tasks]
    result = pd.concat(frames, ignore_index=True).sort_values("task", kind="stable")
    result = _bands(result.drop(columns="task").reset_index(drop=True))
    result = result[[*axis_names(grid), *[c for c in result if c not in axis_names(grid)]]]
    if out_path is not None and parts is not None:
        _write(result, out_path)
        shutil.rmtree(parts)
    return result


def _counted(task: Task, *, on_task: Callable[[Task], None] | None, resolved: _Resolved,
             grid: Grid, resolve_model: ModelResolver) -> pd.DataFrame:
    """run_task with the resolved records (and the test's counter)."""
    if on_task is not None:
        on_task(task)
    return run_task(task, resolved.graphs[task.model], resolved.devices, resolved.effects,
                    grid, resolve_model)
