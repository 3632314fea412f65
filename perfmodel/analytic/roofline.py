"""Roofline prediction: per-op time = max(compute time, memory time) + launch overhead.

Williams, Waterman & Patterson, "Roofline: an insightful visual performance model for
multicore architectures", CACM 52(4), 2009: attainable FLOP/s = min(peak, intensity x
bandwidth). Per op (vectorized over the Workload table):

    t_compute = flops / (peak[unit, dtype] * efficiency.compute)
    t_memory  = bytes / (main-memory bandwidth * efficiency.memory)
    t         = max(t_compute, t_memory) + launch_overhead   (ops that do any work)

Ops run one after another (no overlap, no cache reuse across ops). The summary carries the
run's memory on the device and whether it fits (the one memory model, analytic.memory). With
``fusion="epilogue"`` (what inference engines such as TensorRT do, see ``_fuse``), an op
marked ``fusible`` in the workload runs inside the kernel before it. An op is
``compute``- or ``memory``-bound by the larger of its two times, or ``overhead``-bound when
the launch overhead exceeds both (small ops at batch 1). The totals
obey the latency law of DOMAIN.md section 1, L = W / (P * U), exactly: U is defined as
achieved FLOP/s over the peak P of the workload's dtype on the tensor unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.compression import execution, resolve_peak
from perfmodel.analytic.memory import footprint
from perfmodel.analytic.op_table import OpTable
from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan
from perfmodel.workload.schema import Workload

__all__ = ["Prediction", "roofline", "predict", "price", "group_time", "bound_of", "items_per_pass",
           "PREDICTION_COLUMNS", "FUSION_MODES"]

FUSION_MODES = ("none", "epilogue")

PREDICTION_COLUMNS = ("peak_flops_per_s", "compute_s", "memory_s", "overhead_s", "time_s",
                      "bound", "achieved_flops_per_s", "unit_used", "dtype_used",
                      "macs_executed", "weight_bytes_moved", "bytes_moved")


@dataclass(frozen=True)
class Prediction:
    """Per-op table (the workload table plus PREDICTION_COLUMNS), summary, assumptions, and
    the Workload it prices."""

    ops: pd.DataFrame = field(repr=False)
    summary: Mapping[str, Any]
    assumptions: Mapping[str, Any]
    workload: Workload = field(repr=False, compare=False)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        ops = self.ops.sort_values("time_s", ascending=False) if top else self.ops
        ops = ops.head(top) if top else ops
        return {"summary": dict(self.summary), "assumptions": dict(self.assumptions),
                "ops": ops.replace([np.inf, -np.inf], None).to_dict(orient="records")}

    def summary_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.summary])


def _peaks(ops: OpTable, device: DeviceSpec, fallback: bool = False
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Peak FLOP/s per row, with the unit and dtype actually used and any fallback notes."""
    peak = np.zeros(len(ops))
    unit_used = np.full(len(ops), "none", dtype=object)
    dtype_used = ops["dtype"].copy()
    notes: list[str] = []
    for (unit, dt), idx in ops.groups.items():
        if unit == "none":
            continue
        u, d, p, note = resolve_peak(device, unit, dt, fallback)
        peak[idx], unit_used[idx], dtype_used[idx] = p, u, d
        if note:
            notes.append(f"{unit}/{dt} ops: {note} ({u}/{d}, {p / 1e12:g} TFLOP/s)")
    return peak, unit_used, dtype_used, notes


