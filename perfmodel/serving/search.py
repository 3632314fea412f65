"""The cheapest serving deployment that meets a target rate and SLOs: a search over engine,
tensor-parallel size, the scheduler's batch and token budget, chunked prefill, and the
number of replicas.

For each configuration (engine, tp, max sequences, token budget, chunked prefill) the
fewest replicas that meet the SLOs at the target rate are found by bisection on the replica
count (latency falls as replicas are added). Behind a round-robin router replica j serves
requests j, j + K, j + 2K, ... whatever the replicas' state, so a deployment of K replicas is
simulated exactly as one replica serving every K-th request of the stream (and K of them
alike in distribution). A configuration meets its SLOs when the chosen percentile (default
p99) of TTFT and of TPOT are within the targets and the replica keeps up (its queue does not
grow over the run: perfmodel.serving.simulate.overloaded). Ranked by GPUs, then GPU-hours per
million output tokens at the target rate; configurations are evaluated in parallel processes
(``workers``), with a progress bar on a terminal. With ``disaggregate`` every prefill /
decode split joins them (perfmodel.serving.run.serve_disaggregated's model): the fewest
prefill instances meeting the TTFT SLO, then the fewest decode instances meeting the TPOT
SLO on the stream of first tokens the prefill pool hands over (each round-robin, each found
by bisection).
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import PerfModelError, PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.inference.iteration import IterationCost
from perfmodel.inference.run import iteration_cost, prepare
from perfmodel.progress import track
from perfmodel.serving.run import kv_pool
from perfmodel.serving.simulate import Scheduler, overloaded, simulate
from perfmodel.workload.job import check_positive
from perfmodel.workload.plan import ParallelPlan

__all__ = ["search", "Space", "SEARCH_COLUMNS"]

SEARCH_COLUMNS = ("engine", "tp", "max_num_seqs", "max_batched_tokens", "chunked_prefill",
                  "replicas", "gpus", "meets", "ttft_p_s", "tpot_p_s", "rate_per_replica",
                  "gpu_hours_per_m_tokens", "simulations", "note")


@dataclass(frozen=True)
class Space:
    """The configurations searched."""

    engines: tuple[str, ...] = ("vllm",)
    tps: tuple[int, ...] = (1, 2, 4, 8)
    max_num_seqs: tuple[int, ...] = (64, 128, 256)
    budgets: tuple[int, ...] = (2048, 8192)
    chunked: tuple[bool, ...] = (False, True)
    max_replicas: int = 64
    disaggregate: bool = False

    def points(self) -> list[tuple[str, int, int, int, bool]]:
        return list(itertools.product(self.engines, self.tps, self.max_num_seqs,
                                      self.budgets, self.chunked))


@dataclass(frozen=True)
class _Job:
    """What every configuration is judged on (small: sent to worker processes)."""

    reqs: pd.DataFrame
    rate: float
    slo_ttft: float
    slo_tpot: float
    percentile: float
    max_replicas: int


def _row(engine: str, tp: int | str, seqs: int, budget: int, chunked: bool,
         note: str = "") -> dict[str, Any]:
    """A deployment's result row (SEARCH_COLUMNS) before it is evaluated."""
    return {"engine": engine, "tp": tp, "max_num_seqs": seqs, "max_batched_tokens": budget,
            "chunked_prefill": chunked, "replicas": None, "gpus": None, "meets": False,
            "ttft_p_s": np.nan, "tpot_p_s": np.nan, "rate_per_replica": np.nan,
            "gpu_hours_per_m_tokens": np.nan, "simulations": 0, "note": note}


def _evaluate(job: _Job, point: tuple[str, int, int, int, bool],
              built: tuple[IterationCost, int] | str) -> dict[str, Any]:
    """The fewest replicas of one configuration that meet the SLOs (bisection); ``built``
    is its iteration model and KV blocks, or why it does not apply."""
    engine, tp, seqs, budget, chunked = point
    row = _row(engine, tp, seqs, budget, chunked)
    if isinstance(built, str):
        row["note"] = built
        return row
    cost, blocks = built
    sc = Scheduler(max_num_seqs=seqs, max_batched_tokens=budget, chunked_prefill=chunked)
    if not chunked and int(job.reqs["input_len"].max()) > budget:
        row["note"] = "a prompt exceeds the token budget without chunked prefill"
        return row

    def trial(k: int) -> tuple[bool, dict[str, Any]]:
        sub = job.reqs.iloc[::k].reset_index(drop=True)
        sim = simulate(sub, cost, sc, blocks)
        q = job.percentile
        ttft = float(np.percentile(sim.requests["ttft_s"], q))
        tpots = sim.requests["tpot_s"].dropna()
        tpot = float(np.percentile(tpots, q)) if len(tpots) else 0.0
        ok = ttft <= job.slo_ttft and tpot <= job.slo_tpot and not overloaded(sim.requests)
        row["simulations"] += 1
        return ok, {"ttft_p_s": ttft, "tpot_p_s": tpot, "rate_per_replica": job.rate / k}

    stats: dict[int, dict[str, Any]] = {}

    def meets(k: int) -> bool:
        ok, stats[k] = trial(k)
        return ok

    hi, _ = _fewest(job.max_replicas, meets)
    if hi is None:
        row["note"] = f"not met with up to {job.max_replicas} replicas"
        return row
    found = stats[hi]
    gpus = hi * tp
    tokens = job.rate * float(job.reqs["output_len"].mean())
    row.update(found, replicas=hi, gpus=gpus, meets=True,
               gpu_hours_per_m_tokens=gpus / 3600.0 / tokens * 1e6)
    return row


