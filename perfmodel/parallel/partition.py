"""Partition a transformer's training workload over tensor, pipeline and data parallelism.

What one device computes and communicates, per micro-batch (Megatron-LM layout,
Shoeybi et al. 2019, sec. 3; Narayanan et al. SC 2021, sec. 2-3; Korthikanti et al. 2023):

* Tensor parallelism t: the QKV and MLP-up GEMMs are split by columns, the attention
  output and MLP-down GEMMs by rows, attention by heads: every tensor-unit row of a layer
  (GEMMs, attention) does 1/t of the work, and so does every elementwise op between a
  column- and a row-parallel linear (softmax, attention dropout, the MLP activation: they
  act on the a/t heads or the 4h/t columns of the rank; ``TP_REGION``). Layer norms and
  residual adds (the ops outside those regions) are replicated on the t ranks, unless
  sequence parallelism splits them along the sequence (1/t; Korthikanti et al. 2023,
  sec. 4.2.2, Fig. 5). Communication (perfmodel.parallel.step): 2 all-reduces of s b h
  activations per layer forward and 2 backward; with sequence parallelism each all-reduce
  becomes a reduce-scatter plus an all-gather of the same s b h buffer (same ring volume).
  The LM head is vocabulary-parallel (1/t).
* Attention kernels (the graph's, ``ModelGraph.attention_kernels``): ``flash``, one fused
  causal-aware kernel (Dao et al. 2022; PyTorch SDPA), scores never leave the chip;
  ``unfused`` (a graph built with ``fused_attention=False``), Megatron-LM's 2022
  ``CoreAttention``: ``torch.baddbmm`` Q K^T over all s^2 query-key pairs (the causal mask
  is applied afterwards, in the fused scale-mask-softmax kernel), the softmax, the
  attention dropout on the a s^2 b probabilities (``attention_dropout``: its own kernel,
  writing a 1-byte mask; Korthikanti et al. 2023, eq. 1 counts that mask) and
  ``torch.bmm`` with V, each a pass over the s^2 scores in device memory.
* Optimizer step: the workload's update rows (master weights and moments,
  workload.training) plus the passes of Megatron-LM's mixed-precision optimizer over
  each 16-bit-trained parameter (``MIXED_PRECISION_PASS_BYTES``).
* Recomputation (``RECOMPUTED``: the share of each forward row rerun in the backward):
  ``full`` reruns each layer's forward (and its 2 forward collectives) in the backward;
  ``selective`` reruns the attention core (Q K^T, softmax, dropout, P V; Korthikanti et
  al. 2023, sec. 5). torchtitan's modes (torchtitan parallelisms/parallelize_llama.py,
  ``_apply_ac_to_transformer_block``, at the docs/performance.md commit 0413364): ``selective
  _layer`` wraps every n-th block (n = SELECTIVE_LAYER_EVERY, default 2) in a full
  checkpoint, so 1/n of the layer forward is rerun; ``selective_op`` saves only the outputs
  of the ops on its save list (aten.mm, SDPA, reduce-scatter) except every second mm
  (``not (func == aten.mm and mm_count % 2 == 0)``), so the 2nd, 4th, ... linear of a
  block (Llama: K, O and MLP-up projections) and every other non-attention op (norms,
  RoPE, SiLU, products, residual adds) are rerun.
* Pipeline parallelism p, v chunks: ``layer_assignment`` (analytic.pipeline); the
  embedding sits on the first stage, the final norm and LM head on the last; stages pass
  s b h activations (/t with sequence parallelism: Megatron's scatter-gather optimisation,
  Narayanan et al. 2021, sec. 4.1) per micro-batch and chunk boundary.
* Data parallelism d: gradients of the device's parameters (params per stage / t), at the
  training dtype width, all-reduced (ZeRO 0-1) or reduce-scattered (ZeRO 2; ZeRO 3 / FSDP
  also all-gathers weights before forward and backward).

Costs are the workload's rows at batch 1 (``build_workload(phase="train")``) of the model's
first block and its first- and last-stage extras (``one_block``), scaled by the micro-batch
(FLOP and activation bytes are linear in the batch at fixed sequence length; weight bytes are
not) and priced by the roofline on the device, with its efficiency. The dimensions come from
the graph's shape record (``ModelGraph.shape``), the parameters by stage from
``ModelGraph.stage_params``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from perfmodel.analytic.roofline import roofline
from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.graph.model_graph import ModelGraph, StageParams, stage_of
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.build import build_workload
from perfmodel.workload.plan import SELECTIVE_LAYER_EVERY
from perfmodel.workload.precision import (
    GemmRecipe,
    check_gemm_recipe,
    columnwise_copies,
    high_precision_suffixes,
)
from perfmodel.workload.precision import gemm_recipe as lookup_recipe

__all__ = ["LayerCosts", "StageTimes", "layer_costs", "stage_times", "one_block", "block_kinds",
           "shape_of", "model_flops", "tp_comm_bytes", "p2p_bytes", "grad_bytes",
           "RECOMPUTED"]

ATTENTION_CORE = ("attention", "attn_score", "softmax", "attn_context", "dropout")
SAVED_KERNELS = ("attention",)  # torchtitan op-SAC save list: SDPA (fused attention)
FUSED_ATTENTION = "attention"  # the fused (flash) attention kernel's op kind
FLASH_BACKWARD_RERUN = 0.5  # its backward: 2.5 x the forward FLOP, 2 x of them model FLOP
MATMUL_KINDS = ("linear",)  # the block ops that dispatch to aten.mm
EXPERT_SCOPE = ".experts."  # the routed experts' ops in the zoo's names (not shared experts)
# Bytes per parameter that Megatron-LM's mixed-precision optimizer moves besides the Adam
# update itself (megatron/optimizer/optimizer.py, MixedPrecisionOptimizer.step, and
# megatron/model/distributed.py): the global-norm gradient clipping reads the fp32 main
# gradient (4), _copy_main_params_to_model_params reads the fp32 master weight and writes
# the 16-bit model weight (4 + 2), zero_grad_buffer rewrites the fp32 gradient buffer (4).
MIXED_PRECISION_PASS_BYTES = 14.0
# ops between a column- and a row-parallel linear: split over the tensor-parallel ranks
# (Shoeybi et al. 2019, Fig. 3: attention heads and MLP columns are per-rank)
TP_REGION = (".self_attn.", ".mlp.")
# column-parallel linears, whose backward hides the input-gradient collective (step.py):
# (block, op-name suffixes) in the zoo's Hugging Face op names
COLUMN_LINEARS = (("attention", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
                  ("mlp", ("mlp.fc1", "mlp.gate_proj", "mlp.up_proj")))
# every linear split by output columns (its N): the above, the routed experts' up / gate,
# and the vocabulary-parallel LM head
COLUMN_SUFFIXES = tuple(n for _, ops in COLUMN_LINEARS for n in ops) + (
    "experts.w1", "experts.w3", "lm_head")


@dataclass(frozen=True)
class LayerCosts:
    """Workload rows at batch 1 of one layer (``layer``), the first-stage extras (``first``)
    and the last-stage extras (``last``); phases forward / backward / optimizer; with the
    model's name, shape record and parameters by stage."""

    name: str
    shape: ModelShape
    stage: StageParams
    seq: int
    dtype: str
    rows: pd.DataFrame  # with a "group" column: first | layer | last
    gemm_recipe: str | None = None  # perfmodel.workload.precision; None: GEMMs in dtype
    expert_share: float = 0.0  # the routed experts' share of the average layer's parameters


