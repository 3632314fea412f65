"""ClusterSim: the simpy.Environment, every link direction as a FIFO server, and a recorder.

A transfer from device a to device b takes the route of fewest hops through the topology
graph (perfmodel.hardware.topology) and holds every link of it at once, like a cut-through
circuit: it waits until all are free, holds them for bytes / min(bandwidth on the route)
(serialization), and its data arrives max(latency on the route) after the hold ends (the
per-step latency alpha is a delay, not link occupancy: LogP's L, not its g). An uncontended
step thus costs alpha + bytes / b, the alpha-beta model's step.

A link is a capacity-1 first-come-first-served server (:class:`Link`). Because a hold's
length is known when the transfer is posted (bytes / bandwidth x slowdown), such a server is
fully described by the time it is next free: a transfer posted at t on a route starts at
max(t, next-free time of each link of the route), and sets each link's next-free time to its
end. That is exactly what a ``simpy.Resource(capacity=1)`` per link gives when every request
of a route is queued at one instant (same grant times, same order), without a request and a
release event per link per transfer. Two flows on one link take turns, so contention
emerges rather than being assumed, and no cycle of waiting (deadlock) can form.

Events: each transfer's arrival is a simpy event at its arrival time, on which the receiver
waits (a simpy process, or a ring device's callback: perfmodel.sim.collectives). Arrivals due
at the same instant share one event on simpy's queue (:meth:`ClusterSim.instant`), whose
callbacks wake each receiver in turn, in the order the transfers were posted; the same goes
for a sender waiting until its links are free (:meth:`ClusterSim.transfer`). A uniform ring,
whose devices all finish a step at once, thus needs one queue event per step; an uneven one
(every arrival at an instant of its own) one per transfer. The timeline is logged column by
column (one array entry per transfer) and made into one DataFrame at the end.

Stragglers and heterogeneity: a per-device slowdown stretches every transfer that device
sends; a per-link slowdown divides that link's bandwidth. Everything is deterministic: same
inputs, same timeline.
"""

from __future__ import annotations

import gc
import time
from array import array
from collections.abc import Callable, Generator, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import simpy

from perfmodel.errors import PlanError, ShapeError

__all__ = ["ClusterSim", "Timeline", "SimResult", "Arrival", "Link", "TIMELINE_COLUMNS"]

TIMELINE_COLUMNS = ["resource", "start", "end", "kind", "label"]
Edge = tuple[Hashable, Hashable]
Record = tuple[str, float, float, str, str]


@dataclass(frozen=True)
class Timeline:
    """Every hold of every resource: (resource, start s, end s, kind, label), time-ordered."""

    events: pd.DataFrame

    def tuples(self) -> list[tuple[str, float, float, str]]:
        """(resource, start, end, label) tuples, as simulator tests assert them."""
        return [(r.resource, r.start, r.end, r.label) for r in self.events.itertuples()]

    def busy_s(self) -> pd.Series:
        """Seconds each resource was held."""
        e = self.events
        return (e["end"] - e["start"]).groupby(e["resource"]).sum().sort_values(
            ascending=False)


@dataclass(frozen=True)
class SimResult:
    """The simulated time of a run, its timeline, and what it cost to simulate: ``events``
    scheduled on the simpy queue, ``transfers`` simulated, ``wall_s`` in ``env.run``."""

    time_s: float
    timeline: Timeline
    events: int
    wall_s: float
    assumptions: Mapping[str, Any] = field(default_factory=dict)
    transfers: int = 0


class Link:
    """One link direction: a capacity-1 first-come-first-served server.

    ``bandwidth_Bps`` is the achieved bandwidth (nominal x level efficiency / slowdown),
    ``latency_s`` the delay after a hold, ``free_at`` the time (s) the last transfer queued
    on it ends: a transfer posted at t starts at max(t, free_at) on a free route.
    """

    __slots__ = ("name", "bandwidth_Bps", "latency_s", "free_at")

    def __init__(self, name: str, bandwidth_Bps: float, latency_s: float,
                 free_at: float = 0.0) -> None:
        self.name = name
        self.bandwidth_Bps = bandwidth_Bps
        self.latency_s = latency_s
        self.free_at = free_at

    def __repr__(self) -> str:
        return f"Link({self.name!r}, free at {self.free_at!r} s)"


