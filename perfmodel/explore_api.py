"""``pm.explore`` and ``pm.model_search``: design-space exploration of a hypothetical chip and
the hardware-aware model search, from names (the API edge, beside ``study_api.py``: it
builds models from the zoo and reads workload suites).

    >>> import perfmodel as pm
    >>> e = pm.explore("h100", {"memory.bandwidth_GBps": (1000, 8000)}, model="llama-2-7b",
    ...                phase="decode", batch=1, seq=2048, points=4)
    >>> e.front["memory.bandwidth_GBps"].tolist()    # TDP is fixed: the front is one design
    [8000.0]

    >>> t = pm.model_search(["resnet18", "resnet50"], "h100", 0.0005, strategies=["int8"])
    >>> t.loc[t["chosen"], "candidate"].item()
    'resnet18+int8'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from perfmodel.compress.registry import parse_strategy
from perfmodel.errors import PerfModelError, UnknownNameError, check_choice
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.review_api import load_suite, suite_graphs
from perfmodel.study.explore import Exploration, exploration
from perfmodel.study.explore import model_search as search
from perfmodel.workload.build import build_workload, check_context
from perfmodel.workload.schema import Workload
from perfmodel.zoo.registry import load_model, models, trace_options

__all__ = ["explore", "model_search", "suite_workloads", "nonzero_params",
           "SIZE_MEASURES"]

SIZE_MEASURES = ("params", "macs")


def _device(hw: str | Path | DeviceSpec) -> DeviceSpec:
    return hw if isinstance(hw, DeviceSpec) else load_device(hw)


def suite_workloads(device: DeviceSpec, suite: str | Path | None = None, *,
                    dtype: str | None = None) -> dict[str, Workload]:
    """A workload suite file (perfmodel.review_api.load_suite: the shipped
    ``workloads/review-suite.yaml`` by default) as Workloads by name, each in ``dtype``,
    else its entry's dtype, else the device's default."""
    table = load_suite(suite)
    graphs = suite_graphs(table)
    out = {}
    for r in table.itertuples():
        try:
            out[r.name] = build_workload(graphs[r.name], batch=r.batch, seq=r.seq,
                                         dtype=dtype or r.dtype or device.default_dtype,
                                         phase=r.phase)
        except PerfModelError as exc:
            raise type(exc)(f"workload {r.name!r}: {exc.message}", exc.hint) from None
    return out


def explore(hw: str | Path | DeviceSpec, vary: Mapping[str, Any], *,
            workloads: str | Path | None = None, model: Any = None,
            phase: str = "inference", batch: int = 1, seq: int | None = None,
            dtype: str | None = None, objective: str = "latency", cost: str | None = None,
            budget: Mapping[str, float] | None = None, points: int = 8, scale: str = "log",
            fusion: str = "none", require_fit: bool = False,
            yes: bool = False) -> Exploration:
    """The design space of ``hw`` with the figures of ``vary`` ({spec path: (lo, hi) range,
    a list of values, or one value}) varied, over a workload suite (``workloads``: a suite
    file, default the shipped one) or one ``model`` run (``phase``, ``batch``, ``seq``):
    every design's objective (``latency`` or ``throughput`` ratio to ``hw`` as specified,
    geometric mean over the workloads), ``cost`` (an expression over spec paths; default
    ``power.tdp_W``), ``budget`` ({``cost`` or spec path: maximum}), the Pareto front, each
    workload's memory/compute crossover along each range, and the assumptions
    (perfmodel.study.explore). ``dtype``: run every workload in it (default: each entry's,
    else the device's). ``points``: values per (lo, hi) range; ``yes``: allow more than a
    million designs."""
    device = _device(hw)
    if model is not None and workloads is not None:
        raise PerfModelError("give a workload suite or one model, not both",
                             "drop --workloads, or drop --model")
    if model is not None:
        graph = load_model(model, **trace_options(str(model), batch, seq))
        check_context(graph, seq)
        wl = build_workload(graph, batch=batch, seq=seq, dtype=dtype or device.default_dtype,
                            phase=phase)
        named = {f"{wl.model}-{phase}-b{batch}": wl}
    else:
        named = suite_workloads(device, workloads, dtype=dtype)
    return exploration(named, device, vary, objective=objective, cost=cost, budget=budget,
                       points_per_axis=points, scale=scale, fusion=fusion,
                       require_fit=require_fit, yes=yes)


def _family(name: str) -> list[ModelGraph]:
    """The zoo models of family ``name`` (``resnet``: resnet18 ... resnet152), smallest
    first; empty if there is no such family."""
    found = [load_model(m) for m in sorted(models()) if m.startswith(name.split("_")[0])]
    return sorted((g for g in found if g.meta.get("family") == name), key=lambda g: g.params)


def _models_of(name: str, batch: int, seq: int | None) -> list[tuple[str, ModelGraph]]:
    """(label, graph) of a model name, file, or zoo family name (``resnet``,
    ``efficientnet``, ``mnasnet``, ``regnet``: its members); else load_model's error."""
    try:
        return [(name, load_model(name, **trace_options(name, batch, seq)))]
    except UnknownNameError:
        members = _family(name)
        if not members:
            raise
        return [(g.name, g) for g in members]


def nonzero_params(graph: ModelGraph) -> float:
    """Parameters not pruned away: each op's weights x (1 - its sparsity), tied weights
    once (a structured prune has already removed its channels from the graph)."""
    return float(sum(w.numel * (1.0 - float(op.attr("sparsity", 0.0) or 0.0))
                     for op in graph.ops if not op.tied for w in op.weights))


def _size(graph: ModelGraph, measure: str, device: DeviceSpec, phase: str,
          seq: int | None, dtype: str | None) -> float:
    if measure == "params":
        return nonzero_params(graph)
    wl = build_workload(graph, batch=1, seq=seq, dtype=dtype or device.default_dtype,
                        phase=phase)
    return float(wl.table["macs"].sum())


def model_search(model_names: str | Sequence[str], hw: str | Path | DeviceSpec,
                 budget_s: float, *, strategies: Sequence[str] = (),
                 phase: str = "inference", batch: int = 1, seq: int | None = None,
                 dtype: str | None = None, size: str = "params",
                 fusion: str = "none") -> pd.DataFrame:
    """Which model variant or compression meets a latency budget on ``hw`` with the least
    loss of size (perfmodel.study.explore.model_search): each model of ``model_names`` (zoo
    names, files, or zoo family names such as ``resnet``, ``efficientnet``), as it is and
    compressed by each of ``strategies`` (``perfmodel compress`` syntax: ``int8``,
    ``w4a16``, ``prune:0.5:structured``, ...), priced for one ``phase`` / ``batch`` /
    ``seq`` run. ``size``: ``params`` (parameters not pruned away) or ``macs`` (per
    sample). The ``chosen`` row is the answer."""
    device = _device(hw)
    check_choice("size measure", size, SIZE_MEASURES)
    names = [model_names] if isinstance(model_names, str) else list(model_names)
    transforms = [(s, parse_strategy(s, resolve_model=load_model)) for s in strategies]
    candidates = []
    built = {label: g for name in names for label, g in _models_of(str(name), batch, seq)}
    for name, graph in built.items():
        for label, g in [(name, graph), *((f"{name}+{s}", t(graph)) for s, t in transforms)]:
            candidates.append((label, g, _size(g, size, device, phase, seq, dtype)))
    return search(candidates, device, budget_s, phase=phase, batch=batch, seq=seq,
                  dtype=dtype, fusion=fusion)