def _write_fraction(nbytes: np.ndarray, outs: np.ndarray) -> np.ndarray:
    """Written / moved bytes per op (0.5, a copy, where nothing moves)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(nbytes > 0, np.clip(outs / np.where(nbytes > 0, nbytes, 1.0), 0, 1),
                        0.5)


def _memory_time(ops: OpTable, nbytes: np.ndarray, weight_bytes: np.ndarray,
                 saved_in: np.ndarray, saved_out: np.ndarray, device: DeviceSpec,
                 hierarchical: bool, notes: list[str]) -> np.ndarray:
    """Memory-bound time per op: flat (every byte from main memory), or hierarchical.

    Hierarchical (one roof per level, Yang et al., "Hierarchical Roofline analysis for
    GPUs", 2020): every byte passes through the last-level cache at its bandwidth, and
    only weights, plus activations larger than the cache, come from main memory: an
    activation that fits is assumed to stay in the cache between the op that writes it
    and the op that reads it next. The slower of the two levels sets the time. A cache
    bandwidth given as achieved (measured) is used as it is; a peak one takes the memory
    efficiency, as main memory does.
    """
    outs = ops["output_bytes"] - saved_out
    eff = device.efficiency.memory_at(nbytes, _write_fraction(nbytes, outs))
    flat = nbytes / (device.memory_bandwidth * eff)
    if not hierarchical:
        return flat
    cache = device.cache
    if cache is None:
        notes.append("hierarchical memory model asked, but the spec gives no cache with "
                     "capacity and bandwidth: flat model used")
        return flat
    cap, cache_bw = float(cache.capacity_bytes or 0), float(cache.bandwidth_Bps or 0)
    ins = ops["input_bytes"] - saved_in
    main = weight_bytes + np.where(ins > cap, ins, 0.0) + np.where(outs > cap, outs, 0.0)
    cache_eff = 1.0 if cache.achieved else eff
    notes.append(f"hierarchical memory: activations under {cap / 2**20:g} MiB stay in "
                 f"{cache.name} ({cache_bw / 1e9:g} GB/s"
                 f"{', measured' if cache.achieved else ' peak'})")
    return np.maximum(main / (device.memory_bandwidth * eff), nbytes / (cache_bw * cache_eff))


def _compute_efficiency(ops: OpTable, device: DeviceSpec,
                        unit_used: np.ndarray, dtype_used: np.ndarray) -> np.ndarray:
    """Compute efficiency per op: for matrix-engine ops the spec's curve for the dtype run,
    else the device's kernel model at the op's GEMM shape (Efficiency.compute_at); the
    scalar factor for the rest."""
    eff = device.efficiency
    out = np.full(len(ops), eff.compute)
    if not eff.compute_curves and eff.compute_model is None:
        return out
    flops = ops["flops"]
    tensor = ops["unit"] == "tensor"
    geometry = [ops[c] if c in ops else np.full(len(ops), np.nan)
                for c in ("gemm_batch", "gemm_m", "gemm_n")]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = ops["macs"] / (geometry[0] * geometry[1] * geometry[2])
    for dt in set(dtype_used[tensor]):
        rows = tensor & (dtype_used == dt)
        out[rows] = eff.compute_at(flops[rows], dt, (*(g[rows] for g in geometry), k[rows]))
    return _fused_attention_cap(ops, eff, tensor, out)


def _fused_attention_cap(ops: OpTable, eff: Any, tensor: np.ndarray, out: np.ndarray
                         ) -> np.ndarray:
    """A training step's fused (flash) attention rows run no faster than the best published
    attention kernel of the architecture (``Architecture.attention_forward`` / ``_backward``:
    FlashAttention-2 on Ampere, FlashAttention-3 on Hopper), scaled to the held clock; the
    GEMM model would price them as one large GEMM. Inference phases keep the engine's
    kernels (their profiles)."""
    model = eff.compute_model
    if model is None or "kind" not in ops or "phase" not in ops:
        return out
    arch = model.architecture
    fused = tensor & (ops["kind"] == "attention")
    for phase, frac in (("forward", arch.attention_forward),
                        ("backward", arch.attention_backward)):
        rows = fused & (ops["phase"] == phase)
        if frac and rows.any():
            out[rows] = np.minimum(out[rows], model.clock_factor * frac)
    return out


def _fuse(ops: OpTable, fusion: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fused mask, input bytes saved, output bytes saved) per row.

    ``epilogue``: a ``fusible`` row (perfmodel.workload.build.fusible_flags) runs inside
    its producer's kernel (the row before it): it does not re-read the tensor the producer
    wrote (the producer's output bytes come off its input bytes) and the producer does not
    write it (its output bytes come off). The fused kernel thus reads the producer's
    inputs and the epilogue's other inputs (e.g. a residual) and writes the final output
    only (TensorRT developer guide, "Layer Fusion"). ``none``: nothing fused.
    """
    if fusion not in FUSION_MODES:
        raise UnknownNameError(f"unknown fusion mode {fusion!r}",
                               did_you_mean(fusion, FUSION_MODES))
    n = len(ops)
    if fusion == "none" or "fusible" not in ops or n == 0:
        return np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n)
    fused = ops["fusible"].copy()
    fused[0] = False
    outs, ins = ops["output_bytes"], ops["input_bytes"]
    prev_out = np.concatenate([[0.0], outs[:-1]])
    saved_in = np.where(fused, np.minimum(prev_out, ins), 0.0)
    next_fused = np.concatenate([fused[1:], [False]])
    saved_out = np.where(next_fused, outs, 0.0)
    return fused, saved_in, saved_out


