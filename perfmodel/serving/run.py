"""``serve``: a model on replicas of a device group, under a stream of requests — the
simulation (perfmodel.serving.simulate) with its iteration cost (perfmodel.inference.iteration)
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
from perfmodel.serving.simulate import Scheduler, Simulation, simulate, summary
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["serve", "ServeResult", "kv_pool", "DEFAULT_BUDGET", "serve_disaggregated",
           "Pools", "parse_pools", "pcie_bytes_per_s", "PCIE_LANE_GBPS"]

# PCIe bandwidth per lane and direction, GB/s: 8, 16, 32 and 64 GT/s per lane with 128b/130b
# encoding for generations 3-5 (PCI-SIG, PCI Express Base Specification 3.0 / 4.0 / 5.0) and
# 242B/256B FLIT encoding at 64 GT/s for generation 6 (PCIe 6.0).
PCIE_LANE_GBPS = {3: 8 * 128 / 130 / 8, 4: 16 * 128 / 130 / 8, 5: 32 * 128 / 130 / 8,
                  6: 64 * 242 / 256 / 8}


def pcie_bytes_per_s(device: DeviceSpec) -> float | None:
    """The device's host link per direction (its spec's PCIe generation and lanes)."""
    gen, lanes = device.extras.get("pcie_gen"), device.extras.get("pcie_lanes")
    if not gen or not lanes or int(gen) not in PCIE_LANE_GBPS:
        return None
    return PCIE_LANE_GBPS[int(gen)] * float(lanes) * 1e9


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
    """Simulate serving ``reqs`` (perfmodel.serving.requests) on ``replicas`` replicas, each
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
    swap = 0.0
    if sc.preemption == "swap":
        link = pcie_bytes_per_s(device)
        if link is None:
            raise PlanError(f"swapping KV to host memory needs {device.name}'s PCIe link, "
                            "and its spec gives no pcie_gen / pcie_lanes",
                            "use --preemption recompute, or add interconnect.pcie_gen and "
                            "pcie_lanes to the spec")
        swap = pool["kv_bytes_per_token"] / link
    sim: Simulation = simulate(reqs, cost, sc, blocks, replicas=replicas, router=router,
                               swap_s_per_token=swap)
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
                      "prefix_hit": sc.prefix_hit,
                      "preemption": f"{sc.preemption} (LIFO)" + (
                          f", {swap * 1e9:.3g} ns a token over PCIe" if swap else "")},
        "router": router, "precision": note or f"{setup.act} throughout",
        "kv_pool": {k: v for k, v in pool.items()},
        "iteration": "perfmodel.inference.iteration: non-attention kernels by token count, "
                     "attention affine in KV / pairs, behind the engine's launch queue, plus "
                     "its per-step time",
        "engine": setup.engine.describe(),
    }
    return ServeResult(summ, sim.requests, sim.iterations, assumptions, tuple(warnings))


@dataclass(frozen=True)
class Pools:
    """Disaggregated serving: ``prefill`` instances of ``prefill_tp`` GPUs and ``decode``
    instances of ``decode_tp`` GPUs."""

    prefill: int
    prefill_tp: int
    decode: int
    decode_tp: int

    @property
    def gpus(self) -> int:
        return self.prefill * self.prefill_tp + self.decode * self.decode_tp


def parse_pools(text: str) -> Pools:
    """``prefill=2x8,decode=1x16`` (instances x GPUs each)."""
    parts = dict(p.split("=", 1) for p in str(text).split(",") if "=" in p)
    try:
        (pn, pt), (dn, dt) = (tuple(int(v) for v in parts[k].lower().split("x"))
                              for k in ("prefill", "decode"))
    except (KeyError, ValueError):
        raise PlanError(f"--disaggregate {text!r}: not prefill=NxTP,decode=NxTP",
                        "e.g. --disaggregate prefill=2x8,decode=1x16") from None
    for v in (pn, pt, dn, dt):
        if v < 1 or v > 1 << 16:
            raise PlanError(f"--disaggregate {text!r}: sizes must be 1 or more",
                            "e.g. --disaggregate prefill=2x8,decode=1x16")
    return Pools(pn, pt, dn, dt)


