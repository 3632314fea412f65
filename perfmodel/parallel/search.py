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
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.memory import MemoryPlan, footprint, memory_model
from perfmodel.analytic.pipeline import in_flight
from perfmodel.errors import PerfModelError, PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.parallel.partition import layer_costs, stage_times
from perfmodel.parallel.plan import ParallelPlan
from perfmodel.parallel.step import step_from_costs

__all__ = ["search_plans", "candidate_plans", "SEARCH_COLUMNS"]

SEARCH_COLUMNS = ("rank", "dp", "tp", "pp", "schedule", "v", "micro_batch", "m", "zero",
                  "recompute", "sp", "step_s", "tokens_per_s", "mfu", "hfu", "bubble",
                  "memory_GB", "fits")
MICRO_BATCHES = (1, 2, 4, 8)
VIRTUAL = (2, 3, 4, 6, 8)
RECOMPUTES = ("none", "selective", "full")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidate_plans(graph: ModelGraph, devices: int, global_batch: int, seq: int,
                    devices_per_node: int, dtype: str = "bf16") -> list[ParallelPlan]:
    """Every plan the step model accepts: tp a divisor of the heads up to a node, pp a
    divisor of the layers, dp = devices / (tp pp) dividing the global batch with the
    micro-batch, interleaving where Megatron-LM allows it, ZeRO 0/1 (3 only without
    pipelining), and each recompute mode."""
    meta = graph.meta
    heads, layers = int(meta.get("num_heads") or 0), int(meta.get("num_layers") or 0)
    if not heads or not layers:
        raise PlanError(f"{graph.name}: plan search is modelled for transformers only",
                        "pick a transformer (perfmodel models)")
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
                    out.append(ParallelPlan(dp, tp, pp, mb, global_batch, seq, sched, v, zero,
                                            rc, tp > 1, dtype))
    return out


def _memory(graph: ModelGraph, plans: list[ParallelPlan]) -> np.ndarray:
    mm = memory_model(graph)
    total = np.zeros(len(plans))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, p in enumerate(plans):
        groups.setdefault((p.micro_batch, p.zero, p.recompute, p.sequence_parallel,
                           p.schedule, p.virtual), []).append(i)
    for (mb, zero, rc, sp, sched, v), idx in groups.items():
        p0 = plans[idx[0]]
        mp = MemoryPlan(phase="train", batch=p0.global_batch, seq=p0.seq, dtype=p0.dtype,
                        micro_batch=mb, optimizer=p0.optimizer, zero=zero, recompute=rc,
                        sequence_parallel=sp, schedule="1f1b")
        dp = np.array([plans[i].data_parallel for i in idx])
        tp = np.array([plans[i].tensor_parallel for i in idx])
        pp = np.array([plans[i].pipeline_parallel for i in idx])
        fp = footprint(mm, mp, dp=dp, tp=tp, pp=pp)
        act = fp["activations"]
        if sched == "interleaved":
            m = p0.global_batch // (dp * mb)
            act = act * in_flight(pp, m, "interleaved", v) / np.minimum(pp, m)
        total[idx] = fp["total"] - fp["activations"] + act
    return total


def search_plans(graph: ModelGraph, system: SystemSpec, devices: int, global_batch: int,
                 seq: int = 2048, *, device: DeviceSpec | None = None, dtype: str = "bf16",
                 top: int | None = 10, include_unfit: bool = False) -> pd.DataFrame:
    """Rank the plans that fit by predicted step time (SEARCH_COLUMNS)."""
    device = device or system.device_spec()
    if devices <= 0 or global_batch <= 0:
        raise PlanError("devices and global batch must be positive",
                        "pass --gpus and --global-batch of 1 or more")
    plans = candidate_plans(graph, devices, global_batch, seq, system.devices_per_node, dtype)
    if not plans:
        raise PlanError(f"no plan splits {global_batch} sequences over {devices} devices",
                        "choose a global batch that is a multiple of the device count")
    mem = _memory(graph, plans)
    cap = device.memory_capacity
    fits = mem <= cap
    if not fits.any() and not include_unfit:
        raise PlanError(f"no plan of {graph.name} fits in {cap / 1e9:.0f} GB per device on "
                        f"{devices} devices", "add devices or lower the sequence length")
    costs = layer_costs(graph, seq, dtype)
    cache: dict[tuple[Any, ...], Any] = {}
    rows = []
    for plan, total, ok in zip(plans, mem, fits, strict=True):
        if not ok and not include_unfit:
            continue
        key = (plan.tensor_parallel, plan.micro_batch, plan.sequence_parallel, plan.recompute,
               plan.zero, plan.data_parallel)
        if key not in cache:
            cache[key] = stage_times(costs, device, *key)
        try:
            r = step_from_costs(costs, cache[key], plan, system, device)
        except PerfModelError:
            continue
        rows.append((plan.data_parallel, plan.tensor_parallel, plan.pipeline_parallel,
                     plan.schedule, plan.virtual, plan.micro_batch, plan.micro_batches,
                     plan.zero, plan.recompute, plan.sequence_parallel, r["step_s"],
                     r["tokens_per_s"], r["mfu"], r["hfu"], r["bubble_fraction"],
                     total / 1e9, bool(ok)))
    df = pd.DataFrame(rows, columns=list(SEARCH_COLUMNS[1:]))
    df = df.sort_values(["fits", "step_s"], ascending=[False, True], kind="stable",
                        ignore_index=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    df.attrs.update(candidates=len(plans), fitting=int(fits.sum()),
                    capacity_GB=cap / 1e9, model=graph.name, system=system.name)
    return df.head(top) if top else df
