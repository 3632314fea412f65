"""Sweeps over parallel plans: training steps of each model under each plan on each system
(perfmodel.parallel.step.predict_step, its closed forms), one row per point.

A plan is written as in ``perfmodel parallel``'s flags, comma-separated: ``tp=2,pp=4,dp=8``
(also ``ep``, ``cp``, ``mb`` (micro-batch), ``zero``, ``sp`` (sequence parallel, 0 / 1),
``v`` (virtual stages), ``schedule``, ``recompute``), or given as a mapping of the same
keys or of ParallelPlan's field names, or as a ParallelPlan.

Unlike the roofline grid, each point is priced on its own (about a millisecond: the step's
closed forms per plan); a plan that cannot run (a size that does not divide the model, a
batch the plan cannot split) is a row with its ``error``, and one that does not fit in memory
says so in ``fits``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from perfmodel.errors import PerfModelError, UnknownNameError, did_you_mean
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.system import SystemSpec
from perfmodel.parallel.step import predict_step
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["parse_plan", "plan_text", "price_plans", "SHORT", "PLAN_COLUMNS"]

SHORT = {"tp": "tensor_parallel", "pp": "pipeline_parallel", "dp": "data_parallel",
         "ep": "expert_parallel", "cp": "context_parallel", "sp": "sequence_parallel",
         "zero": "zero_stage", "mb": "micro_batch", "v": "virtual_stages",
         "schedule": "schedule", "recompute": "recompute"}
_TEXT = {"schedule", "recompute"}
PLAN_COLUMNS = ("step_s", "tokens_per_s", "tflops_per_device", "mfu", "hfu",
                "bubble_fraction", "memory_bytes", "capacity_bytes", "fits")


def parse_plan(plan: str | Mapping[str, Any] | ParallelPlan) -> ParallelPlan:
    """A ParallelPlan from ``tp=2,pp=4,dp=8``-style text, a mapping, or itself; an unknown
    key or a bad value is one clear error."""
    if isinstance(plan, ParallelPlan):
        return plan
    if isinstance(plan, str):
        items = {}
        for part in (p.strip() for p in plan.split(",") if p.strip()):
            key, sep, value = part.partition("=")
            if not sep:
                raise PerfModelError(f"plan {plan!r}: {part!r} is not KEY=VALUE",
                                     "e.g. tp=2,pp=4,dp=8,mb=1")
            items[key.strip()] = value.strip()
        plan = items
    if not isinstance(plan, Mapping):
        raise PerfModelError(f"a plan is text, a mapping or a ParallelPlan, got {plan!r}",
                             "e.g. 'tp=2,pp=4,dp=8'")
    fields = set(SHORT.values()) | set(ParallelPlan.__dataclass_fields__)
    kw: dict[str, Any] = {}
    for key, value in plan.items():
        name = SHORT.get(str(key), str(key))
        if name not in fields:
            raise UnknownNameError(f"unknown plan key {key!r}",
                                   did_you_mean(str(key), [*SHORT, *sorted(fields)]))
        if name in _TEXT or isinstance(value, bool):
            kw[name] = value
        elif name == "sequence_parallel":
            kw[name] = str(value).lower() in ("1", "true", "yes")
        else:
            try:
                kw[name] = int(value)
            except (TypeError, ValueError):
                raise PerfModelError(f"plan key {key}: {value!r} is not a whole number",
                                     f"e.g. {key}=2") from None
    return ParallelPlan(**kw)


def plan_text(plan: ParallelPlan) -> str:
    """The plan in the short form, naming only what differs from the defaults."""
    default = ParallelPlan()
    back = {v: k for k, v in SHORT.items()}
    parts = []
    for name in SHORT.values():
        value = getattr(plan, name)
        if value != getattr(default, name) or name in ("tensor_parallel", "pipeline_parallel",
                                                       "data_parallel"):
            parts.append(f"{back[name]}={int(value) if isinstance(value, bool) else value}")
    return ",".join(parts)


def price_plans(graphs: Mapping[str, ModelGraph], systems: Mapping[str, SystemSpec],
                plans: Sequence[ParallelPlan], batch: Sequence[int],
                seq: Sequence[int | None], dtype: Sequence[str | None]) -> pd.DataFrame:
    """One row per model, system, plan, global batch, seq and dtype (None: the system's
    device default): the training step's time, tokens/s, MFU, HFU, bubble, memory per device
    and fit (predict_step, analytic), or the ``error`` that stops it."""
    rows = []
    for (m, graph), (s, system), plan, b, q, dt in itertools.product(
            graphs.items(), systems.items(), plans, batch, seq, dtype):
        dtype_used = dt or system.device_spec().default_dtype
        row: dict[str, Any] = {
            "model": m, "system": s, "plan": plan_text(plan), "gpus": plan.data_parallel
            * plan.tensor_parallel * plan.pipeline_parallel * plan.context_parallel,
            "tp": plan.tensor_parallel, "pp": plan.pipeline_parallel,
            "dp": plan.data_parallel, "ep": plan.expert_parallel,
            "cp": plan.context_parallel, "batch": b, "seq": q, "dtype": dtype_used}
        try:
            p = predict_step(graph, Job(phase="train", batch=b, seq=q, dtype=dtype_used),
                             plan, system)
            row |= {"seq": p.job.seq, "step_s": p.step_s, "tokens_per_s": p.tokens_per_s,
                    "tflops_per_device": p.tflops_per_device, "mfu": p.mfu, "hfu": p.hfu,
                    "bubble_fraction": p.bubble_fraction,
                    "memory_bytes": float(p.memory["total"]),
                    "capacity_bytes": float(p.capacity_bytes), "fits": bool(p.fits),
                    "error": None}
        except PerfModelError as exc:
            row |= {**dict.fromkeys(PLAN_COLUMNS), "error": str(exc)}
        rows.append(row)
    frame = pd.DataFrame(rows)
    for col in ("fits", "error"):
        frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame
