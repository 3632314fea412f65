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
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

import numpy as np

from perfmodel.analytic.memory import footprint
from perfmodel.analytic.network import predict_collective
from perfmodel.analytic.pipeline import pipeline_time
from perfmodel.errors import PlanError, UnknownNameError
from perfmodel.graph.model_graph import ModelGraph, StageParams
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.parallel.context import check_ulysses, ring_attention, ulysses
from perfmodel.parallel.ddp import ddp_step
from perfmodel.parallel.mfu import CONVENTIONS, mfu
from perfmodel.parallel.moe import dispatch_time, expert_load, grouped_gemm_time
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
from perfmodel.workload.plan import (
    SELECTIVE_LAYER_EVERY,
    ParallelPlan,
    check_plan,
    pipeline_slots,
)
from perfmodel.workload.precision import all_gather_bytes_per_param

__all__ = ["StepPrediction", "predict_step", "step_from_costs", "BREAKDOWN", "mfu_conventions",
           "DP_BUCKET_PARAMS"]

BREAKDOWN = ("compute", "tp_comm", "cp_comm", "ep_comm", "pp_p2p", "bubble", "dp_comm",
             "optimizer")
DP_BUCKET_PARAMS = 40_000_000  # Megatron-LM DistributedDataParallelConfig.bucket_size default
ZERO_BUBBLE = ("zb-h1", "zb-v", "dualpipe")  # schedules that defer the weight gradient


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
    mfu_by_convention: dict[str, float] = field(default_factory=dict)

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
                "mfu_by_convention": dict(self.mfu_by_convention),
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


def per_context_rank(times: StageTimes, c: int) -> StageTimes:
    """One context-parallel rank's share of a micro-batch: each of the c ranks holds s / c
    tokens of every sequence, so its linears, norms and extras do 1/c of the work, and so
    does its causal attention with Megatron-Core's load balancing (the sequence cut into
    2c chunks, rank i taking chunks i and 2c - 1 - i, so every rank attends the same number
    of query-key pairs; Transformer Engine ``attention.py`` context parallelism). The
    optimizer step does not depend on tokens."""
    if c == 1:
        return times
    scaled = {f.name: getattr(times, f.name) / c for f in fields(times)
              if f.name not in ("layer_opt", "extras_opt", "column_b")}
    return replace(times, column_b=tuple(x / c for x in times.column_b), **scaled)


