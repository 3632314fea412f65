"""Read -> check -> convert -> freeze: hardware spec files into DeviceSpec values.

Every problem in a file is collected with its key path (``memory[0].bandwidth_GBps``),
unknown keys get a did-you-mean, and one SpecError naming the file reports them all.
The format is documented in docs/hw_spec_format.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perfmodel.errors import SpecError, UnknownNameError, did_you_mean, raise_problems
from perfmodel.files import data_dir, read_yaml
from perfmodel.hardware.checks import Checker, begin_checks, parse_curve
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.spec import DeviceSpec, Efficiency, MemoryLevel
from perfmodel.units import DTYPES

__all__ = ["hw_specs_dir", "list_devices", "load_device", "device_from_dict",
           "device_to_dict", "DEFAULTS_FILE"]

DEFAULTS_FILE = "_defaults.yaml"
TOP_KEYS = {"schema", "name", "display_name", "aliases", "vendor", "category", "year",
            "sources", "compute", "memory", "power", "interconnect", "efficiency", "notes"}
REQUIRED = ("name", "compute", "memory")
CATEGORIES = {"datacenter-gpu", "consumer-gpu", "edge-soc", "cpu", "tpu", "npu"}
COMPUTE_KEYS = {"tensor_TFLOPS", "vector_TFLOPS", "sparse_2_4", "sparse_unstructured", "units",
                "boost_clock_MHz"}
MEMORY_KEYS = {"name", "role", "capacity_GB", "capacity_MB", "bandwidth_GBps"}
POWER_KEYS = {"tdp_W"}
INTERCONNECT_KEYS = {"scaleup_name", "scaleup_GBps_per_direction", "pcie_gen", "pcie_lanes",
                     "scaleout_nic_Gbps"}
EFFICIENCY_KEYS = {"compute", "memory", "launch_overhead_us"}
CURVE_KEYS = {"compute_curve", "memory_curve"}


def hw_specs_dir() -> Path:
    return data_dir("hw_specs")


def _peaks(c: Checker, compute: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    peaks: dict[tuple[str, str], float] = {}
    for unit in ("tensor", "vector"):
        table = compute.get(f"{unit}_TFLOPS", {}) or {}
        if not c.keys(f"compute.{unit}_TFLOPS", table, set(DTYPES)):
            continue
        for dt, leaf in table.items():
            v = c.leaf(f"compute.{unit}_TFLOPS.{dt}", leaf)
            if v is not None and dt in DTYPES:
                peaks[(unit, dt)] = v * 1e12
    if not peaks and not c.problems:
        c.add("compute", "no tensor_TFLOPS or vector_TFLOPS figure: nothing to compute with")
    return peaks


def _memory(c: Checker, levels: Any) -> tuple[MemoryLevel, ...]:
    if not isinstance(levels, list) or not levels:
        c.add("memory", "must be a non-empty list of memory levels")
        return ()
    out = []
    for i, m in enumerate(levels):
        p = f"memory[{i}]"
        if not c.keys(p, m, MEMORY_KEYS):
            continue
        role = m.get("role", "main")
        if role not in ("main", "cache"):
            c.add(f"{p}.role", f"must be main or cache, got {role!r}")
        cap = None
        if "capacity_GB" in m:
            cap = (c.leaf(f"{p}.capacity_GB", m["capacity_GB"]) or 0) * 1e9 or None
        elif "capacity_MB" in m:
            cap = (c.leaf(f"{p}.capacity_MB", m["capacity_MB"]) or 0) * 1e6 or None
        bw = None
        if "bandwidth_GBps" in m:
            bw = (c.leaf(f"{p}.bandwidth_GBps", m["bandwidth_GBps"]) or 0) * 1e9 or None
        has_capacity = bool({"capacity_GB", "capacity_MB"} & set(m))
        if role == "main" and ("bandwidth_GBps" not in m or not has_capacity):
            c.add(p, "main memory needs capacity_GB and bandwidth_GBps")
        out.append(MemoryLevel(str(m.get("name", f"level{i}")), role, cap, bw))
    if sum(m.role == "main" for m in out) != 1:
        c.add("memory", "exactly one level must have role: main")
    return tuple(out)


def _curves(c: Checker, d: Mapping[str, Any]
            ) -> tuple[dict[str, EfficiencyCurve], EfficiencyCurve | None]:
    compute: dict[str, EfficiencyCurve] = {}
    table = d.get("compute_curve") or {}
    if c.keys("efficiency.compute_curve", table, set(DTYPES)):
        for dt, leaf in table.items():
            curve = parse_curve(c, f"efficiency.compute_curve.{dt}", leaf)
            if curve is not None:
                compute[str(dt)] = curve
    memory = parse_curve(c, "efficiency.memory_curve", d["memory_curve"]) \
        if "memory_curve" in d else None
    return compute, memory


def _efficiency(c: Checker, d: Mapping[str, Any]) -> Efficiency:
    vals = {}
    for k in EFFICIENCY_KEYS:
        v = c.leaf(f"efficiency.{k}", d[k], positive=k != "launch_overhead_us") \
            if k in d else None
        if v is not None and k != "launch_overhead_us" and v > 1:
            c.add(f"efficiency.{k}.value", f"is a fraction of peak, must be <= 1, got {v}")
        vals[k] = v
        if k not in d:
            c.provenance[f"efficiency.{k}"] = "not given: ideal (compute/memory 1.0, overhead 0)"
    compute_curves, memory_curve = _curves(c, d)
    return Efficiency(compute=vals["compute"] or 1.0, memory=vals["memory"] or 1.0,
                      launch_overhead_s=(vals["launch_overhead_us"] or 0.0) * 1e-6,
                      compute_curves=compute_curves, memory_curve=memory_curve)


def device_from_dict(d: Any, path: str = "<dict>") -> DeviceSpec:
    """Check and convert a spec mapping (as read from YAML) into a DeviceSpec."""
    c = begin_checks(d, path, "device", "docs/hw_spec_format.md", TOP_KEYS, REQUIRED)
    if "category" in d and d["category"] not in CATEGORIES:
        c.add("category", f"must be one of {', '.join(sorted(CATEGORIES))}")
    compute = d.get("compute") or {}
    peaks = _peaks(c, compute) if c.keys("compute", compute, COMPUTE_KEYS) else {}
    sparse = bool(c.leaf("compute.sparse_2_4", compute["sparse_2_4"], bool)) \
        if "sparse_2_4" in compute else False
    memory = _memory(c, d.get("memory"))
    power = d.get("power") or {}
    tdp = c.leaf("power.tdp_W", power["tdp_W"]) if c.keys("power", power, POWER_KEYS) \
        and "tdp_W" in power else None
    year = c.leaf("year", d["year"], int) if "year" in d else None
    inter = d.get("interconnect") or {}
    extras: dict[str, Any] = {}
    if c.keys("interconnect", inter, INTERCONNECT_KEYS):
        for k, v in inter.items():
            extras[k] = v if k == "scaleup_name" else c.leaf(f"interconnect.{k}", v)
    for k in ("units", "boost_clock_MHz"):
        if k in compute:
            extras[k] = c.leaf(f"compute.{k}", compute[k])
    if "sparse_unstructured" in compute:  # a kernel that skips zeros of unstructured sparsity
        extras["sparse_unstructured"] = bool(c.leaf(
            "compute.sparse_unstructured", compute["sparse_unstructured"], bool))
    eff_d = d.get("efficiency") or {}
    eff = _efficiency(c, eff_d) \
        if c.keys("efficiency", eff_d, EFFICIENCY_KEYS | CURVE_KEYS) else None
    aliases = d.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        c.add("aliases", "must be a list of names")
        aliases = []
    raise_problems(path, c.problems, "fix these keys (format: docs/hw_spec_format.md)")
    return DeviceSpec(
        name=str(d["name"]), display_name=str(d.get("display_name", d["name"])),
        vendor=str(d.get("vendor", "")), category=str(d.get("category", "")),
        peak_flops=peaks, memory=memory, efficiency=eff or Efficiency(1.0, 1.0, 0.0),
        tdp_w=tdp, year=int(year) if year else None,
        aliases=tuple(a.lower() for a in aliases), sparse_2_4=sparse, extras=extras,
        provenance=c.provenance, path=path, raw=dict(d))


def device_to_dict(spec: DeviceSpec) -> dict[str, Any]:
    """The spec as a mapping in file format (round-trips through device_from_dict)."""
    return dict(spec.raw)


def _with_defaults(d: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Fill missing efficiency keys from the defaults file, sources included."""
    out = dict(d)
    eff = dict(out.get("efficiency") or {})
    for k, v in (defaults.get("efficiency") or {}).items():
        eff.setdefault(k, v)
    out["efficiency"] = eff
    return out


