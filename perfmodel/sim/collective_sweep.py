"""A collective over a sweep of message sizes, by the alpha-beta model or the simulator, in
nccl-tests columns; and parameter server against ring all-reduce.

Both rungs of the fidelity ladder give one table with the same columns (size_bytes, count,
type, time_us, algbw_GBps, busbw_GBps, algorithm, p, nodes, per_node, then the rung's own:
latency_us, transfer_us, efficiency for the model, events, sim_wall_s for the simulator), so
a caller switches with ``method=`` and formats one way.

>>> from perfmodel.hardware.system import load_system
>>> sweep = collective_sweep(load_system("dgx-h100"), "all_reduce", [8, 1 << 30])
>>> sweep.method, list(sweep.table["size_bytes"])
('analytic', [8, 1073741824])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.collectives import BUS_FACTOR
from perfmodel.analytic.network import predict_collective
from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.hardware.system import SystemSpec
from perfmodel.progress import track
from perfmodel.units import dtype_bytes

__all__ = ["CollectiveSweep", "collective_sweep", "compare_algorithms", "METHODS"]


@dataclass(frozen=True)
class CollectiveSweep:
    """A collective at each message size.

    ``table``: one row per size, nccl-tests columns first (module docstring);
    ``assumptions``: the alpha-beta model's (system figures and their sources, the run's
    shape), whichever ``method`` made the table; ``method``: ``"analytic"`` or ``"sim"``;
    ``last_run``: the simulator's result for the last size (``perfmodel.sim.engine.
    SimResult``: its timeline where recorded), None for the model.
    """

    table: pd.DataFrame
    assumptions: dict[str, Any]
    method: str
    last_run: Any = None


@dataclass(frozen=True)
class _Run:
    """What a rung needs beside the sizes: one run's shape and options."""

    system: SystemSpec
    primitive: str
    nodes: int | None
    per_node: int | None
    algorithm: str
    dtype: str
    chunks: int
    slowdown: Mapping[str, float]
    record: bool