class Arrival(simpy.Event):
    """Fires when a transfer's data has arrived at its receiver. Posted with
    :meth:`ClusterSim.post` or :meth:`ClusterSim.transfer`, it is triggered and processed at
    the arrival time (``triggered`` means the data is there), together with everything else
    due at that instant."""

    def arrive_after(self, delay: float) -> None:
        """Trigger now and be processed ``delay`` s later, on an event of its own (what
        simpy.Timeout.__init__ does)."""
        self._ok = True
        self._value = None
        self.env.schedule(self, simpy.events.NORMAL, delay)

    def follow(self, event: simpy.Event) -> None:
        """Be triggered and processed when ``event`` is processed, at the same instant."""
        event.callbacks.append(self._fire)  # type: ignore[union-attr]

    def _fire(self, _: simpy.Event) -> None:
        # what Environment.step does with a popped event: mark it, run its callbacks
        self._ok = True
        self._value = None
        callbacks, self.callbacks = self.callbacks, None  # type: ignore[assignment]
        for callback in callbacks:
            callback(self)


class _Instant(simpy.Event):
    """The event of one instant ``at`` (s): triggered when made, as a Timeout is."""

    def __init__(self, env: simpy.Environment, at: float,
                 retire: Callable[[simpy.Event], None]) -> None:
        self.env = env
        self.callbacks = [retire]
        self._ok = True
        self._value = None
        self.at = at


@dataclass(frozen=True)
class _Route:
    edges: tuple[Edge, ...]
    links: tuple[Link, ...]
    names: tuple[str, ...]
    bandwidth_Bps: float
    latency_s: float
    index: int  # in ClusterSim's list of routes (the transfer log refers to it)


