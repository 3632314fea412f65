"""Pipeline schedules as simpy processes: GPipe, 1F1B (PipeDream-flush), interleaved 1F1B.

Each schedule is a plain generator function ``schedule(sim, pipe, device)`` run once per
pipeline device on a :class:`~perfmodel.sim.engine.ClusterSim`. A device works through its
ops in the schedule's order (``schedule_order``); an op starts when the device is free and
its input has arrived: a forward needs the activation of the previous virtual stage, a
backward the gradient of the next one. Every finished op sends its output to the device of
the neighbouring virtual stage over the system's links (``ClusterSim.transfer``), in a
separate process, so sends overlap compute as Megatron-LM's asynchronous p2p does. Stage
times may differ per virtual stage (uneven stages), and links may be slow: the DES then
departs from the closed forms of perfmodel.analytic.pipeline, which it reproduces exactly for
uniform stages on zero-cost links.

Orders (per device ``s`` of ``p``, ``m`` micro-batches, Narayanan et al. SC 2021, Fig. 3-4,
and Megatron-LM ``schedules.py``):

* GPipe: F0 .. F(m-1), then B0 .. B(m-1) (Huang et al. 2019).
* 1F1B: ``min(p - s - 1, m)`` warm-up forwards, then alternate one forward and one
  backward, then the remaining backwards.
* interleaved 1F1B, ``v`` chunks per device: forward k of the device runs chunk
  ``(k // p) % v`` on micro-batch ``(k // (p v)) p + k % p``; backward k runs chunk
  ``v - 1 - (k // p) % v``; warm-up ``min((p - s - 1) 2 + (v - 1) p, m v)`` forwards.
  Chunk c of device s is virtual stage ``c p + s`` (Megatron's layer assignment).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import simpy

from perfmodel.analytic.pipeline import (
    SCHEDULES,
    bubble_fraction,
    check_pipeline,
    in_flight,
    step_time,
)
from perfmodel.errors import PlanError, ShapeError, UnknownNameError, did_you_mean
from perfmodel.sim.engine import Arrival, ClusterSim, SimResult

MAX_TASKS = 2**22  # ~4 M simulated tasks: about a minute of wall time on one core

__all__ = ["Pipe", "PipelineRun", "schedule_order", "gpipe", "one_f_one_b", "interleaved",
           "SCHEDULE_PROCESSES", "chain_topology", "simulate_pipeline"]

Proc = Generator[simpy.Event, Any, None]
Op = tuple[str, int, int]  # ("F" | "B", micro-batch, chunk)


@dataclass(frozen=True)
class Pipe:
    """One pipeline: its devices (in stage order), micro-batches, chunks per device and the
    per-virtual-stage times (s) and bytes sent between neighbouring virtual stages.

    ``t_forward`` / ``t_backward`` have one entry per virtual stage (``stages x virtual``,
    virtual stage ``c p + s`` is chunk c of device s); ``boxes`` holds the arrival events
    shared by sender and receiver."""

    devices: tuple[str, ...]
    micro_batches: int
    virtual: int
    t_forward: tuple[float, ...]
    t_backward: tuple[float, ...]
    activation_bytes: float = 0.0
    boxes: dict[tuple[str, int, int], Arrival] = field(default_factory=dict, compare=False)

    @property
    def stages(self) -> int:
        return len(self.devices)


def _gpipe_order(p: int, m: int, s: int, v: int) -> list[Op]:
    return [("F", i, 0) for i in range(m)] + [("B", i, 0) for i in range(m)]


def _one_f_one_b_order(p: int, m: int, s: int, v: int) -> list[Op]:
    warm = min(p - s - 1, m)
    order: list[Op] = [("F", i, 0) for i in range(warm)]
    for i in range(m - warm):
        order += [("F", warm + i, 0), ("B", i, 0)]
    return order + [("B", i, 0) for i in range(m - warm, m)]


def _interleaved_order(p: int, m: int, s: int, v: int) -> list[Op]:
    total = m * v

    def mb(k: int) -> int:
        return (k // (p * v)) * p + k % p

    def fwd(k: int) -> Op:
        return ("F", mb(k), (k // p) % v)

    def bwd(k: int) -> Op:
        return ("B", mb(k), v - 1 - (k // p) % v)

    warm = min((p - s - 1) * 2 + (v - 1) * p, total)
    order = [fwd(k) for k in range(warm)]
    for i in range(total - warm):
        order += [fwd(warm + i), bwd(i)]
    return order + [bwd(k) for k in range(total - warm, total)]


ORDERS: dict[str, Callable[[int, int, int, int], list[Op]]] = {
    "gpipe": _gpipe_order, "1f1b": _one_f_one_b_order, "interleaved": _interleaved_order}


def schedule_order(schedule: str, stages: int, micro_batches: int, device: int,
                   virtual: int = 1) -> list[Op]:
    """The ops device ``device`` runs, in order: ("F" | "B", micro-batch, chunk)."""
    check_pipeline(stages, micro_batches, schedule, virtual)
    return ORDERS[schedule](stages, micro_batches, device, virtual)


def _box(pipe: Pipe, key: tuple[str, int, int], sim: ClusterSim) -> Arrival:
    ev = pipe.boxes.pop(key, None)
    if ev is None:
        ev = pipe.boxes[key] = sim.arrival()
    return ev


def _run(sim: ClusterSim, pipe: Pipe, s: int, order: Sequence[Op]) -> Proc:
    """Run one device's ops: wait for the input, compute, send the output onwards."""
    p, v, env = pipe.stages, pipe.virtual, sim.env
    last = p * v - 1
    dev = pipe.devices[s]
    suffix = v > 1
    for kind, i, c in order:
        vs = c * p + s  # virtual stage
        if (kind == "F" and vs > 0) or (kind == "B" and vs < last):
            ev = _box(pipe, (kind, i, vs), sim)
            if not ev.triggered:
                yield ev
        start = env.now
        yield env.timeout(pipe.t_forward[vs] if kind == "F" else pipe.t_backward[vs])
        label = f"{kind}{i}" + (f".{c}" if suffix else "")
        sim.records.append((dev, start, env.now, "compute", label))
        dst = vs + 1 if kind == "F" else vs - 1
        if 0 <= dst <= last:
            arrival = _box(pipe, (kind, i, dst), sim)
            to = pipe.devices[dst % p]
            if to == dev:
                arrival.arrive_after(0.0)
            else:
                sim.post(dev, to, pipe.activation_bytes, label, arrival)