def shape_of(graph: ModelGraph) -> ModelShape:
    """The shape record of a transformer graph (PlanError for other models)."""
    return graph.require_shape("3D parallelism")


def block_kinds(shape: ModelShape) -> tuple[tuple[int, int], ...]:
    """(first layer, number of layers) of each kind of block, in order of first appearance.

    Blocks differ where the shape record says they do: the attention span (full, sliding,
    chunked), RoPE or none, and a dense or a mixture-of-experts MLP (DeepSeek-V3: 3 dense
    blocks then 58 MoE ones, ``first_k_dense_replace``; gpt-oss: sliding and full attention
    alternating). One block of each kind prices all of that kind.

    >>> from perfmodel.zoo.registry import load_model
    >>> block_kinds(load_model("deepseek-v3").shape)
    ((0, 3), (3, 58))
    """
    kinds: dict[tuple[object, ...], tuple[int, int]] = {}
    for i in range(shape.num_hidden_layers):
        key = (shape.attention_type(i), shape.uses_rope(i), shape.is_moe_layer(i))
        first, n = kinds.get(key, (i, 0))
        kinds[key] = (first, n + 1)
    return tuple(kinds.values())


def _in_layer(scope: str, index: int) -> bool:
    prefix = f"layers.{index}"
    return scope == prefix or scope.startswith(prefix + ".")


