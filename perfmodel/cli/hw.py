"""perfmodel hw [show NAME]: the device library, or one device with every source."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import pandas as pd

from perfmodel.cli.output import emit_frame, to_json
from perfmodel.hardware.load import list_devices, load_device
from perfmodel.hardware.spec import DeviceSpec

HELP = "list devices with key figures, or `hw show NAME` for one in full with sources"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p.add_argument("name", nargs="?", help="device name, alias or spec file (for show)")


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
            "year": d.year, "fp16_tensor_TFLOPS": _tflops(d, "tensor", "fp16"),
            "bf16_tensor_TFLOPS": _tflops(d, "tensor", "bf16"),
            "fp8_tensor_TFLOPS": _tflops(d, "tensor", "fp8"),
            "int8_tensor_TOPS": _tflops(d, "tensor", "int8"),
            "fp32_vector_TFLOPS": _tflops(d, "vector", "fp32"),
            "memory_GB": d.memory_capacity / 1e9, "bandwidth_GBps": d.memory_bandwidth / 1e9,
            "ridge_FLOP_per_B": d.ridge_point(dt), "ridge_dtype": dt, "tdp_W": d.tdp_w,
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


def show_table(d: DeviceSpec) -> pd.DataFrame:
    """Every figure of a device spec with its full source citation."""
    rows = [{"figure": p, "value": v, "source_key": src, "source": d.provenance.get(p, src)}
            for p, v, src in _leaves(d.raw)]
    return pd.DataFrame(rows, dtype=object)


def handle(args: argparse.Namespace) -> str:
    if args.action == "show":
        if not args.name:
            from perfmodel.errors import PerfModelError
            raise PerfModelError("hw show needs a device name", "e.g. perfmodel hw show a100")
        d = load_device(args.name)
        table = show_table(d)
        if args.format == "json":
            return to_json({"name": d.name, "display_name": d.display_name,
                            "aliases": list(d.aliases), "figures": table.to_dict("records"),
                            "notes": d.raw.get("notes", "")})
        if args.format == "csv":
            return emit_frame(table, "csv")
        lines = [f"{d.display_name} ({d.name}; aliases: {', '.join(d.aliases) or '-'})", ""]
        lines += [f"{r.figure:40s} {r.value!s:>10}   {r.source_key}" for r in table.itertuples()]
        cited = dict(zip(table["source_key"], table["source"], strict=True))
        lines += ["", "Sources:"] + [f"  {k}: {v}" if k != v else f"  {k}"
                                     for k, v in cited.items()]
        if d.raw.get("notes"):
            lines += ["", "notes: " + str(d.raw["notes"]).strip()]
        return "\n".join(lines)
    table = device_table()
    if args.format != "table":
        return emit_frame(table, args.format)
    num = {c: (lambda v: "-" if pd.isna(v) else f"{v:.4g}") for c in table.columns
           if c.endswith(("TFLOPS", "TOPS", "GB", "GBps", "_B", "_W"))}
    num["year"] = lambda v: "-" if pd.isna(v) else str(int(v))
    return emit_frame(table, "table", num)
