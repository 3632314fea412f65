"""``pm.review``: a design review of a candidate chip against baselines over a workload
suite, from names (the API edge, beside ``study_api.py``: it builds models from the zoo).
``write_review`` writes it as one self-contained HTML file (perfmodel.report.review).

A suite file (the shipped one: ``workloads/review-suite.yaml``) is a YAML list, one entry
per run priced on every device:

.. code-block:: yaml

    - name: llama-3-8b-decode-b32   # optional (default: model-phase-b<batch>), unique
      model: llama-3-8b             # required: a zoo name, or a model file (a relative
                                    #   path is read from the suite file's folder)
      phase: decode                 # inference (default), prefill, decode or train
      batch: 32                     # a positive integer (default 1)
      seq: 4096                     # optional, positive: sequence (decode: KV length)
      dtype: fp16                   # optional: default each device's own

Every problem in the file (an unknown key, with a did-you-mean; a missing model; a batch or
seq that is not a positive integer; an unknown phase or dtype; a name used twice) is listed
in one SpecError naming the file.

    >>> import perfmodel as pm
    >>> data = pm.review("h100", baseline=["a100"])
    >>> row = data.summary.set_index("workload").loc["llama-3-70b-decode-b1"]
    >>> row["candidate_status"]        # 141 GB of weights on an 80 GB device
    'does not fit'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.roofline import Prediction, predict
from perfmodel.catalog import device_figures
from perfmodel.errors import (
    PerfModelError,
    SpecError,
    UnknownNameError,
    UnsupportedOpError,
    did_you_mean,
    raise_problems,
)
from perfmodel.files import check_writable, data_dir, read_yaml
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.load import load_device
from perfmodel.hardware.overrides import numeric_fields
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.report.review import (
    DOES_NOT_FIT,
    OK,
    UNSUPPORTED,
    ReviewData,
    render_review,
)
from perfmodel.study.explore import Exploration, exploration
from perfmodel.study_api import sensitivity
from perfmodel.units import DTYPE_ALIASES, DTYPES, format_si
from perfmodel.workload.build import build_workload, check_context
from perfmodel.workload.job import PHASES
from perfmodel.zoo.registry import load_model, trace_options

__all__ = ["review", "write_review", "load_suite", "suite_graphs", "default_suite", "SUITE_KEYS"]

SUITE_KEYS = ("name", "model", "phase", "batch", "seq", "dtype")
SUITE_FILE = "review-suite.yaml"
SUITE_HINT = "see docs/review.md for the suite format"
HTML_SUFFIXES = (".html", ".htm")
TIME_COLUMNS = ("latency_s", "throughput_per_s", "energy_j", "energy_per_item_j",
                "compute_bound_s", "memory_bound_s", "overhead_bound_s",
                "achieved_flops_per_s")  # NaN where the run does not fit: it cannot happen


def default_suite() -> Path:
    """The shipped suite, ``workloads/review-suite.yaml``."""
    return data_dir("workloads") / SUITE_FILE


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _check_entry(i: int, e: Any) -> tuple[dict[str, Any], list[str]]:
    """One suite entry with its defaults, and its problems."""
    where = f"workload {i + 1}"
    if not isinstance(e, Mapping):
        return {}, [f"{where}: a mapping of {', '.join(SUITE_KEYS)} expected, got "
                    f"{type(e).__name__}"]
    if isinstance(e.get("name"), str) and e["name"].strip():
        where += f" ({e['name']})"
    problems = [f"{where}: unknown key {k!r} ({did_you_mean(str(k), SUITE_KEYS)})"
                for k in e if k not in SUITE_KEYS]
    model, phase = e.get("model"), e.get("phase", "inference")
    if not isinstance(model, str) or not model.strip():
        problems.append(f"{where}: model missing (a zoo name or a model file)")
    if phase not in PHASES:
        problems.append(f"{where}: phase {phase!r} is not one of {', '.join(PHASES)}")
    for key, optional in (("batch", False), ("seq", True)):
        v = e.get(key, None if optional else 1)
        if not (v is None and optional) and not _positive_int(v):
            problems.append(f"{where}: {key} must be a positive integer, got {v!r}")
    dt = e.get("dtype")
    if dt is not None and str(dt).lower() not in {*DTYPES, *DTYPE_ALIASES}:
        problems.append(f"{where}: unknown dtype {dt!r} ({did_you_mean(str(dt), DTYPES)})")
    name = e.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        problems.append(f"{where}: name must be a non-empty string, got {name!r}")
    if problems or not isinstance(model, str):
        return {}, problems
    batch = e.get("batch", 1)
    return {"name": (name or f"{model}-{phase}-b{batch}").strip(), "model": model.strip(),
            "phase": phase, "batch": batch, "seq": e.get("seq"),
            "dtype": None if dt is None else str(dt).lower()}, []


def load_suite(path: str | Path | None = None) -> pd.DataFrame:
    """A workload suite file (default: the shipped one) as a table: name, model, phase,
    batch, seq, dtype (None: each device's default) and source (what ``load_model`` is
    given: a relative model file resolved against the suite's folder)."""
    p = Path(path) if path is not None else default_suite()
    raw = read_yaml(p)  # a missing, non-UTF-8 or malformed file is one SpecError
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{p}: a workload suite is a non-empty YAML list of workloads, got "
                        f"{'nothing' if raw is None else type(raw).__name__}", SUITE_HINT)
    rows, problems = [], []
    for i, entry in enumerate(raw):
        row, found = _check_entry(i, entry)
        problems += found
        if row:
            rows.append(row)
    names = [r["name"] for r in rows]
    problems += [f"workload name {n!r} used {names.count(n)} times (names must be unique)"
                 for n in dict.fromkeys(names) if names.count(n) > 1]
    raise_problems(str(p), problems, SUITE_HINT, kind="workload suite")
    for r in rows:
        local = p.parent / r["model"]
        r["source"] = str(local) if not Path(r["model"]).is_absolute() and local.exists() \
            else r["model"]
    return pd.DataFrame(rows, columns=[*SUITE_KEYS, "source"], dtype=object).astype(
        {"batch": int})  # seq and dtype keep None: "not given"


