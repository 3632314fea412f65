"""Pipeline schedules as simpy processes: GPipe, 1F1B (PipeDream-flush), interleaved 1F1B,
ZB-H1 and ZB-V (zero bubble), DualPipe and asynchronous PipeDream.

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

The backward splits into B (input gradient, sent on at once) and W (weight gradient, which
nothing waits for), with ``Pipe.t_weight`` per virtual stage (Qi et al., "Zero Bubble Pipeline
Parallelism", ICLR 2024). In the GPipe, 1F1B, interleaved and PipeDream orders "B" is the whole
backward: its W runs right after it and the gradient leaves after both, as before the split.
A W of zero time is not recorded.

* ZB-H1 (Qi et al. 2024 sec. 2.1): 1F1B's order of F and B; stage s runs W of micro-batch
  k - s after its k-th B and the last s + 1 W at the end, so B moves up the pipeline
  without waiting for W and the deferred W fill the drain.
* ZB-V (Qi et al. 2024 sec. 6): two chunks per device in a V, device s holds virtual stages
  s and 2p - 1 - s. The order is built greedily once per (p, m) with unit times (the
  papers' t_f = t_b = t_w) and at most p micro-batches of activations per device, like the
  authors' ``zbv.py``: a ready B first, then a ready forward (the second chunk's first, one
  slot kept for it), else a pending W.
* DualPipe (DeepSeek-V3 report sec. 3.2.1; deepseek-ai/DualPipe ``DualPipe.step``, its 8
  steps): device s is stage s of the forward direction (chunk 0) and stage p-1-s of the
  reverse one (chunk 1), m/2 micro-batches each way, numbered per direction. An overlapped
  F&B pair runs here as its forward then its backward, without overlap; "BW" is a backward
  with its weight gradient (sent after both), "B" one whose W is deferred to a FIFO.
* PipeDream (Narayanan et al. SOSP 2019): 1F1B with no flush between steps; the simulation
  runs ``PIPEDREAM_STEPS`` steps back to back and reports the last one, from the end of the
  step before to its own end (the steady state).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
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
)
from perfmodel.errors import PlanError, ShapeError, UnknownNameError, did_you_mean
from perfmodel.sim.engine import Arrival, ClusterSim, SimResult

MAX_TASKS = 2**22  # ~4 M simulated tasks: about a minute of wall time on one core
PIPEDREAM_STEPS = 3  # steps run back to back: the last is in the steady state once m >= 1

__all__ = ["Pipe", "PipelineRun", "schedule_order", "gpipe", "one_f_one_b", "interleaved",
           "zb_h1", "zb_v", "dualpipe", "pipedream", "SCHEDULE_PROCESSES", "chain_topology",
           "simulate_pipeline"]

Proc = Generator[simpy.Event, Any, None]
Op = tuple[str, int, int]  # ("F" | "B" | "W" | "BW", micro-batch, chunk)
LAYOUTS = ("loop", "v", "dual")  # chunk -> virtual stage: Megatron's, ZB-V's, DualPipe's


@dataclass(frozen=True)
class Pipe:
    """One pipeline: its devices (in stage order), micro-batches, chunks per device and the
    per-virtual-stage times (s) and bytes sent between neighbouring virtual stages.

    ``t_forward`` / ``t_backward`` / ``t_weight`` have one entry per virtual stage
    (``stages x virtual``; ``t_weight`` empty: no separate weight gradient). ``layout`` maps
    chunk c of device s to its virtual stage: ``"loop"`` ``c p + s`` (Megatron), ``"v"`` s
    then 2p - 1 - s (ZB-V), ``"dual"`` s in the forward direction and p + (p - 1 - s) in the
    reverse one, two separate chains (DualPipe). ``boxes`` holds the arrival events shared by
    sender and receiver."""

    devices: tuple[str, ...]
    micro_batches: int
    virtual: int
    t_forward: tuple[float, ...]
    t_backward: tuple[float, ...]
    activation_bytes: float = 0.0
    t_weight: tuple[float, ...] = ()
    layout: str = "loop"
    boxes: dict[tuple[str, int, int], Arrival] = field(default_factory=dict, compare=False)

    @property
    def stages(self) -> int:
        return len(self.devices)

    @property
    def chain(self) -> int:
        """Virtual stages one micro-batch goes through."""
        return self.stages if self.layout == "dual" else self.stages * self.virtual

    def virtual_stage(self, s: int, c: int) -> int:
        p = self.stages
        if self.layout == "v" and c == 1:
            return 2 * p - 1 - s
        if self.layout == "dual" and c == 1:
            return p + p - 1 - s
        return c * p + s

    def device_of(self, vs: int) -> int:
        p = self.stages
        if self.layout == "v" and vs >= p:
            return 2 * p - 1 - vs
        if self.layout == "dual" and vs >= p:
            return p - 1 - (vs - p)
        return vs % p

    def weight_time(self, vs: int) -> float:
        return self.t_weight[vs] if self.t_weight else 0.0


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


def _zb_h1_order(p: int, m: int, s: int, v: int) -> list[Op]:
    order: list[Op] = []
    k = 0  # backwards so far
    for kind, i, c in _one_f_one_b_order(p, m, s, 1):
        order.append((kind, i, c))
        if kind == "B":
            if k >= s:  # stage s holds back its first s weight gradients
                order.append(("W", k - s, 0))
            k += 1
    return order + [("W", i, 0) for i in range(max(m - s, 0), m)]


@lru_cache(maxsize=64)
def _zb_v_orders(p: int, m: int, times: tuple[float, float, float] = (1.0, 1.0, 1.0)
                 ) -> tuple[tuple[Op, ...], ...]:
    """Every device's ZB-V order, list-scheduled with one chunk's (F, B, W) ``times`` and no
    link cost (see the module notes)."""
    cap, last = 2 * p, 2 * p - 1  # chunk activations: p micro-batches through the stage
    cost = dict(zip(("F", "B", "W"), times, strict=True))
    done: dict[tuple[str, int, int], float] = {}  # (kind, micro-batch, virtual stage) -> end
    nxt = [{("F", 0): 0, ("F", 1): 0, ("B", 0): 0, ("B", 1): 0} for _ in range(p)]
    held, pending = [0] * p, [list[tuple[int, int]]() for _ in range(p)]
    orders: list[list[Op]] = [[] for _ in range(p)]
    free, ends = [0.0] * p, [0.0]

    def ready(kind: str, s: int, c: int, t: float) -> bool:
        i, vs = nxt[s][(kind, c)], s if c == 0 else last - s
        if i >= m or (kind == "F" and held[s] + 1 > cap - 1 + c):  # a slot kept for chunk 1
            return False
        dep = ("F", i, vs - 1) if kind == "F" else (
            ("F", i, vs) if vs == last else ("B", i, vs + 1))
        return (kind == "F" and vs == 0) or done.get(dep, math.inf) <= t

    def choose() -> tuple[int, float, list[int], list[int]]:
        while True:  # the earliest device that can act, once no earlier event could wake one
            for s in sorted((d for d in range(p) if len(orders[d]) < 6 * m),
                            key=lambda d: (free[d], d)):
                t = free[s]
                b = sorted((c for c in (1, 0) if ready("B", s, c, t)),
                           key=lambda c: nxt[s][("B", c)])
                f = [c for c in (1, 0) if ready("F", s, c, t)]
                if b or f or pending[s]:
                    return s, t, b, f
                later = [e for e in ends if e > t]
                if later:
                    free[s] = min(later)
                    break
            else:
                raise PlanError(f"could not build a ZB-V order for p = {p}, m = {m}",
                                "report this; use zb-h1 meanwhile")

    for _ in range(6 * p * m):
        s, t, b, f = choose()
        if b or f:
            kind, c = ("B", b[0]) if b else ("F", f[0])
            i = nxt[s][(kind, c)]
            nxt[s][(kind, c)] += 1
            done[(kind, i, s if c == 0 else last - s)] = t + cost[kind]
            held[s] += kind == "F"
            if kind == "B":
                pending[s].append((i, c))
        else:
            kind, (i, c) = "W", pending[s].pop(0)
            held[s] -= 1
        free[s] = t + cost[kind]
        ends.append(free[s])
        orders[s].append((kind, i, c))
    return tuple(tuple(o) for o in orders)


def _zb_v_order(p: int, m: int, s: int, v: int,
                times: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> list[Op]:
    return list(_zb_v_orders(p, m, times)[s])


def _dualpipe_order(p: int, m: int, s: int, v: int) -> list[Op]:
    """deepseek-ai/DualPipe ``DualPipe.step``, steps 1-8; ``phase`` 0 is the direction this
    device starts (forward for the first half of the devices, reverse for the second)."""
    half, rank = p // 2, min(s, p - 1 - s)
    flip = int(s >= half)
    count = {(k, c): 0 for k in ("F", "B") for c in (0, 1)}
    deferred: list[tuple[int, int]] = []  # DualPipe's WeightGradStore, first in first out
    order: list[Op] = []

    def put(kind: str, phase: int, zero_bubble: bool = False) -> None:
        c = phase ^ flip
        i = count[(kind, c)]
        count[(kind, c)] += 1
        if kind == "F":
            order.append(("F", i, c))
        elif zero_bubble:
            order.append(("B", i, c))
            deferred.append((i, c))
        else:
            order.append(("BW", i, c))

    def weight() -> None:
        i, c = deferred.pop(0)
        order.append(("W", i, c))

    for _ in range((half - rank - 1) * 2):  # 1: nF0
        put("F", 0)
    for _ in range(rank + 1):  # 2: nF0F1
        put("F", 0)
        put("F", 1)
    for _ in range(half - rank - 1):  # 3: nB1W1F1, zero bubble
        put("B", 1, True)
        weight()
        put("F", 1)
    for _ in range(m // 2 - p + rank + 1):  # 4: nF0B1F1B0, each F&B as F then B
        put("F", 0)
        put("B", 1)
        put("F", 1)
        put("B", 0)
    for _ in range(half - rank - 1):  # 5: nB1F1B0
        put("B", 1)
        put("F", 1)
        put("B", 0)
    zero_bubble = False
    for i in range(rank + 1):  # 6: nB1B0, the second half zero bubble
        if i == (rank + 1) // 2 and rank % 2 == 1:
            zero_bubble = True
        put("B", 1, zero_bubble)
        if i == (rank + 1) // 2 and rank % 2 == 0:
            zero_bubble = True
        put("B", 0, zero_bubble)
    for _ in range(half - rank - 1):  # 7: nWB0, zero bubble
        weight()
        put("B", 0, True)
    while deferred:  # 8: nW
        weight()
    return order


def _pipedream_order(p: int, m: int, s: int, v: int) -> list[Op]:
    return _one_f_one_b_order(p, m, s, v)  # m: all the steps' micro-batches, no flush


ORDERS: dict[str, Callable[[int, int, int, int], list[Op]]] = {
    "gpipe": _gpipe_order, "1f1b": _one_f_one_b_order, "interleaved": _interleaved_order,
    "zb-h1": _zb_h1_order, "zb-v": _zb_v_order, "dualpipe": _dualpipe_order,
    "pipedream": _pipedream_order}
LAYOUT = {"zb-v": "v", "dualpipe": "dual"}  # others "loop"
FUSED = ("gpipe", "1f1b", "interleaved", "pipedream")  # "B" includes the weight gradient


def schedule_order(schedule: str, stages: int, micro_batches: int, device: int,
                   virtual: int = 1) -> list[Op]:
    """The ops device ``device`` runs, in order: (kind, micro-batch, chunk), kind "F", "B",
    "W" or "BW" (see the module notes). DualPipe numbers micro-batches per direction."""
    check_pipeline(stages, micro_batches, schedule, virtual)
    return ORDERS[schedule](stages, micro_batches, device, virtual)


def _box(pipe: Pipe, key: tuple[str, int, int], sim: ClusterSim) -> Arrival:
    ev = pipe.boxes.pop(key, None)
    if ev is None:
        ev = pipe.boxes[key] = sim.arrival()
    return ev


def _run(sim: ClusterSim, pipe: Pipe, s: int, order: Sequence[Op], fused: bool = False) -> Proc:
    """Run one device's ops: wait for the input, compute, send the output onwards."""
    env, dev, chain = sim.env, pipe.devices[s], pipe.chain
    suffix = pipe.virtual > 1
    for kind, i, c in order:
        kind = "BW" if fused and kind == "B" else kind
        vs = pipe.virtual_stage(s, c)
        pos = vs % chain  # position along its chain (DualPipe: within its direction)
        flow = "F" if kind == "F" else "B"
        if kind != "W" and ((flow == "F" and pos > 0) or (flow == "B" and pos < chain - 1)):
            ev = _box(pipe, (flow, i, vs), sim)
            if not ev.triggered:
                yield ev
        tail = f".{c}" if suffix else ""
        steps = {"F": (("F", pipe.t_forward[vs]),), "B": (("B", pipe.t_backward[vs]),),
                 "W": (("W", pipe.weight_time(vs)),),
                 "BW": (("B", pipe.t_backward[vs]), ("W", pipe.weight_time(vs)))}[kind]
        for part, duration in steps:
            if part == "W" and duration == 0:
                continue
            start = env.now
            yield env.timeout(duration)
            sim.records.append((dev, start, env.now, "compute", f"{part}{i}{tail}"))
        if kind == "W":
            continue
        dst = vs + 1 if flow == "F" else vs - 1
        if 0 <= pos + (dst - vs) < chain:
            arrival = _box(pipe, (flow, i, dst), sim)
            to = pipe.devices[pipe.device_of(dst)]
            if to == dev:
                arrival.arrive_after(0.0)
            else:
                sim.post(dev, to, pipe.activation_bytes, f"{flow}{i}{tail}", arrival)


