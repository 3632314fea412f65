"""What each compression strategy does on a device: one row per strategy (size, bytes, MACs,
latency, memory, energy), priced by the analytic models.

Every row is the same model, device and request, compressed by one strategy and priced
by the roofline with dtype fallbacks on (perfmodel.analytic.compression), so the speed-up
is what THIS device would show: a format it cannot exploit shrinks the file, not the time.
Peak memory is the one memory model's total (perfmodel.analytic.memory.footprint, one
device): weights as held (compressed formats the device runs natively stay compressed),
KV cache, activations saved for training, gradients and optimizer states, workspace.
perfmodel.report.compress draws the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from perfmodel.analytic.collectives import collective_time
from perfmodel.analytic.energy import EnergyTable, energy_summary, load_energy_table
from perfmodel.analytic.memory import footprint
from perfmodel.analytic.roofline import predict
from perfmodel.compress.gradient import gradient_exchange
from perfmodel.compress.registry import Strategy
from perfmodel.errors import PlanError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.workload.build import build_workload
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["Exchange", "compare_strategies", "peak_memory", "TABLE_COLUMNS"]

TABLE_COLUMNS = ("strategy", "params", "size_on_disk_bytes", "size_ratio",
                 "weight_bytes_moved", "macs_executed", "latency_s", "speedup",
                 "peak_memory_bytes", "fits", "energy_j", "energy_tdp_j", "bound", "notes")


@dataclass(frozen=True)
class Exchange:
    """The data-parallel gradient exchange a training row adds: ``workers`` devices, a
    per-message link latency alpha (``link_latency_s``)."""

    workers: int = 8
    link_latency_s: float = 0.0


def peak_memory(graph: ModelGraph, device: DeviceSpec, job: Job) -> float:
    """Bytes resident at the peak on one device: the memory model's total
    (perfmodel.analytic.memory.footprint) for this job."""
    return float(footprint(graph, ParallelPlan(), job, device=device)["total"])


def _price(graph: ModelGraph, device: DeviceSpec, job: Job, exchange: Exchange,
           hierarchical: bool, table: EnergyTable) -> dict[str, Any]:
    wl = build_workload(graph, batch=job.batch, seq=job.seq, dtype=job.dtype, phase=job.phase,
                        weight_dtype=job.weight_dtype, kv_dtype=job.kv_dtype,
                        optimizer=job.optimizer)
    pred = predict(wl, device, hierarchical=hierarchical, dtype_fallback=True)
    s = pred.summary
    latency = float(s["latency_s"])
    row: dict[str, Any] = {}
    notes = list(pred.assumptions["fallbacks"])
    if job.train:
        row = _exchange(graph, device, exchange)
        latency += row["comm_s"] + row["select_s"]
    elif "gradient_compression" in graph.meta:
        notes.append("gradient sparsification changes only training: use --phase train")
    fwd = pred.ops[~pred.ops["phase"].isin(["backward", "optimizer"])]
    energy = energy_summary(pred.ops, device, latency, table, hierarchical)
    return {"params": float(graph.params),
            "size_on_disk_bytes": float(fwd["storage_bytes"].sum()),
            "weight_bytes_moved": float(s["weight_bytes_moved"]),
            "macs_executed": float(s["macs_executed"]), "latency_s": latency,
            "peak_memory_bytes": (peak := peak_memory(graph, device, job)),
            "fits": peak <= device.memory_capacity,  # the row's capacity verdict
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


def _exchange(graph: ModelGraph, device: DeviceSpec, req: Exchange) -> dict[str, Any]:
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
                       job: Job | None = None, *, exchange: Exchange = Exchange(),
                       hierarchical: bool = False,
                       table: EnergyTable | None = None) -> pd.DataFrame:
    """One row for the baseline and one per strategy (columns: TABLE_COLUMNS, plus
    grad_exchange_bytes, comm_s and select_s for training): ``job`` (default: one sample at
    the model's default sequence, fp16) on ``device``; training adds the data-parallel
    gradient ``exchange``; ``hierarchical`` prices with the cache-level roofline."""
    job = job or Job()
    table = table or load_energy_table()
    rows = [{"strategy": "baseline", **_price(graph, device, job, exchange, hierarchical,
                                              table)}]
    for st in strategies:
        rows.append({"strategy": st.text,
                     **_price(st(graph), device, job, exchange, hierarchical, table)})
    df = pd.DataFrame(rows)
    base = df.iloc[0]
    df["speedup"] = base["latency_s"] / df["latency_s"]
    df["size_ratio"] = base["size_on_disk_bytes"] / df["size_on_disk_bytes"]
    base_notes = set(base["notes"])
    df["notes"] = [n if i == 0 else [x for x in n if x not in base_notes]
                   for i, n in enumerate(df["notes"])]
    extra = [c for c in ("grad_exchange_bytes", "comm_s", "select_s") if c in df]
    df = df[[*TABLE_COLUMNS, *extra]]
    return df
