"""Memory footprint per device: weights, gradients, optimizer states, activations, KV cache.

The one memory model of perfmodel: ``perfmodel memory``, the training-step model and its plan
search, and the compression table all read it. It takes a model (a ModelGraph: its
``shape`` record for transformers, its ops otherwise), a plan (how the run is split:
:class:`~perfmodel.workload.plan.ParallelPlan`) and a job (what is run:
:class:`~perfmodel.workload.job.Job`). Every component is a closed form, vectorized with
numpy over the numeric fields (batch, seq and the parallel sizes), so a 1,000-configuration
sweep is one call.

Sources of the formulas:

* Model states under mixed precision: fp16/bf16 weights (2 B) and gradients (2 B) plus
  fp32 master weights and Adam moments (12 B): "2 + 2 + K with K = 12", 16 bytes per
  parameter (Rajbhandari et al., "ZeRO: Memory optimizations toward training trillion
  parameter models", SC 2020, sec. 3.1). ZeRO-1 shards optimizer states over the data-
  parallel group, ZeRO-2 also gradients, ZeRO-3 (= FSDP full sharding) also weights.
  Weights are counted as stored: a compressed op (perfmodel.workload.compressed: its own
  weight dtype, a codebook, a sparse format) holds its stored bytes, except a sparse format
  the device cannot run natively, which is decompressed at load
  (perfmodel.analytic.compression.native_sparse).
* Activations saved for backward, per transformer layer, with tensor parallel size t
  (Korthikanti et al., "Reducing activation recomputation in large transformer models",
  MLSys 2023, sec. 4 and Table 2): sbh(10 + 24/t + 5as/(ht)) bytes without sequence
  parallelism, sbh/t (34 + 5as/h) with it; selective recomputation, and fused (flash)
  attention, which never stores the s x s scores, drop the 5as/h attention-score term; full
  recomputation keeps only each layer's input, 2sbh (/t with sequence parallelism). Which
  attention kernels run is read off the graph (``ModelGraph.attention_kernels``).
  torchtitan's modes: ``selective_layer`` fully recomputes every n-th block (n =
  SELECTIVE_LAYER_EVERY), ``selective_op`` saves only every other matrix multiply's and
  SDPA's outputs (torchtitan parallelize_llama.py, _apply_ac_to_transformer_block).
  The 24 = 8 (attention: Q, K, V, projection input) + 16 (MLP: GELU input and second GEMM
  input at 4h) is generalized here to GQA (K and V at kv_heads x head_dim) and to gated
  MLPs (four tensors of the intermediate size instead of two); for GPT-style layers it is
  exactly the paper's 24.
* Pipeline schedules: 1F1B keeps at most p micro-batches of activations in flight on the
  first stage (Narayanan et al., "Efficient large-scale language model training on GPU
  clusters using Megatron-LM", SC 2021, sec. 2.2.1); GPipe keeps all m (Huang et al. 2019);
  interleaved 1F1B 1 + (p - 1)/(p v) times the 1F1B figure (Korthikanti et al. 2023,
  sec. 4.2.3; perfmodel.analytic.pipeline.in_flight).
* KV cache: 2 x layers x kv_heads x head_dim x seq x batch x bytes per element for GQA /
  MQA; (kv_lora_rank + qk_rope_head_dim) x layers x seq x batch x bytes for multi-head latent
  attention (DeepSeek-V2, Liu et al. 2024, sec. 2.1.2); a sliding-window layer keeps at most
  its window, a chunked-attention layer (Llama 4) its chunk
  (perfmodel.graph.shape.ModelShape.kv_cache_groups).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from perfmodel.analytic.compression import native_sparse
from perfmodel.analytic.pipeline import in_flight, weight_versions
from perfmodel.errors import PlanError
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph, StageParams, stage_of
from perfmodel.graph.op import numel
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.build import build_workload
from perfmodel.workload.compressed import has_compression
from perfmodel.workload.job import Job
from perfmodel.workload.plan import SELECTIVE_LAYER_EVERY, ParallelPlan, check_plan
from perfmodel.workload.precision import (
    columnwise_copies,
    gemm_recipe,
    high_precision_suffixes,
    saved_input_bytes,
)

__all__ = ["footprint", "check_memory_plan", "layer_activation_bytes", "COMPONENTS",
           "OPTIMIZER_STATE_BYTES", "ARRAY_FIELDS"]

COMPONENTS = ("weights", "gradients", "optimizer", "activations", "kv_cache", "workspace",
              "overhead")
# Fields a sweep may pass as numpy arrays (footprint(..., batch=np.array([...])))
ARRAY_FIELDS = ("batch", "seq", "data_parallel", "tensor_parallel", "pipeline_parallel")

# fp32 optimizer state bytes per parameter, by optimizer and precision. Mixed precision
# adds the fp32 master copy (4 B); "half" trains in bf16/fp16 with states in that dtype.
OPTIMIZER_STATE_BYTES: dict[str, dict[str, float]] = {
    "sgd": {"mixed": 4, "fp32": 0, "half": 0},
    "sgd_momentum": {"mixed": 8, "fp32": 4, "half": 2},
    "adam": {"mixed": 12, "fp32": 8, "half": 4},
    "adamw": {"mixed": 12, "fp32": 8, "half": 4},
    # LAMB keeps Adam's state (You et al. 2019, Alg. 2: m and v; apex FusedLAMB fp32 master)
    "lamb": {"mixed": 12, "fp32": 8, "half": 4},
}


def check_memory_plan(graph: ModelGraph, plan: ParallelPlan, job: Job) -> None:
    """Reject a plan this model cannot run (one PlanError each): the plan's own rules
    against the model and the batch (perfmodel.workload.plan.check_plan), and what is
    modelled for transformers only."""
    check_plan(plan, batch=job.batch if job.train else None, shape=graph.shape,
               name=graph.name)
    if graph.shape is None:
        if plan.tensor_parallel > 1 or plan.pipeline_parallel > 1:
            raise PlanError(f"{graph.name}: tensor and pipeline parallelism are modelled for "
                            "transformers only", "use --tp 1 --pp 1 (data parallel works)")
        if plan.recompute != "none":
            raise PlanError(f"{graph.name}: activation recomputation is modelled for "
                            "transformers only (Korthikanti et al.)", "use --recompute none")
    if plan.context_parallel > 1 and not job.train:
        raise PlanError("context parallelism is modelled for training only (a served "
                        "sequence's KV cache is not split over ranks here)", "use --cp 1")


# --- what the footprint reads of a graph ------------------------------------------------

@dataclass(frozen=True)
class _Stored:
    """Weight bytes as held (first, one layer, last: StageParams in bytes), the KV-cache
    width, and for models without a shape record the activation bytes per sample (every
    forward output), the largest single op's inputs + outputs (both at the job's dtype, or
    an op's own where a compression set one), and the cached key / value elements per token
    (their cache views, e.g. of a structurally pruned transformer). The routed
    experts' weight bytes (``expert_weights``) let expert parallelism split them."""

    weights: StageParams
    total_weights: float
    kv_bytes: float
    act_bytes_per_sample: float = 0.0
    peak_bytes_per_sample: float = 0.0
    kv_elems_per_token: float = 0.0
    expert_weights: float = 0.0


def _kv_width(graph: ModelGraph, kv_dtype: str) -> float:
    """Bytes per cached key / value: the KV dtype the graph's cache ops carry (a KV
    quantization), else the job's."""
    for op in graph.ops:
        if op.attr("kv_dtype") and any(t.role == "kv" for t in op.outputs):
            return lookup_dtype(op.attr("kv_dtype")).nbytes
    return lookup_dtype(kv_dtype).nbytes


def _stored(graph: ModelGraph, job: Job, sparse: tuple[bool, bool]) -> _Stored:
    """What the footprint reads of the graph for this job's dtypes (worked out once per
    graph, dtypes and device sparse support: the capacity searches vary only sizes)."""
    master = job.train and job.precision == "fp32"
    return _stored_for(graph, job.dtype, job.weights, job.kv, master, sparse)


@lru_cache(maxsize=256)
def _stored_for(graph: ModelGraph, dtype: str, weights: str, kv_dtype: str, fp32: bool,
                sparse: tuple[bool, bool]) -> _Stored:
    width = 4.0 if fp32 else lookup_dtype(weights).nbytes
    kv = _kv_width(graph, kv_dtype)
    dense = StageParams(*(p * width for p in graph.stage_params))
    total = graph.params * width
    if any(has_compression(op) for op in graph.ops):
        dense, total = _compressed_weights(graph, dtype, weights, sparse)
    if graph.shape is not None:
        experts = sum(w.numel for op in graph.ops if op.attr("experts", 0) and not op.tied
                      for w in op.weights) * width
        return _Stored(dense, total, kv, expert_weights=float(experts))
    wl = build_workload(graph, batch=1, dtype=dtype).table
    works = wl["unit"] != "none"
    one = {"B": 1, "S": 1, "T": 1, "L": 1}
    views = sum(numel(tuple(one.get(d, d) if isinstance(d, str) else d for d in t.shape))
                for op in graph.ops if op.kind == OpKind.RESHAPE
                for t in op.outputs if t.role == "kv")
    return _Stored(dense, total, kv, float(wl.loc[works, "output_bytes"].sum()),
                   float((wl["input_bytes"] + wl["output_bytes"]).max()), float(views))


