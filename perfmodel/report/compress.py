"""Compression trade-off: one row per strategy (size, bytes, MACs, latency, memory, energy)
and a chart of speed-up against model size.

Every row is the same model, device and request, compressed by one strategy and priced
by the roofline with dtype fallbacks on (perfmodel.analytic.compression), so the speed-up
is what THIS device would show: a format it cannot exploit shrinks the file, not the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.collectives import collective_time
from perfmodel.analytic.energy import EnergyTable, energy_summary, load_energy_table
from perfmodel.analytic.roofline import Prediction, predict
from perfmodel.compress.gradient import gradient_exchange
from perfmodel.compress.registry import Strategy
from perfmodel.errors import PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import numel
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.report.figure import check_writable, pyplot, save
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.build import build_workload
from perfmodel.workload.training import OPTIMIZERS

__all__ = ["Request", "compare_strategies", "peak_memory", "plot_tradeoff", "TABLE_COLUMNS"]

TABLE_COLUMNS = ("strategy", "params", "size_on_disk_bytes", "size_ratio",
                 "weight_bytes_moved", "macs_executed", "latency_s", "speedup",
                 "peak_memory_bytes", "energy_j", "energy_tdp_j", "bound", "notes")


@dataclass(frozen=True)
class Request:
    """What is run: batch, seq, phase and baseline dtype; for training, the data-parallel
    workers and the per-message link latency (alpha) of the gradient exchange."""

    batch: int | None = None
    seq: int | None = None
    phase: str = "inference"
    dtype: str = "fp16"
    workers: int = 8
    link_latency_s: float = 0.0
    hierarchical: bool = False


def peak_memory(graph: ModelGraph, pred: Prediction) -> float:
    """Bytes resident at the peak, an estimate: weights as the kernels read them (a sparse
    format the device cannot run is decompressed at load), the KV cache, and the largest
    single-op activation working set; for training, also gradients, optimizer state and
    every forward activation saved for backward."""
    ops, attrs = pred.ops, pred.ops.attrs
    fwd = ops[ops["phase"] != "backward"]
    fwd = fwd[fwd["phase"] != "optimizer"]
    width = fwd["weight_dtype"].map(lambda d: lookup_dtype(d).nbytes).to_numpy(float)
    decompressed = (fwd["sparsity"].to_numpy(float) > 0) & np.isclose(
        fwd["weight_bytes_moved"].to_numpy(float), fwd["weight_bytes"].to_numpy(float))
    weights = np.where(decompressed, fwd["params"].to_numpy(float) * width,
                       fwd["storage_bytes"].to_numpy(float)).sum()
    acts = (fwd["input_bytes"] + fwd["output_bytes"]).max() if len(fwd) else 0.0
    if attrs.get("phase") == "train":
        opt = OPTIMIZERS[attrs.get("optimizer") or "adam"]
        params = float(fwd["params"].sum())
        return float(weights + params * (width.max() if len(width) else 4.0)
                     + params * opt.state_bytes_per_param + fwd["output_bytes"].sum())
    return float(weights + _kv_cache(graph, attrs) + acts)


def _kv_cache(graph: ModelGraph, attrs: Any) -> float:
    """The whole KV cache: every view of role kv (one per layer for K and for V)."""
    dims = attrs.get("dims") or {}
    default = lookup_dtype(attrs.get("kv_dtype") or "fp16").nbytes
    total = 0.0
    for op in graph.ops:
        out = op.outputs[0] if op.outputs else None
        if out is None or out.role != "kv" or op.kind == "copy":
            continue
        shape = tuple(dims.get(d, 0) if isinstance(d, str) else d for d in out.shape)
        kv = op.attr("kv_dtype")
        total += numel(shape) * (lookup_dtype(kv).nbytes if kv else default)
    return total


def _price(graph: ModelGraph, device: DeviceSpec, req: Request,
           table: EnergyTable) -> dict[str, Any]:
    wl = build_workload(graph, batch=req.batch, seq=req.seq, dtype=req.dtype, phase=req.phase)
    pred = predict(wl, device, hierarchical=req.hierarchical, dtype_fallback=True)
    s = pred.summary
    latency = float(s["latency_s"])
    row: dict[str, Any] = {}
    notes = list(pred.assumptions["fallbacks"])
    if req.phase == "train":
        row = _exchange(graph, device, req)
        latency += row["comm_s"] + row["select_s"]
    elif "gradient_compression" in graph.meta:
        notes.append("gradient sparsification changes only training: use --phase train")
    fwd = pred.ops[~pred.ops["phase"].isin(["backward", "optimizer"])]
    energy = energy_summary(pred.ops, device, latency, table, req.hierarchical)
    return {"params": float(graph.params),
            "size_on_disk_bytes": float(fwd["storage_bytes"].sum()),
            "weight_bytes_moved": float(s["weight_bytes_moved"]),
            "macs_executed": float(s["macs_executed"]), "latency_s": latency,
            "peak_memory_bytes": peak_memory(graph, pred),
            "energy_j": energy["energy_j"], "energy_tdp_j": energy["energy_tdp_j"],
            "bound": s["bound"], "notes": notes, **row}


def _link_Bps(device: DeviceSpec) -> float:
    ex = device.extras
    if ex.get("scaleup_GBps_per_direction"):
        return float(ex["scaleup_GBps_per_direction"]) * 1e9
    if ex.get("scaleout_nic_Gbps"):
        return float(ex["scaleout_nic_Gbps"]) * 1e9 / 8
    raise PlanError(f"device {device.name!r} gives no interconnect bandwidth",
                    "the gradient exchange needs interconnect.scaleup_GBps_per_direction "
                    "in its spec")


def _exchange(graph: ModelGraph, device: DeviceSpec, req: Request) -> dict[str, Any]:
    """One step's gradient exchange over ``req.workers`` devices (perfmodel.compress.gradient):
    dense: ring all-reduce of V; sparse: ring all-gather of every worker's V_s (nccl-tests
    sizes: the gathered total p * V_s), plus one read of the dense gradients to select
    the top-k."""
    ex = gradient_exchange(graph)
    p, link = req.workers, _link_Bps(device)
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise PlanError(f"workers must be a positive integer, got {p!r}", "pass --workers 8")
    if ex.sparse:
        comm = collective_time("all_gather", p * ex.sent_bytes, p, req.link_latency_s, link)
        select = ex.dense_bytes / (device.memory_bandwidth * device.efficiency.memory)
    else:
        comm = collective_time("all_reduce", ex.dense_bytes, p, req.link_latency_s, link)
        select = 0.0
    return {"grad_exchange_bytes": ex.sent_bytes, "comm_s": float(comm), "select_s": select}


def compare_strategies(graph: ModelGraph, device: DeviceSpec, strategies: Sequence[Strategy],
                       request: Request | None = None,
                       table: EnergyTable | None = None) -> pd.DataFrame:
    """One row for the baseline and one per strategy (columns: TABLE_COLUMNS, plus
    grad_exchange_bytes, comm_s and select_s for training)."""
    req = request or Request()
    table = table or load_energy_table()
    rows = [{"strategy": "baseline", **_price(graph, device, req, table)}]
    for st in strategies:
        rows.append({"strategy": st.text, **_price(st(graph), device, req, table)})
    df = pd.DataFrame(rows)
    base = df.iloc[0]
    df["speedup"] = base["latency_s"] / df["latency_s"]
    df["size_ratio"] = base["size_on_disk_bytes"] / df["size_on_disk_bytes"]
    base_notes = set(base["notes"])
    df["notes"] = [n if i == 0 else [x for x in n if x not in base_notes]
                   for i, n in enumerate(df["notes"])]
    extra = [c for c in ("grad_exchange_bytes", "comm_s", "select_s") if c in df]
    df = df[[*TABLE_COLUMNS, *extra]]
    df.attrs = {"model": graph.name, "device": device.name, "request": req,
                "energy_source": table.path}
    return df


def plot_tradeoff(table: pd.DataFrame, path: str | Path, overwrite: bool = False,
                  title: str = "") -> Path:
    """Speed-up vs model size on disk, one labelled point per strategy."""
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter

    out = check_writable(path, overwrite)
    fig, ax = plt.subplots(figsize=(7, 5))
    size_mb = table["size_on_disk_bytes"] / 1e6
    ax.scatter(size_mb, table["speedup"], s=40, zorder=3)
    points: dict[tuple[float, float], list[str]] = {}
    for x, y, label in zip(size_mb, table["speedup"], table["strategy"], strict=True):
        points.setdefault((round(x, 6), round(y, 6)), []).append(str(label))
    for (x, y), labels in points.items():  # strategies that land on one point share a label
        ax.annotate(", ".join(labels), (x, y), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("model size on disk (MB)")
    ax.set_ylabel("speed-up vs baseline (x)")
    ax.set_title(title or "compression: speed-up vs size", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    return save(fig, out)