def one_block(graph: ModelGraph, layer: int = 0) -> ModelGraph:
    """The graph cut to one block (``layers.<layer>``, default the first) and the ops
    outside the blocks (embeddings, final norm, heads): blocks of one kind
    (``block_kinds``) cost the same, so one prices them all."""
    ops = tuple(op for op in graph.ops if stage_of(op.layer) in ("first", "last")
                or _in_layer(op.layer, layer))
    names = {op.name for op in ops}
    edges = tuple(e for e in graph.edges if e[0] in names and e[1] in names)
    return ModelGraph(graph.name, ops, edges, graph.inputs, graph.meta, graph.shape)


@lru_cache(maxsize=32)
def _cached_rows(block: ModelGraph, seq: int, dtype: str, optimizer: str,
                 attention_dropout: bool = False, gemm_recipe: str | None = None
                 ) -> pd.DataFrame:
    wl = build_workload(block, batch=1, seq=seq, dtype=dtype, phase="train",
                        optimizer=optimizer).table
    if block.attention_kernels == "unfused":
        wl = _unfused_attention(wl, seq, shape_of(block).is_decoder, attention_dropout,
                                lookup_dtype(dtype).nbytes)
    if lookup_dtype(dtype).nbytes == 2:  # mixed precision: fp32 master weights and grads
        wl = wl.copy()
        opt = (wl["phase"] == "optimizer").to_numpy()
        fwd = wl[wl["phase"] == "forward"]
        params = wl["name"].map(dict(zip(fwd["name"], fwd["params"], strict=True)))
        extra = np.where(opt, params.fillna(0.0).to_numpy(float) * MIXED_PRECISION_PASS_BYTES,
                         0.0)
        for col in ("weight_bytes", "sparse_weight_bytes", "bytes"):
            wl[col] = wl[col].to_numpy(float) + extra
    group = wl["layer"].astype(str).map(stage_of).replace({"block": "layer", "other": "layer"})
    wl = wl.assign(group=group.to_numpy(object))
    if gemm_recipe is None:
        return wl
    return _low_precision(wl, block, lookup_recipe(gemm_recipe), lookup_dtype(dtype).nbytes)


# --- low-precision GEMM recipes (perfmodel.workload.precision) ---------------------------

def _recipe_linears(wl: pd.DataFrame) -> np.ndarray:
    """Rows of the linears a recipe quantizes: those inside the blocks, less the MoE routers
    (the LM head is a "last" row: it stays in the training dtype, as in Megatron-Core,
    whose output layer is no Transformer Engine module)."""
    names = wl["name"].astype(str)
    keep = (wl["kind"].astype(str) == "linear").to_numpy() & (wl["group"] == "layer").to_numpy()
    for suffix in high_precision_suffixes():
        keep &= ~names.str.endswith(suffix).to_numpy()
    return keep


def _cast_rows(like: pd.DataFrame, suffix: str, phase: str, elems: np.ndarray,
               read: float, write: np.ndarray, share: float) -> pd.DataFrame:
    """Memory-bound quantize rows (vector unit, no FLOP counted as model work): ``elems``
    elements read at ``read`` and written at ``write`` bytes each; ``transpose_share`` is
    the part of the writes that is a physical transpose (dropped by ``stage_times`` on
    architectures that read one layout both ways)."""
    rows = like.copy()
    rows["name"] = like["name"].astype(str) + suffix
    rows["kind"], rows["unit"], rows["phase"] = "copy", "vector", phase
    for col in ("macs", "flops", "params", "weight_bytes", "sparse_weight_bytes"):
        rows[col] = 0.0
    rows["input_bytes"] = elems * read
    rows["output_bytes"] = elems * write
    rows["bytes"] = rows["input_bytes"] + rows["output_bytes"]
    rows["intensity"] = 0.0
    rows["fusible"] = False
    for col in ("gemm_batch", "gemm_m", "gemm_n"):
        if col in rows:
            rows[col] = np.nan
    return rows.assign(transpose_share=share)