def _compressed_weights(graph: ModelGraph, dtype: str, weights: str,
                        sparse: tuple[bool, bool]) -> tuple[StageParams, float]:
    """Per-op stored bytes of a compressed graph, by pipeline stage: the stored format
    (perfmodel.workload.compressed ``storage_bytes``), or dense at the op's weight dtype
    where its sparse format does not run natively on the device."""
    wl = build_workload(graph, batch=1, dtype=dtype, weight_dtype=weights).table
    fwd = wl[~wl["phase"].isin(["backward", "optimizer"])]
    width = fwd["weight_dtype"].map(lambda d: lookup_dtype(d).nbytes).to_numpy(float)
    native = native_sparse(fwd, *sparse)
    held = np.where((fwd["sparsity"].to_numpy(float) > 0) & ~native,
                    fwd["params"].to_numpy(float) * width, fwd["storage_bytes"].to_numpy(float))
    stage = fwd["layer"].astype(str).map(stage_of).to_numpy(object)
    return (StageParams(*(float(held[stage == s].sum()) for s in ("first", "block", "last"))),
            float(held.sum()))


def _sparse_flags(device: DeviceSpec | None) -> tuple[bool, bool]:
    """(2:4, unstructured) sparse formats the device runs natively; none without a device
    (a sparse format is then counted decompressed, the conservative choice)."""
    if device is None:
        return (False, False)
    return (bool(device.sparse_2_4), bool(device.extras.get("sparse_unstructured", False)))


# --- components -------------------------------------------------------------------------

def _on_stage(shape: ModelShape | None, stage: StageParams, total: float, tp: np.ndarray,
              pp: np.ndarray, slots: bool = False) -> np.ndarray:
    """Of a per-stage quantity (params or bytes), what the fullest pipeline stage holds,
    divided over the tensor-parallel ranks; other models hold all of it. ``slots``: the
    embedding and the loss take a layer's slot on the first and last stages
    (``ParallelPlan.embedding_as_layers``)."""
    if shape is None:
        return np.full(np.broadcast(tp, pp).shape, total)
    if slots:
        per = np.ceil((shape.num_hidden_layers + 2) / pp)
        ends = np.where(pp == 1, (per - 2) * stage.layer + stage.first + stage.last,
                        (per - 1) * stage.layer + np.maximum(stage.first, stage.last))
        return np.maximum(np.where(pp == 1, 0.0, per * stage.layer), ends) / tp
    layers = np.ceil(shape.num_hidden_layers / pp)
    first = np.where(pp == 1, stage.first + stage.last, stage.first)
    last = np.where(pp == 1, 0.0, stage.last)
    return (layers * stage.layer + np.maximum(first, last)) / tp