def _in_workload(name: str, exc: PerfModelError) -> PerfModelError:
    """The same error, saying which workload of the suite it came from."""
    return type(exc)(f"workload {name!r}: {exc.message}", exc.hint, exc.key_path)


def suite_graphs(suite: pd.DataFrame) -> dict[str, ModelGraph]:
    """Each workload's graph by name (a model used twice is built once; a seq past a
    model's trained context refused), from ``load_suite``'s table."""
    built: dict[tuple, ModelGraph] = {}
    out = {}
    for r in suite.itertuples():
        opts = trace_options(r.source, r.batch, r.seq)
        key = (r.source, *sorted(opts.items()))
        try:
            if key not in built:
                built[key] = load_model(r.source, **opts)
            check_context(built[key], r.seq)
        except PerfModelError as exc:
            raise _in_workload(r.name, exc) from None
        out[r.name] = built[key]
    return out


def _devices(hw: str | Path | DeviceSpec, baseline: Iterable[str | Path | DeviceSpec]
             ) -> list[DeviceSpec]:
    """The candidate, then the baselines; two of the same name are one error."""
    devices = [d if isinstance(d, DeviceSpec) else load_device(d) for d in [hw, *baseline]]
    names = [d.name for d in devices]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PerfModelError(f"device {', '.join(map(repr, twice))} given twice (candidate "
                             "and baselines must differ)",
                             "drop the repeat, or give a candidate spec its own name:")
    return devices


def _run(entry: Any, graph: ModelGraph, device: DeviceSpec
         ) -> tuple[dict[str, Any], Prediction | None]:
    """One workload on one device: the prediction's row (time columns NaN where it does
    not fit), and the prediction (None where the device cannot run its dtype)."""
    dt = entry.dtype or device.default_dtype
    row = {"device": device.name, "workload": entry.name, "model": entry.model,
           "phase": entry.phase, "batch": entry.batch, "seq": entry.seq, "dtype": dt}
    try:
        device.check_dtype(dt)
        wl = build_workload(graph, batch=entry.batch, seq=entry.seq, dtype=dt,
                            phase=entry.phase)
        pred = predict(wl, device)
    except UnsupportedOpError as exc:
        return {**row, "status": UNSUPPORTED, "note": exc.one_line()}, None
    except PerfModelError as exc:
        raise _in_workload(entry.name, exc) from None
    s = pred.summary
    items = s["throughput_per_s"] * s["latency_s"]
    row |= {k: s[k] for k in ("latency_s", "throughput_per_s", "throughput_unit", "bound",
                              "compute_bound_s", "memory_bound_s", "overhead_bound_s",
                              "memory_bytes", "capacity_bytes", "fits", "flops",
                              "bytes_moved", "achieved_flops_per_s", "peak_flops_per_s")}
    row |= {"status": OK, "note": "",
            "energy_j": np.nan if s["energy_j"] is None else s["energy_j"],
            "energy_per_item_j": s["energy_j"] / items if s["energy_j"] and items else np.nan,
            "intensity": s["flops"] / s["bytes_moved"] if s["bytes_moved"] else np.nan,
            "fallbacks": "; ".join(pred.assumptions["fallbacks"]),
            "unsupported_ops": ", ".join(s["unsupported_ops"])}
    if s["fits"] is False:
        row |= {"status": DOES_NOT_FIT, **dict.fromkeys(TIME_COLUMNS, np.nan),
                "note": f"needs {format_si(s['memory_bytes'], 'B')} of memory; "
                        f"{device.name} has {format_si(s['capacity_bytes'], 'B')}"}
    return row, pred


