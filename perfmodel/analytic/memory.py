"""Memory footprint per device: weights, gradients, optimizer states, activations, KV cache.

Every component is a closed form, vectorized with numpy over the numeric plan fields
(batch, seq, dp, tp, pp, ...), so a 1,000-configuration sweep is one call.

Sources of the formulas:

* Model states under mixed precision: fp16/bf16 weights (2 B) and gradients (2 B) plus
  fp32 master weights and Adam moments (12 B): "2 + 2 + K with K = 12", 16 bytes per
  parameter (Rajbhandari et al., "ZeRO: Memory optimizations toward training trillion
  parameter models", SC 2020, sec. 3.1). ZeRO-1 shards optimizer states over the data-
  parallel group, ZeRO-2 also gradients, ZeRO-3 (= FSDP full sharding) also weights.
* Activations saved for backward, per transformer layer, with tensor parallel size t
  (Korthikanti et al., "Reducing activation recomputation in large transformer models",
  MLSys 2023, sec. 4 and Table 2): sbh(10 + 24/t + 5as/(ht)) bytes without sequence parallelism,
  sbh/t (34 + 5as/h) with it; selective recomputation drops the 5as/h attention-score term;
  full recomputation keeps only each layer's input, 2sbh (/t with sequence parallelism).
  torchtitan's modes: ``selective_layer`` fully recomputes every n-th block (n =
  SELECTIVE_LAYER_EVERY), ``selective_op`` saves only every other matrix multiply's and
  SDPA's outputs (torchtitan parallelize_llama.py, _apply_ac_to_transformer_block).
  The 24 = 8 (attention: Q, K, V, projection input) + 16 (MLP: GELU input and second GEMM
  input at 4h) is generalized here to GQA (K and V at kv_heads x head_dim) and to gated
  MLPs (four tensors of the intermediate size instead of two); for GPT-style layers it is
  exactly the paper's 24.
* Pipeline schedules: 1F1B keeps at most p micro-batches of activations in flight on the
  first stage (Narayanan et al., "Efficient large-scale language model training on GPU
  clusters using Megatron-LM", SC 2021, sec. 2.2.1); GPipe keeps all m (Huang et al. 2019).
* KV cache: 2 x layers x kv_heads x head_dim x seq x batch x bytes per element.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from perfmodel.errors import PlanError, ShapeError, UnknownNameError, did_you_mean
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.build import build_workload

__all__ = ["MemoryModel", "MemoryPlan", "memory_model", "footprint", "COMPONENTS",
           "SELECTIVE_LAYER_EVERY",
           "OPTIMIZER_STATE_BYTES", "RECOMPUTE", "SCHEDULES", "check_plan"]

COMPONENTS = ("weights", "gradients", "optimizer", "activations", "kv_cache", "workspace",
              "overhead")
RECOMPUTE = ("none", "selective", "full", "selective_op", "selective_layer")
# torchtitan's "selective layer" AC checkpoints every n-th transformer block; n is its
# --activation_checkpoint.selective_ac_option, default "2" (torchtitan/config_manager.py,
# "2 = checkpoint every other layer"; parallelisms/parallelize_llama.py, apply_ac).
SELECTIVE_LAYER_EVERY = 2
SCHEDULES = ("1f1b", "gpipe")
PRECISIONS = ("mixed", "fp32", "half")

# fp32 optimizer state bytes per parameter, by optimizer and precision. Mixed precision
# adds the fp32 master copy (4 B); "half" trains in bf16/fp16 with states in that dtype.
OPTIMIZER_STATE_BYTES: dict[str, dict[str, float]] = {
    "sgd": {"mixed": 4, "fp32": 0, "half": 0},
    "sgd_momentum": {"mixed": 8, "fp32": 4, "half": 2},
    "adam": {"mixed": 12, "fp32": 8, "half": 4},
    "adamw": {"mixed": 12, "fp32": 8, "half": 4},
}


@dataclass(frozen=True)
class MemoryModel:
    """What the footprint needs to know of a model, extracted once from its graph.

    Parameter counts split by where pipeline parallelism puts them: ``first_params``
    (embeddings, on the first stage), ``layer_params`` (one transformer layer),
    ``last_params`` (final norm, LM head, pooler, on the last stage). Non-transformer
    models keep everything in ``first_params`` and activations per sample from their
    workload (``act_bytes_per_sample``: every forward output, at 1 byte per element, so
    the caller scales by the dtype width).
    """

    name: str
    params: float
    is_transformer: bool
    num_layers: int = 0
    hidden: int = 0
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    vocab: int = 0
    ffn: int = 0
    gated: bool = False
    first_params: float = 0.0
    layer_params: float = 0.0
    last_params: float = 0.0
    act_elems_per_sample: float = 0.0
    peak_elems_per_sample: float = 0.0


@dataclass(frozen=True)
class MemoryPlan:
    """How the model runs: phase, sizes, dtypes, parallel plan, training options.

    ``batch`` is the global batch (sequences or images); in training it is split into
    micro-batches of ``micro_batch`` over ``dp`` replicas, m = batch / (dp x micro_batch)
    per pipeline. Sizes in bytes where they are sizes (workspace, overhead).
    """

    phase: str = "inference"
    batch: int = 1
    seq: int = 1
    dtype: str = "fp16"
    kv_dtype: str | None = None
    weight_dtype: str | None = None
    micro_batch: int | None = None
    optimizer: str = "adam"
    precision: str = "mixed"
    zero: int = 0
    dp: int = 1
    tp: int = 1
    pp: int = 1
    sequence_parallel: bool = False
    recompute: str = "none"
    schedule: str = "1f1b"
    workspace_bytes: float = 0.0
    overhead_bytes: float = 0.0

    def with_(self, **changes: Any) -> MemoryPlan:
        return replace(self, **changes)


def memory_model(graph: ModelGraph) -> MemoryModel:
    """Extract the MemoryModel of a graph (transformer configs, or a generic workload)."""
    meta = graph.meta
    cfg = meta.get("config")
    if cfg and meta.get("num_layers"):
        return _transformer_model(graph, cfg)
    wl = build_workload(graph, batch=1, seq=meta.get("default_seq"), dtype="int8")
    works = wl["unit"] != "none"
    return MemoryModel(
        name=graph.name, params=float(graph.params), is_transformer=False,
        first_params=float(graph.params),
        act_elems_per_sample=float(wl.loc[works, "output_bytes"].sum()),
        peak_elems_per_sample=float((wl["input_bytes"] + wl["output_bytes"]).max()))


def _transformer_model(graph: ModelGraph, cfg: Mapping[str, Any]) -> MemoryModel:
    meta = graph.meta
    layers = int(meta["num_layers"])
    first = last = 0.0
    per_layer = 0.0
    for op in graph.ops:
        if op.tied:
            continue
        p = float(sum(w.numel for w in op.weights))
        if op.layer.startswith("layers.0.") or op.layer == "layers.0":
            per_layer += p
        elif op.layer.startswith("layers."):
            continue
        elif op.kind == OpKind.EMBEDDING or op.layer.startswith("embeddings"):
            first += p
        else:
            last += p
    return MemoryModel(
        name=graph.name, params=float(graph.params), is_transformer=True, num_layers=layers,
        hidden=int(meta["hidden_size"]), heads=int(meta["num_heads"]),
        kv_heads=int(meta["num_kv_heads"]), head_dim=int(meta["head_dim"]),
        vocab=int(meta["vocab_size"]), ffn=int(cfg.get("intermediate_size", 0)),
        gated=cfg.get("mlp") == "gated", first_params=first, layer_params=per_layer,
        last_params=last)


def check_plan(mm: MemoryModel, plan: MemoryPlan) -> None:
    """Reject impossible plans with one clear error each (PlanError / ShapeError)."""
    for name in ("batch", "seq", "dp", "tp", "pp"):
        v = getattr(plan, name)
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
            raise ShapeError(f"{name} must be a positive integer, got {v!r}",
                             f"pass --{name} 1 or more")
    if plan.micro_batch is not None and plan.micro_batch <= 0:
        raise ShapeError(f"micro_batch must be positive, got {plan.micro_batch}",
                         "pass --micro-batch 1 or more")
    for name, value, choices in (("optimizer", plan.optimizer, OPTIMIZER_STATE_BYTES),
                                 ("precision", plan.precision, PRECISIONS),
                                 ("recompute", plan.recompute, RECOMPUTE),
                                 ("schedule", plan.schedule, SCHEDULES),
                                 ("phase", plan.phase, ("inference", "prefill", "decode",
                                                        "train"))):
        if value not in choices:
            raise UnknownNameError(f"unknown {name} {value!r}", did_you_mean(value, choices))
    if plan.zero not in (0, 1, 2, 3):
        raise PlanError(f"ZeRO stage must be 0, 1, 2 or 3, got {plan.zero}",
                        "use --zero 0..3 (3 = FSDP full sharding)")
    if plan.phase == "train":
        mb = plan.micro_batch or plan.batch // plan.dp
        if plan.batch % (plan.dp * mb):
            raise PlanError(f"global batch {plan.batch} is not a multiple of dp x micro-batch "
                            f"= {plan.dp} x {mb}", "choose batch = dp x micro-batch x m")
    if not mm.is_transformer:
        if plan.tp > 1 or plan.pp > 1:
            raise PlanError(f"{mm.name}: tensor and pipeline parallelism are modelled for "
                            "transformers only", "use --tp 1 --pp 1 (data parallel works)")
        if plan.recompute != "none":
            raise PlanError(f"{mm.name}: activation recomputation is modelled for "
                            "transformers only (Korthikanti et al.)", "use --recompute none")
        return
    if mm.heads % plan.tp or mm.kv_heads % min(plan.tp, mm.kv_heads):
        raise PlanError(f"tensor parallel size {plan.tp} does not divide {mm.name}'s "
                        f"{mm.heads} attention heads ({mm.kv_heads} KV heads)",
                        "choose tp dividing the head count")
    if plan.pp > mm.num_layers:
        raise PlanError(f"pipeline size {plan.pp} exceeds {mm.name}'s {mm.num_layers} layers",
                        f"use --pp {mm.num_layers} or less")


def _nbytes(name: str | None, default: str) -> float:
    return lookup_dtype(name or default).nbytes


def _model_states(plan: MemoryPlan, stage_params: np.ndarray,
                  dp: np.ndarray) -> dict[str, np.ndarray]:
    train = plan.phase == "train"
    if train:
        w_b = 4.0 if plan.precision == "fp32" else _nbytes(plan.weight_dtype, plan.dtype)
    else:
        w_b = _nbytes(plan.weight_dtype, plan.dtype)
    weights = stage_params * w_b / (dp if plan.zero >= 3 else 1)
    if not train:
        zero = np.zeros_like(weights)
        return {"weights": weights, "gradients": zero, "optimizer": zero}
    grads = stage_params * w_b / (dp if plan.zero >= 2 else 1)
    opt = stage_params * OPTIMIZER_STATE_BYTES[plan.optimizer][plan.precision] \
        / (dp if plan.zero >= 1 else 1)
    return {"weights": weights, "gradients": grads, "optimizer": opt}


def _stage_params(mm: MemoryModel, tp: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """Parameters on the fullest pipeline stage, divided over tensor-parallel ranks."""
    if not mm.is_transformer:
        return np.full(np.broadcast(tp, pp).shape, mm.params)
    layers = np.ceil(mm.num_layers / pp)
    first = np.where(pp == 1, mm.first_params + mm.last_params, mm.first_params)
    last = np.where(pp == 1, 0.0, mm.last_params)
    return (layers * mm.layer_params + np.maximum(first, last)) / tp


def layer_activation_bytes(mm: MemoryModel, s: Any, b: Any, t: Any, sp: bool,
                           recompute: str, act_bytes: float = 2.0) -> Any:
    """Bytes saved for backward by one transformer layer (Korthikanti et al. 2023, sec. 4, Table 2).

    s sequence length, b micro-batch, t tensor-parallel size; ``act_bytes`` is the width
    the paper assumes (2, fp16/bf16) and scales the sbh terms.
    """
    h, a = mm.hidden, mm.heads
    sbh = np.asarray(s, float) * b * h * (act_bytes / 2.0)
    if recompute == "full":
        return 2 * sbh / (t if sp else 1)
    if recompute == "selective_layer":  # every n-th layer full, the others none
        n = SELECTIVE_LAYER_EVERY
        return ((n - 1) * layer_activation_bytes(mm, s, b, t, sp, "none", act_bytes)
                + layer_activation_bytes(mm, s, b, t, sp, "full", act_bytes)) / n
    kv = mm.kv_heads * mm.head_dim / h
    ffn = (mm.ffn or 4 * h) / h
    if recompute == "selective_op":
        # torchtitan op-level SAC keeps the block input, the outputs of the 1st, 3rd, ...
        # matrix multiply (Q, V, MLP-up / gate, MLP-down) and of SDPA; all else is rerun.
        # 2 bytes each: 2 (input) + 2 (Q) + 2 kv (V) + 2 (SDPA out) + 2 ffn + 2 (down).
        inner = 2 + 2 * kv + 2 + 2 * ffn  # Q, V, SDPA out, MLP-up: head / column split
        outer = 2 + 2  # block input, MLP-down output (sequence-split only with sp)
        return sbh / t * (outer + inner) if sp else sbh * (outer + inner / t)
    parallel = (4 + 4 * kv) + (8 * ffn if mm.gated else 4 * ffn)  # 8 + 16 = 24 for GPT
    score = 0.0 if recompute == "selective" else 5 * a * np.asarray(s, float) / h
    if sp:
        return sbh / t * (10 + parallel + score)
    return sbh * (10 + (parallel + score) / t)


def _activations(mm: MemoryModel, plan: MemoryPlan, batch: np.ndarray, seq: np.ndarray,
                 tp: np.ndarray, pp: np.ndarray, dp: np.ndarray) -> np.ndarray:
    act_b = _nbytes(None, plan.dtype)
    if plan.phase != "train":
        return np.zeros(np.broadcast(batch, seq, tp, pp).shape)
    mb = np.asarray(plan.micro_batch or 0) if plan.micro_batch else batch // dp
    m = batch // (dp * mb)  # micro-batches per pipeline and step
    in_flight = np.minimum(pp, m) if plan.schedule == "1f1b" else m
    if not mm.is_transformer:
        return mm.act_elems_per_sample * act_b * mb * in_flight
    layers = np.ceil(mm.num_layers / pp)
    per_layer = layer_activation_bytes(mm, seq, mb, tp, plan.sequence_parallel,
                                       plan.recompute, act_b)
    # fp32 logits for the loss on the last stage (4 bytes x s x b x vocab / t).
    logits = np.where(pp == 1, 4.0 * seq * mb * mm.vocab / tp, 0.0)
    return per_layer * layers * in_flight + logits


def _kv_cache(mm: MemoryModel, plan: MemoryPlan, batch: np.ndarray, seq: np.ndarray,
              tp: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """2 x layers x kv_heads x head_dim x seq x batch x bytes, sharded by TP (over KV heads,
    replicated once tp exceeds them) and PP (over layers)."""
    if plan.phase not in ("decode", "prefill", "inference") or not mm.is_transformer \
            or not mm.num_layers or mm.heads == 0:
        return np.zeros(np.broadcast(batch, seq, tp, pp).shape)
    kv_b = _nbytes(plan.kv_dtype, plan.dtype)
    layers = np.ceil(mm.num_layers / pp)
    heads = mm.kv_heads / np.minimum(tp, mm.kv_heads)
    return 2.0 * layers * heads * mm.head_dim * seq * batch * kv_b


def _workspace(mm: MemoryModel, plan: MemoryPlan, batch: np.ndarray, seq: np.ndarray,
               tp: np.ndarray) -> np.ndarray:
    """Transient activations: the largest op's inputs + outputs, plus the user's library
    workspace. Transformers: the MLP's working set, tokens x (2 hidden + 2 ffn / t)
    elements, plus the last token's logits (batch x vocab / t) at inference; generic
    models: their largest op, per sample."""
    act_b = _nbytes(None, plan.dtype)
    if mm.is_transformer:
        tokens = seq * batch if plan.phase != "decode" else batch
        mlp = tokens * (2 * mm.hidden + 2 * (mm.ffn or 4 * mm.hidden) / tp)
        logits = 0.0 if plan.phase == "train" else batch * mm.vocab / tp
        peak = (mlp + logits) * act_b
    else:
        peak = mm.peak_elems_per_sample * act_b * batch
    return peak + plan.workspace_bytes


def footprint(mm: MemoryModel, plan: MemoryPlan, **arrays: Any) -> dict[str, np.ndarray]:
    """Bytes per device, by component (COMPONENTS) plus ``total``.

    Numeric plan fields can be overridden by numpy arrays (batch, seq, dp, tp, pp) for a
    vectorized sweep; the result arrays broadcast over them.
    """
    get = {k: np.asarray(arrays.get(k, getattr(plan, k))) for k in
           ("batch", "seq", "dp", "tp", "pp")}
    batch, seq, dp, tp, pp = (get[k] for k in ("batch", "seq", "dp", "tp", "pp"))
    per_replica = batch if plan.phase == "train" else np.ceil(batch / dp)
    states = _model_states(plan, _stage_params(mm, tp, pp), dp)
    out = {
        **states,
        "activations": _activations(mm, plan, batch, seq, tp, pp, dp),
        "kv_cache": _kv_cache(mm, plan, per_replica, seq, tp, pp),
        "workspace": _workspace(mm, plan, per_replica if plan.phase != "train"
                                else np.asarray(plan.micro_batch or batch // dp), seq, tp),
        "overhead": np.asarray(float(plan.overhead_bytes)),
    }
    shape = np.broadcast(*out.values()).shape
    out = {k: np.broadcast_to(np.asarray(v, float), shape) for k, v in out.items()}
    out["total"] = np.sum([out[k] for k in COMPONENTS], axis=0)
    return out
