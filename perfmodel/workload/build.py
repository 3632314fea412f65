"""build_workload: a ModelGraph plus batch/seq/dtype/phase -> the Workload table."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import PlanError
from perfmodel.graph.costs import COST_RULES, OpCost, cost_of
from perfmodel.graph.kinds import (
    ACTIVATION_KINDS,
    MAC_KINDS,
    NORM_KINDS,
    TENSOR_KINDS,
    ZERO_COST_KINDS,
    OpKind,
)
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.compressed import OpMeta, op_meta, op_widths
from perfmodel.workload.geometry import NO_GEMM, gemm_geometry
from perfmodel.workload.job import Job, phase_dims
from perfmodel.workload.schema import COLUMNS, Workload
from perfmodel.workload.training import OPTIMIZERS

__all__ = ["build_workload", "phase_dims", "unit_of", "fusible_flags", "FUSIBLE_KINDS",
           "check_context", "model_context"]

# Epilogue kinds an inference engine folds into the kernel that produced their input
# (TensorRT developer guide, "Layer Fusion": convolution/GEMM + bias + activation, scale
# (batchnorm folded into the conv), element-wise sum; TensorRT-LLM fuses residual add and
# RMSNorm/LayerNorm the same way). Softmax is left out: it reduces over a whole row, which
# spans the producer GEMM's output tiles, so engines fuse it only inside a dedicated
# attention kernel (the ``attention`` kind already models that).
FUSIBLE_KINDS = frozenset(NORM_KINDS | ACTIVATION_KINDS | {OpKind.ADD, OpKind.MUL, OpKind.ROPE})

log = logging.getLogger(__name__)


def unit_of(op: Op) -> str:
    """tensor for matrix-engine kinds (depthwise conv excepted: it has no reduction over
    channels to feed a matrix engine, cuDNN runs it on CUDA cores), none for views,
    vector otherwise."""
    if op.kind in ZERO_COST_KINDS:
        return "none"
    if op.kind in TENSOR_KINDS and not op.attr("depthwise", False):
        return "tensor"
    return "vector"


def _check_request(graph: ModelGraph, job: Job) -> None:
    if job.phase in ("prefill", "decode") and not graph.meta.get("is_llm", False):
        raise PlanError(f"phase {job.phase!r} applies to autoregressive language models, "
                        f"and {graph.name!r} is not one",
                        "use --phase inference or --phase train")
    context = model_context(graph)
    if context and job.seq and job.seq > context:
        log.warning("seq %d exceeds %s's trained context %d", job.seq, graph.name, context)


def model_context(graph: ModelGraph) -> int | None:
    """The longest sequence the model was trained for: its shape's max_position_embeddings,
    else the graph's ``max_seq`` metadata; None where it has none (CNNs)."""
    if graph.shape is not None:
        return int(graph.shape.max_position_embeddings)
    ctx = graph.meta.get("max_seq")
    return int(ctx) if ctx else None


def check_context(graph: ModelGraph, seq: int | None, allow_long_context: bool = False
                  ) -> None:
    """Refuse a ``seq`` past the model's trained context (a RoPE model does not run there
    as trained) unless ``allow_long_context``: one PlanError naming the limit and the flag."""
    context = model_context(graph)
    if seq and context and seq > context and not allow_long_context:
        raise PlanError(f"seq {seq:,} is past {graph.name}'s trained context of {context:,} "
                        "tokens", f"pass --seq up to {context:,}, or --allow-long-context "
                        "to price it anyway")