def _check_step_plan(plan: ParallelPlan, job: Job, costs: LayerCosts,
                     system: SystemSpec) -> None:
    """The plan's rules against the model, batch and system, and what the step model does
    not price yet (one PlanError each)."""
    check_plan(plan, batch=job.batch, shape=costs.shape, name=costs.name,
               devices_per_node=system.devices_per_node)
    c = plan.context_parallel
    if c > 1 and costs.seq % (2 * c):
        raise PlanError(f"context parallelism {c} needs the sequence ({costs.seq}) split into "
                        f"2 x {c} equal chunks (causal load balancing)",
                        f"choose --seq a multiple of {2 * c}")
    if c > 1 and plan.context_kind == "ulysses":
        check_ulysses(costs.shape.num_attention_heads // plan.tensor_parallel,
                      max(costs.shape.num_key_value_heads // plan.tensor_parallel, 1), c)


def step_from_costs(costs: LayerCosts, times: StageTimes, plan: ParallelPlan, job: Job,
                    system: SystemSpec, device: DeviceSpec) -> dict[str, Any]:
    """The step of ``plan`` for ``job`` from precomputed per-device times (no memory): the
    numbers of StepPrediction as a dict (used by the search to avoid repeated roofline
    calls). ``times`` are one micro-batch's on one tensor-parallel rank over the whole
    sequence; context parallelism takes its share here (``per_context_rank``)."""
    shape = costs.shape
    t, p, d = plan.tensor_parallel, plan.pipeline_parallel, plan.data_parallel
    c = plan.context_parallel
    v, dtype = plan.virtual_stages, job.dtype
    m, b, s = plan.micro_batches(job.batch), plan.micro_batch_of(job.batch), costs.seq
    k = system.devices_per_node
    layers = math.ceil(pipeline_slots(plan, shape) / p)
    full_times = times
    times = per_context_rank(times, c)
    # mixture of experts: the routed experts as grouped GEMMs at their per-expert tokens,
    # on the busiest expert-parallel rank, and the dispatch / combine all-to-alls
    moe = _moe(shape, plan, job, system, device, s * b // c, full_times.experts_f / c,
               full_times.experts_b / c) if shape.is_moe else None
    if moe is not None:
        times = replace(times, layer_f=times.layer_f + moe["extra_f"],
                        layer_b=times.layer_b + moe["extra_b"])
    # tensor parallel (per layer and micro-batch): exposed forward and backward seconds
    tp_nodes, tp_per = (1, t) if t <= k else (t // k, k)
    buf = tp_comm_bytes(shape, s, b, dtype) / c
    t_fwd, t_bwd, t_tp = _tp_comm(system, buf, tp_nodes, tp_per, plan.sequence_parallel,
                                  times.column_b)
    # the rerun forward's collectives: nothing to hide under
    t_bwd += _rerun_tp_comm(plan, system, buf, tp_nodes, tp_per, t_fwd)
    cp_f, cp_b = _context_comm(shape, plan, job, system, s * b // c, times) if c > 1 \
        else (0.0, 0.0)
    ep_f, ep_b = (moe["a2a_f"], moe["a2a_b"]) if moe is not None else (0.0, 0.0)
    # pipeline p2p: neighbours t x c x d ranks apart
    t_p2p = 0.0
    if p > 1:
        nbytes = p2p_bytes(shape, s, b, dtype, t, plan.sequence_parallel) / c
        t_p2p = _coll(system, "send_recv", nbytes, 2, 1) if t * c * d >= k else _coll(
            system, "send_recv", nbytes, 1, 2)
    layer_comm = t_fwd + t_bwd + cp_f + cp_b + ep_f + ep_b
    comp_layer = times.layer_f + times.layer_b
    extras_max = max(times.first_f + times.first_b if p > 1 else 0.0,
                     times.last_f + times.last_b + (times.first_f + times.first_b
                                                    if p == 1 else 0.0))
    if plan.embedding_as_layers and p > 1:  # the first / last stage's extras take a slot
        extras_max = max(0.0, extras_max - comp_layer)
    extras_mean = (times.first_f + times.first_b + times.last_f + times.last_b) / p
    comm_mb = layers * layer_comm + (2 * v * t_p2p if p > 1 else 0.0)
    t_max = layers * comp_layer + extras_max + comm_mb
    t_mean = layers * comp_layer + extras_mean + comm_mb
    hidden_ep = 0.0
    if plan.schedule == "dualpipe":
        # DualPipe overlaps one direction's dispatch / combine with the other's compute
        # (DeepSeek-V3 sec. 3.2.1: all-to-all "fully hidden"): exposed only beyond it
        hidden_ep = min(ep_f + ep_b, comp_layer)
        t_max -= layers * hidden_ep
        t_mean -= layers * hidden_ep
    fwd_mean = layers * (times.layer_f + t_fwd + cp_f + ep_f) \
        + (times.first_f + times.last_f) / p + (v * t_p2p if p > 1 else 0.0)
    pipe = float(pipeline_time(plan.schedule, p, m, t_max, t_mean, layers * times.layer_w,
                               v, forward_share=fwd_mean / t_mean if t_mean else 0.5))
    dp_exposed = _data_parallel(costs, times, plan, job, system, layers, m)
    opt = layers * times.layer_opt + times.extras_opt
    step = pipe + dp_exposed + opt
    comp = m * (layers * comp_layer + extras_max)
    breakdown = {"compute": comp, "tp_comm": m * layers * (t_fwd + t_bwd),
                 "cp_comm": m * layers * (cp_f + cp_b),
                 "ep_comm": m * layers * (ep_f + ep_b - hidden_ep),
                 "pp_p2p": m * 2 * v * t_p2p if p > 1 else 0.0,
                 "bubble": pipe - m * t_max, "dp_comm": dp_exposed, "optimizer": opt}
    devices = plan.devices
    # MFU against the peak of the dtype the GEMMs run in (fp8 / fp4 under a low-precision
    # recipe), so it stays a fraction of what the tensor cores can do
    peak = device.peak("tensor", gemm_dtype(job)) or 0.0
    n_layers = shape.num_hidden_layers
    if shape.gpt_like:
        mflops = model_flops(shape, job.batch, s)
    else:  # the workload's forward + backward FLOP (GQA, gated MLP, MoE)
        mflops = job.batch / b * (n_layers * full_times.layer_model_flops * t
                                  + full_times.extras_model_flops * t)
    ratio = (n_layers * times.layer_hw_flops + times.extras_model_flops) / max(
        n_layers * times.layer_model_flops + times.extras_model_flops, 1.0)
    mfu = mflops / (step * devices * peak) if peak else float("nan")
    return {"step_s": step, "tokens_per_s": job.batch * s / step,
            "tflops_per_device": mflops / (step * devices) / 1e12, "mfu": mfu,
            "hfu": mfu * ratio,
            "bubble_fraction": (pipe - m * t_max) / (m * t_max) if m * t_max else 0.0,
            "breakdown": breakdown,
            "collectives_s": {"tp_collective": t_tp, "tp_exposed_f": t_fwd,
                              "tp_exposed_b": t_bwd, "p2p": t_p2p, "cp_exposed_f": cp_f,
                              "cp_exposed_b": cp_b, "ep_exposed_f": ep_f,
                              "ep_exposed_b": ep_b},
            "moe": moe or {},
            "stage": {"layers": layers,
                      "layer_f": times.layer_f + t_fwd + cp_f + ep_f,
                      "layer_b": times.layer_b + t_bwd + cp_b + ep_b,
                      "layer_w": times.layer_w,
                      "first_f": times.first_f, "first_b": times.first_b,
                      "last_f": times.last_f, "last_b": times.last_b,
                      "p2p_bytes": p2p_bytes(shape, s, b, dtype, t,
                                             plan.sequence_parallel) / c if p > 1 else 0.0,
                      "tail_s": dp_exposed + opt},
            "gpt_like": shape.gpt_like}


def _data_parallel(costs: LayerCosts, times: StageTimes, plan: ParallelPlan, job: Job,
                   system: SystemSpec, layers: int, m: int) -> float:
    """Exposed seconds of the data-parallel communication per step.

    The gradient reduction spans the data x context ranks (context-parallel ranks hold the
    same weights; Megatron-Core reduces over the combined group), stride t in the rank
    order. ZeRO 0-2: bucketed all-reduce (or reduce-scatter + all-gather) under the last
    micro-batch's backward, the last bucket exposed. ZeRO 3 / FSDP: per-unit gathers and
    reduce-scatters every micro-batch under its compute, the edges exposed (``_fsdp_
    edges``); HSDP (``shard_group`` g) gathers and reduce-scatters within g ranks and all-
    reduces the 1/g gradient shard across the d / g replicas (PyTorch FSDP HYBRID_SHARD)."""
    t, d, c, dtype = plan.tensor_parallel, plan.data_parallel, plan.context_parallel, job.dtype
    group = d * c
    if group == 1:
        return 0.0
    grads = grad_bytes(costs.stage, layers, t, dtype)
    if costs.shape.is_moe and plan.expert_parallel > 1:  # routed experts: E / e per rank
        grads -= costs.expert_share * grads * (1 - 1 / plan.expert_parallel)
    # gradient reductions at the reduce width (fp32 in torchtitan / Megatron-LM bf16 runs)
    widen = lookup_dtype(plan.reduce_dtype or dtype).nbytes / lookup_dtype(dtype).nbytes
    comp_layer = times.layer_f + times.layer_b
    if plan.zero_stage >= 3:
        g = plan.shard_size * c
        nodes, per, sharing = _group(system, g, t)
        r_nodes, r_per, r_sharing = _group(system, group // g, t * g)

        # weights gathered cast to the GEMM recipe's format where the framework does it
        narrow = all_gather_bytes_per_param(job.gemm_recipe, dtype) \
            / lookup_dtype(dtype).nbytes if plan.quantized_all_gather else 1.0

        def gather(nbytes: float) -> float:
            return _coll(system, "all_gather", nbytes * narrow * sharing, nodes, per)

        def scatter(nbytes: float) -> float:
            return _coll(system, "reduce_scatter", nbytes * widen * sharing, nodes, per) \
                + _coll(system, "all_reduce", nbytes * widen / g * r_sharing, r_nodes, r_per)

        per_mb = 2 * gather(grads) + scatter(grads)
        window = layers * comp_layer
        return m * max(0.0, per_mb - window) + _fsdp_edges(costs.stage, plan.pipeline_parallel,
                                                             t, dtype, m, gather, scatter)
    nodes, per, sharing = _group(system, group, t)
    if plan.zero_stage >= 1:
        t_dp = _coll(system, "reduce_scatter", grads * widen * sharing, nodes, per) \
            + _coll(system, "all_gather", grads * sharing, nodes, per)
    else:
        t_dp = _coll(system, "all_reduce", grads * widen * sharing, nodes, per)
    if not plan.overlap_grad_reduce:
        return t_dp
    params = grads / lookup_dtype(dtype).nbytes
    last_bucket = t_dp * min(1.0, DP_BUCKET_PARAMS / max(params, 1.0))
    return max(t_dp - layers * times.layer_b, last_bucket)


def _moe(shape: ModelShape, plan: ParallelPlan, job: Job, system: SystemSpec,
         device: DeviceSpec, tokens: int, experts_f: float, experts_b: float
         ) -> dict[str, float]:
    """Per average layer and micro-batch on the busiest expert-parallel rank: the routed
    experts' extra seconds over the workload rows (``extra_f`` / ``extra_b``) and the
    exposed all-to-all seconds (``a2a_f`` / ``a2a_b``).

    ``tokens``: the sequence tokens of one micro-batch on this context rank. With tensor
    parallelism the experts are tensor-split too (expert tensor size = t, Megatron-Core's
    default) and each tensor rank dispatches its 1/t of the tokens (Megatron-Core requires
    sequence parallelism with MoE and t > 1). The routed experts run as grouped GEMMs at
    the busiest rank's tokens per local expert (perfmodel.parallel.moe: load imbalance and
    capacity dropping), replacing the rows' one-GEMM pricing; dispatch and combine are one
    all-to-all each way, forward and backward (4 per MoE layer; full recomputation reruns
    the forward 2), over the e ranks t apart, exposed: only DualPipe overlaps them with
    the other direction's compute (DeepSeek-V3 sec. 3.2.1), priced in its schedule."""
    t, e = plan.tensor_parallel, plan.expert_parallel
    experts, top_k = shape.num_local_experts, shape.num_experts_per_tok
    share = sum(shape.is_moe_layer(i) for i in range(shape.num_hidden_layers)) \
        / shape.num_hidden_layers
    load = expert_load(tokens, top_k, experts, e, capacity_factor=plan.moe_capacity_factor,
                       imbalance=plan.moe_imbalance)
    ffn = shape.moe_intermediate_size or shape.intermediate_size
    grouped = grouped_gemm_time(device, gemm_dtype(job), load.local_experts,
                                load.tokens_per_expert, shape.hidden_size,
                                max(ffn // t, 1), shape.gated)
    a2a = 0.0
    if e > 1:  # the busiest receiver's copies, capped by the capacity
        a2a = dispatch_time(system, tokens / t, shape.hidden_size, top_k,
                            lookup_dtype(job.dtype).nbytes, e, t,
                            node_limit=plan.moe_node_limit,
                            imbalance=load.tokens_busiest / load.tokens_per_device).seconds
    rerun = {"full": 1.0, "selective_layer": 1.0 / SELECTIVE_LAYER_EVERY}.get(
        plan.recompute, 0.0)
    return {"extra_f": share * grouped.forward_s - experts_f,
            "extra_b": share * grouped.backward_s * 1.0 - experts_b
            + rerun * (share * grouped.forward_s - experts_f),
            "a2a_f": share * 2 * a2a, "a2a_b": share * 2 * a2a * (1 + rerun),
            "all_to_all_s": a2a, "tokens_per_expert": load.tokens_per_expert,
            "dropped_fraction": load.dropped_fraction, "local_experts": load.local_experts,
            "moe_layer_share": share}


def gemm_dtype(job: Job) -> str:
    """The dtype the GEMMs of a training job run in: the low-precision recipe's, if any."""
    recipe = getattr(job, "gemm_recipe", None)
    if recipe is None:
        return job.dtype
    from perfmodel.workload.precision import gemm_recipe

    return str(gemm_recipe(recipe).forward)


def _context_comm(shape: ModelShape, plan: ParallelPlan, job: Job, system: SystemSpec,
                  tokens: int, times: StageTimes) -> tuple[float, float]:
    """Exposed (forward, backward) seconds per layer and micro-batch of context
    parallelism on this rank (``times`` already its share; ``tokens`` its s b / c).

    Ring (perfmodel.parallel.context.ring_attention): each of the c - 1 hops passes this
    tensor rank's K and V chunk (2 x tokens x its KV heads x head_dim) on while the
    attention of the chunk in hand runs (1/c of the rank's attention); the backward passes
    K, V and their gradients. Ulysses (``ulysses``): all-to-alls of Q, K, V and the output
    around attention, not overlapped, forward and backward alike."""
    t, c = plan.tensor_parallel, plan.context_parallel
    width = lookup_dtype(job.dtype).nbytes
    kv_heads = max(shape.num_key_value_heads / t, 1.0)
    if plan.context_kind == "ulysses":
        one = ulysses(system, c, t, tokens, shape.hidden_size // t,
                      int(kv_heads * shape.head_dim), width)
        return one, one
    if shape.is_mla:  # MLA rings the decompressed per-head K (nope + rope) and V
        per_token = shape.num_attention_heads / t * (
            (shape.qk_nope_head_dim or 0) + (shape.qk_rope_head_dim or 0)
            + (shape.v_head_dim or 0))
    else:
        per_token = 2 * kv_heads * shape.head_dim
    kv = tokens * per_token * width
    fwd = ring_attention(system, c, t, kv, times.attention_f / c)
    bwd = ring_attention(system, c, t, kv, times.attention_b / c, backward=True)
    return fwd.exposed_s, bwd.exposed_s


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
    sched = plan.schedule
    # time entries the simulator takes: one per chunk (ZB-V: 2 per device, the V), one per
    # stage for DualPipe (both directions run the same layers), else p x v virtual stages
    chunks = 1 if sched == "dualpipe" else 2 if sched == "zb-v" else v
    n = p * chunks
    per_chunk = st["layers"] / chunks
    split = sched in ZERO_BUBBLE  # the weight gradient runs as its own op (W)
    tw = [per_chunk * st["layer_w"] if split else 0.0] * n
    tf = [per_chunk * st["layer_f"] + (st["first_f"] if i == 0 else 0.0)
          + (st["last_f"] if i == n - 1 else 0.0) for i in range(n)]
    tb = [per_chunk * st["layer_b"] - tw[i] + (st["first_b"] if i == 0 else 0.0)
          + (st["last_b"] if i == n - 1 else 0.0) for i in range(n)]
    sim = simulate_step(system, p, plan.micro_batches(job.batch), tf, tb,
                        schedule=sched, virtual=v, activation_bytes=st["p2p_bytes"],
                        stride=plan.tensor_parallel * plan.context_parallel
                        * plan.data_parallel, tail_s=st["tail_s"], t_weight=tw)
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
    if graph.shape is None:  # a CNN or any graph without a transformer shape: DDP only
        if method not in ("analytic", "sim"):
            raise UnknownNameError(f"unknown method {method!r}", "use analytic or sim")
        r = ddp_step(graph, job, plan, system, device)
        return _prediction(graph, job, plan, system, device, r, "analytic")
    costs = layer_costs(graph, int(job.seq or 1), job.dtype, job.optimizer,
                        plan.attention_dropout, gemm_recipe=job.gemm_recipe)
    _check_step_plan(plan, job, costs, system)
    times = stage_times(costs, device, plan.tensor_parallel, plan.micro_batch_of(job.batch),
                        plan.sequence_parallel, plan.recompute, plan.zero_stage,
                        plan.data_parallel)
    r = step_from_costs(costs, times, plan, job, system, device)
    if method == "sim":
        r = _simulate(plan, job, system, r)
    elif method != "analytic":
        raise UnknownNameError(f"unknown method {method!r}", "use analytic or sim")
    return _prediction(graph, job, plan, system, device, r, method)


def mfu_conventions(shape: ModelShape | None, seq: int, tokens_per_s_per_device: float,
                    peak: float | None) -> dict[str, float]:
    """The MFU of a run under each framework's counting of the model FLOP
    (perfmodel.parallel.mfu.CONVENTIONS: Megatron-LM / NeMo, MaxText, PaLM as llm-foundry
    and torchtitan count it, 6N, Narayanan's eq. 3), against the same dense peak."""
    if shape is None or not peak:
        return {}
    return {c: mfu(shape, seq, tokens_per_s_per_device, peak, c) for c in CONVENTIONS}


def _prediction(graph: ModelGraph, job: Job, plan: ParallelPlan, system: SystemSpec,
                device: DeviceSpec, r: dict[str, Any], method: str) -> StepPrediction:
    return StepPrediction(
        model=graph.name, system=system.name, plan=plan, job=job, step_s=r["step_s"],
        tokens_per_s=r["tokens_per_s"], tflops_per_device=r["tflops_per_device"],
        mfu=r["mfu"], hfu=r["hfu"], bubble_fraction=r["bubble_fraction"],
        breakdown=r["breakdown"], memory=_memory(graph, plan, job, device),
        capacity_bytes=device.memory_capacity,
        assumptions=_assumptions(graph, plan, job, system, device, r), method=method,
        simulation=r.get("simulation", {}), pipeline_run=r.get("pipeline_run"),
        mfu_by_convention=mfu_conventions(graph.shape, int(job.seq or 1),
                                          r["tokens_per_s"] / plan.devices,
                                          device.peak("tensor", gemm_dtype(job))))


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
                       "a GPT layer: gated MLP, GQA, MoE, or no transformer)",
        **({"data_parallel": "PyTorch DDP: gradient all-reduce "
                             f"({r['ddp']['all_reduce_s'] * 1e3:.2f} ms) in 25 MiB buckets "
                             "under the backward, the last bucket exposed (perfmodel."
                             "parallel.ddp); tokens_per_s counts samples"} if "ddp" in r
           else {}),
        "mfu_peak": f"the dense {gemm_dtype(job)} tensor peak (the GEMMs' dtype)",
        "gemm_dtype": gemm_dtype(job) + (f" ({job.gemm_recipe} recipe: linears in "
                                         "low precision with their quantize passes; "
                                         "attention, norms and the optimizer in "
                                         f"{job.dtype})" if getattr(job, "gemm_recipe", None)
                                         else ""),
        "schedule": f"{plan.schedule}: flush = m x slowest stage + the schedule's bubble "
                    "(perfmodel.analytic.pipeline.pipeline_time; weight-gradient half of "
                    "the linears' backward deferred by zero-bubble schedules)",
        **({"moe": f"routed experts as grouped GEMMs at {r['moe']['tokens_per_expert']:.0f} "
                   f"tokens per expert on the busiest rank ({r['moe']['local_experts']} local "
                   f"experts, imbalance {plan.moe_imbalance:g}, dropped "
                   f"{r['moe']['dropped_fraction']:.1%}); dispatch + combine all-to-all "
                   f"{r['moe']['all_to_all_s'] * 1e3:.3f} ms each, 2 forward and 2 backward "
                   "per MoE layer, exposed" + (" beyond the other direction's compute "
                                              "(DualPipe)" if plan.schedule == "dualpipe"
                                              else "")}
           if r.get("moe") else {}),
        **({"context": f"{plan.context_kind} context parallelism over "
                       f"{plan.context_parallel} ranks: each holds s / c tokens; "
                       + ("KV chunks passed around the ring under attention, exposed "
                          "beyond it" if plan.context_kind == "ring" else
                          "all-to-alls of Q, K, V and the output, exposed")}
           if plan.context_parallel > 1 else {}),
        "not_modelled": "hidden dropout (fused with the residual add), kernel fusion, "
                        "data loading, straggler jitter",
    }
