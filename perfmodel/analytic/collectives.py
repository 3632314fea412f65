"""Collective communication in the alpha-beta model: closed forms, vectorized over size and p.

A collective of ``size`` bytes on ``p`` devices costs

    t = launch + steps(p) * alpha + traffic(size, p) / b

where ``alpha`` is the per-step latency (s), ``b`` the per-direction bandwidth of the
bottleneck link (bytes/s), ``steps`` the number of dependent communication steps and
``traffic`` the bytes the busiest device sends (and receives) over that link. Each
(algorithm, primitive) pair is one entry of ``CLOSED_FORMS`` returning (steps, traffic).

``size`` follows nccl-tests (NVIDIA/nccl-tests doc/PERFORMANCE.md): the per-rank buffer for
all_reduce, broadcast, reduce, all_to_all and send_recv; the total (all ranks) buffer for
all_gather, reduce_scatter, scatter and gather. algbw = size / t and busbw = algbw x
``BUS_FACTOR``; busbw is the per-link bandwidth a bandwidth-optimal algorithm needs, so
on an ideal fabric busbw -> b.

Sources of the closed forms: ring all-reduce 2(p-1)V/(pb) + 2(p-1)alpha (Patarasuk & Yuan,
"Bandwidth optimal all-reduce algorithms for clusters of workstations", JPDC 2009; the
project's DOMAIN.md section 4); recursive halving/doubling, Rabenseifner, binomial trees and
Bruck's all-to-all (Thakur, Rabenseifner & Gropp, "Optimization of collective communication
operations in MPICH", IJHPCA 2005); pipelined double binary trees (Sanders, Speck & Traeff,
Parallel Computing 2009, as used by NCCL >= 2.4). Non-power-of-two p uses ceil(log2 p).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perfmodel.errors import (
    ShapeError,
    UnknownNameError,
    UnsupportedOpError,
    check_choice,
    did_you_mean,
)

__all__ = ["PRIMITIVES", "ALGORITHMS", "BUS_FACTOR", "CLOSED_FORMS", "collective_cost",
           "collective_time", "algbw", "busbw", "check_primitive", "check_algorithm",
           "hierarchical_time", "ps_over_ring_factor"]

PRIMITIVES = ("all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce", "scatter",
              "gather", "all_to_all", "send_recv")
ALGORITHMS = ("ring", "tree", "recursive", "hierarchical", "parameter_server", "nvls")

Arr = np.ndarray
Form = Callable[[Arr, Arr], tuple[Arr, Arr]]


def _frac(p: Arr) -> Arr:
    return (p - 1) / p


def _lg(p: Arr) -> Arr:
    return np.ceil(np.log2(np.maximum(p, 1)))


# nccl-tests busbw = algbw x factor (src/*.cu GetBw; doc/PERFORMANCE.md).
BUS_FACTOR: dict[str, Callable[[Arr], Arr]] = {
    "all_reduce": lambda p: 2 * _frac(p),
    "reduce_scatter": _frac, "all_gather": _frac, "all_to_all": _frac,
    "scatter": _frac, "gather": _frac,
    "broadcast": lambda p: np.ones_like(p), "reduce": lambda p: np.ones_like(p),
    "send_recv": lambda p: np.ones_like(p),
}

CLOSED_FORMS: dict[tuple[str, str], Form] = {
    # ring: p-1 steps per phase; each device sends (p-1)/p of the buffer per phase
    ("ring", "all_reduce"): lambda v, p: (2 * (p - 1), 2 * _frac(p) * v),
    ("ring", "reduce_scatter"): lambda v, p: (p - 1, _frac(p) * v),
    ("ring", "all_gather"): lambda v, p: (p - 1, _frac(p) * v),
    ("ring", "broadcast"): lambda v, p: (p - 1, v),       # pipelined chain, large-V limit
    ("ring", "reduce"): lambda v, p: (p - 1, v),
    ("ring", "scatter"): lambda v, p: (p - 1, _frac(p) * v),
    ("ring", "gather"): lambda v, p: (p - 1, _frac(p) * v),
    ("ring", "all_to_all"): lambda v, p: (p - 1, _frac(p) * v),   # p-1 pairwise rounds
    ("ring", "send_recv"): lambda v, p: (np.ones_like(p), v),
    # pipelined double binary tree: every device sends V per phase (half on each tree)
    ("tree", "all_reduce"): lambda v, p: (2 * _lg(p), 2 * v),
    ("tree", "broadcast"): lambda v, p: (_lg(p), v),
    ("tree", "reduce"): lambda v, p: (_lg(p), v),
    # NVLink SHARP (NVLS): the switch reduces in-network; each device sends its V once (the
    # switch pulls every device's slices) and receives the result once plus its own reduced
    # slice, V (p+1)/p per direction, in 2 steps (reduce, multicast): NCCL 2.17 release
    # notes, NVIDIA H100 whitepaper (NVLink SHARP), NVIDIA/nccl issue #2140 (factor 1 + 1/n)
    ("nvls", "all_reduce"): lambda v, p: (np.full_like(p, 2.0), (p + 1) / p * v),
    # recursive halving / doubling (Rabenseifner all-reduce, van de Geijn broadcast)
    ("recursive", "all_reduce"): lambda v, p: (2 * _lg(p), 2 * _frac(p) * v),
    ("recursive", "reduce_scatter"): lambda v, p: (_lg(p), _frac(p) * v),
    ("recursive", "all_gather"): lambda v, p: (_lg(p), _frac(p) * v),
    ("recursive", "broadcast"): lambda v, p: (2 * _lg(p), 2 * _frac(p) * v),
    ("recursive", "reduce"): lambda v, p: (2 * _lg(p), 2 * _frac(p) * v),
    ("recursive", "scatter"): lambda v, p: (_lg(p), _frac(p) * v),    # binomial tree
    ("recursive", "gather"): lambda v, p: (_lg(p), _frac(p) * v),
    ("recursive", "all_to_all"): lambda v, p: (_lg(p), _lg(p) * v / 2),  # Bruck
    # parameter server = one of the p devices: workers push V each, then pull V each;
    # the server's link carries (p-1)V per phase (DOMAIN.md section 4)
    ("parameter_server", "all_reduce"): lambda v, p: (2 * np.ones_like(p), 2 * (p - 1) * v),
    ("parameter_server", "reduce"): lambda v, p: (np.ones_like(p), (p - 1) * v),
    ("parameter_server", "broadcast"): lambda v, p: (np.ones_like(p), (p - 1) * v),
}


def check_primitive(primitive: str) -> str:
    return check_choice("collective", primitive, PRIMITIVES)


def check_algorithm(algorithm: str, primitive: str) -> str:
    if algorithm not in ALGORITHMS:
        raise UnknownNameError(f"unknown algorithm {algorithm!r}",
                               did_you_mean(algorithm, ALGORITHMS))
    if algorithm != "hierarchical" and (algorithm, primitive) not in CLOSED_FORMS:
        have = sorted(a for a, p in CLOSED_FORMS if p == primitive)
        raise UnsupportedOpError(f"no {algorithm} algorithm for {primitive}",
                                 f"use one of: {', '.join(have)}")
    if algorithm == "hierarchical" and primitive not in HIERARCHICAL:
        raise UnsupportedOpError(f"no hierarchical algorithm for {primitive}",
                                 f"hierarchical covers {', '.join(HIERARCHICAL)}")
    return algorithm


def _arrays(size: Arr | float, p: Arr | float) -> tuple[Arr, Arr]:
    v, n = np.broadcast_arrays(np.asarray(size, dtype=float), np.asarray(p, dtype=float))
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ShapeError("message size must be a positive number of bytes",
                         "pass sizes >= 1 byte (e.g. --min-bytes 8)")
    if np.any(n < 1) or np.any(n != np.floor(n)):
        raise ShapeError("device count p must be a whole number >= 1", "pass p >= 1")
    return v, n


def collective_cost(primitive: str, size: Arr | float, p: Arr | float,
                    algorithm: str = "ring") -> tuple[Arr, Arr]:
    """(steps, traffic bytes on the bottleneck link per direction), vectorized.

    >>> steps, traffic = collective_cost("reduce_scatter", 8e6, 4)
    >>> int(steps), float(traffic)        # p-1 steps, (p-1)V/p bytes sent per device
    (3, 6000000.0)
    """
    check_primitive(primitive)
    if algorithm == "hierarchical":
        raise UnsupportedOpError("hierarchical needs two levels",
                                 "use hierarchical_time(...) or predict_collective(system)")
    check_algorithm(algorithm, primitive)
    v, n = _arrays(size, p)
    steps, traffic = CLOSED_FORMS[(algorithm, primitive)](v, n)
    single = n == 1  # one device: nothing moves
    return np.where(single, 0.0, steps), np.where(single, 0.0, traffic)


def collective_time(primitive: str, size: Arr | float, p: Arr | float, alpha: float | Arr,
                    bandwidth: float | Arr, algorithm: str = "ring",
                    launch: float | Arr = 0.0) -> Arr:
    """Time (s) of a collective in the alpha-beta model, broadcast over array arguments.

    ``alpha`` per-step latency (s), ``bandwidth`` per-direction link bandwidth (bytes/s),
    ``launch`` a fixed per-collective cost (s).

    >>> float(collective_time("all_reduce", 1e9, 8, alpha=0.0, bandwidth=100e9))  # 2*7/8 s/100
    0.0175
    """
    b = np.asarray(bandwidth, dtype=float)
    if np.any(b <= 0):
        raise ShapeError("bandwidth must be positive", "check the link bandwidth (bytes/s)")
    steps, traffic = collective_cost(primitive, size, p, algorithm)
    return launch + steps * np.asarray(alpha, dtype=float) + traffic / b


def algbw(size: Arr | float, time_s: Arr | float) -> Arr:
    """nccl-tests algorithm bandwidth: size / time (bytes/s)."""
    return np.asarray(size, dtype=float) / np.asarray(time_s, dtype=float)


def busbw(primitive: str, size: Arr | float, time_s: Arr | float, p: Arr | float) -> Arr:
    """nccl-tests bus bandwidth: algbw x the primitive's factor (bytes/s)."""
    return algbw(size, time_s) * BUS_FACTOR[check_primitive(primitive)](
        np.asarray(p, dtype=float))