@functools.lru_cache(maxsize=8)
def _defaults(directory: str) -> Mapping[str, Any]:
    path = Path(directory) / DEFAULTS_FILE
    return read_yaml(path) if path.is_file() else {}


_NAME = re.compile(r"^name:[ \t]*([^\s#]+)[ \t]*(?:#.*)?$", re.MULTILINE)
_ALIASES = re.compile(r"^aliases:[ \t]*\[([^\]\n]*)\][ \t]*(?:#.*)?$", re.MULTILINE)


def _names(path: Path) -> list[str]:
    """A spec file's name and aliases. The header lines are read as text when they have the
    one-line form every shipped spec uses (``name: x``, ``aliases: [a, b]``), so listing the
    library does not parse 30 YAML files; any other form is parsed as YAML."""
    text = path.read_text(encoding="utf-8", errors="replace")
    name, aliases = _NAME.search(text), _ALIASES.search(text)
    if name and (aliases or not re.search(r"^aliases:", text, re.MULTILINE)):
        found = [a.strip().strip("'\"") for a in aliases.group(1).split(",")] if aliases else []
        return [name.group(1).strip("'\""), *(a for a in found if a)]
    d = read_yaml(path)
    return [d.get("name", path.stem), *(d.get("aliases") or [])]


@functools.lru_cache(maxsize=8)
def _index(directory: str) -> dict[str, Path]:
    """name or alias (lower-case) -> file, for every shipped device spec."""
    idx: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        for key in _names(path):
            idx[str(key).lower()] = path
    return idx


