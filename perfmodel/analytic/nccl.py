"""NCCL's own tuning model, on its own tables (hw_specs/_nccl_tuning.yaml), per protocol.

NCCL picks, per collective and size, the (algorithm, protocol) its model predicts fastest:
time = latency + size / (1000 x bandwidth) (us, GB/s; ``ncclTopoGetAlgoTime``), with the
latency and bandwidth of each pair set once per communicator by ``ncclTopoTuneModel`` from
per-architecture tables. Those tables are data here (``load_tuning``), two sets, each citing
repository, path, commit and function:

- ``legacy``: NCCL 2.7.5 (NVIDIA/nccl src/graph/tuning.cc @ 01afd20a), the ring and
  double-binary-tree model the shipped A100 fits were made with (``tree_all_reduce``,
  ``nccl_all_reduce_choice``);
- ``current``: NCCL 2.30.7 (@ 73cf1122), per compute capability (Volta, Ampere, Hopper,
  Blackwell), with NVLink SHARP (NVLS: in-switch reduction on NVSwitch gen 3+, NCCL >= 2.17)
  and NVLS-tree across nodes (``nccl_all_reduce_times``, ``nccl_pick``).

The tree all-reduce (legacy tables): a chain of g inside each of n nodes, two binary trees
across them (Sanders, Speck & Traeff 2009), pipelined:

    latency(proto) = 2 ((g-1) a_intra r_intra[proto] + floor(log2 n) a_net r_net[proto])
    busbw(proto)   = min(0.9 B, cap[proto, n]) x f[proto] x corr[proto](size)
    time(proto)    = latency + 2 V / busbw          (NCCL: algbw = busbw / 2 for trees)

``a_intra`` / ``a_net`` are the system's per-hop latencies, taken as the LL figures; the
other protocols scale them by NCCL's hwLat ratios (r = hwLat[hw][TREE][proto] /
hwLat[hw][TREE][LL]). ``B`` is the bandwidth a ring gets on the bottleneck level at large
sizes; 0.9 and the caps (maxTreeBw) are NCCL's tree refinements; f its protocol factors;
corr its ``treeCorrectionFactor``, indexed by floor(log2(V / 64)).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perfmodel.errors import SpecError, UnknownNameError, check_choice
from perfmodel.files import data_dir, read_yaml

# TREE_PROTOCOLS, TREE_BW_FACTOR, BASE_LAT_US and HW_LAT_US (the legacy tables) are served
# by the module's __getattr__ on first use.
__all__ = ["TreeProtocol", "tree_all_reduce",
           "nccl_all_reduce_choice", "PROTOCOLS", "NcclTuning",
           "load_tuning", "nccl_all_reduce_times", "nccl_pick", "nvlink_nccl_GBps",
           "ARCHITECTURES", "TUNING_FILE"]

TUNING_FILE = "_nccl_tuning.yaml"
PROTOCOLS = ("LL", "LL128", "Simple")
ARCHITECTURES = ("volta", "ampere", "hopper", "blackwell")
_SETS = ("legacy", "current")
_LEGACY_KEYS = ("source", "base_latency_us", "hw_latency_us", "tree_bw_factor",
                "max_tree_bw_GBps", "tree_protocol_factor", "ring_protocol_factor",
                "ll_hw_latency_factor_across_nodes", "ring_plateau_factor", "tree_correction")
_CURRENT_KEYS = ("source", "base_latency_us", "hw_latency_us", "ll_max_bw_GBps",
                 "per_channel_max_ring_ll128_GBps", "per_channel_max_tree_ll128_GBps",
                 "per_channel_max_tree_GBps", "per_channel_max_nvls_tree_GBps",
                 "nvls_efficiency", "nvlink_bw_per_link_GBps", "nvlink_nominal_per_link_GBps",
                 "nvls_channels", "max_nvls_arity", "refinements", "tree_correction")


@dataclass(frozen=True)
class NcclTuning:
    """NCCL's tuning tables as read from ``hw_specs/_nccl_tuning.yaml`` (NCCL's units: us,
    GB/s). ``legacy`` and ``current`` are the file's two sets as mappings; ``path`` the file."""

    legacy: Mapping[str, Any]
    current: Mapping[str, Any]
    path: str

    def source(self, which: str = "current") -> str:
        s = getattr(self, which)["source"]
        return f"{s['repo']} {s['path']} @ {str(s['commit'])[:8]} ({s['function']})"