def _low_precision(wl: pd.DataFrame, block: ModelGraph, r: GemmRecipe,
                   act: float) -> pd.DataFrame:
    """The rows under a GEMM recipe. The block linears run at the recipe's dtypes (fprop at
    ``forward``, dgrad + wgrad at ``backward``) and read their operands quantized (the width
    plus block scales): forward X and W; backward dY twice (rowwise for dgrad, columnwise
    for wgrad), the saved columnwise X and the columnwise W, and write dW at the training
    width. Quantize passes (``cast_bytes_per_element``): X once per distinct input tensor (Q,
    K and V share theirs, as TE's fused QKV / LayerNormLinear quantizes it once), dY per
    linear, each per micro-batch; W once per step (TE caches the quantized weight over the
    micro-batches: ``is_first_microbatch``, transformer_engine/pytorch/module/linear.py),
    priced with the step's optimizer passes. NVFP4's Hadamard transform is fused in the
    cast and priced as its bytes."""
    df = wl.assign(transpose_share=0.0)
    lin = _recipe_linears(df)
    ph = df["phase"].to_numpy(object)
    fwd, bwd = df[lin & (ph == "forward")], df[lin & (ph == "backward")]
    by_name = fwd.set_index(fwd["name"].astype(str))
    x = fwd["input_bytes"].to_numpy(float) / act
    w = fwd["params"].to_numpy(float)
    e_x, e_w, e_g = (r.element_bytes(o) for o in ("activation", "weight", "gradient"))
    df.loc[fwd.index, "dtype"] = r.forward
    df.loc[fwd.index, "input_bytes"] = x * e_x
    df.loc[fwd.index, ["weight_bytes", "sparse_weight_bytes"]] = np.repeat(
        (w * e_w)[:, None], 2, axis=1)
    b = by_name.loc[bwd["name"].astype(str)]
    bx, bw, by = (b["input_bytes"].to_numpy(float) / act, b["params"].to_numpy(float),
                  b["output_bytes"].to_numpy(float) / act)
    df.loc[bwd.index, "dtype"] = r.backward
    df.loc[bwd.index, "input_bytes"] = 2 * by * e_g + bx * e_x
    wb = bw * e_w + bwd["weight_bytes"].to_numpy(float) / 2  # read W^T, write dW
    df.loc[bwd.index, ["weight_bytes", "sparse_weight_bytes"]] = np.repeat(wb[:, None], 2, 1)
    df["bytes"] = df["weight_bytes"] + df["input_bytes"] + df["output_bytes"]
    df["intensity"] = np.where(df["bytes"] > 0, df["flops"] / df["bytes"], 0.0)
    return pd.concat([df, *_casts(fwd, bwd, block, r, act)], ignore_index=True)


def _casts(fwd: pd.DataFrame, bwd: pd.DataFrame, block: ModelGraph, r: GemmRecipe,
           act: float) -> list[pd.DataFrame]:
    """The quantize rows of ``_low_precision``."""
    reads = act * (2 if r.amax_pass else 1)

    def write(operand: str) -> tuple[float, float]:  # bytes per element, transpose share
        copies = columnwise_copies(r, operand, None)
        kind = r.weight_columnwise if operand == "weight" else r.columnwise
        share = (copies - 1) / copies if kind == "transpose" else 0.0
        return copies * r.element_bytes(operand), share

    producer = {dst: src for src, dst in block.edges}
    first = ~fwd["name"].astype(str).map(lambda n: producer.get(n, n)).duplicated().to_numpy()
    xs = fwd[first]
    (wx, sx), (wg, sg), (ww, sw) = write("activation"), write("gradient"), write("weight")
    b_out = fwd.set_index(fwd["name"].astype(str)).loc[bwd["name"].astype(str),
                                                        "output_bytes"].to_numpy(float)
    weights = fwd.assign(phase="optimizer")
    return [
        _cast_rows(xs, ".quantize_input", "forward", xs["input_bytes"].to_numpy(float) / act,
                   reads, np.full(len(xs), wx), sx),
        _cast_rows(bwd, ".quantize_grad", "backward", b_out / act, reads,
                   np.full(len(bwd), wg), sg),
        _cast_rows(weights, ".quantize_weight", "optimizer", fwd["params"].to_numpy(float),
                   reads, np.full(len(fwd), ww), sw),
    ]