def group_time(roof: np.ndarray, compute: np.ndarray, memory: np.ndarray,
               fused: np.ndarray) -> np.ndarray:
    """Roof time per op with fused groups overlapping: a group (a kernel and its fused
    epilogues) takes max(sum of compute times, sum of memory times), shared among its ops
    in proportion to their own roof times. A group of one op keeps max(compute, memory).
    Ops run along the last axis (a leading axis prices many settings at once)."""
    if not fused.any():
        return roof
    starts = np.flatnonzero(~fused)
    group = np.cumsum(~fused) - 1
    c, m, s = (np.add.reduceat(v, starts, axis=-1) for v in (compute, memory, roof))
    g_roof, g_sum = np.maximum(c, m)[..., group], s[..., group]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(g_sum > 0, g_roof * roof / np.where(g_sum > 0, g_sum, 1.0), 0.0)


def bound_of(compute: np.ndarray, memory: np.ndarray, overhead: np.ndarray,
             works: np.ndarray) -> np.ndarray:
    """Each op's bound: ``none`` (no work), ``overhead`` (launch overhead over both roofs),
    else ``compute`` or ``memory``, whichever time is larger (ties: compute)."""
    roof = np.maximum(compute, memory)
    return np.where(~works, "none", np.where(
        overhead > roof, "overhead", np.where(compute >= memory, "compute", "memory")))


def roofline(table: pd.DataFrame, device: DeviceSpec, *, hierarchical: bool = False,
             dtype_fallback: bool = False, fusion: str = "none") -> pd.DataFrame:
    """A workload table (``Workload.table``) with per-op roofline columns added (a new
    DataFrame).

    Compressed rows (sparsity, codebooks, per-op dtypes) run as
    perfmodel.analytic.compression says; ``dtype_fallback=True`` lets a dtype the device
    lacks run at the next wider one instead of raising. ``fusion`` is ``none`` or
    ``epilogue`` (see ``_fuse``); columns fused, fused_input_bytes and fused_output_bytes
    record it.
    """
    return _roofline(table, device, hierarchical, dtype_fallback, fusion)[0]


def price(ops: OpTable, device: DeviceSpec, *, hierarchical: bool = False,
          dtype_fallback: bool = False, fusion: str = "none"
          ) -> tuple[dict[str, np.ndarray], list[str]]:
    """The roofline's per-op columns (``roofline``'s, as numpy arrays, plus ``lookup_s``
    and ``works``) and the notes on the dtype fallbacks and sparse formats taken: the
    pricing core that ``predict`` and the vectorized sweeps share."""
    fused, saved_in, saved_out = _fuse(ops, fusion)
    peak, unit_used, dtype_used, notes = _peaks(ops, device, dtype_fallback)
    ex = execution(ops, device, unit_used, dtype_used, dtype_fallback)
    notes += ex.notes
    nbytes = ops["bytes"] - ops["weight_bytes"] + ex.weight_bytes - saved_in - saved_out
    flops = ops["flops"]
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = np.where(flops > 0, flops / (peak * ex.speedup * _compute_efficiency(
            ops, device, unit_used, dtype_used)), 0.0) + ex.lookup_s
    memory = _memory_time(ops, nbytes, ex.weight_bytes, saved_in, saved_out, device,
                          hierarchical, notes)
    works = (flops > 0) | (nbytes > 0)
    overhead = np.where(works & ~fused, device.efficiency.launch_overhead_s, 0.0)
    time = group_time(np.maximum(compute, memory), compute, memory, fused) + overhead
    with np.errstate(divide="ignore", invalid="ignore"):
        achieved = np.where(time > 0, flops / time, 0.0)
    cols = {"fused": fused, "fused_input_bytes": saved_in, "fused_output_bytes": saved_out,
            "weight_bytes_moved": ex.weight_bytes, "bytes_moved": nbytes,
            "peak_flops_per_s": peak, "compute_s": compute, "memory_s": memory,
            "overhead_s": overhead, "time_s": time,
            "bound": bound_of(compute, memory, overhead, works),
            "achieved_flops_per_s": achieved, "unit_used": unit_used,
            "dtype_used": dtype_used, "macs_executed": ops["macs"] / ex.speedup,
            "lookup_s": ex.lookup_s, "works": works}
    return cols, notes