def _model_states(graph: ModelGraph, plan: ParallelPlan, job: Job, stored: _Stored,
                  tp: np.ndarray, pp: np.ndarray, dp: np.ndarray) -> dict[str, np.ndarray]:
    zero = plan.zero_stage
    # ZeRO / FSDP shard over the data x context ranks (HSDP: over its shard group x c)
    shard = dp * plan.context_parallel if plan.shard_group is None \
        else np.asarray(plan.shard_group * plan.context_parallel)
    slots = plan.embedding_as_layers
    stage_w = _on_stage(graph.shape, stored.weights, stored.total_weights, tp, pp, slots)
    keep = np.ones_like(np.asarray(stage_w, float))
    if plan.expert_parallel > 1 and graph.shape is not None:
        # routed experts: E / e of them per rank. A ZeRO-sharded state is the same either
        # way: the experts' shard spans the d x c / e expert-data-parallel ranks, so a
        # device holds (dense + experts) / (d x c) of it (Megatron-Core expert_data_
        # parallel group); an unsharded one keeps dense + experts / e.
        layers = graph.shape.num_hidden_layers
        experts = stored.expert_weights * np.ceil(layers / pp) / layers / tp
        keep = 1.0 - experts / np.maximum(stage_w, 1.0) * (1.0 - 1.0 / plan.expert_parallel)

    def held(stage: Any, sharded: bool) -> Any:
        return stage / shard if sharded else stage * keep

    weights = held(stage_w, zero >= 3)
    if not job.train:
        none = np.zeros_like(weights)
        return {"weights": weights, "gradients": none, "optimizer": none}
    # PipeDream's weight stashing keeps p - s versions of the weights on stage s (the
    # first: p); DualPipe holds two stages per device (one per direction), so 2x the
    # parameters with their gradients and optimizer states (perfmodel.analytic.pipeline)
    copies = weight_versions(plan.schedule, pp)
    weights = weights * copies
    params = _on_stage(graph.shape, graph.stage_params, float(graph.params), tp, pp, slots) \
        * (copies if plan.schedule == "dualpipe" else 1)
    width = 4.0 if job.precision == "fp32" else lookup_dtype(job.weights).nbytes
    grads = held(params * width, zero >= 2)
    opt = held(params * OPTIMIZER_STATE_BYTES[job.optimizer][job.precision], zero >= 1)
    return {"weights": weights, "gradients": grads, "optimizer": opt}


