"""NCCL's double-binary-tree all-reduce, per protocol, as NCCL's own tuning model states it.

NCCL runs an all-reduce over n nodes of g GPUs as a chain inside each node and a pair of
complementary binary trees across nodes (Sanders, Speck & Traeff 2009), pipelined in chunks,
with one of three protocols (LL, LL128, Simple) picked per size as the one its model predicts
fastest. This module is that model (NVIDIA/nccl src/graph/tuning.cc @ 01afd20a,
``ncclTopoTuneModel`` and ``ncclTopoGetAlgoTime``) on a system's own figures:

    latency(proto) = 2 ((g-1) a_intra r_intra[proto] + floor(log2 n) a_net r_net[proto])
    busbw(proto)   = min(0.9 B, cap[proto, n]) x f[proto] x corr[proto](size)
    time(proto)    = latency + 2 V / busbw          (NCCL: algbw = busbw / 2 for trees)

``a_intra`` / ``a_net`` are the system's per-hop latencies, taken as the LL figures; the
other protocols scale them by NCCL's hwLat ratios (r = hwLat[hw][TREE][proto] /
hwLat[hw][TREE][LL]: NVLink .52 / 1.2 / 28 us, PCI 1.0 / 1.9 / 28, NET 5.0 / 8.5 / 50).
``B`` is the bandwidth a ring gets on the bottleneck level at large sizes; 0.9 and the caps
(80 GB/s on > 2 nodes, 110 on <= 2) are NCCL's tree refinements; f = 1/3.8 (LL),
0.915 (LL128 across nodes, 7/9 inside one) and 1 (Simple); corr is NCCL's
``treeCorrectionFactor`` ("trees are not perfectly sticking to the model for medium
sizes"), indexed by floor(log2(V / 64)) for 64 B .. 128 MiB, 1 above. NCCL's per-protocol
base latency (baseLat Tree: 4.4 / 4.4 / 0 us) is left to the system's launch latency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TreeProtocol", "TREE_PROTOCOLS", "TREE_BW_FACTOR", "tree_all_reduce",
           "nccl_all_reduce_choice", "BASE_LAT_US", "HW_LAT_US", "PROTOCOLS"]

TREE_BW_FACTOR = 0.9   # tuning.cc: busBw = min(busBw * .9, maxTreeBw) for trees


@dataclass(frozen=True)
class TreeProtocol:
    """One NCCL protocol of the tree all-reduce (figures from tuning.cc @ 01afd20a)."""

    name: str
    r_nvlink: float            # hwLat[NVLINK][TREE][p] / hwLat[NVLINK][TREE][LL]
    r_pci: float               # hwLat[PCI][TREE][p] / hwLat[PCI][TREE][LL]
    r_net: float               # hwLat[NET][TREE][p] / hwLat[NET][TREE][LL]
    f_multi: float             # busBw factor across nodes
    f_single: float            # busBw factor inside one node
    cap_many_Bps: float        # maxTreeBw on > 2 nodes (bytes/s)
    cap_few_Bps: float         # maxTreeBw on <= 2 nodes
    correction: tuple[float, ...]   # treeCorrectionFactor, 64 B x 2^i, i = 0..21

    def corr(self, size: np.ndarray) -> np.ndarray:
        i = np.floor(np.log2(np.maximum(np.asarray(size, dtype=float) / 64.0, 1.0)))
        table = np.asarray(self.correction + (1.0,))
        return table[np.minimum(i, len(self.correction)).astype(int)]


TREE_PROTOCOLS: dict[str, TreeProtocol] = {
    "LL": TreeProtocol("LL", 1.0, 1.0, 1.0, 1 / 3.8, 1 / 3.8, 80e9, 110e9, (
        1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0,
        1.0, 1.0)),
    "LL128": TreeProtocol("LL128", 1.2 / .52, 1.9 / 1.0, 8.5 / 5.0, 0.915, 7 / 9, 105e9,
                          130e9, (
        1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .5, .6, .6, .7, .7, .8, .9,
        .9, 1.0)),
    "Simple": TreeProtocol("Simple", 28 / .52, 28 / 1.0, 50 / 5.0, 1.0, 1.0, 80e9, 110e9, (
        .9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .5, .5, .6, .6, .7, .8,
        .9)),
}


def tree_all_reduce(v: np.ndarray, nodes: int, per_node: int, a_intra_s: float,
                    a_net_s: float, bus_Bps: float | np.ndarray, intra_is_nvlink: bool = True
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{protocol: (latency s, transfer s)} of NCCL's tree all-reduce on V bytes per rank.

    >>> out = tree_all_reduce(np.array([8.0]), 2, 4, 0.5e-6, 5e-6, 40e9)
    >>> round(float(out["LL"][0][0]) * 1e6, 2)       # 2 (3 x 0.5 + 1 x 5) us
    13.0
    """
    v = np.asarray(v, dtype=float)
    hops = int(np.floor(np.log2(max(nodes, 1))))
    out = {}
    for key, pr in TREE_PROTOCOLS.items():
        r_in = pr.r_nvlink if intra_is_nvlink else pr.r_pci
        lat = 2 * ((per_node - 1) * a_intra_s * r_in + hops * a_net_s * pr.r_net)
        cap = pr.cap_many_Bps if nodes > 2 else pr.cap_few_Bps
        f = pr.f_multi if nodes > 1 else pr.f_single
        bw = np.minimum(TREE_BW_FACTOR * np.asarray(bus_Bps, dtype=float), cap) * f * pr.corr(v)
        out[key] = (np.full(v.shape, lat), 2 * v / bw)
    return out


