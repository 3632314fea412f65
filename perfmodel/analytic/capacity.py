"""Does it fit? The capacity verdict, the largest batch / sequence that fits, the fewest
devices that fit, and what to change — each change priced by the footprint model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.bandwidth import decode_limits
from perfmodel.analytic.memory import COMPONENTS, check_memory_plan, footprint
from perfmodel.errors import PerfModelError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["Verdict", "verdict", "largest_fitting", "fewest_devices", "suggestions",
           "MemoryReport", "memory_report", "Extras"]

SEARCH_LIMIT = 1 << 24  # largest batch or sequence searched (16 Mi)


@dataclass(frozen=True)
class Verdict:
    """Per-device total against capacity (bytes), and what would fit."""

    total_bytes: float
    capacity_bytes: float
    fits: bool
    headroom_bytes: float
    max_batch: int | None
    max_batch_field: str
    max_seq: int | None
    min_devices: int | None
    min_devices_axis: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Extras:
    """What the footprint adds as given: a library's workspace and the framework overhead
    (CUDA context, allocator), in bytes; and the device whose sparse support decides how a
    compressed model's weights are held."""

    workspace_bytes: float = 0.0
    overhead_bytes: float = 0.0
    device: DeviceSpec | None = field(default=None, compare=False)

    def total(self, graph: ModelGraph, plan: ParallelPlan, job: Job, **arrays: Any
              ) -> np.ndarray:
        return self.footprint(graph, plan, job, **arrays)["total"]

    def footprint(self, graph: ModelGraph, plan: ParallelPlan, job: Job, **arrays: Any
                  ) -> dict[str, np.ndarray]:
        return footprint(graph, plan, job, device=self.device,
                         workspace_bytes=self.workspace_bytes,
                         overhead_bytes=self.overhead_bytes, **arrays)


def largest_fitting(graph: ModelGraph, plan: ParallelPlan, job: Job, capacity: float,
                    field: str, extras: Extras = Extras()) -> int | None:
    """Largest ``field`` (batch, micro_batch or seq) that fits, or None if 1 does not.

    The footprint grows monotonically in each, so an exponential search then a binary
    search finds it (a few dozen footprint evaluations). A training micro-batch keeps the
    number of micro-batches per step: the global batch grows with it.
    """
    def total(v: int) -> float:
        if field == "micro_batch":
            m = plan.micro_batches(job.batch)
            return float(extras.total(graph, replace(plan, micro_batch=v),
                                      replace(job, batch=v * plan.data_parallel * m)))
        changed = replace(job, batch=v) if field == "batch" else replace(job, seq=v)
        return float(extras.total(graph, plan, changed))

    if total(1) > capacity:
        return None
    lo, hi = 1, 2
    while hi < SEARCH_LIMIT and total(hi) <= capacity:
        lo, hi = hi, 2 * hi
    if hi >= SEARCH_LIMIT and total(hi) <= capacity:
        return SEARCH_LIMIT
    while hi - lo > 1:  # total(lo) fits, total(hi) does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if total(mid) <= capacity else (lo, mid)
    return lo