def gpipe(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """GPipe: all forwards, then all backwards (Huang et al. 2019)."""
    yield from _run(sim, pipe, device, _gpipe_order(pipe.stages, pipe.micro_batches, device,
                                                    1))


def one_f_one_b(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """1F1B / PipeDream-flush (Narayanan et al. 2021, sec. 2.2.1)."""
    yield from _run(sim, pipe, device, _one_f_one_b_order(pipe.stages, pipe.micro_batches,
                                                          device, 1))


def interleaved(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """Interleaved 1F1B with ``pipe.virtual`` chunks per device (Narayanan et al. 2021,
    sec. 2.2.2; Megatron-LM's forward_backward_pipelining_with_interleaving)."""
    yield from _run(sim, pipe, device, _interleaved_order(
        pipe.stages, pipe.micro_batches, device, pipe.virtual))


SCHEDULE_PROCESSES: dict[str, Callable[[ClusterSim, Pipe, int], Proc]] = {
    "gpipe": gpipe, "1f1b": one_f_one_b, "interleaved": interleaved}


def chain_topology(stages: int, bandwidth_Bps: float = float("inf"),
                   latency_s: float = 0.0) -> nx.DiGraph:
    """Devices d0 .. d(p-1) with a link (both directions) between neighbours and from the
    last back to the first (interleaving sends chunk outputs from device p-1 to device 0)."""
    g = nx.DiGraph()
    names = [f"d{i}" for i in range(stages)]
    g.add_nodes_from(names, device=True)
    pairs = list(zip(names[:-1], names[1:], strict=True))
    if stages > 2:
        pairs.append((names[-1], names[0]))
    for a, b in pairs:
        for u, w in ((a, b), (b, a)):
            g.add_edge(u, w, bandwidth_Bps=bandwidth_Bps, latency_s=latency_s, level="p2p")
    return g


@dataclass(frozen=True)
class PipelineRun:
    """A simulated pipeline: the run, its compute timeline and its bubble beside the closed
    form. ``bubble`` = (step - ideal) / ideal, ideal = the busiest device's compute."""

    result: SimResult
    schedule: str
    stages: int
    micro_batches: int
    virtual: int
    ideal_s: float
    bubble: float
    closed_form_bubble: float

    @property
    def step_s(self) -> float:
        return self.result.time_s

    def compute(self) -> pd.DataFrame:
        """Compute holds only: resource (device), start, end, label."""
        e = self.result.timeline.events
        return e[e["kind"] == "compute"].reset_index(drop=True)

    def tuples(self) -> list[tuple[str, float, float, str]]:
        """(device, start, end, label) of every compute op, ordered by device then start."""
        c = self.compute().sort_values(["resource", "start"], kind="stable")
        return [(r.resource, float(r.start), float(r.end), r.label) for r in c.itertuples()]

    def summary(self) -> dict[str, Any]:
        """The simulated step and bubble beside the closed forms for uniform stages (step
        m t (1 + bubble), perfmodel.analytic.pipeline) and the micro-batches in flight."""
        p, m, v = self.stages, self.micro_batches, self.virtual
        per_device = self.ideal_s / m  # busiest device's forward + backward per micro-batch
        closed = float(step_time(p, m, per_device, 0.0, self.schedule, v))
        return {"schedule": self.schedule, "stages": p, "micro_batches": m, "virtual": v,
                "step_s": self.step_s, "closed_form_step_s": closed, "ideal_s": self.ideal_s,
                "bubble": self.bubble, "closed_form_bubble": self.closed_form_bubble,
                "in_flight_closed_form": float(in_flight(p, m, self.schedule, v)),
                "events": self.result.events, "sim_wall_s": self.result.wall_s}


def _per_stage(name: str, t: Any, n: int) -> tuple[float, ...]:
    arr = np.broadcast_to(np.asarray(t, float), (n,)) if np.ndim(t) == 0 else np.asarray(
        t, float)
    if arr.shape != (n,) or np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise ShapeError(f"{name} must be one non-negative time or one per virtual stage "
                         f"({n}), got {t!r}", "pass a scalar or stages x virtual values")
    return tuple(float(x) for x in arr)


def simulate_pipeline(schedule: str, stages: int, micro_batches: int, t_forward: Any = 1.0,
                      t_backward: Any = 2.0, *, virtual: int = 1,
                      activation_bytes: float = 0.0, graph: nx.DiGraph | None = None,
                      devices: Sequence[str] | None = None,
                      link_bandwidth_Bps: float = float("inf"),
                      link_latency_s: float = 0.0) -> PipelineRun:
    """Simulate one pipeline flush with ``schedule`` and compare its bubble with the closed form.

    ``t_forward``, ``t_backward``: seconds per micro-batch per virtual stage (a scalar or one
    per virtual stage: for interleaving, the time of one chunk). ``graph``/``devices``: the
    topology and the devices of the stages (default: :func:`chain_topology` with the given
    link bandwidth and latency).

    >>> run = simulate_pipeline("1f1b", 2, 3)
    >>> run.step_s, run.bubble
    (12.0, 0.3333333333333333)
    """
    if schedule not in SCHEDULES:
        raise UnknownNameError(f"unknown schedule {schedule!r}", did_you_mean(schedule,
                                                                               SCHEDULES))
    check_pipeline(stages, micro_batches, schedule, virtual)
    tasks = 2 * stages * virtual * micro_batches
    if tasks > MAX_TASKS:
        raise PlanError(f"simulating {tasks:,} forward and backward tasks is past the "
                        f"simulator's limit of {MAX_TASKS:,} (minutes of wall time)",
                        "use the closed forms (perfmodel.analytic.pipeline.bubble_fraction),"
                        " or fewer stages x micro-batches")
    n = stages * virtual
    tf, tb = _per_stage("t_forward", t_forward, n), _per_stage("t_backward", t_backward, n)
    if graph is None:
        graph = chain_topology(stages, link_bandwidth_Bps, link_latency_s)
        devices = [f"d{i}" for i in range(stages)]
    if devices is None or len(devices) != stages:
        raise ShapeError("name one device per pipeline stage", f"pass {stages} devices")
    sim = ClusterSim(graph)
    pipe = Pipe(tuple(devices), micro_batches, virtual, tf, tb, float(activation_bytes))
    proc = SCHEDULE_PROCESSES[schedule]
    for s in range(stages):
        sim.env.process(proc(sim, pipe, s))
    result = sim.run()
    per_device = [micro_batches * sum(tf[c * stages + s] + tb[c * stages + s]
                                      for c in range(virtual)) for s in range(stages)]
    ideal = max(per_device)
    closed = float(bubble_fraction(stages, micro_batches, schedule, virtual))
    bubble = (result.time_s - ideal) / ideal if ideal > 0 else 0.0
    if abs(bubble) < 1e-12:  # a sum of times against their product: rounding, not a bubble
        bubble = 0.0
    return PipelineRun(result, schedule, stages, micro_batches, virtual, ideal, bubble, closed)
