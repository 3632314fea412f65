"""Plan search: every valid (dp, tp, pp, v, micro-batch, ZeRO, recompute) plan for a model,
a system and a global batch; those that do not fit are rejected, the rest ranked by step.

The footprint is evaluated vectorized (numpy, one ``footprint`` call per group of plans
sharing micro-batch, ZeRO stage, recompute and schedule, over their (dp, tp, pp) arrays);
per-device roofline times are computed once per (tp, micro-batch, recompute, ZeRO, dp) and
the collectives are cached, so each plan costs a few arithmetic operations. Sequence
parallelism is on whenever tp > 1 (Korthikanti et al. 2023 recommend it with selective
recomputation); tensor parallelism stays inside a node (Narayanan et al. 2021, sec. 3.3:
"use tensor model parallelism up to the number of GPUs in a server").
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.memory import footprint
from perfmodel.errors import PerfModelError, PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.parallel.partition import layer_costs, shape_of, stage_times
from perfmodel.parallel.step import step_from_costs
from perfmodel.progress import track
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["search_plans", "candidate_plans", "PlanSearch", "SEARCH_COLUMNS"]

SEARCH_COLUMNS = ("rank", "dp", "tp", "pp", "schedule", "v", "micro_batch", "m", "zero",
                  "recompute", "sp", "step_s", "tokens_per_s", "mfu", "hfu", "bubble",
                  "memory_GB", "fits")
MICRO_BATCHES = (1, 2, 4, 8)
VIRTUAL = (2, 3, 4, 6, 8)
RECOMPUTES = ("none", "selective", "full")


@dataclass(frozen=True)
class PlanSearch:
    """The ranked plans (``table``, columns SEARCH_COLUMNS) and the search's size: plans
    considered (``candidates``), plans that fit (``fitting``), per-device capacity."""

    table: pd.DataFrame = field(repr=False)
    candidates: int
    fitting: int
    capacity_bytes: float


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidate_plans(graph: ModelGraph, devices: int, global_batch: int,
                    devices_per_node: int) -> list[ParallelPlan]:
    """Every plan the step model accepts: tp a divisor of the heads up to a node, pp a
    divisor of the layers, dp = devices / (tp pp) dividing the global batch with the
    micro-batch, interleaving where Megatron-LM allows it, ZeRO 0/1 (3 only without
    pipelining), and each recompute mode."""
    shape = shape_of(graph)
    heads, layers = shape.num_attention_heads, shape.num_hidden_layers
    out = []
    for tp in (t for t in _divisors(devices_per_node) if heads % t == 0):
        for pp in (p for p in _divisors(layers) if devices % (tp * p) == 0):
            dp = devices // (tp * pp)
            for mb in MICRO_BATCHES:
                if global_batch % (dp * mb):
                    continue
                m = global_batch // (dp * mb)
                scheds = [("1f1b", 1)] + [("interleaved", v) for v in VIRTUAL
                                          if pp > 1 and m % pp == 0 and layers % (pp * v) == 0]
                zeros = (0, 1, 3) if pp == 1 and dp > 1 else (0, 1) if dp > 1 else (0,)
                for (sched, v), zero, rc in itertools.product(scheds, zeros, RECOMPUTES):
                    out.append(ParallelPlan(
                        data_parallel=dp, tensor_parallel=tp, pipeline_parallel=pp,
                        micro_batch=mb, schedule=sched, virtual_stages=v, zero_stage=zero,
                        recompute=rc, sequence_parallel=tp > 1))
    return out


def _memory(graph: ModelGraph, plans: list[ParallelPlan], job: Job,
            device: DeviceSpec) -> np.ndarray:
    """Per-device bytes of each plan: one vectorized footprint per group of plans that
    differ only in their dp, tp and pp."""
    total = np.zeros(len(plans))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, p in enumerate(plans):
        groups.setdefault((p.micro_batch, p.zero_stage, p.recompute, p.sequence_parallel,
                           p.schedule, p.virtual_stages), []).append(i)
    for idx in groups.values():
        p0 = plans[idx[0]]
        dp, tp, pp = (np.array([getattr(plans[i], k) for i in idx])
                      for k in ("data_parallel", "tensor_parallel", "pipeline_parallel"))
        total[idx] = footprint(graph, p0, job, device=device, data_parallel=dp,
                               tensor_parallel=tp, pipeline_parallel=pp)["total"]
    return total


def search_plans(graph: ModelGraph, job: Job, system: SystemSpec, devices: int, *,
                 device: DeviceSpec | None = None, top: int | None = 10,
                 include_unfit: bool = False) -> PlanSearch:
    """Rank the plans of a training ``job`` (its global batch, sequence and dtype) on
    ``devices`` devices of ``system`` that fit, by predicted step time."""
    device = device or system.device_spec()
    if devices <= 0:
        raise PlanError("devices must be positive", "pass --gpus 1 or more")
    job = job.with_seq(graph.default_seq)
    plans = candidate_plans(graph, devices, job.batch, system.devices_per_node)
    if not plans:
        raise PlanError(f"no plan splits {job.batch} sequences over {devices} devices",
                        "choose a global batch that is a multiple of the device count")
    mem = _memory(graph, plans, job, device)
    cap = device.memory_capacity
    fits = mem <= cap
    if not fits.any() and not include_unfit:
        raise PlanError(f"no plan of {graph.name} fits in {cap / 1e9:.0f} GB per device on "
                        f"{devices} devices", "add devices or lower the sequence length")
    costs = layer_costs(graph, int(job.seq or 1), job.dtype, job.optimizer)
    cache: dict[tuple[Any, ...], Any] = {}
    rows = []
    for plan, total, ok in track(zip(plans, mem, fits, strict=True), "pricing plans",
                                 len(plans)):
        if not ok and not include_unfit:
            continue
        key = (plan.tensor_parallel, plan.micro_batch_of(job.batch), plan.sequence_parallel,
               plan.recompute, plan.zero_stage, plan.data_parallel)
        if key not in cache:
            cache[key] = stage_times(costs, device, *key)
        try:
            r = step_from_costs(costs, cache[key], plan, job, system, device)
        except PerfModelError:
            continue
        rows.append((plan.data_parallel, plan.tensor_parallel, plan.pipeline_parallel,
                     plan.schedule, plan.virtual_stages, plan.micro_batch_of(job.batch),
                     plan.micro_batches(job.batch), plan.zero_stage, plan.recompute,
                     plan.sequence_parallel, r["step_s"], r["tokens_per_s"], r["mfu"],
                     r["hfu"], r["bubble_fraction"], total / 1e9, bool(ok)))
    df = pd.DataFrame(rows, columns=list(SEARCH_COLUMNS[1:]))
    df = df.sort_values(["fits", "step_s"], ascending=[False, True], kind="stable",
                        ignore_index=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return PlanSearch(df.head(top) if top else df, len(plans), int(fits.sum()), cap)