def build_workload(graph: ModelGraph, batch: int | None = None, seq: int | None = None,
                   dtype: str = "fp16", phase: str = "inference", *,
                   weight_dtype: str | None = None, kv_dtype: str | None = None,
                   optimizer: str = "adam", context: int | None = None) -> Workload:
    """The Workload of ``graph`` for one request: its table (schema:
    perfmodel.workload.schema) and the resolved Job it was built for.

    ``phase``: inference (one forward; for LLMs the same as prefill), prefill (seq prompt
    tokens), decode (one new token per sequence against a KV cache of seq tokens), or
    train (forward, backward and optimizer rows). ``dtype`` is the compute and activation
    dtype; ``weight_dtype`` and ``kv_dtype`` default to it. Training uses ``optimizer``
    (sgd, sgd_momentum, adam, adamw) with fp32 master weights.

    >>> from perfmodel.graph import GraphBuilder
    >>> b = GraphBuilder("mlp")
    >>> _ = b.linear(b.input("x", (4,)), 2)
    >>> wl = build_workload(b.build(), batch=3, dtype="bf16")
    >>> wl.job.batch, float(wl.table["macs"].sum())     # 3 samples x 4 x 2 MACs
    (3, 24.0)
    """
    batch = int(graph.meta.get("default_batch", 1)) if batch is None else batch
    seq = graph.default_seq if seq is None else seq
    act = lookup_dtype(dtype).name
    job = Job(phase=phase, batch=batch, seq=seq, dtype=act,
              weight_dtype=lookup_dtype(weight_dtype or act).name,
              kv_dtype=lookup_dtype(kv_dtype or act).name, optimizer=optimizer)
    _check_request(graph, job)
    wdt, kvdt = job.weights, job.kv
    widths = {"act": lookup_dtype(act).nbytes, "weight": lookup_dtype(wdt).nbytes,
              "kv": lookup_dtype(kvdt).nbytes, "index": 4.0}
    dims = phase_dims(phase, batch, seq)
    if context is not None:
        if phase != "prefill" or context < (seq or 1):
            raise PlanError(f"context {context} needs phase prefill and at least seq "
                            f"({seq}) tokens", "pass context >= seq with phase='prefill'")
        dims["T"] = context
    ops = [op for op in graph.ops if not (phase == "train" and op.attr("inference_only"))]
    row_phase = {"train": "forward"}.get(phase, phase)
    memo: dict[tuple[Any, ...], OpCost] = {}
    rows = [_row(op, dims, widths, row_phase, memo, act, wdt) for op in ops]
    fusible = fusible_flags(graph, ops, [bool(r[7]) for r in rows])
    if phase == "train":
        rows += [_backward(op, r) for op, r in zip(ops, rows, strict=False)]
        rows += [_optimizer(op, r, widths, optimizer)
                 for op, r in zip(ops, rows, strict=False) if r[3]]
    df = _frame(rows, graph.name, act, fusible + [False] * (len(rows) - len(fusible)))
    df.loc[df["phase"] == "optimizer", "dtype"] = "fp32"  # master weights and moments
    unsupported = tuple(sorted({r[0] for r in rows if not r[7]}))
    if unsupported:
        log.warning("%d op(s) have no cost rule and are not priced: %s", len(unsupported),
                    ", ".join(unsupported[:5]))
    return Workload(df, graph.name, job, float(graph.params),
                    bool(graph.meta.get("is_llm", False)), unsupported, graph)


Row = tuple[Any, ...]  # (name, kind, layer, params, phase, unit, OpCost, costed, OpMeta,
#                        GEMM (batch, M, N))


def _row(op: Op, dims: Mapping[str, int], widths: Mapping[str, float], phase: str,
         memo: dict[tuple[Any, ...], Any], act: str, wdt: str) -> Row:
    """One forward row. Ops that differ only in name (the layers of a transformer) share
    one cost computation through ``memo``: costs are pure functions of shapes and attrs.
    Per-op compression attrs (perfmodel.workload.compressed) override widths and dtypes."""
    if op.kind not in COST_RULES:
        return (op.name, str(op.kind), op.layer, 0.0, phase, "vector", OpCost(), False,
                OpMeta(act, wdt), NO_GEMM)
    key: tuple[Any, ...] = (op.kind, op.inputs, op.outputs, op.weights, op.tied,
                            tuple(op.attrs.items()))
    try:
        hit = memo.get(key)
    except TypeError:  # an unhashable attribute value (e.g. a list): no sharing
        key, hit = (), None
    if hit is None:
        w = op_widths(op, widths)
        resolved = op.resolve(dims) if op.is_symbolic else op
        hit = (*op_meta(op, cost_of(resolved, w), w, act, wdt), gemm_geometry(resolved))
        if key:
            memo[key] = hit
    c, meta, geom = hit
    return (op.name, str(op.kind), op.layer, c.params, phase, unit_of(op), c, True, meta, geom)


