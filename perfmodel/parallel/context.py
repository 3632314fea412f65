"""Pure cost functions of context parallelism for the training-step model.

Context parallelism splits each sequence over ``cp`` ranks that sit ``stride`` ranks apart in
the rank order (Megatron-LM: tensor ranks adjacent, then context; stride = the tensor-parallel
size). Two ways to run attention on the split sequence:

* **Ring attention** (Liu et al. 2023, "Ring Attention with Blockwise Transformers",
  arXiv 2310.01889; Megatron-Core context parallelism through Transformer Engine's
  ``AttnFuncWithCPAndKVP2P``): each rank keeps its queries and passes key/value blocks
  round the ring, overlapping each hop with the attention on the block in hand. With causal
  load balancing the sequence is cut into 2 cp chunks and rank r holds chunks r and
  2 cp - 1 - r, so every ring step does the same work (TE: the diagonal step does two
  half-masked blocks and one full one; every other step half of Q against all of K, or all
  of Q against half of K). ``t_attention_chunk`` is therefore one step's attention:
  the rank's attention time / cp.
* **DeepSpeed-Ulysses** (Jacobs et al. 2023, arXiv 2309.14509): all-to-alls swap the
  sequence split for a head split around attention; nothing overlaps them.

Bytes are per device, times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from perfmodel.analytic.network import predict_collective
from perfmodel.errors import PlanError, ShapeError
from perfmodel.hardware.system import SystemSpec
from perfmodel.parallel.moe import all_to_all_time, group_layout

__all__ = ["RingCost", "ring_attention", "ring_hop_time", "ulysses", "ulysses_bytes",
           "check_ulysses"]


@dataclass(frozen=True)
class RingCost:
    """One pass (forward or backward) of ring attention on one rank, per layer.

    ``hops``: ring steps that carry data; ``hop_s``: one hop of ``kv_bytes_per_rank`` on the
    ring's slowest link (``binding``: ``scale_up`` or ``scale_out``); ``total_hop_s``: all
    the pass's hops end to end; ``exposed_s``: what the attention does not hide.
    """

    hops: int
    hop_s: float
    total_hop_s: float
    exposed_s: float
    binding: str


@lru_cache(maxsize=4096)
def _send_recv(system: SystemSpec, nbytes: float, cross_node: bool, scale: float) -> float:
    """Seconds of one ring hop of ``nbytes``: predict_collective's send_recv between two
    devices of one node or of two nodes (the placement perfmodel.parallel.step prices
    pipeline hops with), its transfer stretched by ``scale`` where more flows leave a node
    than it has NICs."""
    n, g = (2, 1) if cross_node else (1, 2)
    row = predict_collective(system, "send_recv", [nbytes], nodes=n, per_node=g).table.iloc[0]
    return (float(row["latency_us"]) + float(row["transfer_us"]) * scale) * 1e-6


def ring_hop_time(system: SystemSpec, cp: int, stride: int, nbytes: float
                  ) -> tuple[float, str]:
    """(seconds, binding level) of one ring step passing ``nbytes`` to the neighbour.

    All cp ranks send at once and each waits for its receive, so the slowest hop sets the
    step: a hop across nodes when the ring spans nodes (``group_layout``: g ranks a node),
    else one inside a node. Across nodes, each of the devices_per_node / g rings with ranks
    in a node sends one flow out of it; a flow takes one NIC, and beyond nics_per_node flows
    they share them.
    """
    nodes, per = group_layout(system, cp, stride)
    if cp < 2 or nbytes <= 0:
        return 0.0, "scale_up"
    intra = _send_recv(system, nbytes, False, 1.0) if per > 1 else 0.0
    if nodes == 1:
        return intra, "scale_up"
    net = system.scale_out
    flows = system.devices_per_node / per
    scale = max(1.0, flows / net.nics_per_node) if net is not None else 1.0
    inter = _send_recv(system, nbytes, True, scale)
    return (inter, "scale_out") if inter >= intra else (intra, "scale_up")


def ring_attention(system: SystemSpec, cp: int, stride: int, kv_bytes_per_rank: float,
                   t_attention_chunk: float, *, backward: bool = False) -> RingCost:
    """Hop and exposed seconds of one pass of ring attention on one rank.

    Forward (TE ``AttnFuncWithCPAndKVP2P.forward``): step i (0..cp-1) computes on the KV
    block in hand while the block for step i+1 goes to the neighbour; steps 0..cp-2 send,
    so cp - 1 hops of ``kv_bytes_per_rank`` (K and V of the rank's s / cp tokens), each
    hidden under one step's attention c = ``t_attention_chunk``:

        exposed_fwd = (cp - 1) max(0, t(kv) - c)

    Backward (TE ``AttnFuncWithCPAndKVP2P.backward``): the ring buffer holds K, V and the dK,
    dV accumulated so far; step i works on the block of rank (r + i + 1) mod cp, so each
    block's gradient chain ends at its owner and no hop is left after the last step. Step 0
    sends K, V only (no gradient yet), steps 1..cp-2 send K, V and dK, dV (twice the
    bytes), step cp-1 dK, dV only, each under one step's backward attention c:

        exposed_bwd = 2 max(0, t(kv) - c) + (cp - 2) max(0, t(2 kv) - c)     (cp >= 2)

    dK, dV move at the width of K, V (TE sends them in one buffer).

    >>> from perfmodel.hardware.system import load_system
    >>> cost = ring_attention(load_system("dgx-h100"), 4, 8, 49e6, 4e-4)
    >>> cost.hops, round(cost.hop_s * 1e6, 1), round(cost.exposed_s * 1e6, 1)
    (3, 1031.2, 1893.6)
    """
    if cp < 1 or stride < 1:
        raise PlanError(f"a ring needs >= 1 ranks >= 1 apart, got cp {cp}, stride {stride}",
                        "pass the context-parallel and tensor-parallel sizes")
    if kv_bytes_per_rank < 0 or t_attention_chunk < 0:
        raise ShapeError("KV bytes and attention seconds must be >= 0, got "
                         f"{kv_bytes_per_rank!r} and {t_attention_chunk!r}",
                         "pass K and V bytes of the rank's tokens and attention / cp")
    if cp == 1:
        return RingCost(0, 0.0, 0.0, 0.0, "scale_up")
    one, binding = ring_hop_time(system, cp, stride, kv_bytes_per_rank)
    c = t_attention_chunk
    if not backward:
        return RingCost(cp - 1, one, (cp - 1) * one, (cp - 1) * max(0.0, one - c), binding)
    two, _ = ring_hop_time(system, cp, stride, 2 * kv_bytes_per_rank)
    total = 2 * one + (cp - 2) * two
    exposed = 2 * max(0.0, one - c) + (cp - 2) * max(0.0, two - c)
    return RingCost(cp, one, total, exposed, binding)


def check_ulysses(heads: int, kv_heads: int, cp: int) -> None:
    """Ulysses scatters heads over the cp ranks: the query and the KV heads (of one tensor-
    parallel rank) must both divide by cp (DeepSpeed ``DistributedAttention``; Transformer
    Engine's a2a context parallelism splits the heads of Q, K and V alike).

    >>> check_ulysses(32, 8, 4)
    >>> check_ulysses(32, 2, 4)
    Traceback (most recent call last):
    ...
    perfmodel.errors.PlanError: Ulysses context parallelism 4 does not divide the 32 \
query heads and 2 KV heads of a tensor-parallel rank (hint: choose --cp dividing both \
(e.g. 2), or use ring context parallelism)
    """
    if cp < 1:
        raise PlanError(f"context parallel size must be >= 1, got {cp}", "pass --cp >= 1")
    if heads % cp or kv_heads % cp:
        best = max(d for d in range(1, cp + 1) if heads % d == 0 and kv_heads % d == 0)
        raise PlanError(f"Ulysses context parallelism {cp} does not divide the {heads} query "
                        f"heads and {kv_heads} KV heads of a tensor-parallel rank",
                        f"choose --cp dividing both (e.g. {best}), or use ring context "
                        "parallelism")


def ulysses_bytes(tokens: float, hidden: int, kv_hidden: int, dtype_bytes: float
                  ) -> tuple[float, float]:
    """(query or output, key or value) bytes per rank of one Ulysses all-to-all: the rank's
    ``tokens`` (s b / cp) x the width (``hidden`` for Q and O, ``kv_hidden`` for K and V, of
    one tensor-parallel rank) x ``dtype_bytes``; (cp - 1) / cp of it leaves the rank.

    >>> ulysses_bytes(4096, 4096, 1024, 2)
    (33554432.0, 8388608.0)
    """
    return float(tokens) * hidden * dtype_bytes, float(tokens) * kv_hidden * dtype_bytes


def ulysses(system: SystemSpec, cp: int, stride: int, tokens: float, hidden: int,
            kv_hidden: int, dtype_bytes: float) -> float:
    """Seconds of one pass (forward, or backward: the same) of DeepSpeed-Ulysses, per layer.

    Forward (Jacobs et al. 2023, sec. 3.1; DeepSpeed ``DistributedAttention``): one all-to-
    all each for Q, K and V before attention (sequence split -> head split) and one for the
    output after it; the backward runs the same four in reverse (dO, then dQ, dK, dV). They
    sit on the critical path (nothing to overlap). Each is a uniform all-to-all of the
    per-rank buffer of ``ulysses_bytes`` over the cp ranks ``stride`` apart
    (perfmodel.parallel.moe.all_to_all_time: the system's levels, every device's share of
    its node's NICs):

        t = 2 a2a(tokens hidden w) + 2 a2a(tokens kv_hidden w)

    >>> from perfmodel.hardware.system import load_system
    >>> ulysses(load_system("dgx-h100"), 1, 1, 4096, 4096, 1024, 2)
    0.0
    """
    if cp < 1 or stride < 1:
        raise PlanError(f"Ulysses needs >= 1 ranks >= 1 apart, got cp {cp}, stride {stride}",
                        "pass the context-parallel and tensor-parallel sizes")
    if cp == 1 or tokens <= 0:
        return 0.0
    q, kv = ulysses_bytes(tokens, hidden, kv_hidden, dtype_bytes)
    return 2 * all_to_all_time(system, cp, stride, q).seconds \
        + 2 * all_to_all_time(system, cp, stride, kv).seconds