def _spec_rows(device: DeviceSpec) -> list[dict[str, Any]]:
    """The spec's figures with their sources; memory levels named as the overrides name
    them (the main memory ``memory.<field>``, another level ``memory.<name>.<field>``)."""
    levels = device.raw.get("memory") or []
    rows = []
    for r in device_figures(device).itertuples():
        figure = str(r.figure)
        if figure.startswith("memory["):
            i, rest = int(figure[7:figure.index("]")]), figure[figure.index("]") + 2:]
            level = levels[i] if i < len(levels) and isinstance(levels[i], Mapping) else {}
            figure = (f"memory.{rest}" if level.get("role") == "main" else
                      f"memory.{level.get('name', i)}.{rest}")
        if figure == "year" or isinstance(r.value, bool):
            continue
        rows.append({"device": device.name, "figure": figure, "value": r.value,
                     "source_key": str(r.source_key or ""), "source": str(r.source or "")})
    return rows


def _device_row(device: DeviceSpec, role: str) -> dict[str, Any]:
    e = device.efficiency
    return {"device": device.name, "display_name": device.display_name, "role": role,
            "spec": device.path, "default_dtype": device.default_dtype,
            "memory_bandwidth_Bps": device.memory_bandwidth, "compute_efficiency": e.compute,
            "memory_efficiency": e.memory, "capacity_bytes": device.memory_capacity,
            "tdp_w": device.tdp_w}


def _assumption_row(device: DeviceSpec, pred: Prediction | None) -> dict[str, Any]:
    a = pred.assumptions if pred is not None else {}
    keys = ("method", "memory_model", "fusion", "compute_efficiency",
            "compute_efficiency_source", "memory_efficiency", "memory_efficiency_source",
            "launch_overhead_s", "launch_overhead_source", "energy")
    return {"device": device.name, **{k: a.get(k) for k in keys}}


def _summary(predictions: pd.DataFrame, suite: pd.DataFrame, candidate: str) -> pd.DataFrame:
    """Per workload: the candidate's latency, the fastest baseline that runs it, and the
    speedup (that baseline's latency / the candidate's), NaN where either does not run."""
    rows = []
    for w in suite["name"]:
        p = predictions[predictions["workload"] == w]
        c = p[p["device"] == candidate].iloc[0]
        ran = p[(p["device"] != candidate) & (p["status"] == OK)]
        row = {"workload": w, "candidate_status": c["status"],
               "candidate_latency_s": c["latency_s"], "best_baseline": None,
               "best_baseline_latency_s": np.nan, "speedup": np.nan}
        if len(ran):
            best = ran.loc[ran["latency_s"].idxmin()]
            row |= {"best_baseline": best["device"], "best_baseline_latency_s": best["latency_s"]}
            if c["status"] == OK:
                row["speedup"] = best["latency_s"] / c["latency_s"]
        rows.append(row)
    return pd.DataFrame(rows)


def _sensitivity(candidate: DeviceSpec, suite: pd.DataFrame, predictions: pd.DataFrame,
                 chosen: str | None) -> tuple[pd.DataFrame, str]:
    """pm.sensitivity for the candidate on the chosen workload, else on the one it runs
    longest (a batch-1 CNN is launch-overhead-bound: nearly no spec figure moves it)."""
    names = list(suite["name"])
    if chosen is not None and chosen not in names:
        raise UnknownNameError(f"no workload {chosen!r} in the suite",
                               did_you_mean(chosen, names))
    mine = predictions[(predictions["device"] == candidate.name)
                       & (predictions["status"] == OK)]
    longest = mine.sort_values("latency_s", ascending=False, kind="stable")["workload"]
    name = chosen or next(iter(longest), None)
    if name is None:
        return pd.DataFrame(columns=["field", "value", "latency_s", "latency_down_s",
                                     "latency_up_s", "elasticity"]), ""
    e = suite.set_index("name").loc[name]
    table = sensitivity(e["source"], candidate, phase=e["phase"], batch=int(e["batch"]),
                        seq=None if pd.isna(e["seq"]) else int(e["seq"]),
                        dtype=e["dtype"] or None)
    return table, name


DESIGN_POINTS = 5  # values per varied figure in the review's design-space study


