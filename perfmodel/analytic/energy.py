"""Energy per op: arithmetic energy by dtype plus data-movement energy by memory level.

    E_op = macs_executed * (E_mult + E_add)[dtype] + other_flops * E_add[dtype]
           + lookups * E_access(8 KB SRAM)
           + bytes from DRAM * E_DRAM / 8 + bytes from cache * E_SRAM(1 MB) / 8

(the memory energies are per 64-bit access, hence / 8 per byte). The constants are data,
``hw_specs/_energy.yaml``, each with its source: Horowitz, "Computing's energy problem",
ISSCC 2014 (45 nm), and figures derived from it by a stated rule. The paper's point, which
the model reproduces, is that a DRAM access costs hundreds of times an arithmetic op, so
bytes moved, not FLOPs, dominate the energy of most inference.

The per-op sum is the dynamic energy of a 45 nm design; TDP x latency is reported beside
it as the upper bound (the device drawing its full rated power the whole time).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.errors import SpecError, UnsupportedOpError, raise_problems
from perfmodel.files import data_dir, read_yaml
from perfmodel.hardware.checks import Checker
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.units import DTYPES

__all__ = ["EnergyTable", "load_energy_table", "op_energy", "energy_summary", "ENERGY_FILE"]

ENERGY_FILE = "_energy.yaml"
LEVELS = ("dram", "sram_1MB", "sram_8KB")
_PJ = 1e-12


@dataclass(frozen=True)
class EnergyTable:
    """Joules per multiply and per add by dtype, per byte by memory level, and per
    codebook look-up; ``provenance`` maps each figure's key path to its source."""

    mult_j: Mapping[str, float]
    add_j: Mapping[str, float]
    byte_j: Mapping[str, float]
    lookup_j: float
    process: str = ""
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False)
    path: str = ""


def _table_from_dict(d: Any, path: str) -> EnergyTable:
    if not isinstance(d, Mapping):
        raise SpecError(f"{path}: an energy table must be a YAML mapping",
                        "see hw_specs/_energy.yaml for the format")
    c = Checker(d.get("sources") or {})
    c.keys("", d, {"schema", "sources", "process", "arithmetic_pJ", "memory_pJ_per_64bit"})
    mult: dict[str, float] = {}
    add: dict[str, float] = {}
    arith = d.get("arithmetic_pJ") or {}
    if c.keys("arithmetic_pJ", arith, set(DTYPES)):
        for dt in DTYPES:
            if dt not in arith:
                c.add(f"arithmetic_pJ.{dt}", "missing: every dtype needs mult and add")
            elif c.keys(f"arithmetic_pJ.{dt}", arith[dt], {"mult", "add"}):
                for key, out in (("mult", mult), ("add", add)):
                    v = c.leaf(f"arithmetic_pJ.{dt}.{key}", arith[dt].get(key))
                    out[dt] = (v or 0.0) * _PJ
    mem = d.get("memory_pJ_per_64bit") or {}
    per_byte: dict[str, float] = {}
    if c.keys("memory_pJ_per_64bit", mem, set(LEVELS)):
        for level in LEVELS:
            v = c.leaf(f"memory_pJ_per_64bit.{level}", mem.get(level))
            per_byte[level] = (v or 0.0) * _PJ / 8
    raise_problems(path, c.problems, "fix these keys (format: hw_specs/_energy.yaml)")
    lookup = per_byte["sram_8KB"] * 8  # one 64-bit access per look-up
    return EnergyTable(mult, add, per_byte, lookup, str(d.get("process", "")), c.provenance,
                       path)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> EnergyTable:
    return _table_from_dict(read_yaml(Path(path)), path)


def load_energy_table(path: str | Path | None = None) -> EnergyTable:
    """The shipped energy table (hw_specs/_energy.yaml), or a user's file of that format."""
    return _load(str(path or data_dir("hw_specs") / ENERGY_FILE))


def op_energy(ops: pd.DataFrame, table: EnergyTable,
              cache_bytes: float | None = None) -> pd.DataFrame:
    """Per-op energy in joules (columns compute_j, lookup_j, memory_j, energy_j) of a
    roofline table (perfmodel.analytic.roofline). With ``cache_bytes``, activations that
    fit in the cache are priced at the 1 MB SRAM level, as the hierarchical roofline
    keeps them there; everything else comes from DRAM."""
    dts = ops["dtype_used"].astype(str).to_numpy()
    missing = sorted(set(dts) - set(table.mult_j))
    if missing:
        raise UnsupportedOpError(f"no energy figure for dtype(s) {', '.join(missing)}",
                                 f"add them to {table.path or ENERGY_FILE}")
    mult = np.array([table.mult_j[d] for d in dts])
    add = np.array([table.add_j[d] for d in dts])
    macs = ops["macs"].to_numpy(float)
    executed = ops["macs_executed"].to_numpy(float) if "macs_executed" in ops else macs
    other = np.maximum(ops["flops"].to_numpy(float) - 2 * macs, 0.0)
    compute = executed * (mult + add) + other * add
    lookups = ops["lookups"].to_numpy(float) if "lookups" in ops else np.zeros(len(ops))
    moved = ops["bytes_moved"].to_numpy(float) if "bytes_moved" in ops \
        else ops["bytes"].to_numpy(float)
    dram = moved
    if cache_bytes:
        ins, outs = ops["input_bytes"].to_numpy(float), ops["output_bytes"].to_numpy(float)
        dram = moved - np.where(ins <= cache_bytes, ins, 0) - np.where(outs <= cache_bytes,
                                                                       outs, 0)
    memory = dram * table.byte_j["dram"] + (moved - dram) * table.byte_j["sram_1MB"]
    out = pd.DataFrame({"compute_j": compute, "lookup_j": lookups * table.lookup_j,
                        "memory_j": memory}, index=ops.index)
    out["energy_j"] = out.sum(axis=1)
    return out


def energy_summary(ops: pd.DataFrame, device: DeviceSpec, latency_s: float,
                   table: EnergyTable | None = None, hierarchical: bool = False
                   ) -> dict[str, Any]:
    """Total per-op energy, its split, and TDP x latency as the cross-check."""
    table = table or load_energy_table()
    cache = next((m.capacity_bytes for m in device.memory if m.role == "cache"
                  and m.capacity_bytes), None) if hierarchical else None
    e = op_energy(ops, table, cache)
    total = float(e["energy_j"].sum())
    tdp = device.tdp_w * latency_s if device.tdp_w else None
    return {"energy_j": total, "compute_j": float(e["compute_j"].sum()),
            "lookup_j": float(e["lookup_j"].sum()), "memory_j": float(e["memory_j"].sum()),
            "energy_tdp_j": tdp, "tdp_fraction": total / tdp if tdp else None,
            "energy_model": f"per-op energies, {table.process}: Horowitz ISSCC 2014 "
                            f"({table.path}); TDP x latency is the upper bound"}