def layer_activation_bytes(shape: ModelShape, s: Any, b: Any, t: Any, sp: bool,
                           recompute: str, act_bytes: float = 2.0,
                           attention: str = "unfused",
                           gemm_input_bytes: float | None = None, *,
                           dropout_masks: bool = True, fused_glu: bool = False) -> Any:
    """Bytes saved for backward by one transformer layer (Korthikanti et al. 2023, sec. 4,
    Table 2).

    s sequence length, b micro-batch, t tensor-parallel size; ``act_bytes`` is the width
    the paper assumes (2, fp16/bf16) and scales the sbh terms. ``attention="flash"``: the
    fused kernel keeps no s x s scores, so the 5as/h term is dropped (as selective
    recomputation drops it). ``gemm_input_bytes`` (a GEMM recipe's saved width per element,
    perfmodel.workload.precision.saved_input_bytes): the linears' inputs are saved
    quantized (``_quantized_inputs``); only recompute "none" and "selective" change.
    ``dropout_masks``: the two 1-byte hidden-dropout masks of the paper's 10 (none when the
    model trains without dropout); ``fused_glu``: a gated MLP saving its fc1 output and the
    fc2 input only (Megatron-Core's fused SwiGLU, 6 ffn) instead of the gate and up outputs,
    the activation and the product (8 ffn, eager).
    """
    h, a = shape.hidden_size, shape.num_attention_heads
    sbh = np.asarray(s, float) * b * h * (act_bytes / 2.0)
    if recompute == "full":
        return 2 * sbh / (t if sp else 1)
    if recompute == "selective_layer":  # every n-th layer full, the others none
        n = SELECTIVE_LAYER_EVERY
        return ((n - 1) * layer_activation_bytes(shape, s, b, t, sp, "none", act_bytes,
                                                 attention, dropout_masks=dropout_masks,
                                                 fused_glu=fused_glu)
                + layer_activation_bytes(shape, s, b, t, sp, "full", act_bytes)) / n
    kv = shape.kv_dim / h
    ffn = shape.intermediate_size / h
    if recompute == "selective_op":
        # torchtitan op-level SAC keeps the block input, the outputs of the 1st, 3rd, ...
        # matrix multiply (Q, V, MLP-up / gate, MLP-down) and of SDPA; all else is rerun.
        # 2 bytes each: 2 (input) + 2 (Q) + 2 kv (V) + 2 (SDPA out) + 2 ffn + 2 (down).
        inner = 2 + 2 * kv + 2 + 2 * ffn  # Q, V, SDPA out, MLP-up: head / column split
        outer = 2 + 2  # block input, MLP-down output (sequence-split only with sp)
        return sbh / t * (outer + inner) if sp else sbh * (outer + inner / t)
    mlp = (6 if fused_glu else 8) * ffn if shape.gated else 4 * ffn
    parallel = (4 + 4 * kv) + mlp  # 8 + 16 = 24 for GPT
    outer = 10 if dropout_masks else 8  # norms 4, QKV and fc1 inputs 4, dropout masks 2
    keeps_scores = recompute == "none" and attention == "unfused"
    score = 5 * a * np.asarray(s, float) / h if keeps_scores else 0.0
    d_out, d_par = (0.0, 0.0) if gemm_input_bytes is None else \
        _quantized_inputs(gemm_input_bytes * 2.0 / act_bytes, ffn, attention)
    if sp:
        return sbh / t * (outer + d_out + parallel + d_par + score)
    return sbh * (outer + d_out + (parallel + d_par + score) / t)


def _quantized_inputs(q: float, ffn: float, attention: str) -> tuple[float, float]:
    """Change of Korthikanti's terms (2 = one h-wide tensor at the activation width) when
    the linears save their inputs quantized, q in those units (TE linear.py keeps the
    columnwise quantized input and not the high-precision one; TE docs, "Memory usage":
    "1 MB (input in FP8 saved for backward)"). The QKV and MLP-up inputs (in the 10) and
    the MLP-down input (2 ffn, in the parallel part) are replaced; the attention output
    fed to the output projection is replaced with unfused attention, and added with flash
    attention, whose backward keeps its output O anyway (TE docs: a quantized copy "may
    lead to increased memory usage, if the high precision tensor also needs to be saved").
    """
    proj = q if attention == "flash" else q - 2
    return 2 * (q - 2), ffn * (q - 2) + proj


