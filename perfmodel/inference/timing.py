"""Time of one forward pass on one GPU: its kernels priced by the roofline, behind the host's
launch queue, with the communication kernels in between.

Kernels: the roofline's rows (perfmodel.analytic.roofline) grouped as they run, a kernel and
the epilogues fused into it (``fused``) being one kernel of max(sum compute, sum memory) +
its launch floor. Communication (tensor-parallel all-reduces, expert-parallel all-to-alls)
runs as a kernel of its own before each residual add (``COMM_BEFORE``; the caller prices
it, perfmodel.inference.run).

Launch queue: the host issues kernel j at (j + 1) h (h = the engine's CPU time per kernel,
eager, or per graph node with CUDA / HIP graphs), the GPU runs them in order, so the pass
ends at max_j ((j + 1) h + sum of the GPU times of j and all after it) — the last kernel's
finish when the GPU never waits (``sum g + h``) or when the host is the bottleneck
(``n h + g_last``), and in between when small, host-bound kernels alternate with long ones.

Context-length dependence: a pass's FLOP and bytes are affine in its context length T
(attention reads T keys and values; nothing else depends on T), so each kernel's compute
and memory times are priced at two lengths and interpolated (``AffinePass``): a decode of n
steps costs sum over steps of the pass at T0 + j, exactly, not n times the last step. The
efficiencies are taken as those at the two ends (they vary little with T: the attention
GEMM's shape changes only in its reduction length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["queue_time", "Kernels", "kernels_of", "AffinePass", "COMM_BEFORE",
           "STEP_BLOCK"]

# A layer's tensor-parallel reduction runs right before its residual add (after the
# attention output projection and after the MLP's down projection or the MoE combine).
COMM_BEFORE = ("attn_residual", "mlp_residual")
STEP_BLOCK = 256  # decode steps evaluated per numpy block (memory: block x kernels floats)


def queue_time(gpu: np.ndarray, host: float) -> np.ndarray:
    """Finish time of the last of a sequence of kernels behind a launch queue (axis -1:
    kernels in order; leading axes: independent passes). ``host``: seconds per launch.

    >>> float(queue_time(np.array([10.0, 1.0, 1.0]), 2.0))   # GPU-bound: 2 + 12
    14.0
    >>> float(queue_time(np.array([1.0, 1.0, 1.0]), 2.0))    # host-bound: 3 x 2 + 1
    7.0
    """
    g = np.asarray(gpu, float)
    if g.shape[-1] == 0:
        return np.zeros(g.shape[:-1])
    suffix = np.flip(np.cumsum(np.flip(g, -1), -1), -1)
    launch = host * np.arange(1, g.shape[-1] + 1)
    return np.max(launch + suffix, axis=-1)


@dataclass(frozen=True)
class Kernels:
    """One pass's kernels in execution order: compute, memory and floor seconds of each
    (a communication kernel has only ``comm``); ``attention`` marks the attention kernels
    (the only ones whose cost depends on the context length)."""

    compute: np.ndarray
    memory: np.ndarray
    floor: np.ndarray
    comm: np.ndarray
    attention: np.ndarray | None = None
    head: np.ndarray | None = None

    @property
    def is_attention(self) -> np.ndarray:
        return (np.zeros(len(self.compute), bool) if self.attention is None
                else self.attention)

    @property
    def is_head(self) -> np.ndarray:
        """The LM head's kernels (their rows: the sequences that need logits)."""
        return np.zeros(len(self.compute), bool) if self.head is None else self.head

    @property
    def gpu(self) -> np.ndarray:
        return np.maximum(self.compute, self.memory) + self.floor + self.comm

    def __len__(self) -> int:
        return len(self.compute)