def fewest_devices(graph: ModelGraph, plan: ParallelPlan, job: Job, capacity: float,
                   extras: Extras = Extras()) -> tuple[int | None, str]:
    """The fewest devices (powers of two up to 1024) that hold the model, and along which
    axis: ZeRO-3 data parallelism when training with ZeRO-3 (the global batch grows with
    dp, micro-batches per step fixed), else model parallelism (tp up to the head count,
    then pp) for transformers; other models shard only with ZeRO-3."""
    sizes = 2 ** np.arange(0, 11)
    shape = graph.shape
    if job.train and plan.zero_stage >= 3:
        mb, m = plan.micro_batch_of(job.batch), plan.micro_batches(job.batch)
        axis, totals = "dp (ZeRO-3)", extras.total(graph, plan, job, data_parallel=sizes,
                                                   batch=sizes * mb * m)
    elif shape is not None:
        tp = np.minimum(sizes, max(shape.num_attention_heads, 1))
        pp = np.minimum(np.maximum(sizes // tp, 1), shape.num_hidden_layers)
        axis, totals = "tp x pp", extras.total(graph, plan, job, tensor_parallel=tp,
                                               pipeline_parallel=pp)
    else:
        fits = extras.total(graph, plan, job) <= capacity
        return (1 if fits else None), "none (no sharding)"
    ok = np.nonzero(totals <= capacity)[0]
    return (int(sizes[ok[0]]) if len(ok) else None), axis


def verdict(graph: ModelGraph, plan: ParallelPlan, job: Job, device: DeviceSpec,
            extras: Extras | None = None) -> Verdict:
    """Per-device total against the device's capacity, the largest batch (training: micro-
    batch) and sequence that fit, and the fewest devices that hold the model."""
    extras = extras or Extras(device=device)
    cap = device.memory_capacity
    total = float(extras.total(graph, plan, job))
    batch_field = "micro_batch" if job.train else "batch"
    min_dev, axis = fewest_devices(graph, plan, job, cap, extras)
    return Verdict(
        total_bytes=total, capacity_bytes=cap, fits=total <= cap, headroom_bytes=cap - total,
        max_batch=largest_fitting(graph, plan, job, cap, batch_field, extras),
        max_batch_field=batch_field,
        max_seq=largest_fitting(graph, plan, job, cap, "seq", extras)
        if graph.shape is not None else None,
        min_devices=min_dev, min_devices_axis=axis)


Change = tuple[str, str, Callable[[], tuple[ParallelPlan, Job]]]


def _changes(graph: ModelGraph, plan: ParallelPlan, job: Job) -> list[Change]:
    """(action, family, (plan, job) after the change) candidates; each is priced by the
    footprint model."""
    out: list[Change] = []
    mb = plan.micro_batch or 0
    transformer = graph.shape is not None
    tp, pp, dp = plan.tensor_parallel, plan.pipeline_parallel, plan.data_parallel

    def on_job(**changes: Any) -> Callable[[], tuple[ParallelPlan, Job]]:
        return lambda: (plan, replace(job, **changes))

    def on_plan(**changes: Any) -> Callable[[], tuple[ParallelPlan, Job]]:
        return lambda: (replace(plan, **changes), job)

    if not job.train:
        out += [("weights to int8", "quantize", on_job(weight_dtype="int8")),
                ("weights to int4", "quantize", on_job(weight_dtype="int4"))]
        if transformer:
            out.append(("KV cache to fp8", "quantize", on_job(kv_dtype="fp8")))
    if transformer:
        out.append((f"tensor parallel x2 (tp {2 * tp})", "shard", on_plan(tensor_parallel=2 * tp)))
        out.append((f"pipeline parallel x2 (pp {2 * pp})", "shard",
                    on_plan(pipeline_parallel=2 * pp)))
    if job.train:
        for z in range(plan.zero_stage + 1, 4 if dp > 1 else 1):
            out.append((f"ZeRO-{z} over dp {dp}", "shard", on_plan(zero_stage=z)))
        if transformer:
            for mode in ("selective", "full"):
                if mode != plan.recompute:
                    out.append((f"{mode} recomputation", "recompute", on_plan(recompute=mode)))
            if not plan.sequence_parallel and tp > 1:
                out.append(("sequence parallelism", "recompute",
                            on_plan(sequence_parallel=True)))
        if mb > 1:
            out.append((f"micro-batch {mb // 2}", "batch", on_plan(micro_batch=mb // 2)))
    elif job.batch > 1:
        out.append((f"batch {job.batch // 2}", "batch", on_job(batch=job.batch // 2)))
    return out


def suggestions(graph: ModelGraph, plan: ParallelPlan, job: Job, device: DeviceSpec,
                extras: Extras | None = None) -> pd.DataFrame:
    """What to change, with the per-device total and saving of each change alone.

    Offloading is priced as removing the optimizer states and the fp32 master copy from the
    device (ZeRO-Offload keeps them in host memory; Ren et al., USENIX ATC 2021).
    """
    extras = extras or Extras(device=device)
    parts = extras.footprint(graph, plan, job)
    base = float(parts["total"])
    totals: list[tuple[str, str, float]] = []
    for action, family, change in _changes(graph, plan, job):
        try:
            new_plan, new_job = change()
            check_memory_plan(graph, new_plan, new_job)
        except PerfModelError:  # an impossible variant (tp beyond the heads) is not offered
            continue
        totals.append((action, family, float(extras.total(graph, new_plan, new_job))))
    if job.train:
        totals.append(("offload optimizer states to host (ZeRO-Offload)", "offload",
                       base - float(parts["optimizer"])))
    rows = []
    for action, family, total in totals:
        if total >= base:  # already in effect, or no help
            continue
        rows.append({"action": action, "family": family, "total_bytes": total,
                     "saves_bytes": base - total, "fits": total <= device.memory_capacity})
    df = pd.DataFrame(rows, columns=["action", "family", "total_bytes", "saves_bytes", "fits"])
    return df.sort_values("saves_bytes", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class MemoryReport:
    """Everything `perfmodel memory` prints: breakdown (bytes per device by component),
    verdict, suggestions, bandwidth limits (inference) and assumptions."""

    breakdown: pd.DataFrame
    verdict: Verdict
    suggestions: pd.DataFrame
    limits: dict[str, Any]
    assumptions: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"components": {r.component: r.bytes for r in self.breakdown.itertuples()},
                "verdict": self.verdict.to_dict(), "limits": self.limits,
                "suggestions": self.suggestions.to_dict(orient="records"),
                "assumptions": self.assumptions}


def memory_report(graph: ModelGraph, plan: ParallelPlan, job: Job, device: DeviceSpec, *,
                  workspace_bytes: float = 0.0, overhead_bytes: float = 0.0) -> MemoryReport:
    """Footprint, verdict, what to change and (for inference) the decode limits."""
    job = job.with_seq(graph.default_seq)
    check_memory_plan(graph, plan, job)
    extras = Extras(workspace_bytes, overhead_bytes, device)
    parts = extras.footprint(graph, plan, job)
    breakdown = pd.DataFrame({"component": list(COMPONENTS),
                              "bytes": [float(parts[k]) for k in COMPONENTS]})
    limits = decode_limits(graph, plan, job, device) if graph.shape is not None \
        and not job.train else {}
    return MemoryReport(breakdown, verdict(graph, plan, job, device, extras),
                        suggestions(graph, plan, job, device, extras), limits,
                        _assumptions(graph, plan, job, device, extras))


def _assumptions(graph: ModelGraph, plan: ParallelPlan, job: Job, device: DeviceSpec,
                 extras: Extras) -> dict[str, Any]:
    main = next(i for i, m in enumerate(device.memory) if m.role == "main")
    mm = graph.shape
    return {
        "plan": plan.to_dict(), "job": job.to_dict(),
        "workspace_bytes": extras.workspace_bytes, "overhead_bytes": extras.overhead_bytes,
        "capacity_source": device.provenance.get(f"memory[{main}].capacity_GB", ""),
        "capacity": "the vendor's figure, all of it usable (no reserve for the driver or "
                    "allocator fragmentation unless --overhead-gb says so)",
        "model_states": "Rajbhandari et al. 2020 (ZeRO): 2+2+12 bytes/param for mixed-"
                        "precision Adam; ZeRO-1/2/3 shard states/grads/weights over dp",
        "activations": "Korthikanti et al. 2023 per-layer formula (transformers), generalized "
                       "to GQA and gated MLPs; fp32 logits on the last stage; 1F1B keeps "
                       "min(pp, m) micro-batches in flight, GPipe m; "
                       + ("flash attention keeps no s x s scores"
                          if graph.attention_kernels == "flash"
                          else "unfused attention keeps the 5as/h score tensors")
                       if mm is not None else
                       "every forward output saved for backward, at the activation dtype",
        "kv_cache": "2 x layers x kv_heads x head_dim x seq x batch x kv bytes",
        "workspace": "largest transient working set + user workspace",
        "overhead": "framework overhead (CUDA context, allocator) only as given; default 0",
        "pipeline_stage": "the fullest stage: its layers plus embeddings or LM head",
    }