def _unfused_attention(wl: pd.DataFrame, seq: int, causal: bool, dropout: bool,
                       act_bytes: float) -> pd.DataFrame:
    """Megatron-LM 2022 core attention from the unfused graph rows (batch 1).

    ``torch.baddbmm`` / ``torch.bmm`` compute every query-key pair; the causal mask is
    applied afterwards by the scale-mask-softmax kernel, so the score and context MACs of
    a causal graph (which counts the s (s + 1) / 2 pairs a causal-aware kernel does) are
    scaled to s^2: x 2 s / (s + 1). ``dropout`` adds the attention-dropout kernel on the
    probabilities (torch.nn.Dropout): forward reads P and writes P' and a 1-byte mask;
    backward reads dP' and the mask and writes dP. 1 FLOP per element either way.
    """
    df = wl.copy()
    if causal:
        dense = np.isin(df["kind"].astype(str), ("attn_score", "attn_context"))
        for col in ("macs", "flops"):
            df[col] = df[col].to_numpy(float) * np.where(dense, 2.0 * seq / (seq + 1), 1.0)
    if not dropout:
        return df
    soft = df[(df["kind"].astype(str) == "softmax") & df["name"].astype(str).str.contains(
        "self_attn.") & df["phase"].isin(("forward", "backward"))]
    drop = soft.copy()
    probs = soft["output_bytes"].to_numpy(float)  # P (forward) or dP (backward)
    mask = probs / act_bytes  # one byte per probability
    fwd = (soft["phase"] == "forward").to_numpy()
    drop["name"] = soft["name"].str.replace("softmax", "attention_dropout")
    drop["kind"] = "dropout"
    drop["macs"] = 0.0
    drop["flops"] = probs / act_bytes
    drop["input_bytes"] = np.where(fwd, probs, probs + mask)
    drop["output_bytes"] = np.where(fwd, probs + mask, probs)
    drop["weight_bytes"] = 0.0
    drop["sparse_weight_bytes"] = 0.0
    drop["bytes"] = drop["input_bytes"] + drop["output_bytes"]
    drop["intensity"] = drop["flops"] / drop["bytes"]
    return pd.concat([df, drop], ignore_index=True)


def layer_costs(graph: ModelGraph, seq: int, dtype: str = "bf16",
                optimizer: str = "adam", attention_dropout: bool = False,
                gemm_recipe: str | None = None) -> LayerCosts:
    """The batch-1 training rows of the average layer and of the first / last extras
    (cached per block graph, sequence, dtype, optimizer, dropout kernel and GEMM recipe).
    Each kind of block (``block_kinds``) contributes its rows with ``weight`` = its share of
    the layers and its first layer index as ``block``; the extras come once, weight 1. The
    attention kernels are the graph's; ``attention_dropout`` is priced only with unfused
    kernels, as FlashAttention applies dropout in-kernel. ``gemm_recipe`` (a name of
    perfmodel.workload.precision.GEMM_RECIPES) runs the block linears low-precision
    (``_low_precision``); a recipe's ``high_precision_share`` of each kind of block keeps
    them in ``dtype`` (rows of ``block`` = first index + layers, a distinct id)."""
    shape = shape_of(graph)
    share = lookup_recipe(gemm_recipe).high_precision_share if gemm_recipe else 0.0
    n_layers = shape.num_hidden_layers
    parts = []
    for k, (index, count) in enumerate(block_kinds(shape)):
        block = one_block(graph, index)
        rows = _cached_rows(block, seq, dtype, optimizer, attention_dropout, gemm_recipe)
        if k:
            rows = rows[rows["group"] == "layer"]
        weight = np.where(rows["group"] == "layer", count * (1 - share) / n_layers, 1.0)
        parts.append(rows.assign(weight=weight, block=index))
        if share:
            high = _cached_rows(block, seq, dtype, optimizer, attention_dropout)
            high = high[high["group"] == "layer"]
            parts.append(high.assign(weight=count * share / n_layers, block=index + n_layers,
                                     transpose_share=0.0))
    rows = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return LayerCosts(graph.name, shape, graph.stage_params, seq, dtype, rows, gemm_recipe,
                      _expert_share(rows))


def _expert_share(rows: pd.DataFrame) -> float:
    """The routed experts' share of the average layer's parameters (what expert
    parallelism splits), from the weighted forward rows."""
    fwd = rows[(rows["group"] == "layer") & (rows["phase"] == "forward")]
    params = fwd["params"].to_numpy(float) * fwd["weight"].to_numpy(float)
    experts = fwd["name"].astype(str).str.contains(EXPERT_SCOPE, regex=False).to_numpy()
    return float(params[experts].sum() / max(params.sum(), 1.0))