# Hierarchical (two-level) collectives: intra-node reduce-scatter, inter-node collective on
# the 1/g shard, intra-node all-gather (NCCL's CollNet/"2D" scheme; Jia et al. 2018).
HIERARCHICAL = ("all_reduce", "reduce_scatter", "all_gather")


def hierarchical_time(primitive: str, size: Arr | float, nodes: Arr | float,
                      per_node: Arr | float, alpha_intra: float | Arr, b_intra: float | Arr,
                      alpha_inter: float | Arr, b_node: float | Arr,
                      launch: float | Arr = 0.0) -> Arr:
    """Two-level collective time. ``b_intra``: per-device bandwidth inside a node;
    ``b_node``: one node's total scale-out bandwidth (all NICs, per direction).

    all_reduce = intra RS + inter ring AR on V/g (the g shards cross the NICs together, so
    the inter term is 2(n-1)/n V / b_node) + intra AG.

    >>> round(float(hierarchical_time("all_reduce", 8e9, 2, 8, 0, 200e9, 0, 100e9)), 9)
    0.15
    """
    check_primitive(primitive)
    if primitive not in HIERARCHICAL:
        raise UnsupportedOpError(f"no hierarchical algorithm for {primitive}",
                                 f"hierarchical covers {', '.join(HIERARCHICAL)}")
    v, n = _arrays(size, nodes)
    g = np.asarray(per_node, dtype=float)
    intra_phases = 2 if primitive == "all_reduce" else 1
    intra = intra_phases * ((g - 1) * alpha_intra + _frac(g) * v / b_intra)
    inter_steps, inter_bytes = CLOSED_FORMS[("ring", primitive)](v / g, n)
    # the n-node collective runs on one shard per device, all g shards in parallel
    inter = np.where(n > 1, inter_steps * alpha_inter + inter_bytes * g / b_node, 0.0)
    return launch + intra + inter


def ps_over_ring_factor(size: Arr | float, p: Arr | float, alpha: float, bandwidth: float
                        ) -> Arr:
    """How many times slower a parameter-server all-reduce is than ring all-reduce:

        (2 alpha + 2(p-1)V/b) / (2(p-1) alpha + 2(p-1)V/(p b))  ->  p  when V/b >> alpha
    """
    ps = collective_time("all_reduce", size, p, alpha, bandwidth, "parameter_server")
    ring = collective_time("all_reduce", size, p, alpha, bandwidth, "ring")
    return ps / ring