# NCCL's own latency figures (us), tuning.cc @ 01afd20a: baseLat[algo][proto] and
# hwLat[hw][algo][proto], protocols in the order LL, LL128, Simple.
BASE_LAT_US = {"tree": (4.4, 4.4, 0.0), "ring": (3.6, 10.0, 8.4)}
HW_LAT_US = {
    "nvlink": {"tree": (.52, 1.2, 28.0), "ring": (.47, 1.9, 3.4)},
    "pci": {"tree": (1.0, 1.9, 28.0), "ring": (1.0, 2.5, 5.7)},
    "net": {"tree": (5.0, 8.5, 50.0), "ring": (2.7, 4.0, 9.6)},
}
PROTOCOLS = ("LL", "LL128", "Simple")


def nccl_all_reduce_choice(v: np.ndarray, nodes: int, per_node: int, bus_Bps: float,
                           intra_is_nvlink: bool = True, ll128_across_nodes: bool = False,
                           algorithms: tuple[str, ...] = ("tree", "ring")
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(algorithm, protocol) NCCL's tuner picks for an all-reduce of V bytes per rank: the
    smallest time under its own model (ncclTopoTuneModel + ncclTopoGetAlgoTime), with its
    constants and the system's bus bandwidth in place of nChannels x speed.

    LL128 is on inside a node over NVLink and, across nodes, only where the NIC sits under
    the GPU's PCIe switch (NCCL: typeInter <= PATH_PXB), which ``ll128_across_nodes`` says.

    >>> algo, proto = nccl_all_reduce_choice(np.array([8.0, 1e9, 8e9]), 256, 4, 36e9)
    >>> [str(a) for a in algo], [str(p) for p in proto]
    (['tree', 'tree', 'ring'], ['LL', 'Simple', 'Simple'])
    """
    v = np.asarray(v, dtype=float)
    n, g = nodes, per_node
    p = n * g
    nsteps, ninter = 2 * (p - 1), 2 * (n - 1)
    intra_hw = "nvlink" if intra_is_nvlink else "pci"
    b = bus_Bps / 1e9  # GB/s, as NCCL's tables
    best = np.full(v.shape, np.inf)
    algo = np.full(v.shape, algorithms[-1], dtype=object)
    proto = np.full(v.shape, "Simple", dtype=object)
    for a in algorithms:
        for i, pr in enumerate(PROTOCOLS):
            if pr == "LL128" and not (intra_is_nvlink and (n == 1 or ll128_across_nodes)):
                continue
            if a == "ring":
                bw: np.ndarray = np.full(v.shape, b * p / nsteps * (
                    0.25 if pr == "LL" else 0.92 if pr == "LL128" else 1.0))
            else:
                cap = TREE_PROTOCOLS[pr].cap_many_Bps if n > 2 else TREE_PROTOCOLS[pr].cap_few_Bps
                f = TREE_PROTOCOLS[pr].f_multi if n > 1 else TREE_PROTOCOLS[pr].f_single
                bw = min(TREE_BW_FACTOR * b, cap / 1e9) * f * 0.5 * TREE_PROTOCOLS[pr].corr(v)
            intra = HW_LAT_US[intra_hw][a][i] * (1.8 if n > 1 and pr == "LL" else 1.0)
            inter = HW_LAT_US["net"][a][i]
            if a == "ring":
                ring_lat = BASE_LAT_US[a][i] + (nsteps - ninter) * intra + ninter * inter
                plateau = pr == "Simple" and n > 1   # "plateau effect of ring"
                lat: np.ndarray = np.where(plateau & (v >= p / 16.0 * 65536), ring_lat * 1.9,
                                           ring_lat)
            else:
                lat = np.full(v.shape, BASE_LAT_US[a][i] + 2 * (
                    (g - 1) * intra + int(np.floor(np.log2(n))) * inter))
            t = lat + v / (1000 * bw)
            pick = t < best
            best = np.where(pick, t, best)
            algo = np.where(pick, a, algo)
            proto = np.where(pick, pr, proto)
    return algo, proto