@dataclass(frozen=True)
class StageTimes:
    """Seconds on one device per micro-batch (forward, backward incl. recompute) for one
    layer and for the first / last extras, plus the optimizer step per layer and extras,
    and the FLOP behind them (model FLOP without recompute, hardware FLOP with it).
    ``column_b``: backward seconds (input + weight gradient) of each block's column-
    parallel linears (attention QKV, MLP up), the GEMMs the backward collectives hide
    under (perfmodel.parallel.step). ``layer_w``: the part of ``layer_b`` that computes
    weight gradients (half of each linear's backward: dW = dY^T X beside dX = dY W^T, the
    same FLOP), which zero-bubble schedules defer (Qi et al. 2024, sec. 2).
    ``attention_f`` / ``attention_b``: the attention core's share of ``layer_f`` /
    ``layer_b`` (what context parallelism's ring overlaps its KV hops with);
    ``experts_f`` / ``experts_b``: the routed experts' GEMMs' share (``EXPERT_SCOPE``, what
    expert parallelism and load imbalance change)."""

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
    column_b: tuple[float, ...] = ()
    layer_w: float = 0.0
    attention_f: float = 0.0
    attention_b: float = 0.0
    experts_f: float = 0.0
    experts_b: float = 0.0


def _scaled(rows: pd.DataFrame, micro_batch: int, tp: int, sp: bool) -> pd.DataFrame:
    """Rows of one device for one micro-batch: batch-linear columns x micro_batch; tensor
    rows, vector rows inside the tensor-parallel regions (``TP_REGION``) and, with
    sequence parallelism, all vector rows / tp."""
    df = rows.copy()
    act = df["phase"] != "optimizer"
    for col in ("macs", "flops", "input_bytes", "output_bytes"):
        df[col] = df[col].to_numpy(float) * np.where(act, micro_batch, 1.0)
    names = df["name"].astype(str)
    in_region = np.zeros(len(df), bool)
    for part in TP_REGION:
        in_region |= names.str.contains(part, regex=False).to_numpy()
    split = (df["unit"] == "tensor") | ((df["unit"] == "vector") & (sp | in_region)) | ~act
    for col in ("macs", "flops", "input_bytes", "output_bytes", "weight_bytes", "params",
                "sparse_weight_bytes"):
        df[col] = df[col].to_numpy(float) / np.where(split, tp, 1.0)
    df["bytes"] = df["weight_bytes"] + df["input_bytes"] + df["output_bytes"]
    if "gemm_m" in df:
        _reshape_gemms(df, act.to_numpy(), micro_batch, tp)
        df = _split_backward_gemms(df)
    return df


def _split_backward_gemms(df: pd.DataFrame) -> pd.DataFrame:
    """A linear's backward as the two GEMMs that run (torch.nn.functional.linear's autograd:
    grad_input = grad_output W, grad_weight = grad_output^T X), each half the row's MACs
    and bytes at its own shape: the data gradient M x K reducing over N, the weight
    gradient K x N reducing over the M tokens; ``gemm_part`` says which. The workload row
    prices both as one GEMM of the forward shape with twice the K, a longer main loop than
    either has."""
    back = ((df["phase"] == "backward") & df["kind"].astype(str).isin(MATMUL_KINDS)
            & (df["unit"] == "tensor")).to_numpy()
    if not back.any():
        return df.assign(gemm_part="")
    cols = ("macs", "flops", "input_bytes", "output_bytes", "weight_bytes",
            "sparse_weight_bytes", "bytes")
    dgrad = df[back].copy()
    for c in cols:
        dgrad[c] = dgrad[c].to_numpy(float) / 2
    wgrad = dgrad.copy()
    m, n, b = (dgrad[c].to_numpy(float) for c in ("gemm_m", "gemm_n", "gemm_batch"))
    k = dgrad["macs"].to_numpy(float) / np.maximum(b * m * n, 1.0)  # the forward's K
    dgrad["gemm_n"] = k
    wgrad["gemm_m"], wgrad["gemm_n"] = k, n
    dgrad["gemm_part"], wgrad["gemm_part"] = "dgrad", "wgrad"
    rest = df[~back].assign(gemm_part="")
    out = pd.concat([rest, dgrad, wgrad])
    return out.sort_index(kind="stable").reset_index(drop=True)


