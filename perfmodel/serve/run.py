"""``serve``: a model on replicas of a device group, under a stream of requests — the
simulation (perfmodel.serve.simulate) with its iteration cost (perfmodel.inference.iteration)
and KV pool (the one memory model) set up from records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.capacity import Extras
from perfmodel.errors import PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.inference.engine import EngineProfile
from perfmodel.inference.run import iteration_cost, prepare
from perfmodel.serve.simulate import Scheduler, Simulation, simulate, summary
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["serve", "ServeResult", "kv_pool", "DEFAULT_BUDGET"]

# Tokens per iteration when the engine does not chunk prompts: vLLM V0's
# max_num_batched_tokens default is max(max_model_len, 2048); 8192 covers the prompts of
# today's 8 K-context models.
DEFAULT_BUDGET = 8192


@dataclass(frozen=True)
class ServeResult:
    """A serving simulation: its summary (percentiles in seconds, rates per second), the
    per-request and per-iteration tables, and the assumptions."""

    summary: dict[str, Any]
    requests: pd.DataFrame = field(repr=False)
    iterations: pd.DataFrame = field(repr=False)
    assumptions: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def frames(self) -> dict[str, pd.DataFrame]:
        return {"summary": pd.DataFrame([self.summary]), "requests": self.requests,
                "iterations": self.iterations}

    def to_dict(self) -> dict[str, Any]:
        return {"warnings": list(self.warnings), "summary": self.summary,
                "assumptions": self.assumptions}


def kv_pool(setup: Any, block_size: int, max_tokens: int) -> tuple[int, dict[str, float]]:
    """KV blocks of one replica: what the engine's share of each GPU leaves after the
    weights, the engine's overhead and the workspace of a ``max_tokens`` iteration (the one
    memory model), over the KV bytes of ``block_size`` tokens on a GPU."""
    s = setup
    eng: EngineProfile = s.engine
    extras = Extras(overhead_bytes=eng.memory_overhead_bytes, device=s.device)
    job = Job(phase="decode", batch=1, seq=1, dtype=s.act, weight_dtype=s.weight,
              kv_dtype=s.kv)
    one = extras.footprint(s.graph, s.plan, job)
    long = 4096
    kv_long = float(extras.footprint(s.graph, s.plan, Job(
        phase="decode", batch=1, seq=long, dtype=s.act, weight_dtype=s.weight,
        kv_dtype=s.kv))["kv_cache"])
    per_token = (kv_long - float(one["kv_cache"])) / (long - 1)
    work = float(extras.footprint(s.graph, s.plan, Job(
        phase="prefill", batch=1, seq=max_tokens, dtype=s.act, weight_dtype=s.weight,
        kv_dtype=s.kv))["workspace"])
    loaded = float(one["weights"] + one["overhead"])
    usable = eng.usable_bytes(s.device.memory_capacity, loaded)
    pool = usable - loaded - work
    blocks = int(pool // (per_token * block_size)) if per_token > 0 and pool > 0 else 0
    return blocks, {"usable_bytes": usable, "weights_bytes": float(one["weights"]),
                    "overhead_bytes": float(one["overhead"]), "workspace_bytes": work,
                    "kv_bytes_per_token": per_token, "pool_bytes": max(pool, 0.0)}


def serve(graph: ModelGraph, device: DeviceSpec, reqs: pd.DataFrame, *,
          engine: EngineProfile | str = "vllm", plan: ParallelPlan | None = None,
          system: SystemSpec | None = None, dtype: str | None = None,
          kv_dtype: str | None = None, scheduler: Scheduler | None = None,
          replicas: int = 1, router: str = "round-robin", slo_ttft: float | None = None,
          slo_tpot: float | None = None) -> ServeResult:
    """Simulate serving ``reqs`` (perfmodel.serve.requests) on ``replicas`` replicas, each
    ``plan`` (tp x pp GPUs) of ``device`` in ``system``, through ``engine``."""
    if not graph.meta.get("is_llm", False):
        raise PlanError(f"{graph.name} is not a language model: serving simulates token "
                        "generation", "use perfmodel infer for one forward pass")
    plan = plan or ParallelPlan()
    if plan.data_parallel > 1:
        raise PlanError("a replica is one model copy: --dp is --replicas here",
                        f"pass --replicas {plan.data_parallel * replicas}")
    setup, note = prepare(graph, device, engine=engine, dtype=dtype, kv_dtype=kv_dtype,
                          plan=plan, system=system)
    chunk = setup.engine.chunked_prefill_tokens
    sc = scheduler or Scheduler(chunked_prefill=chunk > 0,
                                max_batched_tokens=chunk if chunk > 0 else DEFAULT_BUDGET)
    blocks, pool = kv_pool(setup, sc.block_size, sc.max_batched_tokens)
    if blocks == 0:
        raise PlanError(f"{graph.name} does not fit on {plan.devices} x {device.name} under "
                        f"{setup.engine.display_name}: weights {pool['weights_bytes'] / 1e9:.1f}"
                        f" GB, overhead and workspace leave no KV cache in "
                        f"{pool['usable_bytes'] / 1e9:.1f} GB usable per GPU",
                        "add GPUs (--tp), a narrower --dtype, or a smaller "
                        "--max-batched-tokens")
    lengths = tuple(int(x) for x in np.unique(reqs["input_len"])[:64])
    longest = int((reqs["input_len"] + reqs["output_len"]).max())
    cost = iteration_cost(setup, max_tokens=sc.max_batched_tokens, lengths=lengths,
                          context=max(longest, 2), max_seqs=sc.max_num_seqs)
    sim: Simulation = simulate(reqs, cost, sc, blocks, replicas=replicas, router=router)
    summ = {"model": graph.name, "device": device.name,
            "system": setup.system.name if setup.system else None,
            "engine": setup.engine.name, "replicas": replicas,
            "gpus": replicas * plan.devices, "tp": plan.tensor_parallel,
            "pp": plan.pipeline_parallel, **summary(sim, slo_ttft, slo_tpot),
            "kv_blocks": blocks, "kv_tokens": blocks * sc.block_size}
    warnings = []
    if summ["overloaded"]:
        rate = len(reqs) / max(float(reqs["arrival_s"].max()), 1e-12)
        warnings.append(f"OVERLOADED: requests arrive at {rate:.3g}/s and the queue grows "
                        f"over the run (served {summ['requests_per_s']:.3g}/s): latencies "
                        "depend on how long it runs")
    assumptions = {
        "scheduler": {"policy": sc.policy, "max_num_seqs": sc.max_num_seqs,
                      "max_batched_tokens": sc.max_batched_tokens,
                      "chunked_prefill": sc.chunked_prefill, "block_size": sc.block_size,
                      "prefix_hit": sc.prefix_hit, "preemption": "recompute (LIFO)"},
        "router": router, "precision": note or f"{setup.act} throughout",
        "kv_pool": {k: v for k, v in pool.items()},
        "iteration": "perfmodel.inference.iteration: non-attention kernels by token count, "
                     "attention affine in KV / pairs, behind the engine's launch queue, plus "
                     "its per-step time",
        "engine": setup.engine.describe(),
    }
    return ServeResult(summ, sim.requests, sim.iterations, assumptions, tuple(warnings))
