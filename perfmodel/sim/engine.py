"""ClusterSim: the simpy.Environment, one Resource per link direction, and a timeline recorder.

A transfer from device a to device b takes the route of fewest hops through the topology
graph (perfmodel.hardware.topology) and holds every link of it at once, like a cut-through
circuit: it waits until all are free, holds them for bytes / min(bandwidth on the route)
(serialization), releases them, and its data arrives max(latency on the route) later
(the per-step latency alpha is a delay, not link occupancy: LogP's L, not its g). An
uncontended step thus costs alpha + bytes / b, the alpha-beta model's step. Links are
``simpy.Resource(capacity=1)``: two flows on one link take turns, so contention emerges
rather than being assumed. Requests for all links of a route are queued
at one instant, so queues are ordered the same way on every link and no cycle of waiting
can form (no deadlock). Stragglers and heterogeneity: a per-device slowdown stretches every
transfer that device sends; a per-link slowdown divides that link's bandwidth. Everything is
deterministic: same inputs, same timeline.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import pandas as pd
import simpy

from perfmodel.errors import PlanError, ShapeError

__all__ = ["ClusterSim", "Timeline", "SimResult", "Arrival", "Link", "TIMELINE_COLUMNS"]

TIMELINE_COLUMNS = ["resource", "start", "end", "kind", "label"]
Edge = tuple[Hashable, Hashable]


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
    """The simulated time of a run, its timeline, and what it cost to simulate."""

    time_s: float
    timeline: Timeline
    events: int
    wall_s: float
    assumptions: Mapping[str, Any] = field(default_factory=dict)


class Link(simpy.Resource):
    """One link direction: a capacity-1 simpy Resource. A transfer that finds it idle with
    nobody queued takes it at once, without scheduling a Request event; a busy link queues
    a normal Request (FIFO). ``give_back`` does what ``Resource.release`` does - free the
    slot and grant the next queued request - without a Release event. This halves the events
    per transfer and changes no timing."""

    def __init__(self, env: simpy.Environment) -> None:
        super().__init__(env, capacity=1)

    def take_if_free(self) -> object | None:
        if self.users or self.put_queue:
            return None
        token = object()
        self.users.append(token)  # type: ignore[arg-type]
        return token

    def give_back(self, token: object) -> None:
        self.users.remove(token)  # type: ignore[arg-type]
        self._trigger_put(None)


class Arrival(simpy.Event):
    """Fires when a transfer's data has arrived: the route's latency after it left."""

    def arrive_after(self, delay: float) -> None:
        # what simpy.Timeout.__init__ does: mark ok and schedule after the delay
        self._ok = True
        self._value = None
        self.env.schedule(self, simpy.events.NORMAL, delay)


@dataclass(frozen=True)
class _Route:
    edges: tuple[Edge, ...]
    resources: tuple[Link, ...]
    names: tuple[str, ...]
    bandwidth_Bps: float
    latency_s: float


class ClusterSim:
    """One simulation: the environment, the links as resources, and the recorder.

    ``graph``: a topology DiGraph whose edges carry ``bandwidth_Bps`` and ``latency_s``.
    ``efficiency``: achieved / nominal bandwidth per edge ``level`` (e.g. {"scale_up": 0.8}).
    ``device_slowdown`` {device: factor >= 1}, ``link_slowdown`` {(u, v): factor >= 1}.
    ``start_s``: the simulation clock at the start (a fixed launch latency).
    """

    def __init__(self, graph: nx.DiGraph, *, efficiency: Mapping[str, float] | None = None,
                 device_slowdown: Mapping[str, float] | None = None,
                 link_slowdown: Mapping[Edge, float] | None = None,
                 start_s: float = 0.0, record: bool = True) -> None:
        self.env = simpy.Environment(initial_time=start_s)
        self.graph = graph
        self.start_s = start_s
        self.record = record
        self.records: list[tuple[str, float, float, str, str]] = []
        self.device_slowdown = _check_factors(device_slowdown or {}, set(graph.nodes), "device")
        slow = _check_factors(link_slowdown or {}, set(graph.edges), "link")
        eff = efficiency or {}
        self.links: dict[Edge, Link] = {}
        self._bw: dict[Edge, float] = {}
        for u, v, d in graph.edges(data=True):
            self.links[(u, v)] = Link(self.env)
            self._bw[(u, v)] = d["bandwidth_Bps"] * eff.get(d.get("level", ""), 1.0) \
                / slow.get((u, v), 1.0)
        self._routes: dict[Edge, _Route] = {}

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
            r = _Route(edges, tuple(self.links[e] for e in edges),
                       tuple(f"{u}->{v}" for u, v in edges),
                       min(self._bw[e] for e in edges),
                       max(self.graph.edges[e]["latency_s"] for e in edges))
            self._routes[key] = r
        return r

    def arrival(self) -> Arrival:
        return Arrival(self.env)

    def post(self, src: str, dst: str, nbytes: float, label: str = "",
             arrival: Arrival | None = None) -> bool:
        """Start a transfer now if every link of its route is idle with nobody queued:
        the links are released by a callback when the hold ends, so the sender needs no
        wake-up of its own. Returns False (nothing started) if any link is busy; then use
        ``yield from transfer(...)``, which queues."""
        r = self._routes.get((src, dst)) or self.route(src, dst)
        tokens: list[object] = []
        for res in r.resources:
            token = res.take_if_free()
            if token is None:
                for taken, tok in zip(r.resources, tokens, strict=False):
                    taken.give_back(tok)
                return False
            tokens.append(token)
        start = self.env.now
        hold = nbytes / r.bandwidth_Bps * self.device_slowdown.get(src, 1.0)
        done = self.env.timeout(hold)

        def release(_: simpy.Event) -> None:
            for res, tok in zip(r.resources, tokens, strict=True):
                res.give_back(tok)

        done.callbacks.append(release)
        if arrival is not None:
            arrival.arrive_after(hold + r.latency_s)
        if self.record:
            self.records.extend((name, start, start + hold, "transfer", label)
                                for name in r.names)
        return True

    def transfer(self, src: str, dst: str, nbytes: float, label: str = "",
                 arrival: Arrival | None = None) -> Generator[simpy.Event, Any, None]:
        """Process body (use ``yield from``): send nbytes from src to dst over its route.

        Returns when the links are released (the sender is free); ``arrival``, if given,
        fires when the data has arrived at dst.
        """
        r = self._routes.get((src, dst)) or self.route(src, dst)
        held: list[tuple[Link, object]] = []
        waiting = []
        for res in r.resources:  # every link taken or queued at one instant
            token = res.take_if_free()
            if token is None:
                req = res.request()
                token = req
                waiting.append(req)
            held.append((res, token))
        for req in waiting:
            yield req
        start = self.env.now
        yield self.env.timeout(nbytes / r.bandwidth_Bps * self.device_slowdown.get(src, 1.0))
        for res, token in held:
            res.give_back(token)
        if arrival is not None:
            arrival.arrive_after(r.latency_s)
        if self.record:
            end = self.env.now
            self.records.extend((name, start, end, "transfer", label) for name in r.names)

    def run(self, until: float | None = None) -> SimResult:
        """Run to completion; the result's time is the clock when the last event fired."""
        t0 = time.perf_counter()
        self.env.run(until=until)
        wall = time.perf_counter() - t0
        events = pd.DataFrame(self.records, columns=TIMELINE_COLUMNS)
        if len(events):
            events = events.sort_values(["start", "resource"], kind="stable",
                                        ignore_index=True)
        return SimResult(time_s=float(self.env.now), timeline=Timeline(events),
                         events=_events_scheduled(self.env), wall_s=wall)


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
