"""The cost of one serving iteration: a batch of prompt chunks and decode steps run as one
forward, priced from the same kernels as ``infer`` so a serving simulation (perfmodel.serving)
reads the same physics.

An iteration (Orca / vLLM continuous batching, Sarathi-Serve chunked prefill) runs ``n``
tokens through the model: each prompt chunk's tokens and one token of each decoding
sequence. Its GPU time splits in two (perfmodel.inference.timing.Kernels.attention):

* every kernel but attention and the LM head depends only on n (GEMMs, norms, activations,
  the tensor-parallel all-reduces of n x hidden): priced by ``infer``'s pass pricing at a
  grid of token counts (1, 2, 4, ..., plus the counts asked for), interpolated linearly
  between grid points;
* the LM head runs only for the tokens whose logits are sampled, one per decoding sequence
  and per prompt that finishes (engines prune the rest before it): priced at a grid of
  such counts;
* attention depends on what each sequence attends to: a decode step of a sequence with T
  cached tokens reads its K and V (memory) and does work in proportion to T (compute); a
  prompt chunk of c tokens at context T computes over its attended pairs and reads T
  tokens' K and V. Both are affine, priced from the attention kernels of two passes each,
  and a batch's attention kernel takes max(sum of compute, sum of memory) + its floor.

The host side is the engine's: with CUDA graphs (decode-only iterations, where the engine
captures them) a kernel costs its graph-node time, else its eager launch; the pass ends at
max(GPU time, kernels x host time) + the first launch, and the engine's per-step time is
added (the launch queue of perfmodel.inference.timing in its steady state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from perfmodel.graph.shape import attended_pairs
from perfmodel.inference.timing import Kernels

__all__ = ["IterationCost", "Iteration", "attention_terms"]


@dataclass(frozen=True)
class Iteration:
    """What one iteration runs: decode sequences with their KV lengths summed, prompt
    chunks (tokens, attended pairs and context read, summed), and the prompts that finish
    in it (each needs its logits, as each decode step does)."""

    decode_seqs: int = 0
    decode_kv: float = 0.0
    prefill_tokens: int = 0
    prefill_pairs: float = 0.0
    prefill_context: float = 0.0
    prefill_done: int = 0
    prefill_chunks: int = 1

    @property
    def logits(self) -> int:
        return self.decode_seqs + self.prefill_done

    @property
    def tokens(self) -> int:
        return self.decode_seqs + self.prefill_tokens


@dataclass(frozen=True)
class _Attention:
    """Per attention kernel (layer), affine coefficients: compute and memory seconds =
    a + b x (KV tokens for decode; pairs / context tokens for prefill)."""

    c0: np.ndarray
    c1: np.ndarray
    m0: np.ndarray
    m1: np.ndarray
    floor: np.ndarray


@dataclass(frozen=True)
class IterationCost:
    """Seconds of a serving iteration (``time``), built by ``infer``'s pricing
    (perfmodel.inference.run.iteration_cost)."""

    grid: np.ndarray                # token counts priced
    linear: np.ndarray              # GPU seconds of the other kernels at each count
    head_grid: np.ndarray           # sequences needing logits, priced
    head: np.ndarray                # GPU seconds of the LM head at each
    kernels: int                    # kernels launched per iteration (attention included)
    decode: _Attention
    prefill: _Attention
    host_eager_s: float
    host_graph_s: float
    per_step_s: float
    decode_graphs: bool
    max_graph_batch: int = 1 << 30
    causal: bool = True
    notes: tuple[str, ...] = field(default=(), compare=False)

    def gpu(self, it: Iteration) -> float:
        """GPU seconds of an iteration."""
        n = it.tokens
        if n <= 0:
            return 0.0
        lin = _interp(n, self.grid, self.linear)
        if it.logits:
            lin += _interp(it.logits, self.head_grid, self.head)
        att = 0.0
        if it.decode_seqs:
            d = self.decode
            c = it.decode_seqs * d.c0 + d.c1 * it.decode_kv
            m = it.decode_seqs * d.m0 + d.m1 * it.decode_kv
            att += float((np.maximum(c, m) + d.floor).sum())
        if it.prefill_tokens:
            p, k = self.prefill, max(it.prefill_chunks, 1)
            c = k * p.c0 + p.c1 * it.prefill_pairs
            m = k * p.m0 + p.m1 * (it.prefill_context + it.prefill_tokens)
            att += float((np.maximum(c, m) + p.floor).sum())
        return lin + att

    def time(self, it: Iteration) -> float:
        """Seconds of an iteration: the GPU's behind the host's launches, plus the engine's
        per-step time."""
        gpu = self.gpu(it)
        graphs = (self.decode_graphs and it.prefill_tokens == 0
                  and it.decode_seqs <= self.max_graph_batch)
        host = self.host_graph_s if graphs else self.host_eager_s
        launch = self.host_eager_s if graphs else 0.0  # one graph launch
        return max(gpu, self.kernels * host) + host + launch + self.per_step_s

    @staticmethod
    def chunk_pairs(tokens: int, context: int, causal: bool = True) -> float:
        """Query-key pairs of a prompt chunk of ``tokens`` ending at ``context``."""
        return attended_pairs(tokens, context, causal=causal)


def _interp(x: float, grid: np.ndarray, y: np.ndarray) -> float:
    """Linear between grid points; past the last, in proportion."""
    if x <= grid[-1]:
        return float(np.interp(x, grid, y))
    return float(y[-1] * x / grid[-1])


def attention_terms(k0: Kernels, k1: Kernels, compute_x: tuple[float, float],
                    memory_x: tuple[float, float]) -> _Attention:
    """Affine attention coefficients from the attention kernels of two passes: compute
    seconds against ``compute_x`` (KV tokens of a decode step, attended pairs of a prompt
    chunk) and memory seconds against ``memory_x`` (tokens whose K and V are read)."""
    a0, a1 = k0.is_attention, k1.is_attention
    c0, c1 = k0.compute[a0], k1.compute[a1]
    m0, m1 = k0.memory[a0], k1.memory[a1]

    def fit(y0: np.ndarray, y1: np.ndarray, x: tuple[float, float]
            ) -> tuple[np.ndarray, np.ndarray]:
        dx = x[1] - x[0]
        b = (y1 - y0) / dx if dx else np.zeros_like(y0)
        return y0 - b * x[0], b

    ca, cb = fit(c0, c1, compute_x)
    ma, mb = fit(m0, m1, memory_x)
    return _Attention(ca, cb, ma, mb, k0.floor[a0])