def _design(cand: DeviceSpec, suite: pd.DataFrame, graphs: Mapping[str, ModelGraph]
            ) -> tuple[Exploration | None, str]:
    """The candidate's design space (perfmodel.study.explore): main-memory bandwidth and
    the tensor peak of its default dtype each from half to twice the spec, over the suite's
    workloads it runs; cost = the sum of the two relative to the spec. None, and why, where
    the spec lacks a figure or the candidate runs no workload."""
    fields = numeric_fields(cand)
    dt = cand.default_dtype
    paths = [p for p in ("memory.bandwidth_GBps", f"compute.tensor_TFLOPS.{dt}")
             if fields.get(p)]
    if len(paths) < 2:
        return None, (f"no design-space study: {cand.name}'s spec gives no main-memory "
                      f"bandwidth or no {dt} tensor peak to vary")
    named = {}
    for e in suite.itertuples():
        dtype = e.dtype or dt
        if dtype not in cand.dtypes:
            continue
        named[e.name] = build_workload(graphs[e.name], batch=e.batch, seq=e.seq, dtype=dtype,
                                       phase=e.phase)
    if not named:
        return None, f"no design-space study: {cand.name} runs none of the suite's dtypes"
    vary = {p: (fields[p] / 2, fields[p] * 2) for p in paths}
    cost = " + ".join(f"{p} / {fields[p]:g}" for p in paths)
    return exploration(named, cand, vary, cost=cost, points_per_axis=DESIGN_POINTS), ""


def review(hw: str | Path | DeviceSpec, baseline: Sequence[str | Path | DeviceSpec] = (),
           workloads: str | Path | None = None, out: str | Path | None = None, *,
           sensitivity_workload: str | None = None, title: str | None = None,
           overwrite: bool = False, command: str = "") -> ReviewData:
    """The design review of ``hw`` (a name, spec file or DeviceSpec) against ``baseline``
    over the suite ``workloads`` (default: the shipped one): spec table with sources, one
    roofline prediction per device and workload, the summary, the assumptions and the
    candidate's sensitivity on ``sensitivity_workload`` (default: the workload it runs
    longest). With ``out``, also written there as HTML (``write_review``; an existing file is
    refused unless ``overwrite``, before any work)."""
    if out is not None:
        check_writable(out, overwrite, HTML_SUFFIXES)
    suite = load_suite(workloads)
    devices = _devices(hw, baseline)
    graphs = suite_graphs(suite)
    rows, assumptions = [], []
    for device in devices:
        first: Prediction | None = None
        for entry in suite.itertuples():
            row, pred = _run(entry, graphs[entry.name], device)
            rows.append(row)
            first = pred if first is None else first
        assumptions.append(_assumption_row(device, first))
    predictions = pd.DataFrame(rows)
    for col in ("fits", "memory_bytes", "capacity_bytes", *TIME_COLUMNS):
        if col not in predictions:
            predictions[col] = np.nan
    cand = devices[0]
    table, chosen = _sensitivity(cand, suite, predictions, sensitivity_workload)
    design, design_note = _design(cand, suite, graphs)
    from perfmodel import __version__

    data = ReviewData(
        title=title or f"Design review: {cand.display_name}", candidate=cand.name,
        devices=pd.DataFrame([_device_row(d, "candidate" if i == 0 else "baseline")
                              for i, d in enumerate(devices)]),
        specs=pd.DataFrame([r for d in devices for r in _spec_rows(d)]),
        suite=suite.drop(columns="source"), predictions=predictions,
        summary=_summary(predictions, suite, cand.name),
        assumptions=pd.DataFrame(assumptions), sensitivity=table,
        sensitivity_workload=chosen, design=design, design_note=design_note,
        suite_path=str(workloads if workloads is not None else f"workloads/{SUITE_FILE}"),
        command=command or _call(hw, baseline, workloads), version=__version__)
    if out is not None:
        write_review(data, out, overwrite=overwrite)
    return data


def _call(hw: Any, baseline: Sequence[Any], workloads: Any) -> str:
    names = [d.name if isinstance(d, DeviceSpec) else str(d) for d in baseline]
    hw_name = hw.name if isinstance(hw, DeviceSpec) else str(hw)
    return (f"pm.review({hw_name!r}, baseline={names!r}"
            + (f", workloads={str(workloads)!r}" if workloads is not None else "") + ")")


def write_review(data: ReviewData, path: str | Path, overwrite: bool = False) -> Path:
    """Write the report as one self-contained HTML file (``.html``); an existing file is
    refused unless ``overwrite``."""
    p = check_writable(path, overwrite, HTML_SUFFIXES)
    text = render_review(data)
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PerfModelError(f"cannot write {p}: {exc.strerror or exc}",
                             "choose a file in a folder you can write to") from None
    return p
