"""Collective time on a SystemSpec: the alpha-beta closed forms with a system's link figures.

A system has up to two levels: the scale-up fabric inside a node and the scale-out network
between nodes. For each level the model takes its per-step latency alpha, the bandwidth a
bandwidth-optimal algorithm gets per device (``ring_Bps``), one device's injection bandwidth
(``port_Bps``) and the size-dependent efficiency curve, all from the system file. A flat
algorithm over n nodes of g devices runs at the slower level's bandwidth; its latency counts
the steps that cross nodes at the network's alpha and the rest at the fabric's, as NCCL's own
tuning model does (NVIDIA/nccl src/graph/tuning.cc, ncclTopoTuneModel: intra steps x
intraLat + inter steps x interLat; trees are chains inside a node).

``algorithm="auto"`` takes, for all-reduce, the algorithm NCCL's tuner picks with its own cost
model and constants (ncclTopoTuneModel / ncclTopoGetAlgoTime, perfmodel.analytic.nccl), then
times it with this module's model; other primitives use ring. The tree is NCCL's double
binary tree (a chain inside each node), whose bandwidth does not shrink with p.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.collectives import (
    BUS_FACTOR,
    CLOSED_FORMS,
    HIERARCHICAL,
    check_algorithm,
    check_primitive,
)
from perfmodel.analytic.nccl import (
    load_tuning,
    nccl_all_reduce_choice,
    nccl_pick,
    nvlink_nccl_GBps,
    tree_all_reduce,
)
from perfmodel.errors import PlanError, ShapeError
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.system import Fabric, SystemSpec
from perfmodel.units import dtype_bytes

__all__ = ["Level", "CollectivePrediction", "levels", "predict_collective", "RING_BANDWIDTH",
           "PORT_BANDWIDTH", "PATH_BANDWIDTH", "ALL_TO_ALL_TIME", "SERVER_TIME", "COLUMNS",
           "uplink_paced", "link_efficiency"]

TORUS_PRIMITIVES = ("all_reduce", "reduce_scatter", "all_gather")
COLUMNS = ["size_bytes", "count", "type", "time_us", "algbw_GBps", "busbw_GBps", "algorithm",
           "p", "nodes", "per_node", "latency_us", "transfer_us", "efficiency"]


@dataclass(frozen=True)
class Level:
    """One level of a system as the alpha-beta model sees it (SI units).

    ``eff(v, pieces)`` reads the efficiency curve at the message one step moves, v / pieces,
    times ``eff_scale``: a curve measured at bandwidth B_ref applies to this level's ring
    bandwidth b at size x B_ref / b. A link's efficiency follows the size of the pieces it
    carries (NCCL cuts a ring's buffer into p per-step chunks), which is why a 2-GPU ring on
    NVSwitch reaches a higher busbw at 16 MiB than an 8-GPU one (vidur's A100 DGX rows: 121
    vs 107 GB/s). pieces = p on the network; inside a node the node's share, g, since the
    scale-up curves were measured on single nodes (p = g) and nothing published says how
    NVLink pieces behave inside a multi-node ring; 1 where a transfer carries the whole
    buffer (parameter server, send/recv).
    """

    name: str
    alpha_s: float
    ring_Bps: float
    port_Bps: float
    efficiency: EfficiencyCurve
    eff_scale: float = 1.0

    def eff(self, v: np.ndarray | float, pieces: float) -> np.ndarray:
        return self.efficiency.at(np.asarray(v, dtype=float) * self.eff_scale / pieces)


def _rings_on_mesh(g: int) -> int:
    """Disjoint rings on a full mesh of g devices: ring j visits i, i+j, ... (gcd(j, g) = 1)."""
    return sum(1 for j in range(1, g) if math.gcd(j, g) == 1) if g > 2 else 1


def _crosses_uplink(f: Fabric, g: int) -> bool:
    return g > (f.devices_per_switch or g) if f.topology == "pcie_tree" else g > 2


def uplink_paced(f: Fabric, g: int) -> bool:
    """Does a ring over g devices of this fabric run at its PCIe uplink's rate and the
    uplink's own efficiency (``uplink_efficiency`` given)?"""
    return (f.uplink_efficiency is not None and f.topology in ("pcie_tree", "pairs")
            and f.uplink_Bps is not None and _crosses_uplink(f, g)
            and f.uplink_Bps <= f.bandwidth_Bps)


# Per-device bandwidth of a bandwidth-optimal (ring) collective over g devices of one node.
RING_BANDWIDTH: dict[str, Callable[[Fabric, int], float]] = {
    "switch": lambda f, g: f.bandwidth_Bps,
    "ring": lambda f, g: f.bandwidth_Bps,
    "full_mesh": lambda f, g: _rings_on_mesh(g) * f.bandwidth_Bps,
    "torus": lambda f, g: 2 * len(f.dims) * f.bandwidth_Bps,   # a ring per axis and direction
    "pcie_tree": lambda f, g: min(f.bandwidth_Bps, f.uplink_Bps or f.bandwidth_Bps)
    if _crosses_uplink(f, g) else f.bandwidth_Bps,
    "pairs": lambda f, g: min(f.bandwidth_Bps, f.uplink_Bps or f.bandwidth_Bps)
    if _crosses_uplink(f, g) else f.bandwidth_Bps,
}
# One device's total injection bandwidth into the fabric.
PORT_BANDWIDTH: dict[str, Callable[[Fabric, int], float]] = {
    "switch": lambda f, g: f.bandwidth_Bps,
    "ring": lambda f, g: f.bandwidth_Bps,
    "full_mesh": lambda f, g: max(g - 1, 1) * f.bandwidth_Bps,
    "torus": lambda f, g: 2 * len(f.dims) * f.bandwidth_Bps,
    "pcie_tree": lambda f, g: f.bandwidth_Bps,
    "pairs": lambda f, g: f.bandwidth_Bps + (f.uplink_Bps or 0.0),
}


def _a2a_pcie(f: Fabric, g: int, v: np.ndarray) -> np.ndarray:
    m = min(f.devices_per_switch or g, g)  # the m devices of a switch send V/g to g-m others
    t = (g - 1) / g * v / f.bandwidth_Bps
    return np.maximum(t, m * (g - m) / g * v / (f.uplink_Bps or f.bandwidth_Bps))


def _a2a_pairs(f: Fabric, g: int, v: np.ndarray) -> np.ndarray:
    # every pairwise round but the bridged one for g = 2 crosses PCIe
    b = f.bandwidth_Bps if g <= 2 else min(f.bandwidth_Bps, f.uplink_Bps or f.bandwidth_Bps)
    return (g - 1) / g * v / b


def _a2a_torus(f: Fabric, g: int, v: np.ndarray) -> np.ndarray:
    # ideal routing bound: uniform traffic travels the average shortest-path hops
    # sum(L/4 per axis, even L with wraparound) spread evenly over the 2D links of a chip
    # (the simulator's fewest-hop routes are not balanced and come out slower)
    hops = sum(L / 4 if L % 2 == 0 else (L * L - 1) / (4 * L) for L in f.dims)
    return (g - 1) / g * v * hops / (2 * len(f.dims) * f.bandwidth_Bps)


# Transfer time of a pairwise-exchange all-to-all inside one node (p-1 rounds, round r:
# device i sends V/g to device i+r; Thakur et al. 2005), the bottleneck link per round.
ALL_TO_ALL_TIME: dict[str, Callable[[Fabric, int, np.ndarray], np.ndarray]] = {
    "switch": lambda f, g, v: (g - 1) / g * v / f.bandwidth_Bps,
    "ring": lambda f, g, v: (g - 1) / g * v / f.bandwidth_Bps * max(g // 4, 1),
    "full_mesh": lambda f, g, v: (g - 1) / g * v / f.bandwidth_Bps,  # one link per round
    "pcie_tree": _a2a_pcie, "pairs": _a2a_pairs, "torus": _a2a_torus,
}


# Bandwidth of one flow between ring neighbours inside a node (send/recv).
PATH_BANDWIDTH: dict[str, Callable[[Fabric, int], float]] = {
    "switch": lambda f, g: f.bandwidth_Bps, "ring": lambda f, g: f.bandwidth_Bps,
    "full_mesh": lambda f, g: f.bandwidth_Bps, "torus": lambda f, g: f.bandwidth_Bps,
    "pcie_tree": lambda f, g: RING_BANDWIDTH["pcie_tree"](f, g),
    "pairs": lambda f, g: RING_BANDWIDTH["pairs"](f, g),
}


def _server_pcie(f: Fabric, g: int, v: np.ndarray) -> np.ndarray:
    m = min(f.devices_per_switch or g, g)  # server on switch 0: the other switches' workers
    return np.maximum((g - 1) * v / f.bandwidth_Bps,              # come in over its uplink
                      (g - m) * v / (f.uplink_Bps or f.bandwidth_Bps))


def _server_pairs(f: Fabric, g: int, v: np.ndarray) -> np.ndarray:
    return np.maximum(v / f.bandwidth_Bps, (g - 2) * v / (f.uplink_Bps or 1.0))


# One phase of a parameter server on device 0: it takes V from each of the g-1 others.
SERVER_TIME: dict[str, Callable[[Fabric, int, np.ndarray], np.ndarray]] = {
    "switch": lambda f, g, v: (g - 1) * v / f.bandwidth_Bps,
    "ring": lambda f, g, v: (g - 1) * v / (min(g - 1, 2) * f.bandwidth_Bps),
    "full_mesh": lambda f, g, v: v / f.bandwidth_Bps,       # one link per worker
    "torus": lambda f, g, v: (g - 1) * v / (2 * len(f.dims) * f.bandwidth_Bps),
    "pcie_tree": _server_pcie, "pairs": _server_pairs,
}


def levels(system: SystemSpec, nodes: int | None = None, per_node: int | None = None
           ) -> tuple[Level, Level | None]:
    """(intra-node level, network level or None) for a run of nodes x per_node devices."""
    n, g = system.shape(nodes, per_node)
    f = system.scale_up
    ring = RING_BANDWIDTH[f.topology](f, g)
    up = f.uplink_efficiency if uplink_paced(f, g) else None  # the PCIe hop sets the pace
    curve, scale = (up, 1.0) if up is not None else (
        f.efficiency, (f.efficiency_ref_Bps or f.bandwidth_Bps) / ring)
    intra = Level(f.name, f.latency_s, ring, PORT_BANDWIDTH[f.topology](f, g), curve, scale)
    net = system.scale_out
    if n == 1 or net is None:
        return intra, None
    spans_leaves = bool(net.nodes_per_leaf) and n > (net.nodes_per_leaf or n)
    node_bw = net.node_Bps / (net.oversubscription if spans_leaves else 1.0)
    return intra, Level(net.name, net.latency_s, node_bw, net.nic_Bps, net.efficiency,
                        (net.efficiency_ref_Bps or net.node_Bps) / node_bw)


def link_efficiency(system: SystemSpec, nodes: int, per_node: int, size: float,
                    whole_buffer: bool = False) -> dict[str, float]:
    """Efficiency per topology edge ``level`` (scale_up, uplink, scale_out) for one
    collective of ``size`` bytes: the readings ``levels`` gives the analytic model, at the
    message one step moves (the buffer itself where ``whole_buffer``: parameter server)."""
    n, g = nodes, per_node
    intra, inter = levels(system, n, g)
    f = system.scale_up
    pieces = 1.0 if whole_buffer else float(g)
    out = {"scale_up": float(intra.eff(size, pieces))}
    out["uplink"] = out["scale_up"]
    if f.uplink_efficiency is not None:   # PCIe uplinks have their own figure
        out["uplink"] = float(f.uplink_efficiency.at(size / pieces))
    if uplink_paced(f, g):                # intra is the uplink; the other links read theirs
        own = Level(f.name, f.latency_s, f.bandwidth_Bps, f.bandwidth_Bps, f.efficiency,
                    (f.efficiency_ref_Bps or f.bandwidth_Bps) / f.bandwidth_Bps)
        out["scale_up"] = float(own.eff(size, pieces))
    if inter is not None:
        out["scale_out"] = float(inter.eff(size, 1.0 if whole_buffer else n * g))
    return out


@dataclass(frozen=True)
class CollectivePrediction:
    """One row per size (COLUMNS) plus the assumptions behind every number."""

    table: pd.DataFrame
    assumptions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"assumptions": self.assumptions, "rows": self.table.to_dict("records")}


def _flat(primitive: str, algorithm: str, v: np.ndarray, n: int, g: int, intra: Level,
          inter: Level | None, fabric: Fabric) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latency s, transfer s, efficiency) of a one-level algorithm across the whole run."""
    p = np.full_like(v, n * g)
    steps, traffic = CLOSED_FORMS[(algorithm, primitive)](v, p)
    # ring and tree alike: the per-step message, V / p on the network; inside a node the
    # node's share V / g (the curves were measured on single nodes, where p = g)
    eff = intra.eff(v, g)
    bw: np.ndarray = intra.ring_Bps * eff
    lat: np.ndarray
    if algorithm == "parameter_server":
        return _server(primitive, v, n, g, intra, inter, fabric)
    if algorithm == "tree" and primitive == "all_reduce":
        return _nccl_tree(v, n, g, intra, inter, fabric)
    if algorithm == "tree":  # NCCL: a chain inside each node, a binary tree across nodes
        phases = 2 if primitive == "all_reduce" else 1
        lat = np.full_like(v, phases * (
            (g - 1) * intra.alpha_s
            + (math.ceil(math.log2(n)) * inter.alpha_s if inter else 0.0)))
    elif inter is None and fabric.topology == "torus" and primitive in TORUS_PRIMITIVES:
        # the ring runs along each axis in turn: sum(L-1) steps per phase, not p-1
        lat = steps / (n * g - 1) * sum(L - 1 for L in fabric.dims) * intra.alpha_s
    elif inter is None:
        lat = steps * intra.alpha_s
    else:
        inter_steps, _ = CLOSED_FORMS[(algorithm, primitive)](v, np.full_like(v, n))
        lat = (steps - inter_steps) * intra.alpha_s + inter_steps * inter.alpha_s
    if inter is not None:
        inter_eff = inter.eff(v, n * g)
        bw = np.minimum(bw, inter.ring_Bps * inter_eff)
        eff = np.where(inter.ring_Bps * inter_eff < intra.ring_Bps * eff, inter_eff, eff)
    if primitive == "all_to_all" and algorithm == "ring":
        return lat, _all_to_all_transfer(v, n, g, intra, inter, fabric), eff
    if primitive in ("scatter", "gather") and algorithm == "ring":
        # the root exchanges V/p with every other device directly, all at once
        _, tr, _ = _server("reduce", v / (n * g), n, g, intra, inter, fabric)
        return lat, tr, eff
    if primitive == "send_recv":  # one flow per device to its ring neighbour
        one = PATH_BANDWIDTH[fabric.topology](fabric, g) * intra.eff(v, 1.0)
        if inter is not None:
            one = np.minimum(one, inter.port_Bps * inter.eff(v, 1.0))
        return lat, traffic / one, eff
    return lat, traffic / bw, eff


def _peak(level: Level) -> float:
    """A level's large-message bandwidth: ring bandwidth x the curve's last efficiency."""
    return level.ring_Bps * float(level.efficiency.values[-1])


def _tree_bus(intra: Level, inter: Level | None) -> float:
    return _peak(intra) if inter is None else min(_peak(intra), _peak(inter))


def _nccl_tree(v: np.ndarray, n: int, g: int, intra: Level, inter: Level | None,
               fabric: Fabric) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NCCL's tree all-reduce (perfmodel.analytic.nccl): a chain of g inside each node, two
    binary trees across the n nodes, in the protocol NCCL's tuner picks for a tree at each
    size. Its bandwidth is the bottleneck level's large-message bandwidth: NCCL's protocol
    factors and tree correction factor stand for the size dependence (the network curve is
    read at a ring's per-step message, which a pipelined tree does not shrink with p)."""
    bus = _tree_bus(intra, inter)
    nvlink = TREE_NVLINK[fabric.topology](fabric, g)
    per = tree_all_reduce(v, n, g, intra.alpha_s, inter.alpha_s if inter else 0.0, bus,
                          nvlink)
    _, proto = nccl_all_reduce_choice(v, n, g, bus, nvlink, algorithms=("tree",))
    lat = np.select([proto == k for k in per], [per[k][0] for k in per])
    tr = np.select([proto == k for k in per], [per[k][1] for k in per])
    ref = intra.ring_Bps if inter is None or _peak(intra) <= _peak(inter) else inter.ring_Bps
    return lat, tr, np.full_like(v, bus / ref)


