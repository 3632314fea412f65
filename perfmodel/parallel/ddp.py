"""A data-parallel training step of any model (CNNs, or any graph without a transformer shape):
PyTorch DistributedDataParallel's bucketed gradient all-reduce overlapped with the backward.

Each of the d replicas runs its batch / d samples in micro-batches of ``micro_batch`` (m of
them, gradient accumulation), priced by the roofline over the model's whole training
workload (forward, backward and the optimizer update rows, perfmodel.workload.build). The
gradients (the parameters at the training width, or ``reduce_dtype``) are all-reduced over
the d ranks once per step, after the last micro-batch's backward starts:

    T_step = m (T_f + T_b) + max(T_ar - T_b, T_ar x min(1, bucket / gradient bytes)) + T_opt

DDP (``torch.nn.parallel.DistributedDataParallel``, ``bucket_cap_mb`` = 25 MiB by default,
PyTorch docs) fills buckets in reverse layer order while the backward runs and launches each
bucket's all-reduce as soon as it is full, so the reduction hides under the backward except
what outlasts it, and at least the last bucket (Li et al., "PyTorch Distributed", VLDB 2020,
sec. 3.2.3 and Fig. 7). With ``overlap_grad_reduce=False`` (Horovod without tensor fusion
overlap, or a framework that reduces after the backward) the whole all-reduce is exposed.
ZeRO 1 and 2 split the update over d (reduce-scatter + all-gather of the same volume). A
model with a transformer shape goes through perfmodel.parallel.step instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perfmodel.analytic.network import predict_collective
from perfmodel.analytic.roofline import roofline
from perfmodel.errors import PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.units import MiB
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.build import build_workload
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan, check_plan

__all__ = ["ddp_step", "DDP_BUCKET_BYTES"]

DDP_BUCKET_BYTES = 25 * MiB  # torch DistributedDataParallel(bucket_cap_mb=25) default


def _all_reduce(system: SystemSpec, nbytes: float, d: int, primitive: str = "all_reduce"
                ) -> float:
    """Seconds of one collective over d ranks packed onto nodes (ranks adjacent)."""
    if d < 2 or nbytes <= 0:
        return 0.0
    k = system.devices_per_node
    nodes, per = (1, d) if d <= k else (-(-d // k), k)
    t = predict_collective(system, primitive, [nbytes], nodes=nodes, per_node=per)
    return float(t.table["time_us"].iloc[0]) * 1e-6


def ddp_step(graph: ModelGraph, job: Job, plan: ParallelPlan, system: SystemSpec,
             device: DeviceSpec) -> dict[str, Any]:
    """The step of a data-parallel ``plan`` for a model without a transformer shape, as
    the dict ``perfmodel.parallel.step.step_from_costs`` returns (times in seconds)."""
    if (plan.tensor_parallel, plan.pipeline_parallel, plan.context_parallel,
            plan.expert_parallel) != (1, 1, 1, 1) or plan.zero_stage >= 3:
        raise PlanError(f"{graph.name} has no transformer shape: only data parallelism "
                        "(ZeRO 0-2) is modelled for it", "use --tp 1 --pp 1 --cp 1 --ep 1 "
                                                        "and --zero 0..2")
    if plan.recompute != "none":
        raise PlanError(f"{graph.name}: activation recomputation is modelled for "
                        "transformers only (Korthikanti et al.)", "use --recompute none")
    check_plan(plan, batch=job.batch)
    d, b, m = plan.data_parallel, plan.micro_batch_of(job.batch), plan.micro_batches(job.batch)
    wl = build_workload(graph, batch=b, seq=job.seq, dtype=job.dtype, phase="train",
                        optimizer=job.optimizer).table
    t = roofline(wl, device)
    time, flops = t["time_s"].to_numpy(float), t["flops"].to_numpy(float)
    phase = t["phase"].to_numpy(object)
    t_f = float(time[phase == "forward"].sum())
    t_b = float(time[phase == "backward"].sum())
    t_opt = float(time[phase == "optimizer"].sum()) / (d if plan.zero_stage >= 1 else 1)
    width = lookup_dtype(plan.reduce_dtype or job.dtype).nbytes
    grads = float(graph.params) * width
    if plan.zero_stage >= 1:
        t_ar = _all_reduce(system, grads, d, "reduce_scatter") \
            + _all_reduce(system, float(graph.params) * lookup_dtype(job.dtype).nbytes, d,
                          "all_gather")
    else:
        t_ar = _all_reduce(system, grads, d)
    if plan.overlap_grad_reduce:
        exposed = max(t_ar - t_b, t_ar * min(1.0, DDP_BUCKET_BYTES / max(grads, 1.0)))
    else:
        exposed = t_ar
    compute = m * (t_f + t_b)
    step = compute + exposed + t_opt
    model_flops = float(flops[np.isin(phase, ("forward", "backward"))].sum()) * m * d
    peak = device.peak("tensor", job.dtype) or 0.0
    mfu = model_flops / (step * d * peak) if peak else float("nan")
    samples = job.batch * (job.seq or 1) if graph.shape is not None else job.batch
    return {"step_s": step, "tokens_per_s": samples / step,
            "tflops_per_device": model_flops / (step * d) / 1e12, "mfu": mfu, "hfu": mfu,
            "bubble_fraction": 0.0,
            "breakdown": {"compute": compute, "tp_comm": 0.0, "cp_comm": 0.0, "ep_comm": 0.0,
                          "pp_p2p": 0.0, "bubble": 0.0, "dp_comm": exposed,
                          "optimizer": t_opt},
            "collectives_s": {"tp_collective": 0.0, "p2p": 0.0, "dp_all_reduce": t_ar},
            "ddp": {"gradient_bytes": grads, "all_reduce_s": t_ar, "backward_s": t_b,
                    "bucket_bytes": DDP_BUCKET_BYTES},
            "gpt_like": False}
