"""A discrete-event simulation of LLM serving: requests arrive, a router sends each to a
replica, and each replica's scheduler forms one iteration at a time from what is waiting and
running, priced by perfmodel.inference.iteration (the same kernels as ``infer``).

Schedulers (``Scheduler.policy``):

* ``continuous`` — iteration-level scheduling (Orca, Yu et al., OSDI 2022; vLLM, Kwon et al.,
  SOSP 2023). Without chunked prefill (vLLM's V0 default) an iteration is either a prefill of
  newly admitted requests (first come, first served, while they fit ``max_num_seqs``, the
  token budget ``max_batched_tokens`` and the free KV blocks) or a decode step of every
  running sequence; waiting prompts go first. With ``chunked_prefill`` (Sarathi-Serve,
  Agrawal et al., OSDI 2024; vLLM V1) every iteration decodes all running sequences and
  fills the rest of the token budget with prompt chunks, oldest first.
* ``static`` — a batch of up to ``max_num_seqs`` requests is taken when the replica is idle,
  prefilled together and decoded until its longest request ends (the finished ones stay as
  padding); the baseline continuous batching is measured against.

KV cache: paged (Kwon et al.): a sequence holds ceil(tokens / ``block_size``) blocks of the
replica's KV pool (what the engine's share of memory leaves after weights, overhead and the
workspace of a full token budget: the one memory model). When a decode step needs a block
and none is free, the most recently admitted sequence is preempted (vLLM's policy): by
``recompute`` (its blocks freed; it re-queues first and later prefills its prompt and the
tokens it had generated) or by ``swap`` (its KV cache copied to host memory over PCIe and
back when it is re-admitted, each copy stalling the iteration it happens in by its bytes
over the link: ``swap_s_per_token``).
A prefix-cache hit rate skips that share of each prompt's prefill (its KV is still held).

Routers: ``round-robin``, ``least-loaded`` (fewest requests waiting or running),
``least-kv`` (fewest KV blocks held or wanted). The simulation is deterministic: the same
requests and settings give the same tables.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.inference.iteration import Iteration, IterationCost
from perfmodel.workload.job import check_positive

__all__ = ["Scheduler", "simulate", "Simulation", "POLICIES", "ROUTERS", "overloaded",
           "summary"]

POLICIES = ("continuous", "static")
PREEMPTIONS = ("recompute", "swap")
ROUTERS = ("round-robin", "least-loaded", "least-kv")


@dataclass(frozen=True)
class Scheduler:
    """How a replica forms iterations (see the module docstring)."""

    policy: str = "continuous"
    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    chunked_prefill: bool = False
    block_size: int = 16
    prefix_hit: float = 0.0
    preemption: str = "recompute"

    def __post_init__(self) -> None:
        if self.preemption not in PREEMPTIONS:
            raise UnknownNameError(f"unknown preemption {self.preemption!r}",
                                   did_you_mean(self.preemption, PREEMPTIONS))
        if self.policy not in POLICIES:
            raise UnknownNameError(f"unknown scheduler {self.policy!r}",
                                   did_you_mean(self.policy, POLICIES))
        check_positive("max_num_seqs", self.max_num_seqs, PlanError, "--max-num-seqs",
                       1 << 20)
        check_positive("max_batched_tokens", self.max_batched_tokens, PlanError,
                       "--max-batched-tokens", 1 << 24)
        check_positive("block_size", self.block_size, PlanError, "--block-size", 1 << 16)
        if not 0.0 <= self.prefix_hit < 1.0:
            raise PlanError(f"prefix-cache hit rate must be in [0, 1), got {self.prefix_hit}",
                            "pass --prefix-hit 0.3 (30 % of each prompt cached)")


@dataclass
class _Replica:
    """One replica's queues and KV pool (blocks)."""

    blocks: int
    waiting: deque = field(default_factory=deque)      # request ids, FCFS
    running: list = field(default_factory=list)         # ids, in admission order
    used: int = 0                                       # KV blocks held
    busy_until: float = math.inf
    batch: tuple = ()                                   # the iteration in flight
    static_left: int = 0