def list_devices(directory: Path | None = None) -> list[str]:
    """Canonical names of the shipped devices."""
    idx = _index(str(directory or hw_specs_dir()))
    return sorted({p.stem for p in idx.values()})


def load_device(name_or_path: str | Path, directory: Path | None = None) -> DeviceSpec:
    """A shipped device by name or alias (``"a100"``), or a user's spec file by path.

    Missing efficiency figures come from ``hw_specs/_defaults.yaml``, with its sources.
    """
    directory = directory or hw_specs_dir()
    key = str(name_or_path)
    path = Path(key)
    if not (key.endswith((".yaml", ".yml")) or path.is_file()):
        idx = _index(str(directory))
        if key.lower() not in idx:
            raise UnknownNameError(f"unknown device {key!r}",
                                   did_you_mean(key, idx) + " (list them: perfmodel hw)")
        path = idx[key.lower()]
    raw = read_yaml(path)
    if not isinstance(raw, Mapping):
        raise SpecError(f"{path}: a device spec must be a YAML mapping",
                        "see docs/hw_spec_format.md for the format")
    merged = _with_defaults(raw, _defaults(str(directory)))
    merged.setdefault("sources", {})
    merged["sources"] = {**(_defaults(str(directory)).get("sources") or {}), **merged["sources"]}
    return device_from_dict(merged, str(path))
