"""A SystemSpec as a networkx.DiGraph: one edge per link direction, plus the rings it offers.

Nodes are devices (``n0.d3``: node 0, device 3), switches (``n0.sw``), PCIe switches and the
host (``n0.pcie1``, ``n0.host``), NICs (``n0.nic2``) and the network (``net``, or ``leaf<k>`` and
``spine`` when the spec has leaf switches). Every edge carries ``bandwidth_Bps`` (nominal, per
direction), ``latency_s`` (per-step latency of its level) and ``level`` (``scale_up``,
``uplink`` for a PCIe switch's or device's path to the host, or ``scale_out``). A
transfer's path latency is the largest edge latency on it, so one step costs one latency of
the slowest level it crosses, as in the alpha-beta model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import networkx as nx

from perfmodel.hardware.system import Fabric, SystemSpec

__all__ = ["build_topology", "device_id", "ring_channels", "device_order"]

Builder = Callable[[nx.DiGraph, int, int, Fabric], None]


def device_id(node: int, local: int) -> str:
    return f"n{node}.d{local}"


def _link(g: nx.DiGraph, a: str, b: str, bw: float, lat: float, level: str) -> None:
    """Both directions of one link, each its own edge (and its own simulator resource)."""
    for u, v in ((a, b), (b, a)):
        g.add_edge(u, v, bandwidth_Bps=bw, latency_s=lat, level=level)


def _switch(g: nx.DiGraph, k: int, n: int, f: Fabric) -> None:
    for i in range(n):
        _link(g, device_id(k, i), f"n{k}.sw", f.bandwidth_Bps, f.latency_s, "scale_up")


def _full_mesh(g: nx.DiGraph, k: int, n: int, f: Fabric) -> None:
    for i, j in itertools.combinations(range(n), 2):
        _link(g, device_id(k, i), device_id(k, j), f.bandwidth_Bps, f.latency_s, "scale_up")


def _ring(g: nx.DiGraph, k: int, n: int, f: Fabric) -> None:
    for i in range(n if n > 2 else n - 1):
        _link(g, device_id(k, i), device_id(k, (i + 1) % n), f.bandwidth_Bps, f.latency_s,
              "scale_up")


def _pcie_tree(g: nx.DiGraph, k: int, n: int, f: Fabric) -> None:
    per = f.devices_per_switch or n
    for i in range(n):
        _link(g, device_id(k, i), f"n{k}.pcie{i // per}", f.bandwidth_Bps, f.latency_s,
              "scale_up")
    for s in range(math.ceil(n / per)):
        _link(g, f"n{k}.pcie{s}", f"n{k}.host", float(f.uplink_Bps or f.bandwidth_Bps),
              f.latency_s, "uplink")


def _pairs(g: nx.DiGraph, k: int, n: int, f: Fabric) -> None:
    for i in range(0, n - 1, 2):
        _link(g, device_id(k, i), device_id(k, i + 1), f.bandwidth_Bps, f.latency_s, "scale_up")
    for i in range(n):
        _link(g, device_id(k, i), f"n{k}.host", float(f.uplink_Bps or f.bandwidth_Bps),
              f.latency_s, "uplink")


def torus_coords(dims: tuple[int, ...]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(range(d) for d in dims)))


def _torus(g: nx.DiGraph, k: int, n: int, f: Fabric) -> None:
    coords = torus_coords(f.dims)
    index = {c: i for i, c in enumerate(coords)}
    for c in coords:
        for axis, size in enumerate(f.dims):
            nb = list(c)
            nb[axis] = (c[axis] + 1) % size
            _link(g, device_id(k, index[c]), device_id(k, index[tuple(nb)]), f.bandwidth_Bps,
                  f.latency_s, "scale_up")


SCALE_UP: dict[str, Builder] = {
    "switch": _switch, "full_mesh": _full_mesh, "ring": _ring, "pcie_tree": _pcie_tree,
    "pairs": _pairs, "torus": _torus,
}


def _network(g: nx.DiGraph, spec: SystemSpec, nodes: int, per_node: int) -> None:
    net = spec.scale_out
    if net is None:
        return
    lat = net.latency_s
    for k in range(nodes):
        leaf = f"leaf{k // net.nodes_per_leaf}" if net.nodes_per_leaf else "net"
        for j in range(net.nics_per_node):
            _link(g, f"n{k}.nic{j}", leaf, net.nic_Bps, lat, "scale_out")
        for i in range(per_node):
            rail = i * net.nics_per_node // spec.devices_per_node
            _link(g, device_id(k, i), f"n{k}.nic{rail}", net.nic_Bps, lat, "scale_out")
    if net.nodes_per_leaf:
        up = net.nodes_per_leaf * net.node_Bps / net.oversubscription
        for leaf_k in range(math.ceil(nodes / net.nodes_per_leaf)):
            _link(g, f"leaf{leaf_k}", "spine", up, lat, "scale_out")


def build_topology(spec: SystemSpec, nodes: int | None = None,
                   per_node: int | None = None) -> nx.DiGraph:
    """The system's links as a DiGraph (see the module docstring for names and attributes).

    >>> from perfmodel.hardware.system import load_system
    >>> g = build_topology(load_system("dgx-a100"), nodes=2)
    >>> g.edges["n0.d0", "n0.sw"]["bandwidth_Bps"] / 1e9, len(device_order(g))
    (300.0, 16)
    """
    n, per = spec.shape(nodes, per_node)
    g = nx.DiGraph(system=spec.name, nodes=n, per_node=per)
    for k in range(n):
        for i in range(per):
            g.add_node(device_id(k, i), device=True, node=k, local=i)
        SCALE_UP[spec.scale_up.topology](g, k, per, spec.scale_up)
    if n > 1:
        _network(g, spec, n, per)
    return g


def device_order(g: nx.DiGraph) -> list[str]:
    """Devices node-major, local index minor: the rank order of a run."""
    return [device_id(k, i) for k in range(g.graph["nodes"]) for i in range(g.graph["per_node"])]


def _snake(dims: tuple[int, ...], axes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """A boustrophedon walk through a grid, fastest along axes[0]: neighbours stay adjacent."""
    if len(axes) == 1:
        return [tuple([i]) for i in range(dims[axes[0]])]
    inner = _snake(dims, axes[:-1])
    out: list[tuple[int, ...]] = []
    for j in range(dims[axes[-1]]):
        part = inner if j % 2 == 0 else inner[::-1]
        out += [(*p, j) for p in part]
    return out


def _torus_rings(spec: SystemSpec) -> list[list[int]]:
    dims = spec.scale_up.dims
    index = {c: i for i, c in enumerate(torus_coords(dims))}
    rings = []
    for r in range(len(dims)):
        axes = tuple((r + a) % len(dims) for a in range(len(dims)))
        walk = _snake(dims, axes)  # coordinates listed in axes order
        order = []
        for w in walk:
            c = [0] * len(dims)
            for a, v in zip(axes, w, strict=True):
                c[a] = v
            order.append(index[tuple(c)])
        rings += [order, order[::-1]]
    return rings


def _local_rings(spec: SystemSpec, per: int) -> list[list[int]]:
    """Rings inside one node that use disjoint links where the fabric has several."""
    topo = spec.scale_up.topology
    if topo == "full_mesh" and per > 2:
        # ring j visits i, i+j, i+2j, ...: arcs of distinct j are disjoint (gcd(j, per) = 1)
        return [[(i * j) % per for i in range(per)] for j in range(1, per)
                if math.gcd(j, per) == 1]
    if topo == "torus":
        return _torus_rings(spec)
    return [list(range(per))]


def ring_channels(spec: SystemSpec, nodes: int | None = None,
                  per_node: int | None = None) -> list[list[str]]:
    """The rings (channels) a ring collective runs on, each a device order.

    One node: the fabric's disjoint rings (one on a switch, phi(p) on a full mesh, a snake
    along each axis and its reverse on a torus). Several nodes: one ring per NIC, as NCCL
    builds one channel per NIC; ring c enters each node at NIC c's first device, so every
    NIC direction carries one ring.
    """
    n, per = spec.shape(nodes, per_node)
    if n == 1:
        return [[device_id(0, i) for i in r] for r in _local_rings(spec, per)]
    nics = spec.scale_out.nics_per_node if spec.scale_out else 1
    rings = []
    for c in range(min(nics, per)):
        shift = c * per // min(nics, per)
        local = [(shift + i) % per for i in range(per)]
        rings.append([device_id(k, i) for k in range(n) for i in local])
    return rings