class ClusterSim:
    """One simulation: the environment, the links as FIFO servers, and the recorder.

    ``graph``: a topology DiGraph whose edges carry ``bandwidth_Bps`` and ``latency_s``.
    ``efficiency``: achieved / nominal bandwidth per edge ``level`` (e.g. {"scale_up": 0.8}).
    ``device_slowdown`` {device: factor >= 1}, ``link_slowdown`` {(u, v): factor >= 1}.
    ``start_s``: the simulation clock at the start (a fixed launch latency).
    ``record``: keep the timeline (one row per link per transfer, plus what processes add
    to ``records``).
    """

    def __init__(self, graph: nx.DiGraph, *, efficiency: Mapping[str, float] | None = None,
                 device_slowdown: Mapping[str, float] | None = None,
                 link_slowdown: Mapping[Edge, float] | None = None,
                 start_s: float = 0.0, record: bool = True) -> None:
        self.env = simpy.Environment(initial_time=start_s)
        self.graph = graph
        self.start_s = start_s
        self.record = record
        self.records: list[Record] = []  # holds other than transfers (e.g. compute)
        # the transfer log, one entry per transfer, column by column (cheap to append)
        self._log: tuple[array, array, array, list[str]] = (array("i"), array("d"),
                                                             array("d"), [])
        self._route_list: list[_Route] = []
        self._append: tuple[Callable[[Any], None], ...] | None = tuple(
            c.append for c in self._log) if record else None
        self._unlogged = 0  # transfers not in the log (record=False)
        self.device_slowdown = _check_factors(device_slowdown or {}, set(graph.nodes), "device")
        slow = _check_factors(link_slowdown or {}, set(graph.edges), "link")
        eff = efficiency or {}
        self.links: dict[Edge, Link] = {
            (u, v): Link(f"{u}->{v}", d["bandwidth_Bps"] * eff.get(d.get("level", ""), 1.0)
                         / slow.get((u, v), 1.0), d["latency_s"], start_s)
            for u, v, d in graph.edges(data=True)}
        self._routes: dict[Edge, _Route] = {}
        self._instants: dict[float, _Instant] = {}

    @property
    def transfers(self) -> int:
        """Transfers posted so far."""
        return len(self._log[3]) + self._unlogged

    def route(self, src: str, dst: str) -> _Route:
        """The fewest-hop route (networkx BFS: deterministic), cached."""
        key = (src, dst)
        r = self._routes.get(key)
        if r is None:
            try:
                path = nx.shortest_path(self.graph, src, dst)
            except (nx.NetworkXNoPath, nx.NodeNotFound) as exc:
                raise PlanError(f"no route from {src} to {dst}: {exc}",
                                "check the topology of the system") from None
            edges = tuple(sorted(zip(path[:-1], path[1:], strict=True)))
            links = tuple(self.links[e] for e in edges)
            r = _Route(edges, links, tuple(link.name for link in links),
                       min(link.bandwidth_Bps for link in links),
                       max(link.latency_s for link in links), len(self._route_list))
            self._routes[key] = r
            self._route_list.append(r)
        return r

    def arrival(self) -> Arrival:
        return Arrival(self.env)

    def instant(self, t: float) -> simpy.Event:
        """The event processed at time ``t`` (s, >= now), one for everything due then: its
        callbacks run in the order they were added (the order things were posted)."""
        ev = self._instants.get(t)
        if ev is None:
            env = self.env
            ev = self._instants[t] = _Instant(env, t, self._retire)
            env.schedule(ev, simpy.events.NORMAL, t - env.now)
        return ev

    def _retire(self, ev: simpy.Event) -> None:
        """An instant's first callback: whatever is posted for its time from now on gets a
        new instant (its callbacks are being run)."""
        del self._instants[ev.at]  # type: ignore[attr-defined]

    def hold(self, route: _Route, nbytes: float, slowdown: float = 1.0,
             label: str = "") -> float:
        """Queue a transfer of ``nbytes`` on every link of ``route`` now (first come, first
        served) and return the time (s) its hold ends: it starts when all are free and
        lasts nbytes / (route bandwidth) x ``slowdown``."""
        start = self.env.now
        links = route.links
        for link in links:
            if link.free_at > start:
                start = link.free_at
        end = start + nbytes / route.bandwidth_Bps * slowdown
        for link in links:
            link.free_at = end
        if self._append is not None:
            add_route, add_start, add_end, add_label = self._append
            add_route(route.index)
            add_start(start)
            add_end(end)
            add_label(label)
        else:
            self._unlogged += 1
        return end

    def send_on(self, route: _Route, nbytes: float, slowdown: float = 1.0,
                label: str = "") -> simpy.Event:
        """:meth:`hold` then :meth:`instant` of the arrival (hold end + route latency)."""
        end = self.hold(route, nbytes, slowdown, label) + route.latency_s
        ev = self._instants.get(end)
        return ev if ev is not None else self.instant(end)

    def _hold_from(self, src: str, dst: str, nbytes: float, label: str
                   ) -> tuple[float, float]:
        """:meth:`hold` on the route src -> dst, stretched by src's slowdown: (hold end,
        arrival time = hold end + route latency)."""
        r = self._routes.get((src, dst)) or self.route(src, dst)
        end = self.hold(r, nbytes, self.device_slowdown.get(src, 1.0), label)
        return end, end + r.latency_s

    def send(self, src: str, dst: str, nbytes: float, label: str = "") -> simpy.Event:
        """Post a transfer now; returns the event processed when its data has arrived at
        ``dst`` (the hold's end plus the route's latency), shared with whatever else is due
        at that instant: wait on it unless it is already processed."""
        return self.instant(self._hold_from(src, dst, nbytes, label)[1])

    def post(self, src: str, dst: str, nbytes: float, label: str = "",
             arrival: Arrival | None = None) -> None:
        """Post a transfer now, without waiting for it: it takes its links when they are
        free (FIFO) and ``arrival``, if given, fires when its data has arrived."""
        arrives = self._hold_from(src, dst, nbytes, label)[1]
        if arrival is not None:
            arrival.follow(self.instant(arrives))

    def transfer(self, src: str, dst: str, nbytes: float, label: str = "",
                 arrival: Arrival | None = None) -> Generator[simpy.Event, Any, None]:
        """Process body (use ``yield from``): send nbytes from src to dst over its route.

        Returns when the links are released (the sender is free); ``arrival``, if given,
        fires when the data has arrived at dst.
        """
        end, arrives = self._hold_from(src, dst, nbytes, label)
        if arrival is not None:
            arrival.follow(self.instant(arrives))
        done = self.instant(end)
        if done.callbacks is not None:
            yield done

    def timeline(self) -> pd.DataFrame:
        """Every hold recorded so far, one row per link per transfer plus ``records``,
        ordered by (start, resource) with ties in the order they were posted."""
        routes, log = self._route_list, self._log
        hops = np.array([len(r.names) for r in routes], dtype=np.int64)
        known = {link.name: i for i, link in enumerate(self.links.values())}  # name -> code
        hop_code = np.array([known[n] for r in routes for n in r.names], dtype=np.int64)
        first = np.cumsum(hops) - hops  # each route's first entry in hop_code
        # the log's columns as arrays without copies (empty buffers need a dtype'd zeros)
        route_ix = np.frombuffer(log[0], dtype=np.intc) if len(log[0]) else np.zeros(
            0, dtype=np.intc)
        start = np.frombuffer(log[1], dtype=float) if len(log[1]) else np.zeros(0)
        end = np.frombuffer(log[2], dtype=float) if len(log[2]) else np.zeros(0)
        label = np.array(log[3], dtype=object)
        if np.all(hops == 1):  # every route one link: one row per transfer
            code = hop_code[first[route_ix]]
        else:  # one row per link of each transfer
            per = hops[route_ix]
            row = np.repeat(np.arange(len(route_ix)), per)
            code = hop_code[first[route_ix[row]] + np.arange(len(row)) - np.repeat(
                np.cumsum(per) - per, per)]
            start, end, label = start[row], end[row], label[row]
        kind = np.zeros(len(code), dtype=np.int8)
        kinds = ["transfer"]
        if self.records:
            res, s0, e0, knd, lab = zip(*self.records, strict=True)
            code = np.concatenate([code, [known.setdefault(n, len(known)) for n in res]])
            kinds = list(dict.fromkeys(["transfer", *knd]))
            kind = np.concatenate([kind, np.array([kinds.index(k) for k in knd], np.int8)])
            start = np.concatenate([start, np.array(s0, dtype=float)])
            end = np.concatenate([end, np.array(e0, dtype=float)])
            label = np.concatenate([label, np.array(lab, dtype=object)])
        names = list(known)
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.argsort(np.array(names, dtype=str), kind="stable")] = np.arange(len(names))
        order = np.lexsort((rank[code], start))
        return pd.DataFrame({"resource": np.array(names, dtype=object)[code[order]],
                             "start": start[order], "end": end[order],
                             "kind": np.array(kinds, dtype=object)[kind[order]],
                             "label": label[order]})

    def run(self, until: float | None = None) -> SimResult:
        """Run to completion; the result's time is the clock when the last event fired.

        The garbage collector is paused while simpy runs: a run makes many short-lived
        objects (events, process frames) and hardly any garbage cycles, so sweeps would only
        cost time."""
        t0 = time.perf_counter()
        collect = gc.isenabled()
        gc.disable()
        try:
            self.env.run(until=until)
        finally:
            if collect:
                gc.enable()
        wall = time.perf_counter() - t0
        return SimResult(time_s=float(self.env.now), timeline=Timeline(self.timeline()),
                         events=_events_scheduled(self.env), wall_s=wall,
                         transfers=self.transfers)


def _check_factors(d: Mapping[Any, float], known: set[Any], what: str) -> dict[Any, float]:
    out = {}
    for k, f in d.items():
        if k not in known:
            raise PlanError(f"unknown {what} {k!r} in the slowdown map",
                            f"name a {what} of the topology (e.g. n0.d1)")
        if not (isinstance(f, int | float) and f >= 1):
            raise ShapeError(f"{what} slowdown for {k!r} must be a factor >= 1, got {f!r}",
                             "1 is nominal speed, 2 is half speed")
        out[k] = float(f)
    return out


def _events_scheduled(env: simpy.Environment) -> int:
    """Events the environment scheduled (simpy numbers each one; 0 if that changes)."""
    counter = getattr(env, "_eid", None)
    return int(next(counter)) if counter is not None else 0