def _models(graph: ModelGraph, device: DeviceSpec, system: SystemSpec | None,
            reqs: pd.DataFrame, space: Space, dtype: str | None
            ) -> dict[tuple[str, int, int], tuple[IterationCost, int] | str]:
    """Per (engine, tp, token budget): the iteration model (priced once, at the largest
    budget and batch searched) and the KV blocks of a replica; or why it does not apply."""
    longest = int((reqs["input_len"] + reqs["output_len"]).max())
    lengths = tuple(int(x) for x in np.unique(reqs["input_len"])[:16])
    out: dict[tuple[str, int, int], tuple[IterationCost, int] | str] = {}
    for engine, tp in itertools.product(space.engines, space.tps):
        try:
            setup, _ = prepare(graph, device, engine=engine, dtype=dtype,
                               plan=ParallelPlan(tensor_parallel=tp), system=system)
            cost = iteration_cost(setup, max_tokens=max(space.budgets), lengths=lengths,
                                  context=max(longest, 2), max_seqs=max(space.max_num_seqs))
        except PerfModelError as exc:
            for budget in space.budgets:
                out[(engine, tp, budget)] = f"not applicable: {exc.message}"
            continue
        for budget in space.budgets:
            blocks, _ = kv_pool(setup, 16, budget)
            out[(engine, tp, budget)] = (cost, blocks) if blocks * 16 >= longest else \
                "does not fit: no room for one request's KV cache"
    return out


def _fewest(k_max: int, meets: Any) -> tuple[int | None, int]:
    """The fewest k in 1..k_max with meets(k) true (monotone), by doubling then bisection;
    (None, trials) if none."""
    lo, hi, trials = 0, 1, 0
    while hi <= k_max:
        trials += 1
        if meets(hi):
            break
        lo, hi = hi, hi * 2
    else:
        return None, trials
    while hi - lo > 1:
        mid = (lo + hi) // 2
        trials += 1
        lo, hi = (lo, mid) if meets(mid) else (mid, hi)
    return hi, trials


def _disaggregated(job: _Job, engine: str, tp_p: int, tp_d: int,
                   built_p: tuple[IterationCost, int] | str,
                   built_d: tuple[IterationCost, int] | str, budget: int, seqs: int,
                   transfer: np.ndarray) -> dict[str, Any]:
    """The fewest prefill instances meeting the TTFT SLO (every P-th request each, behind
    round-robin), then the fewest decode instances meeting the TPOT SLO on the stream the
    prefill pool hands over (its first tokens, each KV cache ``transfer`` seconds later)."""
    row = _row(engine, f"{tp_p}/{tp_d}", seqs, budget, False, "disaggregated")
    if isinstance(built_p, str) or isinstance(built_d, str):
        row["note"] = built_p if isinstance(built_p, str) else built_d
        return row
    q, reqs = job.percentile, job.reqs
    if int(reqs["input_len"].max()) > budget:
        row["note"] = "a prompt exceeds the token budget (prefill pool, whole prompts)"
        return row
    sc = Scheduler(max_num_seqs=seqs, max_batched_tokens=budget)
    first = reqs.assign(output_len=1)
    finish = np.zeros(len(reqs))

    def prefill_ok(k: int) -> bool:
        ttfts = []
        for j in range(k):  # every instance: the decode pool needs all first tokens
            sub = first.iloc[j::k]
            sim = simulate(sub.reset_index(drop=True), built_p[0], sc, built_p[1])
            finish[j::k] = sim.requests["finish_s"].to_numpy()
            ttfts.append(sim.requests["ttft_s"].to_numpy())
        ok = float(np.percentile(np.concatenate(ttfts), q)) <= job.slo_ttft
        row["ttft_p_s"] = float(np.percentile(np.concatenate(ttfts), q))
        return ok

    p, t1 = _fewest(job.max_replicas, prefill_ok)
    row["simulations"] += t1
    if p is None:
        row["note"] = f"prefill pool: TTFT not met with up to {job.max_replicas} instances"
        return row
    prefill_ok(p)  # the finish times of the chosen pool
    more = reqs["output_len"].to_numpy() > 1
    stream = reqs[more].assign(arrival_s=(finish + transfer)[more],
                               input_len=reqs["input_len"][more] + 1,
                               output_len=reqs["output_len"][more] - 1)
    stream = stream.iloc[np.argsort(stream["arrival_s"].to_numpy(), kind="stable")]
    stream = stream.reset_index(drop=True)
    first_tok = (finish)[more][np.argsort((finish + transfer)[more], kind="stable")]
    dsc = Scheduler(max_num_seqs=seqs, max_batched_tokens=budget, chunked_prefill=True)

    def decode_ok(k: int) -> bool:
        sub = stream.iloc[::k].reset_index(drop=True)
        sim = simulate(sub, built_d[0], dsc, built_d[1], cached=sub["input_len"].to_numpy())
        out = sub["output_len"].to_numpy() + 1
        tpot = (sim.requests["finish_s"].to_numpy() - first_tok[::k]) / (out - 1)
        row["tpot_p_s"] = float(np.percentile(tpot, q)) if len(tpot) else 0.0
        return row["tpot_p_s"] <= job.slo_tpot and not overloaded(sim.requests)

    d, t2 = _fewest(job.max_replicas, decode_ok) if len(stream) else (1, 0)
    row["simulations"] += t2
    if d is None:
        row["note"] = f"decode pool: TPOT not met with up to {job.max_replicas} instances"
        return row
    decode_ok(d)
    gpus = p * tp_p + d * tp_d
    tokens = job.rate * float(reqs["output_len"].mean())
    row.update(replicas=p + d, gpus=gpus, meets=True, rate_per_replica=job.rate / p,
               gpu_hours_per_m_tokens=gpus / 3600.0 / tokens * 1e6,
               note=f"disaggregated: {p} x tp {tp_p} prefill, {d} x tp {tp_d} decode")
    return row