def fusible_flags(graph: ModelGraph, ops: list[Op] | tuple[Op, ...],
                  costed: list[bool]) -> list[bool]:
    """Per op of ``ops`` (execution order): may it run as the epilogue of the op before it?

    True for a FUSIBLE_KINDS op one of whose inputs is the output of the op immediately
    before it, where that producer is a priced kernel (not a view) whose output no other
    op reads. Chains follow: conv -> batchnorm -> relu gives False, True, True. One pass
    over ``graph.edges`` (producer -> consumer).
    """
    edges = set(graph.edges)
    readers = Counter(u for u, _ in edges)
    out = [False] * len(ops)
    for i in range(1, len(ops)):
        op, prev = ops[i], ops[i - 1]
        out[i] = (op.kind in FUSIBLE_KINDS and costed[i] and costed[i - 1]
                  and prev.kind not in ZERO_COST_KINDS and (prev.name, op.name) in edges
                  and readers[prev.name] == 1)
    return out


def _backward(op: Op, fwd: Row) -> Row:
    c: OpCost = fwd[6]
    if op.kind in MAC_KINDS:
        b = OpCost(2 * c.macs, 2 * c.flops, 0.0, 2 * c.weight_bytes,
                   c.input_bytes + c.output_bytes, c.input_bytes)
    else:
        b = OpCost(0.0, c.flops, 0.0, 2 * c.weight_bytes, c.input_bytes + c.output_bytes,
                   c.input_bytes)
    m: OpMeta = fwd[8]  # backward runs dense, in the forward's dtypes; storage counted once
    return (op.name, fwd[1], fwd[2], 0.0, "backward", fwd[5], b, fwd[7],
            OpMeta(m.dtype, m.weight_dtype, sparse_weight_bytes=b.weight_bytes), fwd[9])


def _optimizer(op: Op, fwd: Row, widths: Mapping[str, float], name: str) -> Row:
    params = fwd[3]
    oc = OPTIMIZERS[name]
    moved = params * oc.bytes_per_param(widths["weight"], widths["weight"])
    c = OpCost(0.0, params * oc.flops_per_param, 0.0, moved, 0.0, 0.0)
    meta = OpMeta("fp32", fwd[8].weight_dtype, sparse_weight_bytes=moved)
    return (op.name, fwd[1], fwd[2], 0.0, "optimizer", "vector", c, True, meta, NO_GEMM)


def _frame(rows: list[Row], model: str, dtype: str, fusible: list[bool]) -> pd.DataFrame:
    n = len(rows)
    cost = np.array([r[6]._tuple() for r in rows], dtype=float).reshape(n, 6)
    total = cost[:, 3] + cost[:, 4] + cost[:, 5]
    with np.errstate(divide="ignore", invalid="ignore"):
        intensity = np.where(total > 0, cost[:, 1] / np.where(total > 0, total, 1), math.inf)
    df = pd.DataFrame({
        "model": model,
        "name": [r[0] for r in rows],
        "kind": [r[1] for r in rows],
        "layer": [r[2] for r in rows],
        "phase": [r[4] for r in rows],
        "unit": [r[5] for r in rows],
        "dtype": [r[8].dtype for r in rows],
        "macs": cost[:, 0], "flops": cost[:, 1], "params": cost[:, 2],
        "weight_bytes": cost[:, 3], "input_bytes": cost[:, 4], "output_bytes": cost[:, 5],
        "bytes": total, "intensity": intensity,
        "costed": np.array([r[7] for r in rows], dtype=bool),
        "weight_dtype": [r[8].weight_dtype for r in rows],
        "sparsity": np.array([r[8].sparsity for r in rows], dtype=float),
        "sparse_pattern": [r[8].sparse_pattern for r in rows],
        "storage_bytes": np.array([r[8].storage_bytes for r in rows], dtype=float),
        "sparse_weight_bytes": np.array([r[8].sparse_weight_bytes for r in rows], dtype=float),
        "lookups": np.array([r[8].lookups for r in rows], dtype=float),
        "fusible": np.array(fusible, dtype=bool),
        **dict(zip(("gemm_batch", "gemm_m", "gemm_n"),
                   np.array([r[9] for r in rows], dtype=float).reshape(n, 3).T, strict=True)),
    }, columns=list(COLUMNS))
    return df
