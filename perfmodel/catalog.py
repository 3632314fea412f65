"""What perfmodel knows, as DataFrames: the device library, one device's figures with their
sources, and the model zoo. The ``hw`` and ``models`` commands print these; a notebook gets
the same tables (``pm.device_table()``, ``pm.model_table()``).

This module sits at the API edge beside ``perfmodel/__init__.py``: it may name models (the
zoo) and price them (the workload layer), which no package below it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from perfmodel.errors import UnknownNameError, did_you_mean
from perfmodel.graph.shape import active_params
from perfmodel.hardware.load import list_devices, load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model, models, references

__all__ = ["device_table", "device_figures", "model_table"]


def _tflops(d: DeviceSpec, unit: str, dtype: str) -> float | None:
    v = d.peak(unit, dtype)
    return v / 1e12 if v else None


def device_table() -> pd.DataFrame:
    """One row per shipped device: peaks (TFLOP/s, dense), memory, ridge point, TDP."""
    rows = []
    for name in list_devices():
        d = load_device(name)
        dt = d.default_dtype
        rows.append({
            "device": d.name, "aliases": ",".join(d.aliases), "category": d.category,
            "architecture": d.architecture, "year": d.year,
            "fp16_tensor_TFLOPS": _tflops(d, "tensor", "fp16"),
            "bf16_tensor_TFLOPS": _tflops(d, "tensor", "bf16"),
            "fp8_tensor_TFLOPS": _tflops(d, "tensor", "fp8"),
            "int8_tensor_TOPS": _tflops(d, "tensor", "int8"),
            "fp32_vector_TFLOPS": _tflops(d, "vector", "fp32"),
            "memory_GB": d.memory_capacity / 1e9, "bandwidth_GBps": d.memory_bandwidth / 1e9,
            "ridge_FLOP_per_B": d.ridge_point(dt), "ridge_dtype": dt, "tdp_W": d.tdp_w,
            "large_gemm_efficiency": d.efficiency.compute,
            "memory_efficiency": d.efficiency.memory,
            "kernel_floor_us": d.efficiency.launch_overhead_s * 1e6,
        })
    return pd.DataFrame(rows)


def _leaves(d: Any, path: str = "") -> list[tuple[str, Any, str]]:
    out: list[tuple[str, Any, str]] = []
    items = enumerate(d) if isinstance(d, list) else d.items()
    for k, v in items:
        p = f"{path}[{k}]" if isinstance(d, list) else (f"{path}.{k}" if path else str(k))
        if isinstance(v, Mapping) and "value" in v:
            out.append((p, v["value"], str(v.get("source", ""))))
        elif isinstance(v, Mapping | list) and k != "sources":
            out.extend(_leaves(v, p))
    return out


def device_figures(d: DeviceSpec) -> pd.DataFrame:
    """Every figure of a device spec with its full source citation."""
    rows = [{"figure": p, "value": v, "source_key": src, "source": d.provenance.get(p, src)}
            for p, v, src in _leaves(d.raw)]
    given = {r["figure"] for r in rows}
    e = d.efficiency  # the efficiency in force, where the spec does not set it itself
    rows += [{"figure": key, "value": value, "source_key": ref, "source": d.provenance[key]}
             for key, value, ref in (
                 ("efficiency.compute", round(e.compute, 4), "EFFICIENCY-COMPUTE"),
                 ("efficiency.memory", round(e.memory, 4), "EFFICIENCY-MEMORY"),
                 ("efficiency.launch_overhead_us", round(e.launch_overhead_s * 1e6, 4),
                  "EFFICIENCY-LAUNCH"))
             if key not in given and key in d.provenance]
    return pd.DataFrame(rows, dtype=object)


def model_table(family: str | None = None) -> pd.DataFrame:
    """One row per zoo model: params, active params (mixture of experts: the top-k experts
    one token runs, perfmodel.graph.shape.active_params; empty for dense models), MACs for
    one sample (CNNs) or one token (LLMs)."""
    refs = references()
    rows = []
    families: set[str] = set()
    for name in sorted(models()):
        g = load_model(name)
        families.add(str(g.meta.get("family", "")))
        if family and g.meta.get("family") != family:
            continue
        llm = bool(g.meta.get("is_llm")) or g.shape is not None
        wl = build_workload(g, batch=1, seq=1 if llm else None, dtype="fp16")
        ref = refs.get(name, {})
        rows.append({"model": name, "family": g.meta.get("family", ""),
                     "input": "1 token" if llm else g.meta.get("input", ""),
                     "params": g.params,
                     "active_params": active_params(g) if g.shape and g.shape.is_moe else None,
                     "macs": float(wl.table["macs"].sum()),
                     "reference_params": ref.get("params"), "ops": g.num_ops,
                     "source": ref.get("source", g.meta.get("source", ""))})
    if not rows:
        raise UnknownNameError(f"no zoo model of family {family!r}",
                               did_you_mean(str(family), sorted(families - {""})))
    return pd.DataFrame(rows)