def _reshape_gemms(df: pd.DataFrame, act: np.ndarray, micro_batch: int, tp: int) -> None:
    """Keep each GEMM's shape (``gemm_batch`` x M x N, K = MACs / (batch M N)) true to the
    MACs just scaled, so the kernel model prices the GEMM that runs: the micro-batch adds
    rows to a linear (M = b s tokens) and problems to attention (batch = b x heads); tensor
    parallelism cuts a column-parallel linear's N (QKV, MLP up / gate, experts' w1 / w3,
    the vocabulary-parallel head), attention's heads, and a row-parallel linear's K
    (attention output, MLP down: what is left of the MACs)."""
    kind = df["kind"].astype(str).to_numpy()
    names = df["name"].astype(str)
    tensor = act & (df["unit"] == "tensor").to_numpy()
    linear = tensor & np.isin(kind, MATMUL_KINDS)
    column = linear & np.any([names.str.endswith(n).to_numpy()
                              for n in COLUMN_SUFFIXES], axis=0)
    other = tensor & ~linear
    df["gemm_m"] = df["gemm_m"].to_numpy(float) * np.where(linear, micro_batch, 1.0)
    df["gemm_n"] = df["gemm_n"].to_numpy(float) / np.where(column, tp, 1.0)
    df["gemm_batch"] = df["gemm_batch"].to_numpy(float) * np.where(other, micro_batch, 1.0) \
        / np.where(other, tp, 1.0)


def _redo_none(fwd: np.ndarray, kind: np.ndarray) -> np.ndarray:
    return np.zeros(len(fwd))


def _redo_full(fwd: np.ndarray, kind: np.ndarray) -> np.ndarray:
    return fwd.astype(float)


def _redo_selective(fwd: np.ndarray, kind: np.ndarray) -> np.ndarray:
    return (fwd & np.isin(kind, ATTENTION_CORE)).astype(float)


def _redo_layer(fwd: np.ndarray, kind: np.ndarray) -> np.ndarray:
    return fwd / float(SELECTIVE_LAYER_EVERY)


def _redo_op(fwd: np.ndarray, kind: np.ndarray, block: np.ndarray | None = None
             ) -> np.ndarray:
    """torchtitan op-SAC: a block's forward rows in execution order; every even-numbered
    matrix multiply and every op off the save list is rerun (counted per block)."""
    mm = fwd & np.isin(kind, MATMUL_KINDS)
    count = np.cumsum(mm) if block is None else \
        pd.Series(mm.astype(int)).groupby(block).cumsum().to_numpy()
    odd_mm = mm & (count % 2 == 1)
    return (fwd & ~odd_mm & ~np.isin(kind, SAVED_KERNELS)).astype(float)


# recompute mode -> share of each row rerun in the backward (from the layer-forward mask
# in execution order and the op kinds); keys are memory.RECOMPUTE
RECOMPUTED = {"none": _redo_none, "full": _redo_full, "selective": _redo_selective,
              "selective_layer": _redo_layer, "selective_op": _redo_op}