def _activations(graph: ModelGraph, plan: ParallelPlan, job: Job, stored: _Stored,
                 batch: np.ndarray, seq: np.ndarray, tp: np.ndarray, pp: np.ndarray,
                 dp: np.ndarray) -> np.ndarray:
    act_b = lookup_dtype(job.dtype).nbytes
    if not job.train:
        return np.zeros(np.broadcast(batch, seq, tp, pp).shape)
    mb = np.asarray(plan.micro_batch) if plan.micro_batch else np.maximum(batch // dp, 1)
    m = batch // (dp * mb)  # micro-batches per pipeline and step
    held = in_flight(pp, m, plan.schedule, plan.virtual_stages)
    shape = graph.shape
    if shape is None:
        return stored.act_bytes_per_sample * mb * held
    # the first stage's layers (whose in-flight micro-batches are the most): with the
    # embedding in a slot, one fewer
    layers = np.ceil(shape.num_hidden_layers / pp) if not plan.embedding_as_layers else \
        np.ceil((shape.num_hidden_layers + 2) / pp) - np.where(pp == 1, 2, 1)
    # context parallelism: each rank keeps the activations of its s / c tokens
    saved = {"dropout_masks": plan.hidden_dropout, "fused_glu": plan.fused_glu}
    per_layer = layer_activation_bytes(shape, seq, mb, tp, plan.sequence_parallel,
                                       plan.recompute, act_b, graph.attention_kernels,
                                       **saved) / plan.context_parallel
    if job.gemm_recipe is not None:  # quantized GEMM inputs, but in the high-precision share
        f = gemm_recipe(job.gemm_recipe).high_precision_share
        low = layer_activation_bytes(shape, seq, mb, tp, plan.sequence_parallel,
                                     plan.recompute, act_b, graph.attention_kernels,
                                     saved_input_bytes(job.gemm_recipe), **saved)
        per_layer = f * per_layer + (1 - f) * low / plan.context_parallel
    # fp32 logits for the loss on the last stage (4 bytes x s x b x vocab / t).
    logits = np.where(pp == 1, 4.0 * seq * mb * shape.vocab_size / tp, 0.0) \
        / plan.context_parallel
    return per_layer * layers * held + logits


def _kv_cache(shape: ModelShape | None, job: Job, stored: _Stored, batch: np.ndarray,
              seq: np.ndarray, tp: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """Per kind of layer (ModelShape.kv_cache_groups): layers x elements per token x the
    tokens kept (seq, capped at a sliding window or an attention chunk) x batch x bytes.
    GQA keys and values shard by TP over KV heads (replicated once tp exceeds them); MLA's
    latent is replicated on every TP rank; PP splits the layers (ceil(layers / pp) of them,
    in the model's proportions). A model without a shape record holds its cache views'
    elements per token (no sharding: tp = pp = 1 for it)."""
    if job.train:
        return np.zeros(np.broadcast(batch, seq, tp, pp).shape)
    if shape is None:
        return stored.kv_elems_per_token * seq * batch * stored.kv_bytes
    groups = shape.kv_cache_groups()
    if not groups:
        return np.zeros(np.broadcast(batch, seq, tp, pp).shape)
    total = np.zeros(np.broadcast(batch, seq, tp, pp).shape)
    for g in groups:
        kept = seq if g.span is None else np.minimum(seq, g.span)
        split = 1.0 if g.heads is None else np.minimum(tp, g.heads)
        total = total + g.layers * g.elements / split * kept
    stage = np.ceil(shape.num_hidden_layers / pp) / shape.num_hidden_layers
    return total * stage * batch * stored.kv_bytes


def _workspace(shape: ModelShape | None, job: Job, stored: _Stored, batch: np.ndarray,
               seq: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """Transient activations: the largest op's inputs + outputs. Transformers: the MLP's
    working set, tokens x (2 hidden + 2 ffn / t) elements, plus the last token's logits
    (batch x vocab / t) at inference; other models: their largest op, per sample."""
    if shape is None:
        return stored.peak_bytes_per_sample * batch
    act_b = lookup_dtype(job.dtype).nbytes
    tokens = seq * batch if job.phase != "decode" else batch
    mlp = tokens * (2 * shape.hidden_size + 2 * shape.intermediate_size / tp)
    logits = 0.0 if job.train else batch * shape.vocab_size / tp
    return (mlp + logits) * act_b


# --- low-precision GEMM recipes (perfmodel.workload.precision) --------------------------

@lru_cache(maxsize=64)
def _block_linear_params(graph: ModelGraph) -> float:
    """Parameters of the linears a GEMM recipe quantizes, per transformer layer: those in
    the blocks, less the MoE routers (the LM head and embeddings stay high-precision)."""
    suffixes = high_precision_suffixes()
    total = sum(w.numel for op in graph.ops if op.kind == OpKind.LINEAR and not op.tied
                and stage_of(op.layer) in ("block", "other") and not op.name.endswith(suffixes)
                for w in op.weights)
    return float(total) / max(graph.shape.num_hidden_layers if graph.shape else 1, 1)


def _quantized_weights(graph: ModelGraph, plan: ParallelPlan, job: Job,
                       device: DeviceSpec | None, tp: np.ndarray, pp: np.ndarray,
                       dp: np.ndarray) -> np.ndarray | float:
    """The low-precision copy of the block linears' weights a recipe keeps beside the
    training-dtype weights (TE quantizes the weight before each GEMM and caches it over the
    micro-batches; TE docs "Memory usage": "2 MB (weight) + 1 MB (weight in FP8)"): the
    rowwise copy plus the columnwise one where the device needs its own (Hopper transposes;
    no device: counted), at the width plus the block scales, on the blocks outside the
    recipe's high-precision share. Split like the weights: TP, PP and ZeRO-3 (cast on the
    shard, as FSDP2's float8 all-gather and Megatron's fp8 parameter gather do)."""
    if job.gemm_recipe is None or not job.train:
        return 0.0
    r = gemm_recipe(job.gemm_recipe)
    arch = device.architecture if device is not None else None
    per_param = columnwise_copies(r, "weight", arch) * r.element_bytes("weight")
    layers = np.ceil(graph.shape.num_hidden_layers / pp) if graph.shape else 1.0
    held = layers * _block_linear_params(graph) * per_param * (1 - r.high_precision_share)
    return held / tp / (dp if plan.zero_stage >= 3 else 1)


def footprint(graph: ModelGraph, plan: ParallelPlan, job: Job, *,
              device: DeviceSpec | None = None, workspace_bytes: float = 0.0,
              overhead_bytes: float = 0.0, **arrays: Any) -> dict[str, np.ndarray]:
    """Bytes per device, by component (COMPONENTS) plus ``total``.

    ``job.batch`` is the run's batch over all devices (training: the global batch, split
    into micro-batches by the plan; inference: sequences served together, batch / dp per
    replica). ``workspace_bytes`` (a library's workspace) and ``overhead_bytes`` (CUDA
    context, allocator) are added as given. ``device`` decides whether a sparse weight
    format is held compressed (only for compressed graphs). The fields of ARRAY_FIELDS can
    be numpy arrays for a vectorized sweep; the results broadcast over them.

    >>> from perfmodel.graph import GraphBuilder
    >>> b = GraphBuilder("mlp")
    >>> _ = b.linear(b.input("x", (1000,)), 1000)     # 1,001,000 parameters
    >>> fp = footprint(b.build(), ParallelPlan(), Job(phase="train", dtype="bf16"))
    >>> float(fp["weights"] + fp["gradients"] + fp["optimizer"]) / 1_001_000   # 2 + 2 + 12
    16.0
    """
    unknown = set(arrays) - set(ARRAY_FIELDS)
    if unknown:
        raise PlanError(f"footprint cannot sweep {sorted(unknown)}",
                        f"sweep one of {', '.join(ARRAY_FIELDS)}")
    job = job.with_seq(graph.default_seq)
    values = {"batch": job.batch, "seq": job.seq, "data_parallel": plan.data_parallel,
              "tensor_parallel": plan.tensor_parallel,
              "pipeline_parallel": plan.pipeline_parallel}
    batch, seq, dp, tp, pp = (np.asarray(arrays.get(k, values[k])) for k in ARRAY_FIELDS)
    stored = _stored(graph, job, _sparse_flags(device))
    per_replica = batch if job.train else np.ceil(batch / dp)
    states = _model_states(graph, plan, job, stored, tp, pp, dp)
    states["weights"] = states["weights"] + _quantized_weights(graph, plan, job, device, tp,
                                                               pp, dp)
    out = {
        **states,
        "activations": _activations(graph, plan, job, stored, batch, seq, tp, pp, dp),
        "kv_cache": _kv_cache(graph.shape, job, stored, per_replica, seq, tp, pp),
        "workspace": _workspace(graph.shape, job, stored, per_replica if not job.train
                                else np.asarray(plan.micro_batch_of(job.batch)), seq, tp)
        + workspace_bytes,
        "overhead": np.asarray(float(overhead_bytes)),
    }
    shape = np.broadcast(*out.values()).shape
    out = {k: np.broadcast_to(np.asarray(v, float), shape) for k, v in out.items()}
    out["total"] = np.sum([out[k] for k in COMPONENTS], axis=0)
    return out
