"""Does it fit? The capacity verdict, the largest batch / sequence that fits, the fewest
devices that fit, and what to change — each change priced by the footprint model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.bandwidth import decode_limits
from perfmodel.analytic.memory import (
    COMPONENTS,
    MemoryModel,
    MemoryPlan,
    check_plan,
    footprint,
)
from perfmodel.errors import PerfModelError
from perfmodel.hardware.spec import DeviceSpec

__all__ = ["Verdict", "verdict", "largest_fitting", "fewest_devices", "suggestions"]

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


def _total(mm: MemoryModel, plan: MemoryPlan, **arrays: Any) -> np.ndarray:
    return footprint(mm, plan, **arrays)["total"]


def largest_fitting(mm: MemoryModel, plan: MemoryPlan, capacity: float,
                    field: str) -> int | None:
    """Largest ``field`` (batch, micro_batch or seq) that fits, or None if 1 does not.

    The footprint grows monotonically in each, so an exponential search then a binary
    search finds it (a few dozen footprint evaluations). A training micro-batch keeps the
    number of micro-batches per step: the global batch grows with it.
    """
    def total(v: int) -> float:
        if field == "micro_batch":
            m = plan.batch // (plan.dp * (plan.micro_batch or plan.batch // plan.dp))
            return float(_total(mm, plan.with_(micro_batch=v, batch=v * plan.dp * m)))
        return float(_total(mm, plan.with_(**{field: v})))

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


def fewest_devices(mm: MemoryModel, plan: MemoryPlan, capacity: float) -> tuple[int | None, str]:
    """The fewest devices (powers of two up to 1024) that hold the model, and along which
    axis: ZeRO-3 data parallelism when training with ZeRO-3 (the global batch grows with
    dp, micro-batches per step fixed), else model parallelism (tp up to the head count,
    then pp) for transformers; other models shard only with ZeRO-3."""
    sizes = 2 ** np.arange(0, 11)
    if plan.phase == "train" and plan.zero >= 3:
        mb = plan.micro_batch or plan.batch // plan.dp
        m = plan.batch // (plan.dp * mb)
        axis, totals = "dp (ZeRO-3)", _total(mm, plan, dp=sizes, batch=sizes * mb * m)
    elif mm.is_transformer:
        tp = np.minimum(sizes, max(mm.heads, 1))
        pp = np.minimum(np.maximum(sizes // tp, 1), mm.num_layers)
        axis, totals = "tp x pp", _total(mm, plan, tp=tp, pp=pp)
    else:
        return (1 if _total(mm, plan) <= capacity else None), "none (no sharding)"
    ok = np.nonzero(totals <= capacity)[0]
    return (int(sizes[ok[0]]) if len(ok) else None), axis


def verdict(mm: MemoryModel, plan: MemoryPlan, device: DeviceSpec) -> Verdict:
    cap = device.memory_capacity
    total = float(_total(mm, plan))
    batch_field = "micro_batch" if plan.phase == "train" else "batch"
    min_dev, axis = fewest_devices(mm, plan, cap)
    return Verdict(
        total_bytes=total, capacity_bytes=cap, fits=total <= cap, headroom_bytes=cap - total,
        max_batch=largest_fitting(mm, plan, cap, batch_field), max_batch_field=batch_field,
        max_seq=largest_fitting(mm, plan, cap, "seq") if mm.is_transformer else None,
        min_devices=min_dev, min_devices_axis=axis)


def _changes(mm: MemoryModel, plan: MemoryPlan) -> list[tuple[str, str, Callable[[], Any]]]:
    """(action, family, plan change) candidates; each is priced by the footprint model."""
    out: list[tuple[str, str, Callable[[], MemoryPlan]]] = []
    mb = plan.micro_batch or 0
    if plan.phase != "train":
        out += [("weights to int8", "quantize", lambda: plan.with_(weight_dtype="int8")),
                ("weights to int4", "quantize", lambda: plan.with_(weight_dtype="int4"))]
        if mm.is_transformer:
            out.append(("KV cache to fp8", "quantize", lambda: plan.with_(kv_dtype="fp8")))
    if mm.is_transformer:
        out.append((f"tensor parallel x2 (tp {2 * plan.tp})", "shard",
                    lambda: plan.with_(tp=2 * plan.tp)))
        out.append((f"pipeline parallel x2 (pp {2 * plan.pp})", "shard",
                    lambda: plan.with_(pp=2 * plan.pp)))
    if plan.phase == "train":
        for z in range(plan.zero + 1, 4 if plan.dp > 1 else 1):
            out.append((f"ZeRO-{z} over dp {plan.dp}", "shard", partial(plan.with_, zero=z)))
        if mm.is_transformer:
            for mode in ("selective", "full"):
                if mode != plan.recompute:
                    out.append((f"{mode} recomputation", "recompute",
                                partial(plan.with_, recompute=mode)))
            if not plan.sequence_parallel and plan.tp > 1:
                out.append(("sequence parallelism", "recompute",
                            lambda: plan.with_(sequence_parallel=True)))
        if mb > 1:
            out.append((f"micro-batch {mb // 2}", "batch",
                        partial(plan.with_, micro_batch=mb // 2)))
    elif plan.batch > 1:
        out.append((f"batch {plan.batch // 2}", "batch", lambda: plan.with_(batch=plan.batch // 2)))
    return out


def suggestions(mm: MemoryModel, plan: MemoryPlan, device: DeviceSpec) -> pd.DataFrame:
    """What to change, with the per-device total and saving of each change alone.

    Offloading is priced as removing the optimizer states and the fp32 master copy from the
    device (ZeRO-Offload keeps them in host memory; Ren et al., USENIX ATC 2021).
    """
    parts = footprint(mm, plan)
    base = float(parts["total"])
    totals: list[tuple[str, str, float]] = []
    for action, family, change in _changes(mm, plan):
        new = change()
        try:
            check_plan(mm, new)
        except PerfModelError:  # an impossible variant (tp beyond the heads) is not offered
            continue
        totals.append((action, family, float(_total(mm, new))))
    if plan.phase == "train":
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


def memory_report(mm: MemoryModel, plan: MemoryPlan, device: DeviceSpec) -> MemoryReport:
    """Footprint, verdict, what to change and (for inference) the decode limits."""
    check_plan(mm, plan)
    parts = footprint(mm, plan)
    breakdown = pd.DataFrame({"component": list(COMPONENTS),
                              "bytes": [float(parts[k]) for k in COMPONENTS]})
    limits = decode_limits(mm, plan, device) if mm.is_transformer and plan.phase in (
        "decode", "prefill", "inference") else {}
    return MemoryReport(breakdown, verdict(mm, plan, device), suggestions(mm, plan, device),
                        limits, _assumptions(mm, plan, device))


def _assumptions(mm: MemoryModel, plan: MemoryPlan, device: DeviceSpec) -> dict[str, Any]:
    main = next(i for i, m in enumerate(device.memory) if m.role == "main")
    return {
        "plan": {k: v for k, v in plan.__dict__.items()},
        "capacity_source": device.provenance.get(f"memory[{main}].capacity_GB", ""),
        "capacity": "the vendor's figure, all of it usable (no reserve for the driver or "
                    "allocator fragmentation unless --overhead-gb says so)",
        "model_states": "Rajbhandari et al. 2020 (ZeRO): 2+2+12 bytes/param for mixed-"
                        "precision Adam; ZeRO-1/2/3 shard states/grads/weights over dp",
        "activations": "Korthikanti et al. 2023 per-layer formula (transformers), generalized "
                       "to GQA and gated MLPs; fp32 logits on the last stage; 1F1B keeps "
                       "min(pp, m) micro-batches in flight, GPipe m"
                       if mm.is_transformer else
                       "every forward output saved for backward, at the activation dtype",
        "kv_cache": "2 x layers x kv_heads x head_dim x seq x batch x kv bytes",
        "workspace": "largest transient working set + user workspace",
        "overhead": "framework overhead (CUDA context, allocator) only as given; default 0",
        "pipeline_stage": "the fullest stage: its layers plus embeddings or LM head",
    }