def _check(d: Any, path: str) -> NcclTuning:
    problems = []
    if not isinstance(d, Mapping):
        raise SpecError(f"{path}: not a mapping", f"see {TUNING_FILE} for the format")
    for which, keys in (("legacy", _LEGACY_KEYS), ("current", _CURRENT_KEYS)):
        part = d.get(which)
        if not isinstance(part, Mapping):
            problems.append(f"{which}: missing")
            continue
        problems += [f"{which}.{k}: missing" for k in keys if k not in part]
        src = part.get("source")
        if isinstance(src, Mapping):
            problems += [f"{which}.source.{k}: missing (every table cites repo, path, "
                         "commit and function)" for k in ("repo", "path", "commit", "function")
                         if k not in src]
    if problems:
        raise SpecError(f"{path}: " + "; ".join(problems),
                        f"fix these keys (format: hw_specs/{TUNING_FILE})")
    return NcclTuning(d["legacy"], d["current"], path)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> NcclTuning:
    return _check(read_yaml(Path(path)), path)


def load_tuning(path: str | Path | None = None) -> NcclTuning:
    """NCCL's tuning tables (hw_specs/_nccl_tuning.yaml, or a file of that format).

    >>> t = load_tuning()
    >>> t.current["hw_latency_us"]["nvlink"]["nvls"], t.current["nvls_efficiency"]["hopper"]
    ([0.0, 0.0, 25.0], 0.85)
    """
    return _load(str(path or data_dir("hw_specs") / TUNING_FILE))


@dataclass(frozen=True)
class TreeProtocol:
    """One NCCL protocol of the tree all-reduce (legacy tables, NCCL 2.7.5 @ 01afd20a)."""

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


@functools.lru_cache(maxsize=1)
def _legacy() -> dict[str, Any]:
    """The legacy tables in the shapes this module's functions use."""
    t = load_tuning().legacy
    hw = t["hw_latency_us"]
    protos = {}
    for i, p in enumerate(PROTOCOLS):
        cap = t["max_tree_bw_GBps"][p]
        f = t["tree_protocol_factor"][p]
        r = [hw[h]["tree"][i] / hw[h]["tree"][0] for h in ("nvlink", "pci", "net")]
        protos[p] = TreeProtocol(p, r[0], r[1], r[2], f[0], f[1], cap[0] * 1e9, cap[1] * 1e9,
                                 tuple(t["tree_correction"][p]))
    return {"TREE_PROTOCOLS": protos, "TREE_BW_FACTOR": float(t["tree_bw_factor"]),
            "BASE_LAT_US": {a: tuple(v) for a, v in t["base_latency_us"].items()},
            "HW_LAT_US": {h: {a: tuple(v) for a, v in algos.items()} for h, algos in hw.items()}}


def __getattr__(name: str) -> Any:
    """TREE_PROTOCOLS, TREE_BW_FACTOR, BASE_LAT_US, HW_LAT_US: the legacy tables, read from
    hw_specs/_nccl_tuning.yaml on first use (PEP 562), not at import."""
    if name in ("TREE_PROTOCOLS", "TREE_BW_FACTOR", "BASE_LAT_US", "HW_LAT_US"):
        return _legacy()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    leg = _legacy()
    out = {}
    for key, pr in leg["TREE_PROTOCOLS"].items():
        r_in = pr.r_nvlink if intra_is_nvlink else pr.r_pci
        lat = 2 * ((per_node - 1) * a_intra_s * r_in + hops * a_net_s * pr.r_net)
        cap = pr.cap_many_Bps if nodes > 2 else pr.cap_few_Bps
        f = pr.f_multi if nodes > 1 else pr.f_single
        bw = np.minimum(leg["TREE_BW_FACTOR"] * np.asarray(bus_Bps, dtype=float), cap) * f \
            * pr.corr(v)
        out[key] = (np.full(v.shape, lat), 2 * v / bw)
    return out