# Does the intra-node chain of a tree run over NVLink-class links (NCCL's NVLINK hwLat) or
# over PCIe (its PCI hwLat)?
TREE_NVLINK: dict[str, Callable[[Fabric, int], bool]] = {
    "switch": lambda f, g: True, "ring": lambda f, g: True, "full_mesh": lambda f, g: True,
    "torus": lambda f, g: True, "pcie_tree": lambda f, g: False,
    "pairs": lambda f, g: g <= 2,
}


def _all_to_all_transfer(v: np.ndarray, n: int, g: int, intra: Level, inter: Level | None,
                         fabric: Fabric) -> np.ndarray:
    """Each device sends V/p to every peer: inside a node the fabric's bottleneck
    (ALL_TO_ALL_TIME on the node's share g/p of V); across nodes each node's NICs carry
    g(p-g)V/p (the part leaving the node)."""
    p = n * g
    t = ALL_TO_ALL_TIME[fabric.topology](fabric, g, v * g / p) / intra.eff(v, g)
    if inter is not None:
        t = np.maximum(t, g * (p - g) / p * v / (inter.ring_Bps * inter.eff(v, p)))
    return t


def _server(primitive: str, v: np.ndarray, n: int, g: int, intra: Level, inter: Level | None,
            fabric: Fabric) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parameter server on device 0: per phase it takes (g-1)V through the node's fabric
    (SERVER_TIME) and (p-g)V over its own NIC, concurrently; all-reduce is a push phase then
    a pull phase."""
    phases = 2 if primitive == "all_reduce" else 1
    eff = intra.eff(v, 1.0)  # every transfer carries the whole buffer
    t = SERVER_TIME[fabric.topology](fabric, g, v) / eff if g > 1 else np.zeros_like(v)
    alpha = intra.alpha_s
    if inter is not None:
        t = np.maximum(t, (n - 1) * g * v / (inter.port_Bps * inter.eff(v, 1.0)))
        alpha = inter.alpha_s
    return np.full_like(v, phases * alpha), phases * t, eff


def _hierarchical(primitive: str, v: np.ndarray, n: int, g: int, intra: Level,
                  inter: Level | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eff = intra.eff(v, g)  # the intra-node ring cuts V into g pieces
    phases = 2 if primitive == "all_reduce" else 1
    lat = np.full_like(v, phases * (g - 1) * intra.alpha_s)
    tr = phases * (g - 1) / g * v / (intra.ring_Bps * eff)
    if inter is not None:
        steps, traffic = CLOSED_FORMS[("ring", primitive)](v / g, np.full_like(v, n))
        lat = lat + steps * inter.alpha_s
        tr = tr + traffic * g / (inter.ring_Bps * inter.eff(v, n * g))
    return lat, tr, eff


def _candidates(system: SystemSpec, primitive: str, algorithm: str) -> list[str]:
    nvls = system.scale_up.nvls
    if algorithm == "nvls" and not nvls:
        raise PlanError(f"{system.name} has no NVLink SHARP: nvls needs NVSwitch gen 3 or "
                        "later (H100, H200, B200 boards) declared in the system file",
                        "use --algo auto, ring or tree, or give the system scale_up.nvls: "
                        "{value: true, source: ...}")
    if algorithm != "auto":
        return [check_algorithm(algorithm, primitive)]
    if primitive != "all_reduce":
        return ["ring"]
    return ["ring", "tree", "nvls"] if nvls else ["ring", "tree"]


def _nvls_eff(system: SystemSpec, g: int, v: np.ndarray) -> np.ndarray:
    """Achieved / nominal port bandwidth of NVLS traffic at per-rank buffer V: the system's
    ``nvls_efficiency`` (read at V x reference / bandwidth), else NCCL's own figure,
    nvlsEfficiency x its NVLink bandwidth / the nominal one (Hopper: 0.85 x 20.6 / 25)."""
    f = system.scale_up
    if f.nvls_efficiency is not None:
        scale = (f.nvls_efficiency_ref_Bps or f.bandwidth_Bps) / f.bandwidth_Bps
        return f.nvls_efficiency.at(v * scale)
    arch = system.architecture or "hopper"
    t = load_tuning().current
    ratio = nvlink_nccl_GBps(1.0, arch)
    return np.full(v.shape, t["nvls_efficiency"][arch] * ratio)


def _nvls(system: SystemSpec, v: np.ndarray, n: int, g: int, intra: Level,
          inter: Level | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NVLink SHARP all-reduce (NCCL's NVLS on one node, NVLS-tree across nodes).

    One node: the switch reduces in-network, so each device moves V (p+1)/p per direction
    (CLOSED_FORMS["nvls", "all_reduce"]) at its port bandwidth x the NVLS efficiency, in 2
    switch traversals (reduce, multicast) at the fabric's alpha. Across nodes (NVLS-tree,
    NCCL >= 2.18): NVLS reduce-scatters inside each node, each device's NIC runs a tree
    all-reduce of its V/g slice across the nodes (V/g each way on 2 nodes, 2 V/g through
    the inner nodes of the double binary tree beyond: NCCL's 2x interBw for <= 2 nodes) and
    NVLS gathers back; the stages pipeline, so the transfer is the slower one, and the
    latency adds 2 floor(log2 n) network hops (ncclTopoTuneModel, NVLS_TREE)."""
    p = float(n * g)
    _, traffic = CLOSED_FORMS[("nvls", "all_reduce")](v, np.full_like(v, g))
    eff = _nvls_eff(system, g, v)
    tr = traffic / (intra.port_Bps * eff)
    lat = np.full_like(v, 2 * intra.alpha_s)
    if inter is not None:
        per_nic = inter.ring_Bps / g * inter.eff(v, p)
        net = v / g * (1.0 if n <= 2 else 2.0) / per_nic
        tr = np.maximum(tr, net)
        lat = lat + 2 * math.floor(math.log2(n)) * inter.alpha_s
    return lat, tr, eff