@dataclass(frozen=True)
class Simulation:
    """Per-request table (arrival, queue delay, TTFT, TPOT, end-to-end, replica,
    preemptions), per-iteration table (replica, start, seconds, decode sequences, prefill
    tokens, running, waiting, KV blocks used of the pool) and the KV pool per replica."""

    requests: pd.DataFrame
    iterations: pd.DataFrame
    kv_blocks: int
    block_size: int


def simulate(reqs: pd.DataFrame, cost: IterationCost, scheduler: Scheduler, kv_blocks: int,
             *, replicas: int = 1, router: str = "round-robin",
             cached: np.ndarray | None = None, swap_s_per_token: float = 0.0) -> Simulation:
    """Run the requests (``arrival_s``, ``input_len``, ``output_len``) through ``replicas``
    replicas of ``kv_blocks`` KV blocks each, iterations priced by ``cost``. ``cached``:
    prompt tokens already in each request's KV cache when it arrives (default: the
    scheduler's prefix-cache share); a request arriving with its whole prompt cached (a
    disaggregated decode instance's) starts decoding without a prefill."""
    if router not in ROUTERS:
        raise UnknownNameError(f"unknown router {router!r}", did_you_mean(router, ROUTERS))
    check_positive("replicas", replicas, PlanError, "--replicas", 1 << 16)
    sc, bs = scheduler, scheduler.block_size
    n = len(reqs)
    arrival = reqs["arrival_s"].to_numpy(float)
    prompt = reqs["input_len"].to_numpy(np.int64)
    out = reqs["output_len"].to_numpy(np.int64)
    longest = int((prompt + out).max()) if n else 0
    if kv_blocks * bs < longest:
        raise PlanError(f"the KV pool holds {kv_blocks * bs:,} tokens per replica, fewer "
                        f"than one request of {longest:,}", "add GPUs (--tp), shorten the "
                        "requests, or a narrower --kv-dtype")
    if not sc.chunked_prefill and int(prompt.max(initial=0)) > sc.max_batched_tokens:
        raise PlanError(f"a prompt of {int(prompt.max()):,} tokens exceeds the token budget "
                        f"of {sc.max_batched_tokens:,} without chunked prefill",
                        "raise --max-batched-tokens or pass --chunked-prefill")
    # per-request state as Python lists: the loop reads them one element at a time, where
    # lists are several times faster than numpy scalars
    cached = (np.floor(prompt * sc.prefix_hit).astype(np.int64) if cached is None
              else np.minimum(np.asarray(cached, np.int64), prompt)).tolist()
    todo = (prompt - np.asarray(cached)).tolist()   # prompt tokens still to prefill
    prompt, out, arrival = prompt.tolist(), out.tolist(), arrival.tolist()
    done = [0] * n                   # prompt tokens prefilled
    gen = [0] * n                    # tokens generated
    held = [0] * n                   # KV blocks held
    first = [math.nan] * n
    sched = [math.nan] * n
    finish = [math.nan] * n
    where = [-1] * n
    preempt = [0] * n
    swapped = [False] * n
    moved = [0]  # tokens of KV copied to or from host memory in the iteration being formed
    reps = [_Replica(kv_blocks) for _ in range(replicas)]
    rows: list[tuple] = []
    nxt, rr = 0, 0

    def tokens_of(i: int) -> int:
        return prompt[i] + gen[i]

    def blocks_for(tokens: int) -> int:
        return -(-tokens // bs)

    def route(i: int) -> int:
        nonlocal rr
        if router == "round-robin":
            rr = (rr + 1) % replicas
            return (rr - 1) % replicas
        if router == "least-loaded":
            return min(range(replicas), key=lambda r: (len(reps[r].waiting)
                                                        + len(reps[r].running), r))
        return min(range(replicas), key=lambda r: (
            reps[r].used + sum(blocks_for(int(prompt[j])) for j in reps[r].waiting), r))

    def form(r: int, now: float) -> None:
        """Start replica r's next iteration at ``now``, if it has work."""
        rep = reps[r]
        moved[0] = 0
        it, batch = _plan(rep, now)
        if it is None:
            rep.busy_until, rep.batch = math.inf, ()
            return
        dt = cost.time(it) + moved[0] * swap_s_per_token
        rep.busy_until, rep.batch = now + dt, batch
        rows.append((r, now, dt, it.decode_seqs, it.prefill_tokens, len(rep.running),
                     len(rep.waiting), rep.used))

    def admit(rep: _Replica, i: int) -> bool:
        """Give request i the KV blocks of what it holds now (static batching: of its
        whole length, reserved up front) and start it, if they are free."""
        need = blocks_for(int(prompt[i] + out[i]) if sc.policy == "static" else tokens_of(i))
        if rep.used + need > rep.blocks:
            return False
        rep.used += need
        held[i] = need
        rep.running.append(i)
        if math.isnan(sched[i]):
            sched[i] = now_
        return True

    def _plan(rep: _Replica, now: float) -> tuple[Iteration | None, tuple]:
        if sc.policy == "static":
            return _plan_static(rep)
        budget = sc.max_batched_tokens
        chunks: list[tuple[int, int]] = []   # (request, prompt tokens this iteration)
        decoding: list[int] = []
        if sc.chunked_prefill:  # decode every running sequence, then fill with prompt
            decoding = _grow(rep, [i for i in rep.running if done[i] >= todo[i]])
            budget -= len(decoding)
            for i in [i for i in rep.running if done[i] < todo[i]]:
                if budget <= 0:
                    break
                c = int(min(todo[i] - done[i], budget))
                chunks.append((i, c))
                budget -= c
        ready: list[int] = []  # admitted with the whole prompt cached: they decode now
        while rep.waiting and budget > 0 and len(rep.running) < sc.max_num_seqs:
            i = rep.waiting[0]
            left = int(todo[i] - done[i])
            if not sc.chunked_prefill and left > budget:
                break
            if not admit(rep, i):
                break
            rep.waiting.popleft()
            c = min(left, budget)
            if swapped[i]:  # back from host memory: it decodes on
                swapped[i] = False
                moved[0] += prompt[i] + gen[i]
            if c > 0:
                chunks.append((i, c))
                budget -= c
            else:
                ready.append(i)
        if not sc.chunked_prefill and not chunks:  # no prompt to run: a decode step
            decoding = _grow(rep, [i for i in rep.running if done[i] >= todo[i]])
        elif ready:
            decoding += [i for i in _grow(rep, ready) if i not in decoding]
        if not chunks and not decoding:
            return None, ()
        pairs = ctx = 0.0
        for i, c in chunks:
            end = int(cached[i] + done[i] + c)  # the chunk's last position
            pairs += IterationCost.chunk_pairs(c, end, cost.causal)
            ctx += end
        kv = float(sum([prompt[i] + gen[i] for i in decoding]))
        it = Iteration(decode_seqs=len(decoding), decode_kv=kv,
                       prefill_tokens=sum(c for _, c in chunks), prefill_pairs=pairs,
                       prefill_context=ctx, prefill_chunks=len(chunks),
                       prefill_done=sum(1 for i, c in chunks if done[i] + c >= todo[i]))
        return it, (tuple(decoding), tuple(chunks))

    def _grow(rep: _Replica, decoding: list[int]) -> list[int]:
        """Give each decoding sequence the block its next token needs, preempting the most
        recently admitted sequences (recompute) when the pool runs out."""
        need = [i for i in decoding if (prompt[i] + gen[i]) >= held[i] * bs]
        while need and rep.used + len(need) > rep.blocks:
            victim = rep.running.pop()
            rep.used -= int(held[victim])
            held[victim] = 0
            if sc.preemption == "swap" and done[victim] >= todo[victim]:
                swapped[victim] = True  # its KV goes to host memory, progress kept
                moved[0] += prompt[victim] + gen[victim]
            else:
                done[victim] = 0
                todo[victim] = prompt[victim] - cached[victim] + gen[victim]
            preempt[victim] += 1
            rep.waiting.appendleft(victim)
            need = [i for i in need if i != victim]
            decoding = [i for i in decoding if i != victim]
        for i in need:
            held[i] += 1
        rep.used += len(need)
        return decoding

    def _plan_static(rep: _Replica) -> tuple[Iteration | None, tuple]:
        if rep.running:  # the batch in flight decodes, finished sequences as padding
            batch = list(rep.running)
            kv = float(sum(tokens_of(i) for i in batch))
            return Iteration(decode_seqs=len(batch), decode_kv=kv), (tuple(batch), ())
        take: list[int] = []
        while rep.waiting and len(take) < sc.max_num_seqs and admit(rep, rep.waiting[0]):
            take.append(rep.waiting.popleft())
        if not take:
            return None, ()
        pairs = sum(IterationCost.chunk_pairs(int(todo[i]), int(prompt[i]), cost.causal)
                    for i in take)
        it = Iteration(prefill_tokens=int(sum(todo[i] for i in take)), prefill_pairs=pairs,
                       prefill_context=float(sum(prompt[i] for i in take)),
                       prefill_chunks=len(take), prefill_done=len(take))
        return it, ((), tuple((i, int(todo[i])) for i in take))

    def release(rep: _Replica, i: int, now: float) -> None:
        if math.isnan(finish[i]):
            finish[i] = now
        rep.used -= int(held[i])
        held[i] = 0
        rep.running.remove(i)

    def complete(r: int, now: float) -> None:
        rep = reps[r]
        decoding, chunks = rep.batch
        for i, c in chunks:
            done[i] += c
            if done[i] >= todo[i]:  # the prompt is in: its next token comes out
                gen[i] += 1
                if math.isnan(first[i]):
                    first[i] = now
        for i in decoding:
            if gen[i] < out[i]:
                gen[i] += 1
        if sc.policy == "static":
            if chunks:
                rep.static_left = int(max(out[i] for i, _ in chunks)) - 1
            else:
                rep.static_left -= 1
            for i in rep.running:
                if gen[i] >= out[i] and math.isnan(finish[i]):
                    finish[i] = now
            if rep.static_left <= 0:
                for i in list(rep.running):
                    release(rep, i, now)
            return
        for i in [i for i, _ in chunks] + list(decoding):
            if gen[i] >= out[i] and i in rep.running:
                release(rep, i, now)

    now_ = 0.0
    while True:
        t_arr = arrival[nxt] if nxt < n else math.inf
        r_done = min(range(replicas), key=lambda r: reps[r].busy_until)
        t_done = reps[r_done].busy_until
        if t_arr == math.inf and t_done == math.inf:
            break
        if t_arr <= t_done:  # every request arriving at this instant, then idle replicas start
            now_ = t_arr
            touched = set()
            while nxt < n and arrival[nxt] == now_:
                r = route(nxt)
                where[nxt] = r
                reps[r].waiting.append(nxt)
                touched.add(r)
                nxt += 1
            for r in sorted(touched):
                if reps[r].busy_until == math.inf:
                    form(r, now_)
        else:
            now_ = t_done
            complete(r_done, now_)
            form(r_done, now_)
    left = [i for i in range(n) if math.isnan(finish[i])]
    if left:  # cannot happen with the pool checked above; a guard, not a result
        raise PlanError(f"{len(left)} request(s) never finished", "report this as a bug")
    table = _request_table(reqs, np.asarray(first), np.asarray(sched), np.asarray(finish),
                           np.asarray(where), np.asarray(preempt))
    iters = pd.DataFrame(rows, columns=["replica", "start_s", "seconds", "decode_seqs",
                                        "prefill_tokens", "running", "waiting", "kv_blocks"])
    iters["kv_occupancy"] = iters["kv_blocks"] / kv_blocks
    return Simulation(table, iters, kv_blocks, bs)


def _request_table(reqs: pd.DataFrame, first: np.ndarray, sched: np.ndarray,
                   finish: np.ndarray, where: np.ndarray, preempt: np.ndarray
                   ) -> pd.DataFrame:
    arrival = reqs["arrival_s"].to_numpy(float)
    out = reqs["output_len"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (finish - first) / (out - 1), np.nan)
    return reqs.assign(replica=where, queue_s=sched - arrival, ttft_s=first - arrival,
                       tpot_s=tpot, e2e_s=finish - arrival, finish_s=finish,
                       preemptions=preempt)


def overloaded(requests: pd.DataFrame) -> bool:
    """Does the queue grow over the run? Either the last quarter of the requests (by
    arrival) waited over a second and over twice the end-to-end time of the first quarter
    (a stable system's late arrivals wait about as long as its early ones), or requests
    were served at under half the rate they arrived (a burst far past capacity)."""
    r = requests.sort_values("arrival_s")
    if len(r) < 8:
        return False
    q = len(r) // 4
    late = float(r["queue_s"].iloc[-q:].mean())
    if late > 1.0 and late > 2.0 * float(r["e2e_s"].iloc[:q].mean()):
        return True
    span = float(r["arrival_s"].iloc[-1] - r["arrival_s"].iloc[0])
    served = float(r["finish_s"].max() - r["arrival_s"].iloc[0])
    return span > 0 and served > 2.0 * span and late > 1.0


def summary(sim: Simulation, slo_ttft: float | None = None,
            slo_tpot: float | None = None) -> dict[str, Any]:
    """Percentiles of TTFT, TPOT, end-to-end and queueing; throughput, goodput (requests
    within both SLOs per second), GPU busy share, KV occupancy, preemptions."""
    r, it = sim.requests, sim.iterations
    span = float(r["finish_s"].max() - r["arrival_s"].min()) or float("nan")
    out: dict[str, Any] = {"requests": len(r), "duration_s": span}
    for col in ("ttft_s", "tpot_s", "e2e_s", "queue_s"):
        v = r[col].dropna().to_numpy(float)
        for p in (50, 90, 99):
            out[f"{col[:-2]}_p{p}_s"] = float(np.percentile(v, p)) if len(v) else float("nan")
        out[f"{col[:-2]}_mean_s"] = float(v.mean()) if len(v) else float("nan")
    out["requests_per_s"] = len(r) / span
    out["output_tokens_per_s"] = float(r["output_len"].sum()) / span
    out["input_tokens_per_s"] = float(r["input_len"].sum()) / span
    ok = np.ones(len(r), bool)
    if slo_ttft is not None:
        ok &= r["ttft_s"].to_numpy(float) <= slo_ttft
    if slo_tpot is not None:
        ok &= ~(r["tpot_s"].to_numpy(float) > slo_tpot)
    out["slo_attained"] = float(ok.mean())
    out["goodput_requests_per_s"] = float(ok.sum()) / span
    replicas = int(it["replica"].max()) + 1 if len(it) else 1
    out["gpu_busy"] = float(it["seconds"].sum()) / (span * replicas)
    w = it["seconds"].to_numpy(float)
    occ = it["kv_occupancy"].to_numpy(float)
    out["kv_occupancy_mean"] = float((occ * w).sum() / w.sum()) if w.sum() else 0.0
    out["kv_occupancy_max"] = float(occ.max()) if len(occ) else 0.0
    out["mean_batch"] = float((it["decode_seqs"] + (it["prefill_tokens"] > 0)).mean())
    out["preemptions"] = int(r["preemptions"].sum())
    out["overloaded"] = overloaded(r)
    return out