def nccl_all_reduce_choice(v: np.ndarray, nodes: int, per_node: int, bus_Bps: float,
                           intra_is_nvlink: bool = True, ll128_across_nodes: bool = False,
                           algorithms: tuple[str, ...] = ("tree", "ring")
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(algorithm, protocol) NCCL 2.7.5's tuner picks for an all-reduce of V bytes per rank
    (legacy tables): the smallest time under its own model (ncclTopoTuneModel +
    ncclTopoGetAlgoTime), with the system's bus bandwidth in place of nChannels x speed.

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
    leg, raw = _legacy(), load_tuning().legacy
    ring_f = raw["ring_protocol_factor"]
    best = np.full(v.shape, np.inf)
    algo = np.full(v.shape, algorithms[-1], dtype=object)
    proto = np.full(v.shape, "Simple", dtype=object)
    for a in algorithms:
        for i, pr in enumerate(PROTOCOLS):
            if pr == "LL128" and not (intra_is_nvlink and (n == 1 or ll128_across_nodes)):
                continue
            tp = leg["TREE_PROTOCOLS"][pr]
            if a == "ring":
                bw: np.ndarray = np.full(v.shape, b * p / nsteps * ring_f[pr])
            else:
                cap = tp.cap_many_Bps if n > 2 else tp.cap_few_Bps
                f = tp.f_multi if n > 1 else tp.f_single
                bw = min(leg["TREE_BW_FACTOR"] * b, cap / 1e9) * f * 0.5 * tp.corr(v)
            ll_x = raw["ll_hw_latency_factor_across_nodes"] if n > 1 and pr == "LL" else 1.0
            intra = leg["HW_LAT_US"][intra_hw][a][i] * ll_x
            inter = leg["HW_LAT_US"]["net"][a][i]
            if a == "ring":
                ring_lat = leg["BASE_LAT_US"][a][i] + (nsteps - ninter) * intra + ninter * inter
                plateau = pr == "Simple" and n > 1   # "plateau effect of ring"
                lat: np.ndarray = np.where(plateau & (v >= p / 16.0 * 65536),
                                           ring_lat * raw["ring_plateau_factor"], ring_lat)
            else:
                lat = np.full(v.shape, leg["BASE_LAT_US"][a][i] + 2 * (
                    (g - 1) * intra + int(np.floor(np.log2(n))) * inter))
            t = lat + v / (1000 * bw)
            pick = t < best
            best = np.where(pick, t, best)
            algo = np.where(pick, a, algo)
            proto = np.where(pick, pr, proto)
    return algo, proto


def _arch(architecture: str) -> str:
    return check_choice("NCCL architecture", architecture, ARCHITECTURES)


def nvlink_nccl_GBps(nominal_GBps: float, architecture: str) -> float:
    """One GPU's NVLink bandwidth as NCCL counts it (links x its per-link figure, topo.h)
    from the nominal one a system file gives (links x 25 GB/s, NVLink 5: 50).

    >>> round(nvlink_nccl_GBps(450.0, "hopper"), 1)    # 18 links x 20.6 GB/s
    370.8
    """
    t = load_tuning().current
    a = _arch(architecture)
    return nominal_GBps * t["nvlink_bw_per_link_GBps"][a] / t["nvlink_nominal_per_link_GBps"][a]


def _log2i(x: float) -> int:
    return int(math.floor(math.log2(x))) if x >= 1 else 0


@dataclass(frozen=True)
class _Comm:
    """What ncclTopoTuneModel reads of a communicator (GB/s, NCCL's graph totals)."""

    nodes: int
    per_node: int
    arch: str
    ring_GBps: float          # nChannels x bwIntra of the ring / tree graphs
    net_GBps: float           # nChannels x bwInter: one node's NICs
    channels: int
    nvlink: bool
    cpu_row: int              # llMaxBws row across nodes: 0 Intel, 1 AMD

    @property
    def ranks(self) -> int:
        return self.nodes * self.per_node


def _bandwidths(c: _Comm, t: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """Algorithm bandwidth (GB/s) per (algorithm, protocol) for all-reduce, 0 = disabled."""
    n, g, p = c.nodes, c.per_node, c.ranks
    i2 = min(n, 3) - 1
    rows = list(t["ll_max_bw_GBps"].values())
    ll_max = t["ll_max_bw_GBps"][c.arch][i2] if n == 1 else rows[c.cpu_row][i2]
    ref, ch = t["refinements"], c.channels
    bus = c.ring_GBps if n <= 2 else min(c.ring_GBps, c.net_GBps)
    ratio = p / (2.0 * (p - 1))                # ring, NVLS: nRanks / nsteps
    out: dict[tuple[str, str], float] = {}
    ring = {"LL": min(ll_max, bus * ref["ring_ll"]),
            "LL128": min(bus * ref["ring_ll128"],
                         ch * t["per_channel_max_ring_ll128_GBps"][c.arch][i2]),
            "Simple": bus}
    tree_bus = min(bus * ref["tree_all_reduce"], ch * t["per_channel_max_tree_GBps"][c.arch][i2])
    tree = {"LL": min(tree_bus * ref["tree_ll"], ll_max),
            "LL128": min(tree_bus * ref["tree_ll128"][0 if n == 1 else 1],
                         ch * t["per_channel_max_tree_ll128_GBps"][c.arch][i2]),
            "Simple": tree_bus}
    for pr in PROTOCOLS:
        out[("ring", pr)] = ring[pr] * ratio
        out[("tree", pr)] = tree[pr] * 0.5
    # NVLS: one channel per head GPU; each GPU's NVSwitch link carries one unit per head and
    # two for its own (search.cc), so nCh x bw = the link total as for rings
    eff = t["nvls_efficiency"][c.arch]
    nch = min(int(t["max_nvls_arity"]), g)
    if eff > 0 and nch >= 2 and c.nvlink:
        per_ch = c.ring_GBps / nch
        intra = per_ch * eff * (nch - 1) / nch * ref["nvls_all_reduce_pipelining"]
        if n == 1:
            out[("nvls", "Simple")] = nch * min(intra, per_ch) * ratio
        else:
            inter = c.net_GBps / nch * (2.0 if n <= 2 else 1.0)
            cap = t["per_channel_max_nvls_tree_GBps"][c.arch][i2]
            out[("nvls_tree", "Simple")] = nch * min(intra, inter, cap) * ratio
    return out


def _latencies(c: _Comm, t: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """Latency (us) per (algorithm, protocol) for all-reduce (ncclTopoTuneModel)."""
    n, g, p = c.nodes, c.per_node, c.ranks
    hw, base = t["hw_latency_us"], t["base_latency_us"]
    intra_hw = "nvlink" if c.nvlink else "pci"
    nsteps, ninter = 2 * (p - 1), (2 * (n - 1) if n > 1 else 0)
    out = {}
    for i, pr in enumerate(PROTOCOLS):
        for a in ("ring", "tree", "nvls", "nvls_tree"):
            intra = hw[intra_hw][a][i]
            inter = hw["net"]["tree" if g == 1 else a][i]
            if a == "ring":
                over = t["refinements"]["net_overhead_us"] * (3 if pr == "Simple" else 1)
                intra = max(intra, over) if n > 1 else intra
                lat = base[a][i] + (nsteps - ninter) * intra + ninter * inter
            elif a == "tree":
                lat = base[a][i] + 2 * ((g - 1) * intra + _log2i(n) * inter)
            elif a == "nvls":
                lat = intra + (inter if n > 1 else 0.0)
            else:
                lat = base[a][i] + intra + 2 * _log2i(n) * inter
            out[(a, pr)] = lat
    return out


def nccl_all_reduce_times(v: Any, nodes: int, per_node: int, architecture: str,
                          ring_GBps: float, net_GBps: float | None = None, *,
                          nvlink: bool = True, nvls: bool = False,
                          ll128_across_nodes: bool = True, channels: int = 16,
                          cpu: str = "intel") -> dict[tuple[str, str], np.ndarray]:
    """NCCL 2.30.7's predicted all-reduce time (us) per enabled (algorithm, protocol), for
    V bytes per rank: ncclTopoTuneModel's latencies and bandwidths, ncclTopoGetAlgoTime's
    tree correction and ring plateau (hw_specs/_nccl_tuning.yaml, ``current``).

    ``ring_GBps`` is nChannels x bwIntra, one GPU's bandwidth into the node's fabric as NCCL
    counts it (``nvlink_nccl_GBps`` for NVLink); ``net_GBps`` one node's NICs together;
    ``channels`` the ring / tree channel count (the per-channel caps); ``nvls`` whether the
    fabric offers NVLink SHARP (NCCL needs NVSwitch gen 3 and compute capability >= 9.0).
    NCCL's enabling rules: NVLS and NVLS-tree run Simple only; NVLS alone on one node (across
    nodes it needs CollNet), NVLS-tree only across nodes; LL128 needs NVLink inside the node
    and, across nodes, a NIC reachable through PXN (Hopper and later; ``ll128_across_nodes``).

    >>> t = nccl_all_reduce_times([1 << 30], 1, 8, "hopper", 370.8, nvls=True)
    >>> round(float(t[("nvls", "Simple")][0]), 1)    # 25 us + 2^30 B / (1000 x 211.9 GB/s)
    5092.6
    """
    t = load_tuning().current
    arch = _arch(architecture)
    v = np.atleast_1d(np.asarray(v, dtype=float))
    c = _Comm(nodes, per_node, arch, ring_GBps, net_GBps or ring_GBps, channels, nvlink,
              0 if cpu == "intel" else 1)
    bws, lats = _bandwidths(c, t), _latencies(c, t)
    log_size = np.floor(np.log2(np.maximum(v, 1) / 64.0))
    out = {}
    for (a, pr), bw in bws.items():
        if bw <= 0 or (a.startswith("nvls") and not nvls):
            continue
        if pr == "LL128" and not (nvlink and (nodes == 1 or ll128_across_nodes)):
            continue
        bw_v = np.full(v.shape, bw)
        if a == "tree":
            corr = np.asarray(t["tree_correction"][pr])
            ok = (log_size >= 0) & (log_size < 23)
            bw_v = np.where(ok, bw * corr[np.clip(log_size, 0, 22).astype(int)], bw)
        lat = np.full(v.shape, lats[(a, pr)])
        if a == "ring" and pr == "Simple" and nodes > 1:
            plateau = t["refinements"]["ring_plateau"][0 if arch == "volta" else 1]
            lat = np.where(v / (channels * c.ranks) >= 64, lat * plateau, lat)
        out[(a, pr)] = lat + v / (1000.0 * bw_v)
    return out


def nccl_pick(v: Any, nodes: int, per_node: int, architecture: str, ring_GBps: float,
              net_GBps: float | None = None, algorithms: tuple[str, ...] | None = None,
              **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """(algorithm, protocol) per size: the fastest of ``nccl_all_reduce_times`` (restricted
    to ``algorithms`` if given), as NCCL's ``ncclGetAlgoInfo`` takes it.

    Worked on 8 H100 (Hopper tables; NCCL's NVLink 18 x 20.6 = 370.8 GB/s): ring LL costs
    6.6 + 14 x 0.6 = 15 us at min(141, 370.8 / 2) x 8/14 = 80.57 GB/s, NVLS 25 us at
    370.8 x 8/14 = 211.9 GB/s; they cross at 10 us / (1/80.57 - 1/211.9) us/kB = 1.30 MB.

    >>> algo, proto = nccl_pick([1 << 20, 2 << 20], 1, 8, "hopper", 370.8, nvls=True)
    >>> [str(a) for a in algo], [str(p) for p in proto]
    (['ring', 'nvls'], ['LL', 'Simple'])
    """
    times = nccl_all_reduce_times(v, nodes, per_node, architecture, ring_GBps, net_GBps, **kw)
    keys = [k for k in times if algorithms is None or k[0] in algorithms]
    if not keys:
        raise UnknownNameError(f"no NCCL algorithm among {algorithms} is enabled here",
                               "pick ring or tree, or a system with NVLink SHARP for nvls")
    stack = np.vstack([times[k] for k in keys])
    best = np.argmin(stack, axis=0)
    algo = np.array([keys[i][0] for i in best], dtype=object)
    proto = np.array([keys[i][1] for i in best], dtype=object)
    return algo, proto