def stage_times(costs: LayerCosts, device: DeviceSpec, tensor_parallel: int,
                micro_batch: int, sequence_parallel: bool = False,
                recompute: str = "none", zero: int = 0, data_parallel: int = 1) -> StageTimes:
    """Per-device roofline times of one micro-batch (see the module docstring). Under a GEMM
    recipe the device must run it (``check_gemm_recipe``), and the transposed quantized
    copies are written only where its tensor cores need them (``transpose_share``)."""
    df = _scaled(costs.rows, micro_batch, tensor_parallel, sequence_parallel)
    if costs.gemm_recipe is not None:
        r = check_gemm_recipe(costs.gemm_recipe, device)
        if device.architecture not in r.transpose_architectures:
            df["output_bytes"] = df["output_bytes"] * (1 - df["transpose_share"])
            df["bytes"] = df["weight_bytes"] + df["input_bytes"] + df["output_bytes"]
    t = roofline(df, device)
    weight = t["weight"].to_numpy(float) if "weight" in t else np.ones(len(t))
    time = t["time_s"].to_numpy(float) * weight
    flops = t["flops"].to_numpy(float) * weight
    g, ph = t["group"].to_numpy(object), t["phase"].to_numpy(object)
    kind = t["kind"].astype(str).to_numpy(object)

    def s(arr: np.ndarray, mask: np.ndarray) -> float:
        return float(arr[mask].sum())

    lay_f = (g == "layer") & (ph == "forward")
    lay_b = (g == "layer") & (ph == "backward")
    if recompute not in RECOMPUTED:
        raise UnknownNameError(f"unknown recompute {recompute!r}",
                               did_you_mean(recompute, tuple(RECOMPUTED)))
    redo = RECOMPUTED[recompute](lay_f, kind) if recompute != "selective_op" else \
        _redo_op(lay_f, kind, t["block"].to_numpy() if "block" in t else None)
    # the fused attention's backward recomputes S = Q K^T and P inside the kernel: 5
    # matrix products against the forward's 2, 2.5 x the forward FLOP where the workload
    # counts 2 x (FlashAttention, Dao et al. 2022, Algorithm 4; the FLOP accounting of
    # Dao-AILab/flash-attention benchmarks/benchmark_flash_attention.py: bwd = 2.5 x fwd).
    # Hardware FLOP, not model FLOP: priced as a rerun half of the forward kernel.
    redo = redo + FLASH_BACKWARD_RERUN * (lay_f & (kind == FUSED_ATTENTION))
    opt_share = data_parallel if zero >= 1 else 1  # ZeRO shards the update over dp
    names = t["name"].astype(str)
    column_b = tuple(
        s(time, lay_b & np.any([names.str.endswith(n).to_numpy() for n in ops], axis=0))
        for _, ops in COLUMN_LINEARS)
    experts = names.str.contains(EXPERT_SCOPE, regex=False).to_numpy() & np.isin(
        kind, MATMUL_KINDS)
    return StageTimes(
        layer_f=s(time, lay_f), layer_b=s(time, lay_b) + float(time @ redo),
        first_f=s(time, (g == "first") & (ph == "forward")),
        first_b=s(time, (g == "first") & (ph == "backward")),
        last_f=s(time, (g == "last") & (ph == "forward")),
        last_b=s(time, (g == "last") & (ph == "backward")),
        layer_opt=s(time, (g == "layer") & (ph == "optimizer")) / opt_share,
        extras_opt=s(time, (g != "layer") & (ph == "optimizer")) / opt_share,
        layer_model_flops=s(flops, lay_f | lay_b),
        layer_hw_flops=s(flops, lay_f | lay_b) + float(flops @ redo),
        extras_model_flops=s(flops, (g != "layer") & (ph != "optimizer")),
        column_b=column_b,
        layer_w=s(time, lay_b & (t["gemm_part"].to_numpy(object) == "wgrad"))
        if "gemm_part" in t else 0.5 * s(time, lay_b & np.isin(kind, MATMUL_KINDS)),
        attention_f=s(time, lay_f & np.isin(kind, ATTENTION_CORE)),
        attention_b=s(time, lay_b & np.isin(kind, ATTENTION_CORE)),
        experts_f=s(time, lay_f & experts), experts_b=s(time, lay_b & experts))


def model_flops(shape: ModelShape, global_batch: int, seq: int) -> float:
    """Model FLOP per iteration, Narayanan et al. SC 2021, sec. 5.1 (eq. 3 without
    recomputation): 72 B s l h^2 (1 + s / (6 h) + V / (12 h l))."""
    b, s, n_l, h, v = (global_batch, seq, shape.num_hidden_layers, shape.hidden_size,
                       shape.vocab_size)
    return 72.0 * b * s * n_l * h * h * (1 + s / (6 * h) + v / (12 * h * n_l))


def tp_comm_bytes(shape: ModelShape, seq: int, micro_batch: int, dtype: str) -> float:
    """Bytes of one tensor-parallel all-reduce (or reduce-scatter / all-gather buffer):
    s b h activations at the dtype width."""
    return float(seq * micro_batch * shape.hidden_size * lookup_dtype(dtype).nbytes)


def p2p_bytes(shape: ModelShape, seq: int, micro_batch: int, dtype: str,
              tensor_parallel: int, sequence_parallel: bool) -> float:
    """Bytes one pipeline stage sends per micro-batch and boundary: s b h / t. Without
    sequence parallelism the t ranks hold the same s b h tensor and each sends 1/t of it
    (Megatron-LM's scatter-gather optimisation, on by default; Narayanan et al. 2021,
    sec. 4.1); with it each rank holds its own 1/t sequence shard."""
    del sequence_parallel  # the same bytes either way
    return tp_comm_bytes(shape, seq, micro_batch, dtype) / tensor_parallel


def grad_bytes(stage: StageParams, layers_on_device: float, tensor_parallel: int,
               dtype: str, extras: bool = True) -> float:
    """Gradient bytes of one device: its stage's parameters / t at the dtype width."""
    params = layers_on_device * stage.layer + (max(stage.first, stage.last) if extras else 0.0)
    return params / tensor_parallel * lookup_dtype(dtype).nbytes