_INTERNAL = ("lookup_s", "works")  # price() columns that are not roofline table columns


def _roofline(table: pd.DataFrame, device: DeviceSpec, hierarchical: bool,
              dtype_fallback: bool, fusion: str) -> tuple[pd.DataFrame, list[str]]:
    """``roofline``, and the notes on the dtype fallbacks and sparse formats it took."""
    cols, notes = price(OpTable.of(table), device, hierarchical=hierarchical,
                        dtype_fallback=dtype_fallback, fusion=fusion)
    added = pd.DataFrame({k: v for k, v in cols.items() if k not in _INTERNAL},
                         index=table.index)
    df = pd.concat([table.drop(columns=[c for c in added if c in table]), added], axis=1)
    return df, notes


def items_per_pass(wl: Workload) -> tuple[int, str]:
    """What one pass of the workload delivers, and the throughput's unit: a token per
    sequence in decode, every token in prefill and LLM training, else a sample."""
    job = wl.job
    if job.phase == "decode":
        return job.batch, "tokens/s"
    if job.phase == "prefill" or (job.phase == "train" and wl.is_llm):
        return job.batch * (job.seq or 1), "tokens/s"
    return job.batch, "samples/s"


def _throughput(wl: Workload, latency: float) -> tuple[float, str]:
    if latency <= 0:
        return 0.0, "items/s"
    items, unit = items_per_pass(wl)
    return items / latency, unit


def predict(workload: Workload, device: DeviceSpec, *, hierarchical: bool = False,
            dtype_fallback: bool = False, fusion: str = "none") -> Prediction:
    """Roofline prediction of a Workload on a device: per-op table, summary, assumptions.

    ``hierarchical=True`` adds a last-level-cache roof (see ``_memory_time``).
    ``dtype_fallback=True`` lets ops of a dtype the device lacks (compressed ops) run at
    the next wider one, stated in the assumptions; the workload's own dtype must still be
    one the device supports. ``fusion="epilogue"`` runs ``fusible`` ops inside the kernel
    before them (no launch overhead, no round trip of the intermediate tensor; ``_fuse``).
    """
    job = workload.job
    device.check_dtype(job.dtype)
    ops, notes = _roofline(workload.table, device, hierarchical, dtype_fallback, fusion)
    latency = float(ops["time_s"].sum())
    flops = float(ops["flops"].sum())
    _, _, peak, _ = device.resolve_unit("tensor", job.dtype)
    achieved = flops / latency if latency > 0 else 0.0
    throughput, unit = _throughput(workload, latency)
    by_bound = ops.groupby("bound")["time_s"].sum().drop("none", errors="ignore")
    summary = {
        "model": workload.model, "device": device.name, "phase": job.phase,
        "batch": job.batch, "seq": job.seq, "dtype": job.dtype,
        "params": float(workload.total_params),
        "macs": float(ops["macs"].sum()), "flops": flops, "bytes": float(ops["bytes"].sum()),
        "weight_bytes": float(ops["weight_bytes"].sum()),
        "macs_executed": float(ops["macs_executed"].sum()),
        "weight_bytes_moved": float(ops["weight_bytes_moved"].sum()),
        "bytes_moved": float(ops["bytes_moved"].sum()),
        "storage_bytes": float(ops["storage_bytes"].sum()) if "storage_bytes" in ops else None,
        "num_ops": int((ops["bound"] != "none").sum()),
        "num_kernels": int(((ops["bound"] != "none") & ~ops["fused"]).sum()),
        "latency_s": latency, "throughput_per_s": throughput, "throughput_unit": unit,
        "achieved_flops_per_s": achieved, "peak_flops_per_s": peak,
        "utilization": achieved / peak if peak else 0.0,
        "bound": str(by_bound.idxmax()) if len(by_bound) else "none",
        "compute_bound_s": float(by_bound.get("compute", 0.0)),
        "memory_bound_s": float(by_bound.get("memory", 0.0)),
        "overhead_bound_s": float(by_bound.get("overhead", 0.0)),
        "overhead_s": float(ops["overhead_s"].sum()),
        "energy_j": (device.tdp_w or 0.0) * latency if device.tdp_w else None,
        "unsupported_ops": list(workload.unsupported),
        **_capacity(workload, device),
    }
    assumptions = _assumptions(device, job, notes)
    assumptions["memory_model"] = "hierarchical" if hierarchical else "flat"
    assumptions["fusion"] = FUSION_NOTES[fusion]
    return Prediction(ops, summary, assumptions, workload)


