"""Analytic 3D-parallel training step: compute + exposed TP comm + PP p2p + bubble + DP comm.

For a plan (d, t, p, v, micro-batch b, m micro-batches per step), on one device of the
slowest pipeline stage:

    T_mb   = L (t_layer_f + t_layer_b + t_tp,f + t_tp,b) + extras + 2 v t_p2p   per micro-batch
    T_pipe = m T_mb,max + (p - 1) / v x T_mb,mean                          fill and drain
    T_step = T_pipe + exposed DP communication + optimizer step

with L = layers per device, t_layer_* the roofline times of one layer's per-device rows
(perfmodel.parallel.partition, the device's efficiency), t_tp,f / t_tp,b the exposed
tensor-parallel communication of a layer (``_tp_comm``: the 2 forward collectives; the
backward ones only beyond the weight- / input-gradient GEMMs they overlap; full
recomputation adds the rerun forward's 2), t_tp / t_p2p / the DP collectives from
perfmodel.analytic.network
(``predict_collective`` on the system). For uniform stages T_pipe is the closed form
m T (1 + (p - 1)/(v m)) of analytic.pipeline; the first and last stages carry the embedding
and the LM head, so the slowest stage sets the steady state and the mean stage the fill and
drain.

Rank layout (Megatron-LM): tensor-parallel ranks adjacent, then data-parallel, then
pipeline. Data-parallel groups of one node share its NICs. DP overlap (``overlap_grad_
reduce``): the gradient reduction (and, with ZeRO 1-2, the parameter all-gather) runs under
the last micro-batch's backward, except the last bucket (Megatron-LM's default bucket of
40 M parameters); ZeRO 3 / FSDP all-gathers weights for forward and backward and
reduce-scatters gradients every micro-batch, overlapped with that micro-batch's compute.

MFU = model FLOP / (T_step x devices x peak) with model FLOP of Narayanan et al. 2021 eq. 3
(``partition.model_flops``); HFU adds the recomputed FLOP (Chowdhery et al. 2022, app. B).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from perfmodel.analytic.memory import footprint
from perfmodel.analytic.network import predict_collective
from perfmodel.analytic.pipeline import bubble_fraction
from perfmodel.errors import PlanError, UnknownNameError
from perfmodel.graph.model_graph import ModelGraph, StageParams
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.parallel.partition import (
    LayerCosts,
    StageTimes,
    grad_bytes,
    layer_costs,
    model_flops,
    p2p_bytes,
    stage_times,
    tp_comm_bytes,
)
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.job import Job
from perfmodel.workload.plan import SELECTIVE_LAYER_EVERY, ParallelPlan, check_plan

__all__ = ["StepPrediction", "predict_step", "step_from_costs", "BREAKDOWN",
           "DP_BUCKET_PARAMS"]

BREAKDOWN = ("compute", "tp_comm", "pp_p2p", "bubble", "dp_comm", "optimizer")
DP_BUCKET_PARAMS = 40_000_000  # Megatron-LM DistributedDataParallelConfig.bucket_size default


@dataclass(frozen=True)
class StepPrediction:
    """One training step of a plan: times in seconds, memory in bytes per device."""

    model: str
    system: str
    plan: ParallelPlan
    job: Job
    step_s: float
    tokens_per_s: float
    tflops_per_device: float
    mfu: float
    hfu: float
    bubble_fraction: float
    breakdown: dict[str, float]
    memory: dict[str, float]
    capacity_bytes: float
    assumptions: dict[str, Any] = field(default_factory=dict)
    method: str = "analytic"
    simulation: dict[str, Any] = field(default_factory=dict)
    pipeline_run: Any = field(default=None, compare=False, repr=False)

    @property
    def fits(self) -> bool:
        return self.memory["total"] <= self.capacity_bytes

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "system": self.system, "plan": self.plan.to_dict(),
                "job": self.job.to_dict(), "step_s": self.step_s, "tokens_per_s": self.tokens_per_s,
                "tflops_per_device": self.tflops_per_device, "mfu": self.mfu,
                "hfu": self.hfu, "bubble_fraction": self.bubble_fraction,
                "breakdown_s": dict(self.breakdown),
                "memory_bytes": dict(self.memory), "capacity_bytes": self.capacity_bytes,
                "fits": self.fits, "method": self.method, "simulation": self.simulation,
                "assumptions": self.assumptions}


@lru_cache(maxsize=4096)
def _coll(system: SystemSpec, primitive: str, size: float, nodes: int, per_node: int) -> float:
    if nodes * per_node < 2 or size <= 0:
        return 0.0
    t = predict_collective(system, primitive, [size], nodes=nodes, per_node=per_node)
    return float(t.table["time_us"].iloc[0]) * 1e-6


def _group(system: SystemSpec, size: int, stride: int) -> tuple[int, int, int]:
    """(nodes, members per node, groups sharing each node) of a group of ``size`` ranks
    ``stride`` apart in the rank order."""
    k = system.devices_per_node
    per = max(1, min(size, k // stride)) if stride < k else 1
    nodes = math.ceil(size / per)
    sharing = max(1, k // per) if nodes > 1 else 1
    return nodes, per, sharing


def _tp_comm(system: SystemSpec, buf: float, nodes: int, per_node: int, sp: bool,
             column_b: tuple[float, ...]) -> tuple[float, float, float]:
    """(exposed forward s, exposed backward s, one collective s) of a layer's tensor-
    parallel communication, Megatron-LM 2022 (``LinearWithGradAccumulationAndAsync
    Communication``; Korthikanti et al. 2023, sec. 6.2: "we overlap all-reduce
    communication with the linear weight's gradient computation").

    Forward, exposed: after the row-parallel linears of attention and MLP, 2 all-reduces
    of s b h (sequence parallel: 2 all-gathers before the column-parallel linears and 2
    reduce-scatters after the row-parallel ones). Backward, without sequence parallelism:
    the column-parallel linear's input-gradient all-reduce runs under its weight-gradient
    GEMM (half its backward time, ``column_b``), exposed only beyond it; the row-parallel
    linear's backward has no collective. With sequence parallelism: the all-gather of the
    row-parallel output gradient is synchronous (2 exposed); the column-parallel linear
    re-gathers its input under the input-gradient GEMM and reduce-scatters the input
    gradient under the weight-gradient GEMM, each exposed beyond its GEMM.
    """
    if sp:
        rs = _coll(system, "reduce_scatter", buf, nodes, per_node)
        ag = _coll(system, "all_gather", buf, nodes, per_node)
        one = rs + ag
        hidden = sum(max(0.0, ag - cb / 2) + max(0.0, rs - cb / 2) for cb in column_b)
        return 2 * one, 2 * ag + hidden, one
    ar = _coll(system, "all_reduce", buf, nodes, per_node)
    return 2 * ar, sum(max(0.0, ar - cb / 2) for cb in column_b), ar


def _rerun_tp_comm(plan: ParallelPlan, system: SystemSpec, buf: float, nodes: int,
                   per_node: int, t_fwd: float) -> float:
    """Exposed seconds per layer of the forward tensor-parallel collectives a recompute
    reruns: all of them with ``full``, 1/n of them with ``selective_layer`` (every n-th
    block), and with ``selective_op`` those off torchtitan's save list (reduce-scatters
    are saved; all-reduces, or with sequence parallelism the 2 all-gathers, rerun)."""
    mode = plan.recompute
    if mode == "full":
        return t_fwd
    if mode == "selective_layer":
        return t_fwd / SELECTIVE_LAYER_EVERY
    if mode == "selective_op":
        return 2 * _coll(system, "all_gather", buf, nodes, per_node) \
            if plan.sequence_parallel else t_fwd
    return 0.0


def _fsdp_edges(stage: StageParams, p: int, t: int, dtype: str, m: int,
                gather: Callable[[float], float], scatter: Callable[[float], float]) -> float:
    """Seconds of ZeRO-3 / FSDP communication with no compute to hide under, per step.

    FSDP2 (``torch.distributed._composable.fsdp.fully_shard``, as torchtitan applies it in
    parallelisms/parallelize_llama.py ``apply_fsdp``: one unit per transformer block plus
    the root with the embedding, final norm and output layer) issues each unit's all-
    gather in its pre-forward hook on a separate stream, so a block's gather overlaps the
    previous block's compute (implicit prefetch) and the backward prefetches the next
    unit's gather; the root is not resharded after forward, nor is the last block
    (torchtitan). What stays exposed: the gathers of the root and of the first block
    before each micro-batch's forward, and after the last backward the reduce-scatters
    of the first block and of the root (the optimizer waits for them)."""
    root = stage.first + stage.last if p == 1 else max(stage.first, stage.last)
    width = lookup_dtype(dtype).nbytes
    root_b, block_b = root / t * width, stage.layer / t * width
    return m * (gather(root_b) + gather(block_b)) + scatter(block_b) + scatter(root_b)


def _check_step_plan(plan: ParallelPlan, job: Job, costs: LayerCosts,
                     system: SystemSpec) -> None:
    """The plan's rules against the model, batch and system, and what the step model does
    not price yet (one PlanError each)."""
    check_plan(plan, batch=job.batch, shape=costs.shape, name=costs.name,
               devices_per_node=system.devices_per_node)
    if plan.expert_parallel > 1 or plan.context_parallel > 1:
        raise PlanError("the training-step model does not price expert or context "
                        "parallelism yet", "use --ep 1 --cp 1")


def step_from_costs(costs: LayerCosts, times: StageTimes, plan: ParallelPlan, job: Job,
                    system: SystemSpec, device: DeviceSpec) -> dict[str, Any]:
    """The step of ``plan`` for ``job`` from precomputed per-device times (no memory): the
    numbers of StepPrediction as a dict (used by the search to avoid repeated roofline
    calls)."""
    shape = costs.shape
    t, p, d = plan.tensor_parallel, plan.pipeline_parallel, plan.data_parallel
    v, dtype = plan.virtual_stages, job.dtype
    m, b, s = plan.micro_batches(job.batch), plan.micro_batch_of(job.batch), costs.seq
    k = system.devices_per_node
    layers = math.ceil(shape.num_hidden_layers / p)
    # tensor parallel (per layer and micro-batch): exposed forward and backward seconds
    tp_nodes, tp_per = (1, t) if t <= k else (t // k, k)
    buf = tp_comm_bytes(shape, s, b, dtype)
    t_fwd, t_bwd, t_tp = _tp_comm(system, buf, tp_nodes, tp_per, plan.sequence_parallel,
                                  times.column_b)
    # the rerun forward's collectives: nothing to hide under
    t_bwd += _rerun_tp_comm(plan, system, buf, tp_nodes, tp_per, t_fwd)
    # pipeline p2p: neighbours t x d ranks apart
    t_p2p = 0.0
    if p > 1:
        nbytes = p2p_bytes(shape, s, b, dtype, t, plan.sequence_parallel)
        t_p2p = _coll(system, "send_recv", nbytes, 2, 1) if t * d >= k else _coll(
            system, "send_recv", nbytes, 1, 2)
    comp_layer = times.layer_f + times.layer_b
    extras_max = max(times.first_f + times.first_b if p > 1 else 0.0,
                     times.last_f + times.last_b + (times.first_f + times.first_b
                                                    if p == 1 else 0.0))
    extras_mean = (times.first_f + times.first_b + times.last_f + times.last_b) / p
    comm_mb = layers * (t_fwd + t_bwd) + (2 * v * t_p2p if p > 1 else 0.0)
    t_max = layers * comp_layer + extras_max + comm_mb
    t_mean = layers * comp_layer + extras_mean + comm_mb
    pipe = m * t_max + (p - 1) / v * t_mean
    # data parallel
    dp_nodes, dp_per, sharing = _group(system, d, t)
    grads = grad_bytes(costs.stage, layers, t, dtype)
    # gradient reductions at the reduce width (fp32 in torchtitan / Megatron-LM bf16 runs)
    widen = lookup_dtype(plan.reduce_dtype or dtype).nbytes / lookup_dtype(dtype).nbytes
    dp_exposed = 0.0
    if d > 1:
        if plan.zero_stage >= 3:
            def gather(nbytes: float) -> float:
                return _coll(system, "all_gather", nbytes * sharing, dp_nodes, dp_per)

            def scatter(nbytes: float) -> float:
                return _coll(system, "reduce_scatter", nbytes * widen * sharing, dp_nodes,
                             dp_per)

            per_mb = 2 * gather(grads) + scatter(grads)
            window = layers * comp_layer
            dp_exposed = m * max(0.0, per_mb - window)
            dp_exposed += _fsdp_edges(costs.stage, p, t, dtype, m, gather, scatter)
        else:
            if plan.zero_stage >= 1:
                t_dp = _coll(system, "reduce_scatter", grads * widen * sharing, dp_nodes,
                             dp_per) \
                    + _coll(system, "all_gather", grads * sharing, dp_nodes, dp_per)
            else:
                t_dp = _coll(system, "all_reduce", grads * widen * sharing, dp_nodes, dp_per)
            if plan.overlap_grad_reduce:
                params = grads / lookup_dtype(dtype).nbytes
                last_bucket = t_dp * min(1.0, DP_BUCKET_PARAMS / max(params, 1.0))
                window = layers * times.layer_b
                dp_exposed = max(t_dp - window, last_bucket)
            else:
                dp_exposed = t_dp
    opt = layers * times.layer_opt + times.extras_opt
    step = pipe + dp_exposed + opt
    comp = m * (layers * comp_layer + extras_max)
    breakdown = {"compute": comp, "tp_comm": m * layers * (t_fwd + t_bwd),
                 "pp_p2p": m * 2 * v * t_p2p if p > 1 else 0.0,
                 "bubble": pipe - m * t_max, "dp_comm": dp_exposed, "optimizer": opt}
    devices = plan.devices
    peak = device.peak("tensor", dtype) or 0.0
    n_layers = shape.num_hidden_layers
    if shape.gpt_like:
        mflops = model_flops(shape, job.batch, s)
    else:  # the workload's forward + backward FLOP (GQA, gated MLP, MoE)
        mflops = job.batch / b * (n_layers * times.layer_model_flops * t
                                  + times.extras_model_flops * t)
    ratio = (n_layers * times.layer_hw_flops + times.extras_model_flops) / max(
        n_layers * times.layer_model_flops + times.extras_model_flops, 1.0)
    mfu = mflops / (step * devices * peak) if peak else float("nan")
    return {"step_s": step, "tokens_per_s": job.batch * s / step,
            "tflops_per_device": mflops / (step * devices) / 1e12, "mfu": mfu,
            "hfu": mfu * ratio,
            "bubble_fraction": float(bubble_fraction(p, m, plan.schedule, v)),
            "breakdown": breakdown,
            "collectives_s": {"tp_collective": t_tp, "tp_exposed_f": t_fwd,
                              "tp_exposed_b": t_bwd, "p2p": t_p2p},
            "stage": {"layers": layers,
                      "layer_f": times.layer_f + t_fwd,
                      "layer_b": times.layer_b + t_bwd,
                      "first_f": times.first_f, "first_b": times.first_b,
                      "last_f": times.last_f, "last_b": times.last_b,
                      "p2p_bytes": p2p_bytes(shape, s, b, dtype, t,
                                             plan.sequence_parallel) if p > 1 else 0.0,
                      "tail_s": dp_exposed + opt},
            "gpt_like": shape.gpt_like}


def _memory(graph: ModelGraph, plan: ParallelPlan, job: Job,
            device: DeviceSpec) -> dict[str, float]:
    """Bytes per device by component: the one memory model (perfmodel.analytic.memory)."""
    return {k: float(np.asarray(v)) for k, v in footprint(graph, plan, job,
                                                           device=device).items()}


def _simulate(plan: ParallelPlan, job: Job, system: SystemSpec,
              r: dict[str, Any]) -> dict[str, Any]:
    """Replace the pipeline part of the analytic result with the simulated one."""
    from perfmodel.sim.step import simulate_step

    st, p, v = r["stage"], plan.pipeline_parallel, plan.virtual_stages
    n = p * v
    per_chunk = st["layers"] / v
    tf = [per_chunk * st["layer_f"] + (st["first_f"] if i == 0 else 0.0)
          + (st["last_f"] if i == n - 1 else 0.0) for i in range(n)]
    tb = [per_chunk * st["layer_b"] + (st["first_b"] if i == 0 else 0.0)
          + (st["last_b"] if i == n - 1 else 0.0) for i in range(n)]
    sim = simulate_step(system, p, plan.micro_batches(job.batch), tf, tb,
                        schedule=plan.schedule, virtual=v, activation_bytes=st["p2p_bytes"],
                        stride=plan.tensor_parallel * plan.data_parallel, tail_s=st["tail_s"])
    out = dict(r)
    scale = r["step_s"] / sim.step_s
    out.update(step_s=sim.step_s, tokens_per_s=r["tokens_per_s"] * scale,
               tflops_per_device=r["tflops_per_device"] * scale, mfu=r["mfu"] * scale,
               hfu=r["hfu"] * scale, bubble_fraction=sim.pipeline.bubble)
    bd = dict(r["breakdown"])
    bd["pp_p2p"] = 0.0  # simulated transfers overlap compute; any wait shows as bubble
    bd["bubble"] = sim.pipeline.step_s - bd["compute"] - bd["tp_comm"]
    out["breakdown"] = bd
    out["simulation"] = {"events": sim.pipeline.result.events,
                         "wall_s": sim.pipeline.result.wall_s,
                         "bubble_simulated": sim.pipeline.bubble,
                         "scope": "one pipeline (one DP replica, one TP rank per stage) on "
                                  "the system's links; DP and optimizer added after flush"}
    out["pipeline_run"] = sim.pipeline
    return out


def predict_step(graph: ModelGraph, job: Job, plan: ParallelPlan, system: SystemSpec,
                 device: DeviceSpec | None = None, method: str = "analytic") -> StepPrediction:
    """Step time, throughput, MFU / HFU, bubble and memory of a training ``job`` (its
    global batch, sequence, dtype, optimizer) split by ``plan`` on ``system``:
    ``method="analytic"`` (closed forms) or ``"sim"`` (the pipeline as a discrete-event
    simulation). The attention kernels are the graph's (``ModelGraph.attention_kernels``).

    >>> from perfmodel.zoo.registry import load_model
    >>> from perfmodel.hardware.system import load_system
    >>> plan = ParallelPlan(tensor_parallel=8, pipeline_parallel=8, micro_batch=1,
    ...                     schedule="interleaved", virtual_stages=3, recompute="selective",
    ...                     sequence_parallel=True)
    >>> job = Job(phase="train", batch=64, seq=2048, dtype="bf16")
    >>> pred = predict_step(load_model("gpt3-175b"), job, plan, load_system("dgx-a100"))
    >>> 5 < pred.step_s < 30
    True
    """
    device = device or system.device_spec()
    if not job.train:
        raise PlanError(f"a training step needs a job of phase 'train', got {job.phase!r}",
                        "pass Job(phase='train', ...)")
    job = job.with_seq(graph.default_seq)
    costs = layer_costs(graph, int(job.seq or 1), job.dtype, job.optimizer,
                        plan.attention_dropout)
    _check_step_plan(plan, job, costs, system)
    times = stage_times(costs, device, plan.tensor_parallel, plan.micro_batch_of(job.batch),
                        plan.sequence_parallel, plan.recompute, plan.zero_stage,
                        plan.data_parallel)
    r = step_from_costs(costs, times, plan, job, system, device)
    if method == "sim":
        r = _simulate(plan, job, system, r)
    elif method != "analytic":
        raise UnknownNameError(f"unknown method {method!r}", "use analytic or sim")
    return StepPrediction(
        model=graph.name, system=system.name, plan=plan, job=job, step_s=r["step_s"],
        tokens_per_s=r["tokens_per_s"], tflops_per_device=r["tflops_per_device"],
        mfu=r["mfu"], hfu=r["hfu"], bubble_fraction=r["bubble_fraction"],
        breakdown=r["breakdown"], memory=_memory(graph, plan, job, device),
        capacity_bytes=device.memory_capacity,
        assumptions=_assumptions(graph, plan, job, system, device, r), method=method,
        simulation=r.get("simulation", {}), pipeline_run=r.get("pipeline_run"))


def _assumptions(graph: ModelGraph, plan: ParallelPlan, job: Job, system: SystemSpec,
                 device: DeviceSpec, r: dict[str, Any]) -> dict[str, Any]:
    eff = device.efficiency
    attention = graph.attention_kernels
    return {
        "method": "analytic: roofline of the per-device workload + alpha-beta collectives "
                  "+ pipeline closed form (perfmodel.parallel.step docstring)",
        "device": device.name, "dtype": job.dtype,
        "compute_efficiency": eff.compute, "memory_efficiency": eff.memory,
        "efficiency_source": "the device spec (hw_specs; A100 defaults from A100 GEMM / "
                             "STREAM reference measurements)",
        "collectives": f"perfmodel.analytic.network.predict_collective on {system.name}",
        "tp_collective_s": r["collectives_s"]["tp_collective"],
        "p2p_s": r["collectives_s"]["p2p"],
        "tp_comm_overlap": "forward collectives exposed; backward ones under the column-"
                           "parallel linears' gradient GEMMs (Megatron-LM 2022, Korthikanti "
                           "et al. 2023 sec. 6.2)",
        "attention": attention + (" + attention dropout kernel"
                                  if plan.attention_dropout and attention == "unfused"
                                  else ""),
        "dp_overlap": ("bucketed, under the last micro-batch's backward, last bucket "
                       f"({DP_BUCKET_PARAMS / 1e6:g} M params) exposed"
                       if plan.overlap_grad_reduce else "none"),
        "model_flops": "Narayanan et al. 2021 eq. 3: 72 B s l h^2 (1 + s/6h + V/12hl)"
                       if r["gpt_like"] else "the workload's forward + backward FLOP (not "
                       "a GPT layer: gated MLP, GQA or MoE)",
        "not_modelled": "hidden dropout (fused with the residual add), kernel fusion, "
                        "data loading, straggler jitter",
    }