def _analytic(run: _Run, sizes: np.ndarray, model: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    return model, None


def _simulated(run: _Run, sizes: np.ndarray, model: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """One simulation per size, in the model's columns; ``auto`` is simulated as ring (the
    simulator has no tree)."""
    from perfmodel.sim.collectives import simulate_collective  # simpy: only when simulating

    algo = "ring" if run.algorithm == "auto" else run.algorithm
    rows, last = [], None
    for size in track(sizes, f"simulating {run.primitive}", len(sizes)):
        last = simulate_collective(run.system, run.primitive, float(size), run.nodes,
                                   run.per_node, algo, run.chunks,
                                   device_slowdown=dict(run.slowdown), record=run.record)
        n, g = last.assumptions["nodes"], last.assumptions["per_node"]
        t = last.time_s
        bus = BUS_FACTOR[run.primitive](np.asarray(float(n * g)))
        rows.append({"size_bytes": int(size), "count": int(size // dtype_bytes(run.dtype)),
                     "type": run.dtype, "time_us": t * 1e6, "algbw_GBps": size / t / 1e9,
                     "busbw_GBps": size / t * bus / 1e9, "algorithm": algo, "p": n * g,
                     "nodes": n, "per_node": g, "events": last.events,
                     "sim_wall_s": last.wall_s})
    return pd.DataFrame(rows), last


# method -> rung: (the run, the sizes, the model's table) -> (table, last SimResult or None)
METHODS: dict[str, Callable[[_Run, np.ndarray, pd.DataFrame], tuple[pd.DataFrame, Any]]] = {
    "analytic": _analytic, "sim": _simulated}


def collective_sweep(system: SystemSpec, primitive: str, sizes: Any, nodes: int | None = None,
                     per_node: int | None = None, algorithm: str = "auto",
                     dtype: str = "fp32", *, method: str = "analytic", chunks: int = 1,
                     slowdown: Mapping[str, float] | None = None,
                     record: bool = False) -> CollectiveSweep:
    """One collective at each of ``sizes`` bytes (nccl-tests convention), by the alpha-beta
    model (``perfmodel.analytic.network.predict_collective``) or event by event
    (``perfmodel.sim.collectives.simulate_collective``).

    Parameters
    ----------
    system : SystemSpec
        Where it runs.
    primitive : str
        ``all_reduce``, ``all_gather``, ... (``perfmodel.analytic.collectives.PRIMITIVES``).
    sizes : array-like
        Message sizes in bytes (``perfmodel.units.sweep_sizes`` makes a sweep).
    nodes, per_node : int, optional
        The run's shape (default: the whole system).
    algorithm : str
        ``auto`` (the model: NCCL's pick for all_reduce, else ring; the simulator: ring),
        ``ring``, ``tree``, ``hierarchical``, ...
    dtype : str
        Element type, for the count column only.
    method : str
        ``analytic`` or ``sim``.
    chunks : int
        Simulator only: pieces per step (the model has no granularity).
    slowdown : mapping, optional
        Simulator only: device name (``n0.d3``) -> slowdown factor (a straggler).
    record : bool
        Simulator only: keep the last run's timeline (for a Gantt chart).

    Returns
    -------
    CollectiveSweep
        The table, the model's assumptions, the method and the simulator's last run.

    Raises
    ------
    UnknownNameError
        An unknown ``method``.
    PlanError
        ``slowdown`` with the analytic method (the model has no straggler).
    ShapeError, PlanError, UnsupportedOpError
        As ``predict_collective`` and ``simulate_collective``: sizes, shape or algorithm.
    """
    if method not in METHODS:
        raise UnknownNameError(f"unknown collective method {method!r}",
                               did_you_mean(method, METHODS))
    if slowdown and method != "sim":
        raise PlanError("a device slowdown needs the simulator",
                        "stragglers are simulated: pass method='sim' (CLI: --sim)")
    v = np.atleast_1d(np.asarray(sizes, dtype=float))
    pred = predict_collective(system, primitive, v, nodes, per_node, algorithm, dtype)
    run = _Run(system, primitive, nodes, per_node, algorithm, dtype, chunks,
               dict(slowdown or {}), record)
    table, last = METHODS[method](run, v, pred.table)
    return CollectiveSweep(table, pred.assumptions, method, last)


def compare_algorithms(system: SystemSpec, size: float, nodes: int | None = None,
                       per_node: int | None = None, simulate: bool = True) -> pd.DataFrame:
    """Ring against parameter-server all-reduce of ``size`` bytes: the model's time and busbw
    and (``simulate``) the simulator's, each also as a multiple of ring's.

    On one switch at large V the parameter server is p times slower than ring: the server's
    link carries (p-1)V per phase, 2(p-1)V/b in all, where every ring link carries
    2(p-1)V/p, 2(p-1)V/(p b) (Patarasuk & Yuan 2009, bandwidth-optimal all-reduce).

    Returns
    -------
    pandas.DataFrame
        Rows ``ring`` then ``parameter_server``; columns algorithm, size_bytes, p, time_us,
        busbw_GBps, then sim_time_us (``simulate``), then x_ring and sim_x_ring (time over
        ring's).

    Examples
    --------
    >>> from perfmodel.hardware.system import load_system
    >>> df = compare_algorithms(load_system("pcie-8x-4090"), 1 << 30, simulate=False)
    >>> df["algorithm"].tolist(), round(float(df["x_ring"].iloc[1]))
    (['ring', 'parameter_server'], 8)
    """
    rows = []
    for algo in ("ring", "parameter_server"):
        t = predict_collective(system, "all_reduce", [size], nodes, per_node, algo).table
        row = {"algorithm": algo, "size_bytes": int(size), "p": int(t["p"].iloc[0]),
               "time_us": float(t["time_us"].iloc[0]),
               "busbw_GBps": float(t["busbw_GBps"].iloc[0])}
        if simulate:
            from perfmodel.sim.collectives import simulate_collective
            r = simulate_collective(system, "all_reduce", size, nodes, per_node, algo,
                                    record=False)
            row["sim_time_us"] = r.time_s * 1e6
        rows.append(row)
    df = pd.DataFrame(rows)
    df["x_ring"] = df["time_us"] / df["time_us"].iloc[0]
    if simulate:
        df["sim_x_ring"] = df["sim_time_us"] / df["sim_time_us"].iloc[0]
    return df
