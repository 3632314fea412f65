"""Collectives on the simpy cluster simulator, decomposed into chunked steps over a topology.

Algorithms (``SIM_ALGORITHMS``):

- ring (all_reduce, reduce_scatter, all_gather): on each ring channel (hardware.topology.
  ring_channels) each device sends one block of V/(C p) bytes per step to its successor, in
  ``chunks`` pieces; piece j of step s waits for piece j of step s-1 to arrive from the
  predecessor, so steps pipeline piece by piece. all_reduce = 2(p-1) steps. On a torus the
  ring runs along each axis in turn, in 2D concurrent parts (``torus_collective``).
- hierarchical all_reduce: intra-node ring reduce-scatter, inter-node ring all-reduce,
  intra-node all-gather.
- ring broadcast / reduce: pipelined chains along every ring channel from / to rank 0.
- ring scatter / gather: rank 0 sends to / receives from every other rank directly, at once.
- ring all_to_all: pairwise exchange, p-1 rounds; in round r rank i sends V/p to rank i+r.
- ring send_recv: every rank sends V to the next rank at once (nccl-tests sendrecv).
- parameter_server (all_reduce, reduce, broadcast): rank 0 is the server; every worker
  pushes V in ``chunks`` pieces, the server then sends V back to each (all_reduce).

Contention is not assumed anywhere: it comes from the links, first-come-first-served servers
(perfmodel.sim.engine). The launch latency of the system starts the clock. Ring-family
devices are driven by the arrival events they wait on (``_RingDevice``, simpy callbacks);
the other algorithms are simpy processes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import simpy

from perfmodel.analytic.collectives import check_primitive
from perfmodel.analytic.network import link_efficiency
from perfmodel.errors import ShapeError, UnsupportedOpError
from perfmodel.hardware.system import SystemSpec
from perfmodel.hardware.topology import (
    build_topology,
    device_id,
    device_order,
    ring_channels,
    torus_coords,
)
from perfmodel.sim.engine import Arrival, ClusterSim, Edge, SimResult

__all__ = ["simulate_collective", "SIM_ALGORITHMS", "ring_collective", "torus_collective",
           "hierarchical_all_reduce", "run_parts", "Phase"]

Proc = Generator[simpy.Event, Any, None]


def _take(slots: dict[int, Arrival], key: int, sim: ClusterSim) -> Arrival:
    """The arrival event of one piece, shared by its sender and receiver: whoever comes
    first creates it, the second takes it out (so memory stays O(p))."""
    ev = slots.pop(key, None)
    if ev is None:
        ev = slots[key] = sim.arrival()
    return ev


@dataclass(frozen=True)
class Phase:
    """One ring phase of a part: each device sends ``steps`` blocks to its successor."""

    succ: Mapping[str, str]
    steps: int
    block: float
    labels: tuple[str, ...]


class _RingDevice:
    """One device's part of a (multi-phase) ring collective, driven by the arrivals it waits
    on: :meth:`step` is the simpy callback of the event it waits for (no process, no
    generator: a ring moves millions of pieces).

    Piece j of step s waits for piece j of step s-1 from the predecessor; a phase starts
    when the last step of the previous phase has fully arrived. Sends are posted without
    waiting for them (each link queues them, first come first served: ClusterSim.hold); the
    receiver waits on the piece's arrival event, or, if it asks before the sender posted,
    the sender hands it the arrival when it posts."""

    __slots__ = ("sim", "name", "phases", "chunks", "devices", "inbox", "need", "waiting",
                 "wake", "ph_i", "idx", "n", "base", "cur")

    def __init__(self, sim: ClusterSim, name: str, phases: list[Phase], chunks: int,
                 devices: Mapping[str, _RingDevice]) -> None:
        self.sim, self.name, self.phases, self.chunks = sim, name, phases, chunks
        self.devices = devices                   # the part's devices, by name
        self.inbox: dict[int, simpy.Event] = {}  # arrivals posted to it, by piece key
        self.need: list[int] = []                # keys still missing before the next send
        self.waiting = -1                        # the key it waits for, unposted; -1: none
        self.wake = self.step
        self.ph_i, self.idx, self.n, self.base = -1, 0, 0, 0
        self.cur: tuple[Any, ...] = ()           # what step() needs in the current phase

    def start(self) -> bool:
        """Move to the next phase with steps; False when there is none."""
        last = self.base + self.n - self.chunks  # key of piece 0 of the last step sent
        had_steps = self.n > 0
        while True:
            self.ph_i += 1
            if self.ph_i >= len(self.phases):
                return False
            ph = self.phases[self.ph_i]
            if ph.steps:
                break
        sim, succ = self.sim, ph.succ[self.name]
        self.idx, self.n, self.base = 0, ph.steps * self.chunks, self.ph_i << 32
        self.cur = (sim.send_on, sim.route(self.name, succ), ph.block / self.chunks,
                    sim.device_slowdown.get(self.name, 1.0), ph.labels, self.base, self.n,
                    self.chunks, self.devices[succ], self.inbox, self.need, self.wake)
        if had_steps:  # the previous phase's last step must have fully arrived
            self.need.extend(range(last, last + self.chunks))
        return True

    def step(self, _: simpy.Event | None = None) -> None:
        """Send every piece whose inputs are in; stop at the first missing one."""
        send, route, piece, slow, labels, base, n, chunks, succ, inbox, need, wake = self.cur
        idx = self.idx
        while True:
            while need:  # at a phase's start: every piece of the last step
                key = need.pop()
                ev = inbox.pop(key, None)
                if ev is None:  # not posted yet: the sender will wake us
                    need.append(key)
                    self.waiting, self.idx = key, idx
                    return
                if ev.callbacks is not None:  # posted, arrives later
                    ev.callbacks.append(wake)
                    self.idx = idx
                    return
            arrived = send(route, piece, slow, labels[idx])
            key = base + idx
            if succ.waiting == key:  # it asked already: wake it when the piece arrives
                succ.waiting = -1
                succ.need.pop()
                arrived.callbacks.append(succ.wake)
            else:
                succ.inbox[key] = arrived
            idx += 1
            if idx < n:
                if idx >= chunks:  # piece j of step s needs piece j of step s-1
                    key += 1 - chunks
                    ev = inbox.pop(key, None)
                    if ev is None:
                        need.append(key)
                        self.waiting, self.idx = key, idx
                        return
                    if ev.callbacks is not None:
                        ev.callbacks.append(wake)
                        self.idx = idx
                        return
            elif self.start():
                send, route, piece, slow, labels, base, n, chunks, succ, inbox, need, wake = \
                    self.cur
                idx = 0
            else:
                return


def _labels(name: str, steps: int, chunks: int) -> tuple[str, ...]:
    return tuple(name + (f"s{i // chunks}.{i % chunks}" if chunks > 1 else f"s{i}")
                 for i in range(steps * chunks))


def run_parts(sim: ClusterSim, parts: list[list[Phase]], chunks: int) -> None:
    """Start every device of every part at the current instant (in name order); parts run
    concurrently and share the links."""
    start = sim.instant(sim.env.now)
    for phases in parts:
        names = sorted({d for ph in phases for d in ph.succ})
        devices: dict[str, _RingDevice] = {}
        devices.update((d, _RingDevice(sim, d, phases, chunks, devices)) for d in names)
        for dev in devices.values():
            if dev.start():
                start.callbacks.append(dev.wake)  # type: ignore[union-attr]


def ring_collective(sim: ClusterSim, rings: list[list[str]], nbytes: float, steps: int,
                    chunks: int, name: str) -> None:
    """A ring collective of ``steps`` steps on each ring channel; each channel carries
    nbytes / C and each step moves a block of that / p per device."""
    parts = []
    for c, ring in enumerate(rings):
        p = len(ring)
        tag = f"{name} c{c} " if len(rings) > 1 else f"{name} "
        succ = {ring[i]: ring[(i + 1) % p] for i in range(p)}
        parts.append([Phase(succ, steps, nbytes / len(rings) / p, _labels(tag, steps, chunks))])
    run_parts(sim, parts, chunks)


def _line_succ(dims: tuple[int, ...], axis: int, step: int) -> dict[str, str]:
    coords = torus_coords(dims)
    index = {c: i for i, c in enumerate(coords)}
    out = {}
    for c in coords:
        nb = list(c)
        nb[axis] = (c[axis] + step) % dims[axis]
        out[device_id(0, index[c])] = device_id(0, index[tuple(nb)])
    return out


def torus_collective(sim: ClusterSim, dims: tuple[int, ...], nbytes: float, primitive: str,
                     chunks: int) -> None:
    """Multi-dimensional ring collective on a torus: the data is cut into 2D parts, one per
    (starting axis, direction); each part reduce-scatters along its axes in turn (the shard
    shrinks by the axis length each time) and all-gathers back in reverse. At any moment
    the parts use different axes and directions, so all 2D links of a chip are busy."""
    d = len(dims)
    parts = []
    for r in range(d):
        axes = [(r + k) % d for k in range(d)]
        for direction in (1, -1):
            shard, rs, ag = nbytes / (2 * d), [], []
            for a in axes:
                shard /= dims[a]
                succ = _line_succ(dims, a, direction)
                rs.append((succ, dims[a] - 1, shard, a))
            for succ, steps, block, a in reversed(rs):
                ag.append(Phase(succ, steps, block, _labels(f"ag x{a}{direction:+d} ", steps,
                                                            chunks)))
            rs_phases = [Phase(s_, n_, b_, _labels(f"rs x{a}{direction:+d} ", n_, chunks))
                         for s_, n_, b_, a in rs]
            chosen = {"all_reduce": rs_phases + ag, "reduce_scatter": rs_phases,
                      "all_gather": ag}[primitive]
            parts.append(chosen)
    run_parts(sim, parts, chunks)


def hierarchical_all_reduce(sim: ClusterSim, n: int, g: int, nbytes: float,
                            chunks: int) -> None:
    """Intra-node ring reduce-scatter, inter-node ring all-reduce among devices of the same
    local index (one ring per index; they share the node's NICs by rail), intra all-gather."""
    intra = {device_id(k, i): device_id(k, (i + 1) % g) for k in range(n) for i in range(g)}
    inter = {device_id(k, i): device_id((k + 1) % n, i) for k in range(n) for i in range(g)}
    shard = nbytes / g
    phases = [Phase(intra, g - 1, shard, _labels("rs ", g - 1, chunks)),
              Phase(inter, 2 * (n - 1), shard / n, _labels("inter ", 2 * (n - 1), chunks)),
              Phase(intra, g - 1, shard, _labels("ag ", g - 1, chunks))]
    run_parts(sim, [phases], chunks)


def _chain(sim: ClusterSim, rings: list[list[str]], nbytes: float, chunks: int, name: str,
           backwards: bool) -> None:
    """Pipelined chains from rank 0 along every ring channel, each carrying nbytes / C in
    ``chunks`` pieces: broadcast (reduce runs the chains backwards, into rank 0). With k
    pieces a chain of p devices takes (p-2+k)(alpha + V/(C k b)): the closed form's
    (p-1)alpha + V/b is its limit for many pieces."""
    piece = nbytes / len(rings) / chunks
    for c, ring in enumerate(rings):
        start = ring.index(rings[0][0])
        order = ring[start:] + ring[:start]
        order = order[1:] + order[:1] if backwards else order  # ... -> rank 0
        boxes: list[dict[int, Arrival]] = [{} for _ in order]

        def hop(i: int, order: list[str] = order, boxes: list[dict[int, Arrival]] = boxes,
                c: int = c) -> Proc:
            for j in range(chunks):
                if i > 0:
                    ev = _take(boxes[i - 1], j, sim)
                    if not ev.processed:
                        yield ev
                yield from sim.transfer(order[i], order[i + 1], piece,
                                        f"{name} c{c} h{i}.{j}", _take(boxes[i], j, sim))

        for i in range(len(order) - 1):
            sim.env.process(hop(i))


def _send(sim: ClusterSim, src: str, dst: str, nbytes: float, label: str, last: bool
          ) -> Proc:
    """A transfer; the ``last`` of a flow also waits for its data to arrive (the route's
    latency after the hold), so the collective ends when its data is there, not when the
    final send leaves its link."""
    arrival = Arrival(sim.env) if last else None
    yield from sim.transfer(src, dst, nbytes, label, arrival=arrival)
    if arrival is not None and not arrival.processed:
        yield arrival


def _root_direct(sim: ClusterSim, order: list[str], nbytes: float, chunks: int, name: str,
                 inward: bool) -> None:
    """Scatter (root sends V/p to each rank) or gather (each rank sends V/p to the root),
    all flows at once; the root's links take turns."""
    root, piece = order[0], nbytes / len(order) / chunks

    def one(peer: str) -> Proc:
        for j in range(chunks):
            src, dst = (peer, root) if inward else (root, peer)
            yield from _send(sim, src, dst, piece, f"{name} {peer}.{j}", j == chunks - 1)

    for peer in order[1:]:
        sim.env.process(one(peer))


def _all_to_all(sim: ClusterSim, order: list[str], nbytes: float, chunks: int) -> None:
    """Pairwise exchange (Thakur et al. 2005, long messages): p-1 rounds, in round r device
    i sends V/p to device i+r; a device starts round r+1 when its send of round r is done."""
    p = len(order)
    piece = nbytes / p / chunks

    def device(i: int) -> Proc:
        for r in range(1, p):
            for j in range(chunks):
                yield from _send(sim, order[i], order[(i + r) % p], piece, f"a2a r{r}.{j}",
                                 r == p - 1 and j == chunks - 1)

    for i in range(p):
        sim.env.process(device(i))


def _send_recv(sim: ClusterSim, order: list[str], nbytes: float, chunks: int) -> None:
    def device(i: int) -> Proc:
        for j in range(chunks):
            yield from _send(sim, order[i], order[(i + 1) % len(order)], nbytes / chunks,
                             f"sendrecv .{j}", j == chunks - 1)

    for i in range(len(order)):
        sim.env.process(device(i))


def _parameter_server(sim: ClusterSim, order: list[str], nbytes: float, chunks: int,
                      push: bool, pull: bool) -> None:
    server, workers, piece = order[0], order[1:], nbytes / chunks

    def move(src: str, dst: str, label: str) -> Proc:
        last = None
        for j in range(chunks):
            last = sim.arrival()
            yield from sim.transfer(src, dst, piece, f"{label}.{j}", last)
        if last is not None and not last.processed:
            yield last

    def run() -> Proc:
        if push:
            yield sim.env.all_of([sim.env.process(move(w, server, f"push {w}"))
                                  for w in workers])
        if pull:
            yield sim.env.all_of([sim.env.process(move(server, w, f"pull {w}"))
                                  for w in workers])

    sim.env.process(run())


Starter = Callable[[ClusterSim, SystemSpec, int, int, float, int], None]


def _ring(primitive: str, phases: int) -> Starter:
    def start(sim: ClusterSim, system: SystemSpec, n: int, g: int, v: float, k: int) -> None:
        if system.scale_up.topology == "torus" and n == 1:
            torus_collective(sim, system.scale_up.dims, v, primitive, k)
            return
        rings = ring_channels(system, n, g)
        ring_collective(sim, rings, v, phases * (n * g - 1), k, primitive)
    return start


def _order(system: SystemSpec, n: int, g: int) -> list[str]:
    return ring_channels(system, n, g)[0]


SIM_ALGORITHMS: dict[tuple[str, str], Starter] = {
    ("ring", "all_reduce"): _ring("all_reduce", 2),
    ("ring", "reduce_scatter"): _ring("reduce_scatter", 1),
    ("ring", "all_gather"): _ring("all_gather", 1),
    ("ring", "broadcast"): lambda s, y, n, g, v, k: _chain(
        s, ring_channels(y, n, g), v, k, "bcast", backwards=False),
    ("ring", "reduce"): lambda s, y, n, g, v, k: _chain(
        s, ring_channels(y, n, g), v, k, "reduce", backwards=True),
    ("ring", "scatter"): lambda s, y, n, g, v, k: _root_direct(s, _order(y, n, g), v, k,
                                                               "scatter", inward=False),
    ("ring", "gather"): lambda s, y, n, g, v, k: _root_direct(s, _order(y, n, g), v, k,
                                                              "gather", inward=True),
    ("ring", "all_to_all"): lambda s, y, n, g, v, k: _all_to_all(s, _order(y, n, g), v, k),
    ("ring", "send_recv"): lambda s, y, n, g, v, k: _send_recv(s, _order(y, n, g), v, k),
    ("hierarchical", "all_reduce"): lambda s, y, n, g, v, k: hierarchical_all_reduce(
        s, n, g, v, k),
    ("parameter_server", "all_reduce"): lambda s, y, n, g, v, k: _parameter_server(
        s, _order(y, n, g), v, k, push=True, pull=True),
    ("parameter_server", "reduce"): lambda s, y, n, g, v, k: _parameter_server(
        s, _order(y, n, g), v, k, push=True, pull=False),
    ("parameter_server", "broadcast"): lambda s, y, n, g, v, k: _parameter_server(
        s, _order(y, n, g), v, k, push=False, pull=True),
}


def simulate_collective(system: SystemSpec, primitive: str, size: float,
                        nodes: int | None = None, per_node: int | None = None,
                        algorithm: str = "ring", chunks: int = 1,
                        device_slowdown: Mapping[str, float] | None = None,
                        link_slowdown: Mapping[Edge, float] | None = None,
                        record: bool = True) -> SimResult:
    """Simulate one collective of ``size`` bytes (nccl-tests convention) event by event.

    ``chunks``: pieces per step (granularity). Link bandwidths are scaled by each level's
    efficiency at ``size``, as in the analytic model.

    >>> from perfmodel.hardware.system import load_system
    >>> r = simulate_collective(load_system("dgx-h100"), "all_reduce", 1 << 20, record=False)
    >>> r.time_s > 0
    True
    """
    check_primitive(primitive)
    if (algorithm, primitive) not in SIM_ALGORITHMS:
        have = sorted(f"{a} {p}" for a, p in SIM_ALGORITHMS)
        raise UnsupportedOpError(f"the simulator has no {algorithm} {primitive}",
                                 "simulated: " + ", ".join(have))
    if not (size > 0) or int(chunks) != chunks or chunks < 1:
        raise ShapeError(f"size must be > 0 bytes and chunks a whole number >= 1, got "
                         f"{size!r}, {chunks!r}", "e.g. --bytes 1M, --chunks 4")
    n, g = system.shape(nodes, per_node)
    if n * g < 2:
        raise ShapeError("a collective needs at least 2 devices", "raise --gpus or --nodes")
    graph = build_topology(system, n, g)
    # the same efficiencies as the analytic model, read at the message one step moves
    eff = link_efficiency(system, n, g, float(size),
                          whole_buffer=algorithm == "parameter_server")
    sim = ClusterSim(graph, efficiency=eff, device_slowdown=device_slowdown,
                     link_slowdown=link_slowdown, start_s=system.launch_latency_s,
                     record=record)
    SIM_ALGORITHMS[(algorithm, primitive)](sim, system, n, g, float(size), int(chunks))
    result = sim.run()
    return SimResult(result.time_s, result.timeline, result.events, result.wall_s,
                     {"system": system.name, "primitive": primitive, "algorithm": algorithm,
                      "nodes": n, "per_node": g, "chunks": int(chunks), "efficiency": eff,
                      "devices": len(device_order(graph)),
                      "launch_latency_s": system.launch_latency_s,
                      "method": "discrete-event simulation (simpy), one FIFO server per link "
                                "direction, fewest-hop routes, cut-through holds"},
                     result.transfers)