def _transfer_s(system: SystemSpec | None, pools: Pools, nbytes: np.ndarray) -> np.ndarray:
    """Seconds to move each request's KV cache from its prefill to its decode instance:
    sent in parallel over min(prefill tp, decode tp) GPU pairs, within a node's fabric when
    both pools fit in one node, else over the network (perfmodel.analytic.network,
    send_recv; transfers of different requests are taken not to contend)."""
    from perfmodel.analytic.network import predict_collective
    if system is None:
        raise PlanError("disaggregated serving moves KV caches between instances, and "
                        "needs a system for its links", "pass --system NAME")
    lanes = min(pools.prefill_tp, pools.decode_tp)
    one_node = pools.gpus <= system.devices_per_node
    n, per = (1, 2) if one_node else (2, 1)
    sizes = np.maximum(nbytes / lanes, 1.0)
    t = predict_collective(system, "send_recv", sizes, nodes=n, per_node=per)
    return t.table["time_us"].to_numpy(float) * 1e-6


def serve_disaggregated(graph: ModelGraph, device: DeviceSpec, reqs: pd.DataFrame,
                        pools: Pools, *, engine: EngineProfile | str = "vllm",
                        system: SystemSpec | None = None, dtype: str | None = None,
                        kv_dtype: str | None = None, scheduler: Scheduler | None = None,
                        slo_ttft: float | None = None, slo_tpot: float | None = None
                        ) -> ServeResult:
    """Splitwise / DistServe-style serving (Patel et al., ISCA 2024; Zhong et al., OSDI
    2024): prompts run on the prefill pool (each request leaves it with its first token),
    its KV cache moves to a decode instance over the system's links, and the decode pool
    generates the rest. Two simulations in turn; both pools route least-loaded."""
    if not graph.meta.get("is_llm", False):
        raise PlanError(f"{graph.name} is not a language model", "serving simulates LLMs")
    sp, note = prepare(graph, device, engine=engine, dtype=dtype, kv_dtype=kv_dtype,
                       plan=ParallelPlan(tensor_parallel=pools.prefill_tp), system=system)
    sd, _ = prepare(graph, device, engine=engine, dtype=dtype, kv_dtype=kv_dtype,
                    plan=ParallelPlan(tensor_parallel=pools.decode_tp), system=system)
    system = sp.system or sd.system or system
    chunk = sp.engine.chunked_prefill_tokens
    sc = scheduler or Scheduler(chunked_prefill=chunk > 0,
                                max_batched_tokens=chunk if chunk > 0 else DEFAULT_BUDGET)
    longest = int((reqs["input_len"] + reqs["output_len"]).max())
    lengths = tuple(int(x) for x in np.unique(reqs["input_len"])[:64])
    cp = iteration_cost(sp, max_tokens=sc.max_batched_tokens, lengths=lengths,
                        context=max(longest, 2), max_seqs=sc.max_num_seqs)
    cd = iteration_cost(sd, max_tokens=sc.max_batched_tokens, lengths=lengths,
                        context=max(longest, 2), max_seqs=sc.max_num_seqs)
    bp, pool_p = kv_pool(sp, sc.block_size, sc.max_batched_tokens)
    bd, pool_d = kv_pool(sd, sc.block_size, sc.max_batched_tokens)
    first = simulate(reqs.assign(output_len=1), cp, sc, bp, replicas=pools.prefill,
                     router="least-loaded")
    r1 = first.requests
    kv_bytes = pool_p["kv_bytes_per_token"] * pools.prefill_tp * (reqs["input_len"] + 1)
    move = _transfer_s(system, pools, kv_bytes.to_numpy(float))
    more = reqs["output_len"].to_numpy() > 1
    second = reqs[more].assign(arrival_s=(r1["finish_s"].to_numpy() + move)[more],
                               input_len=reqs["input_len"][more] + 1,
                               output_len=reqs["output_len"][more] - 1)
    order = np.argsort(second["arrival_s"].to_numpy(), kind="stable")
    second = second.iloc[order].reset_index(drop=True)
    dsc = Scheduler(max_num_seqs=sc.max_num_seqs, max_batched_tokens=sc.max_batched_tokens,
                    chunked_prefill=True, block_size=sc.block_size, preemption=sc.preemption)
    link = pcie_bytes_per_s(device) if sc.preemption == "swap" else None
    out = simulate(second, cd, dsc, bd, replicas=pools.decode, router="least-loaded",
                   cached=second["input_len"].to_numpy(),
                   swap_s_per_token=pool_d["kv_bytes_per_token"] / link if link else 0.0)
    r2 = out.requests.set_index("request_id")
    table = r1[["request_id", "arrival_s", "input_len", "queue_s", "ttft_s"]].copy()
    table["output_len"] = reqs["output_len"].to_numpy()
    table["transfer_s"] = move
    table["finish_s"] = r2["finish_s"].reindex(table["request_id"]).fillna(
        pd.Series(r1["finish_s"].to_numpy(), index=table["request_id"])).to_numpy()
    table["e2e_s"] = table["finish_s"] - table["arrival_s"]
    first_tok = r1["finish_s"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        table["tpot_s"] = np.where(table["output_len"] > 1, (table["finish_s"] - first_tok)
                                   / (table["output_len"] - 1), np.nan)
    table["preemptions"] = 0
    iters = pd.concat([first.iterations.assign(pool="prefill"),
                       out.iterations.assign(pool="decode",
                                             replica=out.iterations["replica"]
                                             + pools.prefill)], ignore_index=True)
    sim = Simulation(table, iters, bd, sc.block_size)
    summ = {"model": graph.name, "device": device.name,
            "system": system.name if system else None, "engine": sp.engine.name,
            "replicas": pools.prefill + pools.decode, "gpus": pools.gpus,
            "tp": f"{pools.prefill_tp}/{pools.decode_tp}", "pp": 1,
            **summary(sim, slo_ttft, slo_tpot), "kv_blocks": bd,
            "kv_tokens": bd * sc.block_size,
            "transfer_mean_s": float(np.mean(move)) if len(move) else 0.0}
    summ["gpu_busy"] = float(iters["seconds"].sum()) / (summ["duration_s"] * summ["replicas"])
    warnings = []
    if summ["overloaded"]:
        warnings.append("OVERLOADED: the queue grows over the run (prefill or decode pool)")
    assumptions = {
        "disaggregation": f"{pools.prefill} prefill instance(s) x tp {pools.prefill_tp}, "
                          f"{pools.decode} decode instance(s) x tp {pools.decode_tp}; KV "
                          "moved per request over min(tp) GPU pairs ("
                          + ("the node's fabric" if pools.gpus <= (
                              system.devices_per_node if system else 0) else "the network")
                          + "), transfers not contending",
        "scheduler": {"policy": sc.policy, "max_num_seqs": sc.max_num_seqs,
                      "max_batched_tokens": sc.max_batched_tokens,
                      "chunked_prefill": sc.chunked_prefill, "block_size": sc.block_size,
                      "prefix_hit": sc.prefix_hit, "preemption": f"{sc.preemption} (LIFO)"},
        "router": "least-loaded", "precision": note or f"{sp.act} throughout",
        "kv_pool": pool_d,
        "iteration": "perfmodel.inference.iteration (prefill pool: prompts only; decode "
                     "pool: decode steps only)",
        "engine": sp.engine.describe(),
    }
    return ServeResult(summ, table, iters, assumptions, tuple(warnings))
