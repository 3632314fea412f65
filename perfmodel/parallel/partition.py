"""Partition a transformer's training workload over tensor, pipeline and data parallelism.

What one device computes and communicates, per micro-batch (Megatron-LM layout,
Shoeybi et al. 2019, sec. 3; Narayanan et al. SC 2021, sec. 2-3; Korthikanti et al. 2023):

* Tensor parallelism t: the QKV and MLP-up GEMMs are split by columns, the attention
  output and MLP-down GEMMs by rows, attention by heads: every tensor-unit row of a layer
  (GEMMs, attention) does 1/t of the work. Layer norms, residual adds and activations are
  replicated on the t ranks, unless sequence parallelism splits them along the sequence
  (1/t). Communication: 2 all-reduces of s b h activations per layer forward and 2
  backward; with sequence parallelism each all-reduce becomes a reduce-scatter plus an
  all-gather of the same s b h buffer (same ring volume). Not overlapped with compute
  (Megatron-LM 2022). The LM head is vocabulary-parallel (1/t).
* Recomputation: ``full`` reruns each layer's forward (and its 2 all-reduces) in the
  backward; ``selective`` reruns the attention core (Korthikanti et al. 2023, sec. 5).
* Pipeline parallelism p, v chunks: ``layer_assignment`` (analytic.pipeline); the
  embedding sits on the first stage, the final norm and LM head on the last; stages pass
  s b h activations (/t with sequence parallelism: Megatron's scatter-gather optimisation,
  Narayanan et al. 2021, sec. 4.1) per micro-batch and chunk boundary.
* Data parallelism d: gradients of the device's parameters (params per stage / t), at the
  training dtype width, all-reduced (ZeRO 0-1) or reduce-scattered (ZeRO 2; ZeRO 3 / FSDP
  also all-gathers weights before forward and backward).

Costs are the workload's rows at batch 1 (``build_workload(phase="train")``), scaled by the
micro-batch (FLOP and activation bytes are linear in the batch at fixed sequence length;
weight bytes are not) and priced by the roofline on the device, with its efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.roofline import roofline
from perfmodel.errors import PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.build import build_workload
from perfmodel.zoo.transformer import TransformerConfig, build_transformer

__all__ = ["TransformerDims", "LayerCosts", "StageTimes", "layer_costs", "stage_times",
           "dims_of", "model_flops", "tp_comm_bytes", "p2p_bytes", "grad_bytes"]

ATTENTION_CORE = ("attention", "attn_score", "softmax", "attn_context")


@dataclass(frozen=True)
class TransformerDims:
    """What the step model needs of a transformer: layers l, hidden h, heads a, vocabulary V,
    parameters of one layer, of the first stage extras (embeddings) and last (head, norm)."""

    name: str
    layers: int
    hidden: int
    heads: int
    vocab: int
    layer_params: float
    first_params: float
    last_params: float
    gpt_like: bool = True  # plain 4h MLP and multi-head attention: eq. 3 of Narayanan applies

    @property
    def params(self) -> float:
        return self.layers * self.layer_params + self.first_params + self.last_params


@dataclass(frozen=True)
class LayerCosts:
    """Workload rows at batch 1 of one layer (``layer``), the first-stage extras (``first``)
    and the last-stage extras (``last``); phases forward / backward / optimizer."""

    dims: TransformerDims
    seq: int
    dtype: str
    rows: pd.DataFrame  # with a "group" column: first | layer | last


def dims_of(graph: ModelGraph) -> TransformerDims:
    """The dims of a zoo / config transformer graph (PlanError for other models)."""
    meta = graph.meta
    if not meta.get("config") or not meta.get("num_layers"):
        raise PlanError(f"{graph.name}: 3D parallelism is modelled for transformers only",
                        "pick a transformer (perfmodel models) or a config.json")
    first = last = layer = 0.0
    for op in graph.ops:
        if op.tied:
            continue
        p = float(sum(w.numel for w in op.weights))
        if op.layer == "layers.0" or op.layer.startswith("layers.0."):
            layer += p
        elif op.layer.startswith("layers."):
            continue
        elif op.layer.startswith("embeddings"):
            first += p
        else:
            last += p
    cfg = meta["config"]
    return TransformerDims(graph.name, int(meta["num_layers"]), int(meta["hidden_size"]),
                           int(meta["num_heads"]), int(cfg.get("vocab_size", 0)), layer,
                           first, last,
                           gpt_like=cfg.get("mlp") != "gated" and int(
                               meta.get("num_kv_heads") or meta["num_heads"]) == int(
                               meta["num_heads"]) and not cfg.get("num_local_experts"))


@lru_cache(maxsize=32)
def _cached_rows(config_key: tuple[tuple[str, Any], ...], seq: int, dtype: str,
                 optimizer: str) -> pd.DataFrame:
    cfg = TransformerConfig.from_dict({**dict(config_key), "num_hidden_layers": 1})
    wl = build_workload(build_transformer(cfg), batch=1, seq=seq, dtype=dtype, phase="train",
                        optimizer=optimizer)
    layer = wl["layer"].astype(str)
    group = np.where(layer.str.startswith("layers."), "layer",
                     np.where(layer.str.startswith("embeddings"), "first", "last"))
    out = wl.assign(group=group)
    out.attrs = dict(wl.attrs)
    return out


def layer_costs(graph: ModelGraph, seq: int, dtype: str = "bf16",
                optimizer: str = "adam") -> LayerCosts:
    """The batch-1 training rows of one layer and of the first / last extras (cached per
    config, sequence, dtype and optimizer)."""
    dims = dims_of(graph)
    cfg = graph.meta["config"]
    key = tuple(sorted((k, v) for k, v in cfg.items() if not isinstance(v, list | dict)))
    return LayerCosts(dims, seq, dtype, _cached_rows(key, seq, dtype, optimizer))


@dataclass(frozen=True)
class StageTimes:
    """Seconds on one device per micro-batch (forward, backward incl. recompute) for one
    layer and for the first / last extras, plus the optimizer step per layer and extras,
    and the FLOP behind them (model FLOP without recompute, hardware FLOP with it)."""

    layer_f: float
    layer_b: float
    first_f: float
    first_b: float
    last_f: float
    last_b: float
    layer_opt: float
    extras_opt: float
    layer_model_flops: float
    layer_hw_flops: float
    extras_model_flops: float


def _scaled(rows: pd.DataFrame, micro_batch: int, tp: int, sp: bool) -> pd.DataFrame:
    """Rows of one device for one micro-batch: batch-linear columns x micro_batch, tensor
    rows (and, with sequence parallelism, vector rows) / tp."""
    df = rows.copy()
    act = df["phase"] != "optimizer"
    for col in ("macs", "flops", "input_bytes", "output_bytes"):
        df[col] = df[col].to_numpy(float) * np.where(act, micro_batch, 1.0)
    split = (df["unit"] == "tensor") | ((df["unit"] == "vector") & sp & act) | ~act
    for col in ("macs", "flops", "input_bytes", "output_bytes", "weight_bytes", "params",
                "sparse_weight_bytes"):
        df[col] = df[col].to_numpy(float) / np.where(split, tp, 1.0)
    df["bytes"] = df["weight_bytes"] + df["input_bytes"] + df["output_bytes"]
    return df


def stage_times(costs: LayerCosts, device: DeviceSpec, tensor_parallel: int,
                micro_batch: int, sequence_parallel: bool = False,
                recompute: str = "none", zero: int = 0, data_parallel: int = 1) -> StageTimes:
    """Per-device roofline times of one micro-batch (see the module docstring)."""
    df = _scaled(costs.rows, micro_batch, tensor_parallel, sequence_parallel)
    t = roofline(df, device)
    time = t["time_s"].to_numpy(float)
    flops = t["flops"].to_numpy(float)
    g, ph = t["group"].to_numpy(object), t["phase"].to_numpy(object)
    kind = t["kind"].astype(str).to_numpy(object)

    def s(arr: np.ndarray, mask: np.ndarray) -> float:
        return float(arr[mask].sum())

    lay_f = (g == "layer") & (ph == "forward")
    lay_b = (g == "layer") & (ph == "backward")
    if recompute == "full":
        redo = lay_f
    elif recompute == "selective":
        redo = lay_f & np.isin(kind, ATTENTION_CORE)
    else:
        redo = np.zeros(len(t), bool)
    opt_share = data_parallel if zero >= 1 else 1  # ZeRO shards the update over dp
    return StageTimes(
        layer_f=s(time, lay_f), layer_b=s(time, lay_b) + s(time, redo),
        first_f=s(time, (g == "first") & (ph == "forward")),
        first_b=s(time, (g == "first") & (ph == "backward")),
        last_f=s(time, (g == "last") & (ph == "forward")),
        last_b=s(time, (g == "last") & (ph == "backward")),
        layer_opt=s(time, (g == "layer") & (ph == "optimizer")) / opt_share,
        extras_opt=s(time, (g != "layer") & (ph == "optimizer")) / opt_share,
        layer_model_flops=s(flops, lay_f | lay_b),
        layer_hw_flops=s(flops, lay_f | lay_b) + s(flops, redo),
        extras_model_flops=s(flops, (g != "layer") & (ph != "optimizer")))


def model_flops(dims: TransformerDims, global_batch: int, seq: int) -> float:
    """Model FLOP per iteration, Narayanan et al. SC 2021, sec. 5.1 (eq. 3 without
    recomputation): 72 B s l h^2 (1 + s / (6 h) + V / (12 h l))."""
    b, s, n_l, h, v = global_batch, seq, dims.layers, dims.hidden, dims.vocab
    return 72.0 * b * s * n_l * h * h * (1 + s / (6 * h) + v / (12 * h * n_l))


def tp_comm_bytes(dims: TransformerDims, seq: int, micro_batch: int, dtype: str) -> float:
    """Bytes of one tensor-parallel all-reduce (or reduce-scatter / all-gather buffer):
    s b h activations at the dtype width."""
    return float(seq * micro_batch * dims.hidden * lookup_dtype(dtype).nbytes)


def p2p_bytes(dims: TransformerDims, seq: int, micro_batch: int, dtype: str,
              tensor_parallel: int, sequence_parallel: bool) -> float:
    """Bytes one pipeline stage sends per micro-batch and boundary: s b h / t. Without
    sequence parallelism the t ranks hold the same s b h tensor and each sends 1/t of it
    (Megatron-LM's scatter-gather optimisation, on by default; Narayanan et al. 2021,
    sec. 4.1); with it each rank holds its own 1/t sequence shard."""
    del sequence_parallel  # the same bytes either way
    return tp_comm_bytes(dims, seq, micro_batch, dtype) / tensor_parallel


def grad_bytes(dims: TransformerDims, layers_on_device: float, tensor_parallel: int,
               dtype: str, extras: bool = True) -> float:
    """Gradient bytes of one device: its stage's parameters / t at the dtype width."""
    params = layers_on_device * dims.layer_params + (
        max(dims.first_params, dims.last_params) if extras else 0.0)
    return params / tensor_parallel * lookup_dtype(dtype).nbytes
