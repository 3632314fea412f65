"""ParallelPlan: how a training run is split over devices (a user's choice, not a spec).

Sizes: ``data_parallel`` x ``tensor_parallel`` x ``pipeline_parallel`` devices; the global
batch of ``global_batch`` sequences of ``seq`` tokens is split into micro-batches of
``micro_batch`` over the data-parallel replicas, so each pipeline runs
m = global_batch / (data_parallel x micro_batch) micro-batches per step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from perfmodel.analytic.memory import OPTIMIZER_STATE_BYTES, RECOMPUTE
from perfmodel.analytic.pipeline import SCHEDULES, check_pipeline
from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.parallel.partition import ATTENTION_KERNELS
from perfmodel.units import dtype as lookup_dtype

__all__ = ["ParallelPlan", "check_parallel_plan"]


@dataclass(frozen=True)
class ParallelPlan:
    """A 3D-parallel training plan (Megatron-LM / DeepSpeed / FSDP vocabulary).

    ``zero``: 0 none, 1 optimizer states, 2 + gradients, 3 + weights (= FSDP full shard).
    ``recompute``: none | selective | full (Korthikanti et al. 2023). ``virtual``: model
    chunks per device for the interleaved schedule. ``overlap_grad_reduce``: the data-
    parallel gradient reduction is bucketed and overlapped with the backward pass (PyTorch
    DDP, Megatron-LM --overlap-grad-reduce, FSDP); False exposes all of it.
    ``attention``: the framework's attention kernels, ``flash`` (fused, causal-aware:
    FlashAttention / PyTorch SDPA, as in torchtitan or Megatron-LM --use-flash-attn) or
    ``unfused`` (Megatron-LM's 2022 CoreAttention: baddbmm, softmax, bmm over all s^2
    scores); ``attention_dropout``: the unfused path also runs a dropout kernel on the
    attention probabilities (perfmodel.parallel.partition). ``reduce_dtype``: the width
    of the data-parallel gradient reduction, None for the training dtype (torchtitan's
    FSDP2 ``mixed_precision_reduce`` and Megatron-LM's bf16 runs reduce in fp32).
    """

    data_parallel: int = 1
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    micro_batch: int = 1
    global_batch: int = 1
    seq: int = 2048
    schedule: str = "1f1b"
    virtual: int = 1
    zero: int = 0
    recompute: str = "none"
    sequence_parallel: bool = False
    dtype: str = "bf16"
    optimizer: str = "adam"
    overlap_grad_reduce: bool = True
    attention: str = "flash"
    attention_dropout: bool = False
    reduce_dtype: str | None = None

    def __post_init__(self) -> None:
        check_parallel_plan(self)

    @property
    def devices(self) -> int:
        return self.data_parallel * self.tensor_parallel * self.pipeline_parallel

    @property
    def micro_batches(self) -> int:
        """m: micro-batches per pipeline and step."""
        return self.global_batch // (self.data_parallel * self.micro_batch)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> ParallelPlan:
        if not isinstance(d, dict):
            raise PlanError(f"a plan is a mapping of fields, got {type(d).__name__}",
                            "pass a dict like ParallelPlan().to_dict()")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UnknownNameError(f"unknown plan field(s) {unknown}",
                                   did_you_mean(unknown[0], names))
        return cls(**d)


def _positive(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
        raise PlanError(f"{name} must be a positive integer, got {v!r}",
                        f"pass {name.replace('_', '-')} 1 or more")


def check_parallel_plan(plan: ParallelPlan) -> None:
    """One clear PlanError (or UnknownNameError) per impossible plan."""
    for name in ("data_parallel", "tensor_parallel", "pipeline_parallel", "micro_batch",
                 "global_batch", "seq", "virtual"):
        _positive(name, getattr(plan, name))
    for name, value, choices in (("schedule", plan.schedule, SCHEDULES),
                                 ("recompute", plan.recompute, RECOMPUTE),
                                 ("attention", plan.attention, ATTENTION_KERNELS),
                                 ("optimizer", plan.optimizer, tuple(OPTIMIZER_STATE_BYTES))):
        if value not in choices:
            raise UnknownNameError(f"unknown {name} {value!r}", did_you_mean(value, choices))
    for name in ("dtype", "reduce_dtype"):
        if getattr(plan, name) is not None:
            lookup_dtype(getattr(plan, name))  # UnknownNameError with a hint
    if plan.zero not in (0, 1, 2, 3):
        raise PlanError(f"ZeRO stage must be 0, 1, 2 or 3, got {plan.zero!r}",
                        "use --zero 0..3 (3 = FSDP full sharding)")
    if plan.global_batch % (plan.data_parallel * plan.micro_batch):
        raise PlanError(f"global batch {plan.global_batch} is not a multiple of data-parallel "
                        f"x micro-batch = {plan.data_parallel} x {plan.micro_batch}",
                        "choose global batch = dp x micro-batch x m")
    if plan.sequence_parallel and plan.tensor_parallel == 1:
        raise PlanError("sequence parallelism splits along the tensor-parallel group",
                        "use --tp 2 or more, or drop --sequence-parallel")
    check_pipeline(plan.pipeline_parallel, plan.micro_batches, plan.schedule, plan.virtual)
