"""Bandwidth-bound limits: the decode floor, the batch where decode turns compute-bound,
and memory-wall statistics over the spec library.

Decode (one new token per sequence) reads every weight and the whole KV cache once per
step, so per device

    t_step >= (weight bytes + KV-cache bytes) / (bandwidth x memory efficiency)

and the tokens/s ceiling is batch / t_step (x data-parallel replicas for the system). The
step does 2 x params FLOPs per token (plus attention over the cache), so its arithmetic
intensity is I(b) = b x 2P / (W + b x KV1); it reaches the device's ridge point
R = peak / bandwidth at b* = R W / (F - R KV1), and never if F <= R KV1 (Williams et al.
2009 roofline; the ridge of DOMAIN.md sec. 5).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.memory import footprint
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import active_params
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["decode_limits", "memory_wall_table", "growth_rates"]


def decode_limits(graph: ModelGraph, plan: ParallelPlan, job: Job,
                  device: DeviceSpec) -> dict[str, Any]:
    """Decode floor per step, tokens/s ceilings and the compute-bound batch (per device) of
    a transformer (``graph.shape``)."""
    shape = graph.require_shape("the decode limit")
    job = job.with_seq(graph.default_seq)
    parts = footprint(graph, plan, replace(job, phase="decode"), device=device)
    bw = device.memory_bandwidth * device.efficiency.memory
    per_replica = np.ceil(job.batch / plan.data_parallel)
    untouched = _untouched_expert_bytes(graph, plan, job, per_replica)
    moved = float(parts["weights"] + parts["kv_cache"]) - untouched
    floor = moved / bw
    # Storage dtypes need no compute unit; the ridge uses the nearest one the device has.
    compute_dtype = job.dtype if job.dtype in device.dtypes else device.default_dtype
    _, dt, peak, _ = device.resolve_unit("tensor", compute_dtype)
    ridge = peak * device.efficiency.compute / bw
    # 2 FLOPs per parameter, plus attention over the cache: scores and context, 2 x 2 x
    # heads x head_dim x seq per layer (DOMAIN.md sec. 2), on this device's share.
    attention = (4.0 * shape.num_hidden_layers * shape.num_attention_heads * shape.head_dim
                 * int(job.seq or 1))
    flops_per_token = (2.0 * active_params(graph) + attention) / (
        plan.tensor_parallel * plan.pipeline_parallel)
    weights = float(parts["weights"]) - untouched
    kv_per_seq = float(parts["kv_cache"]) / max(per_replica, 1)
    denom = flops_per_token - ridge * kv_per_seq
    ridge_batch = ridge * weights / denom if denom > 0 else None
    per_device = per_replica / floor if floor > 0 else float("inf")
    return {
        "decode_floor_s": floor, "bytes_per_step": moved,
        "tokens_per_s_ceiling_per_device": per_device,
        "tokens_per_s_ceiling_system": per_device * plan.data_parallel,
        "ridge_flop_per_byte": ridge, "ridge_dtype": dt,
        "compute_bound_batch": ridge_batch,
        "assumption": "every weight (of a mixture of experts, those of the experts the "
                      "batch's tokens are routed to, in expectation) and the whole KV cache "
                      "read once per decode step at "
                      f"{device.efficiency.memory:.2f} x peak bandwidth; compute at "
                      f"{device.efficiency.compute:.2f} x {dt} peak",
    }


def _untouched_expert_bytes(graph: ModelGraph, plan: ParallelPlan, job: Job,
                            tokens: float) -> float:
    """Bytes of routed-expert weights a decode step of ``tokens`` tokens does not read on
    one device: of E experts with top-k routing, E (1 - k / E)^tokens are untouched in
    expectation (perfmodel.graph.costs, the MoE linear rule)."""
    shape = graph.shape
    if shape is None or not shape.is_moe:
        return 0.0
    e, k = shape.num_local_experts, shape.num_experts_per_tok
    width = lookup_dtype(job.weights).nbytes
    held = sum(w.numel for op in graph.ops if op.attr("experts", 0) and not op.tied
               for w in op.weights) * width
    layers = shape.num_hidden_layers
    on_device = held * np.ceil(layers / plan.pipeline_parallel) / layers \
        / plan.tensor_parallel / plan.expert_parallel
    return float(on_device * (1.0 - k / e) ** float(tokens))


def memory_wall_table(devices: list[DeviceSpec]) -> pd.DataFrame:
    """Per device: year, dense 16-bit tensor peak (else the best it has), bandwidth,
    capacity, and the memory-wall ratios FLOP per byte of bandwidth and per byte held."""
    rows = []
    for d in devices:
        dt = d.default_dtype
        _, used, peak, _ = d.resolve_unit("tensor", dt)
        rows.append({
            "device": d.name, "vendor": d.vendor, "category": d.category, "year": d.year,
            "dtype": used, "peak_flops_per_s": peak, "bandwidth_Bps": d.memory_bandwidth,
            "capacity_bytes": d.memory_capacity,
            "flop_per_byte": peak / d.memory_bandwidth,
            "bandwidth_per_capacity_per_s": d.memory_bandwidth / d.memory_capacity,
        })
    return pd.DataFrame(rows).sort_values(["year", "device"], ignore_index=True)


def growth_rates(table: pd.DataFrame, category: str = "datacenter-gpu",
                 vendor: str = "NVIDIA") -> dict[str, float]:
    """Compound annual growth of peak FLOP/s, bandwidth and capacity over one product line
    (least-squares fit of log2(value) against year): the seed's "compute grows faster than
    memory" checked against the spec library."""
    t = table[(table["category"] == category) & (table["vendor"] == vendor)].dropna(
        subset=["year"])
    out: dict[str, float] = {"devices": float(len(t))}
    if t["year"].nunique() < 2:
        return out
    for col in ("peak_flops_per_s", "bandwidth_Bps", "capacity_bytes"):
        slope = np.polyfit(t["year"].astype(float), np.log2(t[col].astype(float)), 1)[0]
        out[f"{col}_per_year"] = float(2 ** slope - 1)
    return out