def kernels_of(ops: pd.DataFrame, comm: np.ndarray | None = None) -> Kernels:
    """The kernels of a roofline table (``analytic.roofline.roofline``'s output), with a
    communication kernel of ``comm[i]`` seconds inserted before row i wherever it is
    positive (after the kernel row i is fused into, if it is an epilogue)."""
    works = (ops["flops"].to_numpy(float) > 0) | (ops["bytes_moved"].to_numpy(float) > 0)
    comm_rows = np.zeros(len(ops)) if comm is None else np.asarray(comm, float)[works]
    ops = ops[works]
    fused = ops["fused"].to_numpy(bool)
    group = np.cumsum(~fused) - 1
    n = int(group[-1]) + 1 if len(group) else 0
    c = np.bincount(group, weights=ops["compute_s"].to_numpy(float), minlength=n)
    m = np.bincount(group, weights=ops["memory_s"].to_numpy(float), minlength=n)
    o = np.bincount(group, weights=ops["overhead_s"].to_numpy(float), minlength=n)
    att = np.bincount(group, weights=(ops["kind"].astype(str) == "attention").to_numpy(float),
                      minlength=n) > 0
    head = np.bincount(group, weights=(ops["name"].astype(str) == "lm_head").to_numpy(float),
                       minlength=n) > 0
    out = np.zeros(n)
    before = comm_rows > 0
    if before.any():
        ins = group[before] + fused[before]
        order = np.argsort(ins, kind="stable")
        ins = ins[order]
        c, m, o = (np.insert(a, ins, 0.0) for a in (c, m, o))
        att = np.insert(att, ins, False)
        head = np.insert(head, ins, False)
        out = np.insert(out, ins, comm_rows[before][order])
    return Kernels(c, m, o, out, att, head)


@dataclass(frozen=True)
class AffinePass:
    """A pass priced at two context lengths ``t0`` < ``t1`` (the same kernels at both):
    any length between is the linear interpolation of each kernel's compute and memory
    times (see the module docstring)."""

    at0: Kernels
    at1: Kernels
    t0: float
    t1: float

    def _at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(compute, memory) seconds of each kernel (axis -1) at each context length."""
        t = np.asarray(t, float)[..., None]
        f = (t - self.t0) / (self.t1 - self.t0) if self.t1 > self.t0 else np.zeros_like(t)
        c = self.at0.compute + f * (self.at1.compute - self.at0.compute)
        m = self.at0.memory + f * (self.at1.memory - self.at0.memory)
        return c, m

    def gpu_at(self, t: np.ndarray) -> np.ndarray:
        """GPU seconds of each kernel (axis -1) at each context length in ``t``."""
        c, m = self._at(t)
        return np.maximum(c, m) + self.at0.floor + self.at0.comm

    def run(self, lengths: np.ndarray, host: float) -> tuple[np.ndarray, ...]:
        """Per pass at ``lengths``, each behind the launch queue with ``host`` seconds per
        kernel: (seconds, compute-bound, memory-bound and communication GPU seconds),
        evaluated STEP_BLOCK passes at a time. With no host time per kernel (CUDA graphs
        whose nodes cost nothing on the host) the GPU never waits and a pass is the sum of
        its kernels: only those whose cost depends on the context are evaluated per pass."""
        lengths = np.asarray(lengths, float)
        if host == 0:
            return self._sums(lengths)
        out = np.empty((4, len(lengths)))
        comm = self.at0.comm
        for i in range(0, len(lengths), STEP_BLOCK):
            c, m = self._at(lengths[i:i + STEP_BLOCK])
            roof = np.maximum(c, m) + self.at0.floor
            out[0, i:i + STEP_BLOCK] = queue_time(roof + comm, host)
            bound = c >= m
            out[1, i:i + STEP_BLOCK] = (roof * bound).sum(-1)
            out[2, i:i + STEP_BLOCK] = (roof * ~bound).sum(-1)
        out[3] = comm.sum()
        return tuple(out)

    def _sums(self, lengths: np.ndarray) -> tuple[np.ndarray, ...]:
        """``run`` with no host time: kernels summed, the context-independent ones once."""
        a, b = self.at0, self.at1
        vary = (a.compute != b.compute) | (a.memory != b.memory)
        const = ~vary
        roof0 = np.maximum(a.compute, a.memory) + a.floor
        comp0 = float(roof0[const & (a.compute >= a.memory)].sum())
        mem0 = float(roof0[const & (a.compute < a.memory)].sum())
        part = AffinePass(Kernels(a.compute[vary], a.memory[vary], a.floor[vary],
                                  a.comm[vary]),
                          Kernels(b.compute[vary], b.memory[vary], b.floor[vary],
                                  b.comm[vary]), self.t0, self.t1)
        c, m = part._at(lengths)
        roof = np.maximum(c, m) + part.at0.floor
        bound = c >= m
        comp = comp0 + (roof * bound).sum(-1)
        mem = mem0 + (roof * ~bound).sum(-1)
        comm = np.full(len(lengths), float(a.comm.sum()))
        return comp + mem + comm, comp, mem, comm
