"""Pure cost functions of expert parallelism (mixture-of-experts layers) for the step model.

Expert parallelism spreads a MoE layer's ``experts`` routed experts over ``ep`` devices
(``experts / ep`` local experts each). Every token picks ``top_k`` experts; the layer runs

    dispatch all-to-all -> grouped GEMM of the local experts -> combine all-to-all

(Lepikhin et al. 2020, "GShard", sec. 2.2; Megatron-Core ``MoEAlltoAllTokenDispatcher``).
The combine moves the same bytes as the dispatch in reverse, and the backward repeats both
(the gradient of a dispatch is a combine and vice versa), so one :func:`dispatch_time` prices
each of the four all-to-alls of a layer's forward and backward.

Conventions, for whoever wires these into the step:

* ``tokens`` is the tokens that enter the MoE layer on one device of the EP group per
  micro-batch (micro-batch x sequence / context-parallel size, and / tensor-parallel size
  with sequence parallelism, whose ranks dispatch disjoint tokens). Routing is uniform in
  expectation: each of a token's ``top_k`` copies lands on any of the ``ep`` ranks with
  probability 1 / ep, so every rank also *receives* tokens x top_k copies on average.
* ``imbalance`` >= 1 is the busiest rank's received copies over the average (Fedus et al.
  2021, "Switch Transformer", sec. 2.2: the load-balancing loss keeps it near 1, not at 1).
  The all-to-all and the grouped GEMM both wait for the busiest rank.
* Ranks of an EP group sit ``stride`` ranks apart in the rank order (Megatron-LM: tensor
  ranks adjacent, then context, then data; expert ranks are carved out of the data x context
  ranks, so stride = the tensor-parallel size).

Every byte count is per device, in bytes; every time is in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perfmodel.analytic.network import ALL_TO_ALL_TIME, Level, levels
from perfmodel.analytic.op_table import OpTable
from perfmodel.analytic.roofline import price
from perfmodel.errors import PlanError, ShapeError
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.units import dtype_bytes as width_of

__all__ = ["ExpertLoad", "AllToAll", "ExpertMLPTime", "expert_load", "dispatch_time",
           "all_to_all_time", "grouped_gemm_time", "group_layout"]


@dataclass(frozen=True)
class ExpertLoad:
    """Routed token copies on the devices of one EP group, per micro-batch.

    ``tokens_per_device``: the average copies a device receives (tokens x top_k);
    ``tokens_busiest``: the busiest device's, average x imbalance capped at the capacity;
    ``capacity``: the copies one device may take (None: no capacity factor, nothing
    dropped); ``dropped_fraction``: the share of the busiest device's routed copies dropped
    (the global share is at most this; it needs the whole load distribution);
    ``local_experts``: experts / ep; ``tokens_per_expert``: the busiest device's copies per
    local expert, the M of its grouped GEMM (``tokens_per_expert_mean``: the average's).
    """

    tokens_per_device: float
    tokens_busiest: float
    capacity: float | None
    dropped_fraction: float
    local_experts: int
    tokens_per_expert: float
    tokens_per_expert_mean: float


@dataclass(frozen=True)
class AllToAll:
    """One all-to-all of the MoE dispatch (or combine) on one device of the EP group.

    ``bytes_intra`` / ``bytes_inter``: the average bytes a device sends to other devices of
    its node / of other nodes; ``intra_s`` / ``inter_s``: the transfer time of each level
    for the busiest receiver (bytes x imbalance); ``latency_s``: launch plus per-step
    latencies; ``seconds`` = latency_s + max(intra_s, inter_s) (the levels run concurrently,
    the slower one binds); ``binding``: ``scale_up`` or ``scale_out``; ``nodes`` and
    ``per_node``: the group's placement.
    """

    bytes_intra: float
    bytes_inter: float
    intra_s: float
    inter_s: float
    latency_s: float
    seconds: float
    binding: str
    nodes: int
    per_node: int


@dataclass(frozen=True)
class ExpertMLPTime:
    """Seconds of the routed experts' GEMMs on one device: ``forward_s`` (up/gate and down
    projections), ``backward_s`` (their data- and weight-gradient GEMMs) and the forward's
    ``forward_flops``."""

    forward_s: float
    backward_s: float
    forward_flops: float


def _check_positive(name: str, value: float, hint: str) -> None:
    if not value > 0 or not math.isfinite(value):
        raise ShapeError(f"{name} must be a positive number, got {value!r}", hint)


def expert_load(tokens: float, top_k: int, experts: int, ep: int, *,
                capacity_factor: float | None = None, imbalance: float = 1.0) -> ExpertLoad:
    """Routed copies per device and per local expert, with capacity dropping.

    Each device dispatches ``tokens`` x ``top_k`` copies; under uniform routing it receives
    as many on average. The busiest device receives the average x ``imbalance``. A capacity
    factor caps what an expert takes (Fedus et al. 2021, "Switch Transformer", eq. 2:
    expert capacity = tokens per batch / experts x capacity factor; GShard sec. 2.2, top-k
    copies counted): over the ep x tokens of the group, capacity per expert =
    capacity_factor x ep x tokens x top_k / experts, so per device (experts / ep of them)
    capacity = capacity_factor x tokens x top_k, and

        busiest = average x min(imbalance, capacity_factor)
        dropped = max(0, 1 - capacity_factor / imbalance)   (of the busiest device's copies)

    Megatron-Core's ``moe_expert_capacity_factor`` applies the same cap per source rank
    (``get_capacity``: num_tokens x top_k / experts x factor, rounded up; not rounded here).

    >>> load = expert_load(4096, 8, 256, 32, capacity_factor=1.25, imbalance=1.5)
    >>> load.tokens_per_device, load.tokens_busiest, round(load.dropped_fraction, 4)
    (32768.0, 40960.0, 0.1667)
    """
    if tokens < 0 or not math.isfinite(tokens):
        raise ShapeError(f"tokens must be >= 0, got {tokens!r}", "pass tokens per device")
    if not 1 <= top_k <= experts:
        raise PlanError(f"top_k {top_k} must be between 1 and the {experts} experts",
                        "check num_experts_per_tok and num_local_experts")
    if ep < 1 or experts % ep:
        raise PlanError(f"expert parallel size {ep} does not divide {experts} experts",
                        "choose --ep dividing the expert count")
    if imbalance < 1:
        raise PlanError(f"imbalance is busiest / average load, >= 1, got {imbalance}",
                        "pass imbalance=1.0 for perfectly balanced routing")
    avg = float(tokens) * top_k
    busiest, cap, dropped = avg * imbalance, None, 0.0
    if capacity_factor is not None:
        _check_positive("capacity_factor", capacity_factor, "use e.g. 1.0 or 1.25, or None")
        cap = capacity_factor * avg
        busiest = min(busiest, cap)
        dropped = max(0.0, 1.0 - capacity_factor / imbalance)
    local = experts // ep
    return ExpertLoad(avg, busiest, cap, dropped, local, busiest / local, avg / local)


def group_layout(system: SystemSpec, size: int, stride: int) -> tuple[int, int]:
    """(nodes, members per node) of a group of ``size`` ranks ``stride`` apart in the rank
    order on nodes of ``system.devices_per_node`` devices (the placement of
    perfmodel.parallel.step's ``_group``).

    >>> from perfmodel.hardware.system import load_system
    >>> group_layout(load_system("dgx-h100"), 16, 1), group_layout(load_system("dgx-h100"), 4, 4)
    ((2, 8), (2, 2))
    """
    k = system.devices_per_node
    per = max(1, min(size, k // stride)) if stride < k else 1
    return math.ceil(size / per), per


def _levels(system: SystemSpec, nodes: int, per: int) -> tuple[Level, Level | None]:
    # a torus slice is priced whole (SystemSpec.shape refuses part of one)
    g = system.devices_per_node if system.scale_up.topology == "torus" else per
    return levels(system, nodes, g)


def _price(system: SystemSpec, ranks: int, stride: int, intra_b: float, inter_b: float,
           buffer: float, imbalance: float) -> AllToAll:
    """Seconds of an all-to-all whose devices send ``intra_b`` / ``inter_b`` bytes inside /
    outside their node, read from the levels of perfmodel.analytic.network (not from
    ``predict_collective``, which assumes uniform traffic and one group per node):

    * inside a node, ALL_TO_ALL_TIME of the fabric (pairwise exchange, Thakur et al. 2005)
      on the buffer whose uniform exchange sends intra_b to the g - 1 node peers,
      intra_b g / (g - 1), at the fabric's efficiency read as predict_collective reads it
      for an all-to-all (per-rank buffer over g pieces);
    * across nodes, inter_b over the device's share of its node's NICs (node bandwidth /
      devices per node: every device of the node runs an all-to-all at once, each EP group
      of the node included), at the network's efficiency (buffer over ranks pieces);
    * latency: launch + (ranks - nodes) fabric steps + (nodes - 1) network steps (the
      ring all-to-all's p - 1 steps split as in network._flat).

    With a uniform all-to-all over whole nodes this is predict_collective's all_to_all.
    """
    nodes, per = group_layout(system, ranks, stride)
    intra, inter = _levels(system, nodes, per)
    f = system.scale_up
    intra_s = inter_s = 0.0
    if per > 1 and intra_b > 0:
        v = intra_b * imbalance * per / (per - 1)
        eff = float(intra.eff(buffer, per))
        intra_s = float(ALL_TO_ALL_TIME[f.topology](f, per, np.asarray(v))) / eff
    latency = system.launch_latency_s + (ranks - nodes) * intra.alpha_s
    if inter is not None:
        share = inter.ring_Bps / system.devices_per_node
        inter_s = inter_b * imbalance / (share * float(inter.eff(buffer, ranks)))
        latency += (nodes - 1) * inter.alpha_s
    binding = "scale_out" if inter_s > intra_s else "scale_up"
    return AllToAll(intra_b, inter_b, intra_s, inter_s, latency,
                    latency + max(intra_s, inter_s), binding, nodes, per)


def all_to_all_time(system: SystemSpec, ranks: int, stride: int, buffer_bytes: float
                    ) -> AllToAll:
    """A uniform all-to-all of ``buffer_bytes`` per device (1 / ranks of it to each rank,
    nccl-tests' size convention) over ``ranks`` ranks ``stride`` apart.

    >>> from perfmodel.hardware.system import load_system
    >>> a2a = all_to_all_time(load_system("dgx-h100"), 8, 1, 8 << 20)
    >>> a2a.bytes_intra, a2a.bytes_inter, a2a.binding
    (7340032.0, 0.0, 'scale_up')
    """
    _check_ranks(ranks, stride)
    if ranks == 1 or buffer_bytes <= 0:
        return AllToAll(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "scale_up", 1, 1)
    nodes, per = group_layout(system, ranks, stride)
    b = float(buffer_bytes)
    return _price(system, ranks, stride, b * (per - 1) / ranks, b * (ranks - per) / ranks,
                  b, 1.0)


def _check_ranks(ranks: int, stride: int) -> None:
    if ranks < 1 or stride < 1:
        raise PlanError(f"a group needs >= 1 ranks >= 1 apart, got {ranks} ranks, stride "
                        f"{stride}", "pass the parallel size and the tensor-parallel size")


def dispatch_time(system: SystemSpec, tokens: float, hidden: int, top_k: int,
                  dtype_bytes: float, ep: int, stride: int, *, node_limit: int | None = None,
                  imbalance: float = 1.0) -> AllToAll:
    """One all-to-all of the MoE dispatch (the combine is the same in reverse).

    The ep ranks of the group sit ``stride`` apart: g = min(ep, devices per node / stride)
    per node on n = ep / g nodes (``group_layout``). A device sends V = tokens x top_k x
    hidden x dtype_bytes bytes of token copies, one per routed expert (Megatron-Core's
    all-to-all dispatcher permutes one row per (token, expert)); each copy lands on any rank
    with probability 1 / ep, so

        bytes_intra = V (g - 1) / ep        (same node, not itself)
        bytes_inter = V (ep - g) / ep       (other nodes)

    Node-limited routing (DeepSeek-V3, arXiv 2412.19437, sec. 2.1.2 and 3.2.2; DeepEP):
    each token's experts lie on at most M = ``node_limit`` nodes, and the token crosses the
    network once per destination node (to the device of its own rail there), then is
    forwarded over the fabric to each target device. The M nodes are chosen by their
    experts' top affinities, so each holds at least one of the token's experts: the token
    reaches D = min(top_k, M, n) distinct nodes, a random subset of the n, each another node
    with probability (n - 1) / n, and

        bytes_inter = tokens x hidden x dtype_bytes x D (n - 1) / n
        bytes_intra = V (g - 1) / g

    (every copy whose target is not the device it arrives at, in its own node or after the
    network hop, crosses the fabric once; a bound, since DeepEP sends a token once per
    target device, not once per expert there). D (n - 1) / n <= min(top_k, n - 1), and on
    one node both routings send the same bytes. The seconds are priced by ``_price``
    (levels of perfmodel.analytic.network), the busiest receiver taking bytes x
    ``imbalance``.

    >>> from perfmodel.hardware.system import load_system
    >>> a2a = dispatch_time(load_system("dgx-h100"), 4096, 7168, 8, 2, 16, 1)
    >>> a2a.bytes_intra / 2**20, a2a.bytes_inter / 2**20, a2a.binding
    (196.0, 224.0, 'scale_out')
    """
    _check_ranks(ep, stride)
    for name, value in (("hidden", hidden), ("top_k", top_k), ("dtype_bytes", dtype_bytes)):
        _check_positive(name, value, "pass the model's hidden size, top-k and dtype width")
    if imbalance < 1:
        raise PlanError(f"imbalance is busiest / average load, >= 1, got {imbalance}",
                        "pass imbalance=1.0 for perfectly balanced routing")
    if node_limit is not None and node_limit < 1:
        raise PlanError(f"node_limit must be >= 1 node, got {node_limit}",
                        "DeepSeek-V3 uses 4; pass None for no limit")
    if ep == 1 or tokens <= 0:
        return AllToAll(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "scale_up", 1, 1)
    nodes, per = group_layout(system, ep, stride)
    token_b = float(tokens) * hidden * dtype_bytes
    v = token_b * top_k
    if node_limit is None:
        intra_b, inter_b = v * (per - 1) / ep, v * (ep - per) / ep
    else:
        reached = min(top_k, node_limit, nodes)
        intra_b, inter_b = v * (per - 1) / per, token_b * reached * (nodes - 1) / nodes
    return _price(system, ep, stride, intra_b, inter_b, v, imbalance)


def _gemm_rows(e: int, m: float, n: int, k: int, w: float, phase: str
               ) -> list[tuple[float, float, float, float, float, float]]:
    """(M, N, K, input, weight, output elements per expert) of one grouped GEMM (e experts
    of C[m, n] = A[m, k] B[k, n]) or, for the backward, of its data-gradient (dA[m, k] =
    dC B^T, reduction n) and weight-gradient (dB[k, n] = A^T dC, reduction m) GEMMs."""
    if phase == "forward":
        return [(m, n, k, m * k, k * n, m * n)]
    return [(m, k, n, m * n, n * k, m * k),          # dgrad: dC W^T
            (k, n, m, m * k + m * n, 0.0, k * n)]    # wgrad: A^T dC


def _gemm_table(e: int, rows: list[tuple[float, float, float, float, float, float]],
                w: float, dtype: str) -> OpTable:
    """The rows as the roofline's op table: e-batched tensor-unit GEMMs in ``dtype``."""
    a = np.asarray(rows, dtype=float)
    m, n, k, ins, weights, out = (a[:, i] for i in range(6))
    macs = e * m * n * k
    cols = {"macs": macs, "flops": 2 * macs, "weight_bytes": e * weights * w,
            "input_bytes": e * ins * w, "output_bytes": e * out * w,
            "bytes": e * (ins + weights + out) * w, "gemm_batch": np.full(len(a), float(e)),
            "gemm_m": m, "gemm_n": n, "unit": np.full(len(a), "tensor", dtype=object),
            "dtype": np.full(len(a), dtype, dtype=object)}
    return OpTable(cols, len(a), {("tensor", dtype): np.arange(len(a))})


def grouped_gemm_time(device: DeviceSpec, dtype: str, local_experts: int,
                      tokens_per_expert: float, hidden: int, ffn: int, gated: bool
                      ) -> ExpertMLPTime:
    """Forward and backward seconds of the routed experts' MLP GEMMs on one device.

    The grouped GEMM (Megatron-Core ``GroupedMLP`` / TEGroupedMLP) runs, for each of the
    ``local_experts``, an M = ``tokens_per_expert`` row GEMM: up (and gate, fused: N = 2
    ffn when ``gated``) with K = hidden, then down with N = hidden, K = ffn. Each is a row
    of ``gemm_batch`` = local_experts and priced by perfmodel.analytic.roofline.price on the
    device, so the device's efficiency at that shape (its kernel model's tile and wave
    quantization, KernelModel.gemm, or its compute curve) sets how much a small M loses. The
    backward prices each GEMM's data gradient (M x K, reduction N) and weight gradient
    (K x N, reduction M) at their own shapes (the workload table prices both as the forward
    shape). The activation, the router and the token permutation are not included (they are
    memory-bound rows of the workload); weight gradients are written at the training width
    (Megatron's fp32 main-grad accumulation would add bytes, not FLOP).

    >>> from perfmodel.hardware.load import load_device
    >>> t = grouped_gemm_time(load_device("h100-sxm5-80gb"), "bf16", 8, 4096, 7168, 2048, True)
    >>> t.forward_flops == 2 * 8 * 4096 * 7168 * 2048 * 3, t.backward_s > t.forward_s
    (True, True)
    """
    if local_experts < 1:
        raise PlanError(f"a device holds >= 1 local expert, got {local_experts}",
                        "pass experts / expert-parallel size")
    for name, value in (("hidden", hidden), ("ffn", ffn)):
        _check_positive(name, value, "pass the model's hidden and expert intermediate sizes")
    if tokens_per_expert <= 0:
        return ExpertMLPTime(0.0, 0.0, 0.0)
    w = width_of(dtype)
    m = float(tokens_per_expert)
    up_n = 2 * ffn if gated else ffn
    shapes = ((up_n, hidden), (hidden, ffn))   # (N, K) of up(+gate) and down
    times, flops = [], []
    for phase in ("forward", "backward"):
        table = _gemm_table(local_experts, [r for n, k in shapes for r in _gemm_rows(
            local_experts, m, n, k, w, phase)], w, dtype)
        cols, _ = price(table, device)
        times.append(float(np.sum(cols["time_s"])))
        flops.append(float(np.sum(table["flops"])))
    return ExpertMLPTime(times[0], times[1], flops[0])