def _auto_pick(system: SystemSpec, v: np.ndarray, n: int, g: int, intra: Level,
               inter: Level | None) -> np.ndarray:
    """The algorithm NCCL's tuner picks for an all-reduce: NCCL 2.30.7's model on the
    system's architecture rows where it names one, else NCCL 2.7.5's (the shipped A100 fits).
    NVLS and NVLS-tree both map to ``nvls``."""
    f = system.scale_up
    nvlink = TREE_NVLINK[f.topology](f, g)
    if system.architecture is None:
        pick, _ = nccl_all_reduce_choice(v, n, g, _tree_bus(intra, inter), nvlink)
        return pick
    ring = intra.ring_Bps / 1e9
    if nvlink and f.topology in ("switch", "full_mesh"):
        ring = nvlink_nccl_GBps(ring, system.architecture)
    net = inter.ring_Bps / 1e9 if inter is not None else None
    pick, _ = nccl_pick(v, n, g, system.architecture, ring, net, nvlink=nvlink, nvls=f.nvls)
    return np.where(np.char.startswith(pick.astype(str), "nvls"), "nvls", pick)


def predict_collective(system: SystemSpec, primitive: str, sizes: Any,
                       nodes: int | None = None, per_node: int | None = None,
                       algorithm: str = "auto", dtype: str = "fp32") -> CollectivePrediction:
    """Predicted time, algbw and busbw per message size (nccl-tests conventions).

    >>> from perfmodel.hardware.system import load_system
    >>> pred = predict_collective(load_system("dgx-h100"), "all_reduce", [1 << 30])
    >>> list(pred.table.columns[:6])
    ['size_bytes', 'count', 'type', 'time_us', 'algbw_GBps', 'busbw_GBps']
    """
    check_primitive(primitive)
    n, g = system.shape(nodes, per_node)
    v = np.atleast_1d(np.asarray(sizes, dtype=float))
    if v.size == 0 or np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ShapeError("message sizes must be positive byte counts",
                         "pass sizes >= 1 byte (e.g. --min-bytes 8)")
    if n * g < 2:
        raise ShapeError("a collective needs at least 2 devices", "raise --gpus or --nodes")
    intra, inter = levels(system, n, g)
    pick = None
    if algorithm == "auto" and primitive == "all_reduce":  # NCCL's tuner chooses
        pick = _auto_pick(system, v, n, g, intra, inter)
    best: tuple[np.ndarray, ...] | None = None
    for algo in _candidates(system, primitive, algorithm):
        if algo == "hierarchical":
            lat, tr, eff = _hierarchical(primitive, v, n, g, intra, inter)
        elif algo == "nvls":
            lat, tr, eff = _nvls(system, v, n, g, intra, inter)
        else:
            lat, tr, eff = _flat(primitive, algo, v, n, g, intra, inter, system.scale_up)
        t = system.launch_latency_s + lat + tr
        label = "nvls_tree" if algo == "nvls" and n > 1 else algo
        cur = (t, lat, tr, eff, np.full(v.shape, label, dtype=object))
        better = t < best[0] if pick is None and best is not None else pick == algo
        best = cur if best is None else tuple(
            np.where(better, c, b) for c, b in zip(cur, best, strict=True))
    assert best is not None  # _candidates is never empty
    t, lat, tr, eff, algo_col = best
    alg = v / t
    table = pd.DataFrame({
        "size_bytes": v.astype(np.int64), "count": (v // dtype_bytes(dtype)).astype(np.int64),
        "type": dtype, "time_us": t * 1e6, "algbw_GBps": alg / 1e9,
        "busbw_GBps": alg * BUS_FACTOR[primitive](np.asarray(float(n * g))) / 1e9,
        "algorithm": algo_col, "p": n * g, "nodes": n, "per_node": g,
        "latency_us": (lat + system.launch_latency_s) * 1e6, "transfer_us": tr * 1e6,
        "efficiency": eff})
    return CollectivePrediction(table, _assumptions(system, primitive, n, g, intra, inter,
                                                    algorithm))


def _assumptions(system: SystemSpec, primitive: str, n: int, g: int, intra: Level,
                 inter: Level | None, algorithm: str) -> dict[str, Any]:
    prov = system.provenance
    out: dict[str, Any] = {
        "system": system.name, "primitive": primitive, "nodes": n, "per_node": g,
        "algorithm": algorithm, "method": "alpha-beta closed forms (perfmodel.analytic."
        "collectives) with per-level latency, bandwidth and size-dependent efficiency",
        "launch_latency_us": system.launch_latency_s * 1e6,
        "launch_latency_source": prov.get("collective.launch_latency_us", "not given: 0"),
        "intra": {"name": intra.name, "topology": system.scale_up.topology,
                  "alpha_us": intra.alpha_s * 1e6, "ring_GBps": intra.ring_Bps / 1e9,
                  "port_GBps": intra.port_Bps / 1e9,
                  "bandwidth_source": prov.get("scale_up.bandwidth_GBps_per_direction", ""),
                  "latency_source": prov.get("scale_up.latency_us", "not given: 0"),
                  "efficiency_source": prov.get(
                      "scale_up.uplink_efficiency" if uplink_paced(system.scale_up, g)
                      else "scale_up.efficiency", "")},
        "efficiency_read_at": "the message one step moves: V / p on the network for ring, "
        "tree and all-to-all, the node's share V / g on the scale-up fabric (its curve is "
        "measured on single nodes), V for parameter server and send_recv; a ring bound by a "
        "PCIe uplink reads the uplink's own efficiency",
        "size_convention": "nccl-tests: per-rank buffer (all_reduce, broadcast, reduce, "
        "all_to_all, send_recv); total buffer (all_gather, reduce_scatter, scatter, gather)",
    }
    if inter is not None:
        out["inter"] = {"name": inter.name, "alpha_us": inter.alpha_s * 1e6,
                        "node_GBps": inter.ring_Bps / 1e9, "nic_GBps": inter.port_Bps / 1e9,
                        "bandwidth_source": prov.get("scale_out.nic_Gbps", ""),
                        "latency_source": prov.get("scale_out.latency_us", "not given: 0"),
                        "efficiency_source": prov.get("scale_out.efficiency", "")}
    tuning = load_tuning().source("current" if system.architecture else "legacy")
    out["nccl_tuning"] = {"architecture": system.architecture or "legacy (NCCL 2.7.5)",
                          "library": system.library, "tables": tuning}
    if system.scale_up.nvls:
        out["nvls"] = {"source": prov.get("scale_up.nvls", ""), "efficiency_source": prov.get(
            "scale_up.nvls_efficiency", "NCCL's nvlsEfficiency x its NVLink figure / nominal")}
    if primitive in HIERARCHICAL or algorithm == "auto":
        out["note"] = ("auto = for all_reduce the algorithm NCCL's tuner picks by its own model "
                       f"({tuning}; perfmodel.analytic.nccl), else ring; tree = NCCL's double "
                       "binary tree in the protocol its tuner picks, at the bottleneck level's "
                       "large-message bandwidth x 0.9 x NCCL's protocol factors and tree "
                       "correction factor; nvls = NVLink SHARP in-switch reduction, V (p+1)/p "
                       "per direction at the port bandwidth x the NVLS efficiency (NVLS-tree "
                       "across nodes)")
    return out