def _ops(schedule: str, pipe: Pipe, device: int) -> list[Op]:
    if schedule == "zb-v":  # the order is built for the pipe's mean chunk times
        n = len(pipe.t_forward)
        times = (sum(pipe.t_forward) / n, sum(pipe.t_backward) / n, sum(pipe.t_weight) / n)
        return _zb_v_order(pipe.stages, pipe.micro_batches, device, 2, times)
    return ORDERS[schedule](pipe.stages, pipe.micro_batches, device, pipe.virtual)


def gpipe(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """GPipe: all forwards, then all backwards (Huang et al. 2019)."""
    yield from _run(sim, pipe, device, _ops("gpipe", pipe, device), fused=True)


def one_f_one_b(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """1F1B / PipeDream-flush (Narayanan et al. 2021, sec. 2.2.1)."""
    yield from _run(sim, pipe, device, _ops("1f1b", pipe, device), fused=True)


def interleaved(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """Interleaved 1F1B with ``pipe.virtual`` chunks per device (Narayanan et al. 2021,
    sec. 2.2.2; Megatron-LM's forward_backward_pipelining_with_interleaving)."""
    yield from _run(sim, pipe, device, _ops("interleaved", pipe, device), fused=True)


def zb_h1(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """ZB-H1: 1F1B whose stage s holds back s weight gradients (Qi et al. 2024,
    sec. 2.1)."""
    yield from _run(sim, pipe, device, _ops("zb-h1", pipe, device), fused=False)


def zb_v(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """ZB-V: two chunks per device in a V (Qi et al. 2024, sec. 6)."""
    yield from _run(sim, pipe, device, _ops("zb-v", pipe, device), fused=False)


def dualpipe(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """DualPipe: both directions at once, in its 8 steps (DeepSeek-V3 sec. 3.2.1)."""
    yield from _run(sim, pipe, device, _ops("dualpipe", pipe, device), fused=False)


def pipedream(sim: ClusterSim, pipe: Pipe, device: int) -> Proc:
    """PipeDream: 1F1B with no flush (Narayanan et al. SOSP 2019); ``pipe.micro_batches``
    counts every step's micro-batches."""
    yield from _run(sim, pipe, device, _ops("pipedream", pipe, device), fused=True)


SCHEDULE_PROCESSES: dict[str, Callable[[ClusterSim, Pipe, int], Proc]] = {
    "gpipe": gpipe, "1f1b": one_f_one_b, "interleaved": interleaved, "zb-h1": zb_h1,
    "zb-v": zb_v, "dualpipe": dualpipe, "pipedream": pipedream}


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
    form. ``bubble`` = (step - ideal) / ideal, ideal = the busiest device's compute per step.
    For PipeDream ``steady_s`` is the last of ``PIPEDREAM_STEPS`` steps run back to back
    (from the end of the step before to its own end) and ``step_s`` returns it."""

    result: SimResult
    schedule: str
    stages: int
    micro_batches: int
    virtual: int
    ideal_s: float
    bubble: float
    closed_form_bubble: float
    steady_s: float | None = None

    @property
    def step_s(self) -> float:
        return self.result.time_s if self.steady_s is None else self.steady_s

    def compute(self) -> pd.DataFrame:
        """Compute holds only: resource (device), start, end, label."""
        e = self.result.timeline.events
        return e[e["kind"] == "compute"].reset_index(drop=True)

    def tuples(self) -> list[tuple[str, float, float, str]]:
        """(device, start, end, label) of every compute op, ordered by device then start."""
        c = self.compute().sort_values(["resource", "start"], kind="stable")
        return [(r.resource, float(r.start), float(r.end), r.label) for r in c.itertuples()]

    def summary(self) -> dict[str, Any]:
        """The simulated step and bubble beside the closed forms for uniform stages (the
        ideal times 1 + the closed-form bubble, perfmodel.analytic.pipeline) and the
        micro-batches in flight."""
        p, m, v = self.stages, self.micro_batches, self.virtual
        closed = self.ideal_s * (1 + self.closed_form_bubble)
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


def _layout(schedule: str, stages: int, virtual: int) -> tuple[str, int, int]:
    """(layout, chunks per device, time entries per virtual stage given): ZB-V takes one
    time per chunk (2p), DualPipe one per stage (p: both directions run the same layers)."""
    layout = LAYOUT.get(schedule, "loop")
    if layout == "loop":
        return layout, virtual, stages * virtual
    return layout, 2, stages * (2 if layout == "v" else 1)


def _closed_form(schedule: str, p: int, m: int, v: int, pipe: Pipe) -> float:
    """The closed-form bubble (fraction of ideal) of the mean stage of ``pipe``."""
    n = len(pipe.t_forward)
    per_chunk = v if schedule == "interleaved" else (2 if schedule == "zb-v" else 1)
    f, b = sum(pipe.t_forward) / n * per_chunk, sum(pipe.t_backward) / n * per_chunk
    w = sum(pipe.t_weight) / n * per_chunk
    if schedule in ("gpipe", "1f1b", "interleaved"):
        return float(bubble_fraction(p, m, schedule, v))
    return float(bubble_fraction(p, m, schedule, v, t_forward=f, t_backward=b, t_weight=w))


def simulate_pipeline(schedule: str, stages: int, micro_batches: int, t_forward: Any = 1.0,
                      t_backward: Any = 2.0, *, virtual: int = 1, t_weight: Any = 0.0,
                      activation_bytes: float = 0.0, graph: nx.DiGraph | None = None,
                      devices: Sequence[str] | None = None,
                      link_bandwidth_Bps: float = float("inf"),
                      link_latency_s: float = 0.0) -> PipelineRun:
    """Simulate one pipeline flush with ``schedule`` and compare its bubble with the closed form.

    ``t_forward``, ``t_backward``, ``t_weight``: seconds per micro-batch per virtual stage (a
    scalar or one per virtual stage: for interleaving and ZB-V, the time of one chunk; for
    DualPipe one per stage, run in both directions). ``t_weight`` > 0 splits the weight
    gradient off the backward (``t_backward`` is then the input gradient only). ``graph``/
    ``devices``: the topology and the devices of the stages (default: :func:`chain_topology`
    with the given link bandwidth and latency). PipeDream runs ``PIPEDREAM_STEPS`` steps.

    >>> run = simulate_pipeline("1f1b", 2, 3)
    >>> run.step_s, run.bubble
    (12.0, 0.3333333333333333)
    >>> simulate_pipeline("zb-h1", 2, 4, 1.0, 1.0, t_weight=1.0).step_s  # 12 + (p-1) x 1
    13.0
    """
    if schedule not in SCHEDULES:
        raise UnknownNameError(f"unknown schedule {schedule!r}", did_you_mean(schedule,
                                                                               SCHEDULES))
    check_pipeline(stages, micro_batches, schedule, virtual)
    layout, chunks, n = _layout(schedule, stages, virtual)
    steps = PIPEDREAM_STEPS if schedule == "pipedream" else 1
    tasks = 3 * stages * chunks * micro_batches * steps
    if tasks > MAX_TASKS:
        raise PlanError(f"simulating {tasks:,} forward, backward and weight-gradient tasks is "
                        f"past the simulator's limit of {MAX_TASKS:,} (minutes of wall time)",
                        "use the closed forms (perfmodel.analytic.pipeline.bubble_fraction),"
                        " or fewer stages x micro-batches")
    times = [_per_stage(name, t, n) for name, t in (("t_forward", t_forward),
                                                    ("t_backward", t_backward),
                                                    ("t_weight", t_weight))]
    if layout == "dual":  # direction 1 runs stage k's layers too
        times = [t + t for t in times]
    if graph is None:
        graph = chain_topology(stages, link_bandwidth_Bps, link_latency_s)
        devices = [f"d{i}" for i in range(stages)]
    if devices is None or len(devices) != stages:
        raise ShapeError("name one device per pipeline stage", f"pass {stages} devices")
    sim = ClusterSim(graph)
    pipe = Pipe(tuple(devices), micro_batches * steps, chunks, times[0], times[1],
                float(activation_bytes), times[2] if any(times[2]) else (), layout)
    proc = SCHEDULE_PROCESSES[schedule]
    for s in range(stages):
        sim.env.process(proc(sim, pipe, s))
    result = sim.run()
    ideal = _ideal(pipe, schedule) / steps
    steady = _steady_step(result, micro_batches, steps) if steps > 1 else None
    step = result.time_s if steady is None else steady
    bubble = (step - ideal) / ideal if ideal > 0 else 0.0
    if abs(bubble) < 1e-12:  # a sum of times against their product: rounding, not a bubble
        bubble = 0.0
    closed = _closed_form(schedule, stages, micro_batches, virtual, pipe)
    return PipelineRun(result, schedule, stages, micro_batches, virtual, ideal, bubble, closed,
                       steady)


def _ideal(pipe: Pipe, schedule: str) -> float:
    """The busiest device's compute: every op of its order, at the pipe's times."""
    busiest = 0.0
    for s in range(pipe.stages):
        total = 0.0
        for kind, _, c in _ops(schedule, pipe, s):
            vs = pipe.virtual_stage(s, c)
            w = pipe.weight_time(vs)
            total += {"F": pipe.t_forward[vs], "B": pipe.t_backward[vs], "W": w,
                      "BW": pipe.t_backward[vs] + w}[kind]
            total += w if kind == "B" and schedule in FUSED else 0.0
        busiest = max(busiest, total)
    return busiest


def _steady_step(result: SimResult, m: int, steps: int) -> float:
    """End of the last step minus the end of the one before; a step ends when the last op
    of its micro-batches does."""
    e = result.timeline.events
    c = e[e["kind"] == "compute"]
    batch = c["label"].str[1:].str.split(".").str[0].astype(int) // m
    ends = c.groupby(batch)["end"].max()
    return float(ends.loc[steps - 1] - ends.loc[steps - 2])