def _capacity(workload: Workload, device: DeviceSpec) -> dict[str, Any]:
    """The run's memory on the device (the one memory model, analytic.memory, on one device)
    and whether it fits; None where the workload does not carry its graph."""
    graph = workload.graph
    if graph is None:
        return {"memory_bytes": None, "capacity_bytes": device.memory_capacity, "fits": None}
    total = float(footprint(graph, ParallelPlan(), workload.job, device=device)["total"])
    return {"memory_bytes": total, "capacity_bytes": device.memory_capacity,
            "fits": total <= device.memory_capacity}


FUSION_NOTES = {
    "none": "none: every op is its own kernel, with its own launch overhead and memory "
            "round trip",
    "epilogue": "epilogue: an elementwise/norm op fed only by the kernel just before it "
                "runs inside that kernel (no launch overhead, intermediate tensor neither "
                "written nor re-read; a group takes max(sum compute, sum memory)), as "
                "inference engines do (NVIDIA TensorRT developer guide, 'Layer Fusion')",
}


def _assumptions(device: DeviceSpec, job: Job, notes: list[str]) -> dict:
    prov = device.provenance
    eff = device.efficiency
    main = next(i for i, m in enumerate(device.memory) if m.role == "main")
    return {
        "method": "roofline: per op max(compute, memory) time + launch overhead; ops run "
                  "serially, no cache reuse across ops (fusion: see 'fusion')",
        "device": device.display_name, "device_spec": device.path,
        "dtype": job.dtype, "weight_dtype": job.weight_dtype,
        "kv_dtype": job.kv_dtype, "phase": job.phase,
        "batch": job.batch, "seq": job.seq,
        "peak_flops_per_s": {f"{u}/{d}": v for (u, d), v in device.peak_flops.items()},
        "memory_bandwidth_Bps": device.memory_bandwidth,
        "memory_bandwidth_source": prov.get(f"memory[{main}].bandwidth_GBps", ""),
        "compute_efficiency": eff.compute,
        "compute_efficiency_source": prov.get("efficiency.compute", ""),
        "compute_efficiency_curves": {
            dt: {"points": c.to_points(),
                 "source": prov.get(f"efficiency.compute_curve.{dt}", "")}
            for dt, c in eff.compute_curves.items()},
        "compute_efficiency_model": None if eff.compute_model is None else {
            "architecture": eff.compute_model.architecture.name,
            "units": eff.compute_model.units,
            "gemm_tile": list(eff.compute_model.architecture.gemm_tile),
            "tiles_per_unit": eff.compute_model.architecture.tiles_per_unit,
            "clock_factor": eff.compute_model.clock_factor,
            "clock": eff.compute_model.clock_note,
            "issue_fraction": eff.compute_model.architecture.issue_fraction,
            "k_overhead": eff.compute_model.architecture.k_overhead,
            "applies_to": "matrix-engine ops: efficiency = clock factor x issue fraction x "
                          "tile and wave quantization of the op's GEMM x K / (K + "
                          "k_overhead) (NVIDIA Matrix Multiplication Background guide)"},
        "memory_efficiency": eff.memory,
        "memory_efficiency_source": prov.get("efficiency.memory", ""),
        "memory_efficiency_model": None if eff.memory_model is None else {
            "technology": eff.memory_model.name,
            "read": eff.memory_model.read, "triad": eff.memory_model.triad,
            "copy": eff.memory_model.copy, "write": eff.memory_model.write,
            "applies_to": "every op, read at its write fraction (written / moved bytes)"},
        "memory_efficiency_curve": None if eff.memory_curve is None else {
            "points": eff.memory_curve.to_points(),
            "source": prov.get("efficiency.memory_curve", "")},
        "launch_overhead_s": eff.launch_overhead_s,
        "launch_overhead_source": prov.get("efficiency.launch_overhead_us", ""),
        "energy": "TDP x latency (device at TDP the whole time: an upper bound)"
                  + (f"; TDP source: {prov.get('power.tdp_W', '')}" if device.tdp_w else ""),
        "fallbacks": notes,
    }