def _disaggregated_rows(graph: ModelGraph, device: DeviceSpec, system: SystemSpec | None,
                        reqs: pd.DataFrame, job: _Job, space: Space,
                        models: dict[tuple[str, int, int], tuple[IterationCost, int] | str]
                        ) -> list[dict[str, Any]]:
    """Every (engine, prefill tp, decode tp, budget, max sequences) split, each with its
    fewest instances (``_disaggregated``); KV transfers priced as for one instance of each
    pool (perfmodel.serving.run)."""
    from perfmodel.serving.run import Pools, _transfer_s
    rows = []
    points = list(itertools.product(space.engines, space.tps, space.tps, space.budgets,
                                    space.max_num_seqs))
    for engine, tp_p, tp_d, budget, seqs in track(points, "searching disaggregated plans",
                                                  len(points)):
        built_p, built_d = models[(engine, tp_p, budget)], models[(engine, tp_d, budget)]
        transfer = np.zeros(len(reqs))
        if not isinstance(built_p, str):
            setup = prepare(graph, device, engine=engine, dtype=None,
                            plan=ParallelPlan(tensor_parallel=tp_p), system=system)[0]
            per_token = kv_pool(setup, 16, budget)[1]["kv_bytes_per_token"]
            transfer = _transfer_s(setup.system or system, Pools(1, tp_p, 1, tp_d),
                                   per_token * tp_p * (reqs["input_len"].to_numpy() + 1.0))
        rows.append(_disaggregated(job, engine, tp_p, tp_d, built_p, built_d, budget, seqs,
                                   transfer))
    return rows


def search(graph: ModelGraph, device: DeviceSpec, reqs: pd.DataFrame, *, rate: float,
           slo_ttft: float, slo_tpot: float, space: Space = Space(),
           system: SystemSpec | None = None, percentile: float = 99.0,
           dtype: str | None = None, workers: int = 1, top: int | None = None
           ) -> pd.DataFrame:
    """Every configuration of ``space`` with the fewest replicas meeting the SLOs on
    ``reqs`` (arriving at ``rate``), ranked cheapest first (SEARCH_COLUMNS)."""
    if not graph.meta.get("is_llm", False):
        raise PlanError(f"{graph.name} is not a language model", "search serves LLMs")
    for name, v in (("slo_ttft", slo_ttft), ("slo_tpot", slo_tpot)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise PlanError(f"{name} must be a positive number of seconds, got {v}",
                            f"pass --{name.replace('_', '-')} 0.5")
    if not 50.0 <= percentile <= 100.0:
        raise PlanError(f"percentile must be in [50, 100], got {percentile}",
                        "pass --percentile 99")
    check_positive("workers", workers, PlanError, "--workers", 256)
    check_positive("max_replicas", space.max_replicas, PlanError, "--max-replicas", 1 << 16)
    job = _Job(reqs, rate, slo_ttft, slo_tpot, percentile, space.max_replicas)
    models = _models(graph, device, system, reqs, space, dtype)
    points = space.points()
    rows: list[dict[str, Any]] = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_evaluate, job, p, models[(p[0], p[1], p[3])])
                       for p in points]
            for f in track(futures, "searching serving plans", len(futures)):
                rows.append(f.result())
    else:
        for p in track(points, "searching serving plans", len(points)):
            rows.append(_evaluate(job, p, models[(p[0], p[1], p[3])]))
    if space.disaggregate:
        rows += _disaggregated_rows(graph, device, system, reqs, job, space, models)
    df = pd.DataFrame(rows, columns=list(SEARCH_COLUMNS))
    df = df.sort_values(["meets", "gpus", "gpu_hours_per_m_tokens", "ttft_p_s"],
                        ascending=[False, True, True, True], na_position="last",
                        kind="stable").reset_index(drop=True)
    return df.head(top) if top else df
