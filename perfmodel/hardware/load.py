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
from perfmodel.hardware.kernel_model import Architecture, KernelModel, MemoryTechnology
from perfmodel.hardware.spec import DeviceSpec, Efficiency, MemoryLevel
from perfmodel.units import DTYPES

__all__ = ["hw_specs_dir", "list_devices", "load_device", "device_from_dict",
           "device_to_dict", "load_architectures", "load_defaults", "clock_factor", "DEFAULTS_FILE",
           "ARCHITECTURES_FILE"]

DEFAULTS_FILE = "_defaults.yaml"
ARCHITECTURES_FILE = "_architectures.yaml"
TOP_KEYS = {"schema", "name", "display_name", "aliases", "vendor", "category", "year",
            "architecture", "sources", "compute", "memory", "power", "interconnect",
            "efficiency", "notes"}
REQUIRED = ("name", "compute", "memory")
CATEGORIES = {"datacenter-gpu", "consumer-gpu", "edge-soc", "cpu", "tpu", "npu"}
CLOCK_KEYS = ("boost_clock_MHz", "base_clock_MHz", "sustained_clock_MHz")
COMPUTE_KEYS = {"tensor_TFLOPS", "vector_TFLOPS", "sparse_2_4", "sparse_unstructured", "units",
                "matrix_units", *CLOCK_KEYS}
MEMORY_KEYS = {"name", "role", "capacity_GB", "capacity_MB", "bandwidth_GBps", "achieved_GBps"}
MIB = 2.0 ** 20  # vendors' "50 MB L2" is 50 MiB
POWER_KEYS = {"tdp_W"}
INTERCONNECT_KEYS = {"scaleup_name", "scaleup_GBps_per_direction", "pcie_gen", "pcie_lanes",
                     "scaleout_nic_Gbps"}
EFFICIENCY_KEYS = {"compute", "memory", "launch_overhead_us"}
ARCH_KEYS = {"vendor", "gemm_tile", "tiles_per_unit", "issue_fraction", "k_overhead",
             "kernel_floor_us", "attention_forward", "attention_backward", "notes"}
ATTENTION_KEYS = ("attention_forward", "attention_backward")
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
        elif "capacity_MB" in m:  # MiB, as vendors mean it for caches
            cap = (c.leaf(f"{p}.capacity_MB", m["capacity_MB"]) or 0) * MIB or None
        bw = None
        if "bandwidth_GBps" in m and "achieved_GBps" in m:
            c.add(p, "give bandwidth_GBps (a peak) or achieved_GBps (measured), not both")
        for key in ("bandwidth_GBps", "achieved_GBps"):
            if key in m:
                bw = (c.leaf(f"{p}.{key}", m[key]) or 0) * 1e9 or None
        has_capacity = bool({"capacity_GB", "capacity_MB"} & set(m))
        if role == "main" and ("bandwidth_GBps" not in m or not has_capacity):
            c.add(p, "main memory needs capacity_GB and bandwidth_GBps")
        out.append(MemoryLevel(str(m.get("name", f"level{i}")), role, cap, bw,
                               achieved="achieved_GBps" in m))
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


def _efficiency(c: Checker, d: Mapping[str, Any], model: KernelModel | None,
                tech: MemoryTechnology | None, defaults: Mapping[str, Any]) -> Efficiency:
    """The efficiency block: the spec's own figures first, then the kernel model (compute,
    launch) and the memory technology (memory) where known, then hw_specs/_defaults.yaml,
    else ideal. Each figure's provenance says which."""
    vals: dict[str, float | None] = {}
    for k in sorted(EFFICIENCY_KEYS):
        v = c.leaf(f"efficiency.{k}", d[k], positive=k != "launch_overhead_us") \
            if k in d else None
        if v is not None and k != "launch_overhead_us" and v > 1:
            c.add(f"efficiency.{k}.value", f"is a fraction of peak, must be <= 1, got {v}")
        vals[k] = v
    compute_curves, memory_curve = _curves(c, d)
    use_model = model if vals["compute"] is None else None
    use_tech = tech if vals["memory"] is None and memory_curve is None else None
    if use_model is not None:
        a = use_model.architecture
        vals["compute"] = use_model.large
        c.provenance["efficiency.compute"] = (
            f"kernel model ({a.name}): clock factor {use_model.clock_factor:.3g} "
            f"({use_model.clock_note}) x issue fraction {a.issue_fraction:g} "
            f"[{a.provenance.get('issue_fraction', '')}], times tile and wave quantization "
            f"of each GEMM on {use_model.units} units, tile {a.gemm_tile[0]}x{a.gemm_tile[1]} "
            f"[{a.provenance.get('gemm_tile', '')}]")
    if vals["launch_overhead_us"] is None and model is not None:
        vals["launch_overhead_us"] = model.architecture.kernel_floor_s * 1e6
        c.provenance["efficiency.launch_overhead_us"] = (
            f"kernel floor of {model.architecture.name} "
            f"[{model.architecture.provenance.get('kernel_floor_us', '')}]")
    if use_tech is not None:
        vals["memory"] = use_tech.copy
        c.provenance["efficiency.memory"] = (
            f"{use_tech.name} per access pattern: read {use_tech.read:g}, triad "
            f"{use_tech.triad:g}, copy {use_tech.copy:g}, write {use_tech.write:g} "
            f"[{'; '.join(sorted(set(use_tech.provenance.values())))}]")
    fallback = defaults.get("efficiency") or {}
    sources = defaults.get("sources") or {}
    for k in sorted(EFFICIENCY_KEYS):
        if vals[k] is None and isinstance(fallback.get(k), Mapping):
            vals[k] = float(fallback[k]["value"])
            src = str(fallback[k].get("source", ""))
            c.provenance[f"efficiency.{k}"] = "hw_specs/_defaults.yaml (no architecture " \
                f"figure for this device): {sources.get(src, src)}"
        elif vals[k] is None:
            c.provenance[f"efficiency.{k}"] = "not given: ideal (compute/memory 1.0, overhead 0)"
    return Efficiency(compute=vals["compute"] or 1.0, memory=vals["memory"] or 1.0,
                      launch_overhead_s=(vals["launch_overhead_us"] or 0.0) * 1e-6,
                      compute_curves=compute_curves, memory_curve=memory_curve,
                      compute_model=use_model, memory_model=use_tech)


def _kernel_model(c: Checker, name: Any, extras: Mapping[str, Any],
                  memory: tuple[MemoryLevel, ...], peaks: Mapping[tuple[str, str], float],
                  architectures: Architectures | None
                  ) -> tuple[KernelModel | None, MemoryTechnology | None]:
    """The device's kernel model and memory technology, from the figures the spec already
    parsed, where its architecture and main memory are in the architectures file."""
    if architectures is None or not architectures[0]:   # no architectures file: no model
        return None, None
    archs, techs = architectures
    model = None
    if name is not None and (not isinstance(name, str) or name not in archs):
        c.add("architecture", f"unknown architecture {name!r} "
                              f"({did_you_mean(str(name), archs)}; hw_specs/{ARCHITECTURES_FILE})")
    elif name is not None:
        # the matrix engines that each take a tile: SMs / CUs hold their own tensor cores;
        # Gaudi's MMEs, TPU MXUs are fewer than its vector cores (matrix_units)
        units = extras.get("matrix_units", extras.get("units"))
        factor, note = clock_factor({k: extras[k] for k in CLOCK_KEYS if k in extras})
        model = KernelModel(archs[name], int(units) if units else None, factor, note,
                            cache_ridge=_cache_ridge(peaks, memory))
    main = next((m for m in memory if m.role == "main"), None)
    tech = techs.get(main.name.lower()) if main else None
    return model, tech


def _cache_ridge(peaks: Mapping[tuple[str, str], float], memory: tuple[MemoryLevel, ...]
                 ) -> float | None:
    """fp16 (else bf16) tensor peak / last-level cache bandwidth, FLOP per byte, where the
    spec gives both (the kernel model's cap on small tiles); None otherwise."""
    peak = peaks.get(("tensor", "fp16")) or peaks.get(("tensor", "bf16"))
    bw = next((m.bandwidth_Bps for m in memory if m.role == "cache" and m.bandwidth_Bps),
              None)
    return peak / bw if peak and bw else None


def clock_factor(clocks: Mapping[str, Any]) -> tuple[float, str]:
    """(sustained / peak clock, how it was found) from a spec's clocks in MHz.

    The tensor peak is quoted at ``boost_clock_MHz``; a part that does not hold it under
    sustained matrix load (power- or thermally limited) says so with a cited
    ``sustained_clock_MHz``. Without one, the boost clock is taken as held.

    >>> clock_factor({"boost_clock_MHz": 1590, "sustained_clock_MHz": 1110})[0]
    0.6981132075471698
    """
    boost, held = clocks.get("boost_clock_MHz"), clocks.get("sustained_clock_MHz")
    if boost and held:
        return float(held) / float(boost), (f"sustained {held:g} MHz under matrix load / "
                                            f"peak quoted at {boost:g} MHz")
    if held:
        return 1.0, "sustained clock given but no boost clock to scale from: peak taken as held"
    return 1.0, "boost clock taken as held under load (no sustained clock published)"


def device_from_dict(d: Any, path: str = "<dict>", *,
                     architectures: Architectures | None = None,
                     defaults: Mapping[str, Any] | None = None) -> DeviceSpec:
    """Check and convert a spec mapping (as read from YAML) into a DeviceSpec.

    ``architectures``: the per-architecture and per-memory-technology figures
    (``load_architectures()``) that build the kernel-efficiency model of a device naming its
    ``architecture``; ``defaults``: the fallback efficiency block (hw_specs/_defaults.yaml).
    Without them, efficiency figures the spec leaves out are ideal.
    """
    c = begin_checks(d, path, "device", "docs/hw_spec_format.md", TOP_KEYS, REQUIRED)
    if "category" in d and (not isinstance(d["category"], str)
                            or d["category"] not in CATEGORIES):
        c.add("category", f"must be one of {', '.join(sorted(CATEGORIES))}")
    compute = d.get("compute") or {}
    if not c.keys("compute", compute, COMPUTE_KEYS):
        compute = {}
    peaks = _peaks(c, compute) if compute else {}
    sparse = bool(c.leaf("compute.sparse_2_4", compute["sparse_2_4"], bool)) \
        if "sparse_2_4" in compute else False
    memory = _memory(c, d.get("memory"))
    power = d.get("power") or {}
    tdp = c.leaf("power.tdp_W", power["tdp_W"]) if c.keys("power", power, POWER_KEYS) \
        and "tdp_W" in power else None
    if not isinstance(power, dict):
        power = {}
    year = c.leaf("year", d["year"], int) if "year" in d else None
    inter = d.get("interconnect") or {}
    extras: dict[str, Any] = {}
    if c.keys("interconnect", inter, INTERCONNECT_KEYS):
        for k, v in inter.items():
            extras[k] = v if k == "scaleup_name" else c.leaf(f"interconnect.{k}", v)
    for k in ("units", "matrix_units", *CLOCK_KEYS):
        if k in compute:
            extras[k] = c.leaf(f"compute.{k}", compute[k])
    if "sparse_unstructured" in compute:  # a kernel that skips zeros of unstructured sparsity
        extras["sparse_unstructured"] = bool(c.leaf(
            "compute.sparse_unstructured", compute["sparse_unstructured"], bool))
    model, tech = _kernel_model(c, d.get("architecture"), extras, memory, peaks,
                                architectures)
    eff_d = d.get("efficiency") or {}
    eff = _efficiency(c, eff_d, model, tech, defaults or {}) \
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
        architecture=str(d.get("architecture") or ""),
        aliases=tuple(a.lower() for a in aliases), sparse_2_4=sparse, extras=extras,
        provenance=c.provenance, path=path, raw=dict(d))


def device_to_dict(spec: DeviceSpec) -> dict[str, Any]:
    """The spec as a mapping in file format (round-trips through device_from_dict)."""
    return dict(spec.raw)


def load_defaults(directory: Path | None = None) -> Mapping[str, Any]:
    """The fallback efficiency block and its sources (``hw_specs/_defaults.yaml``), for
    devices whose architecture or memory technology has no figures."""
    return _defaults(str(directory or hw_specs_dir()))


@functools.lru_cache(maxsize=8)
def _defaults(directory: str) -> Mapping[str, Any]:
    path = Path(directory) / DEFAULTS_FILE
    return read_yaml(path) if path.is_file() else {}


Architectures = tuple[Mapping[str, Architecture], Mapping[str, MemoryTechnology]]


def load_architectures(directory: Path | None = None) -> Architectures:
    """(architecture name -> Architecture, memory technology -> MemoryTechnology) from
    ``hw_specs/_architectures.yaml`` (format: docs/hw_spec_format.md); empty if absent."""
    return _architectures(str(directory or hw_specs_dir()))


def _fraction(value: Any) -> float | None:
    return None if value is None else float(value)


@functools.lru_cache(maxsize=8)
def _architectures(directory: str) -> Architectures:
    path = Path(directory) / ARCHITECTURES_FILE
    if not path.is_file():
        return {}, {}
    d = read_yaml(path)
    c = begin_checks(d, str(path), "architectures", "docs/hw_spec_format.md",
                     {"sources", "architectures", "memory_technologies"},
                     ("architectures", "memory_technologies"))
    archs: dict[str, Architecture] = {}
    for name, a in (d.get("architectures") or {}).items():
        p = f"architectures.{name}"
        if not c.keys(p, a, ARCH_KEYS):
            continue
        start = len(c.provenance)
        tile = a.get("gemm_tile", {}).get("value") if isinstance(a.get("gemm_tile"), Mapping) \
            else None
        if not (isinstance(tile, list) and len(tile) == 2
                and all(isinstance(t, int) and t > 0 for t in tile)):
            c.add(f"{p}.gemm_tile", "must be {value: [rows, cols], source: ...}")
            tile = [1, 1]
        c.leaf(f"{p}.gemm_tile", {**a["gemm_tile"], "value": 1}) \
            if isinstance(a.get("gemm_tile"), Mapping) else None
        vals = {k: c.leaf(f"{p}.{k}", a[k], positive=k != "k_overhead") if k in a else None
                for k in ("tiles_per_unit", "issue_fraction", "k_overhead", "kernel_floor_us",
                          *ATTENTION_KEYS)}
        for k in ("tiles_per_unit", "issue_fraction", "kernel_floor_us"):
            if k not in a:
                c.add(f"{p}.{k}", "missing")
        for k in ("issue_fraction", *ATTENTION_KEYS):
            if (vals[k] or 0) > 1:
                c.add(f"{p}.{k}", "is a fraction of peak, must be <= 1")
        prov = {k.rsplit(".", 1)[-1]: v for k, v in list(c.provenance.items())[start:]}
        archs[str(name)] = Architecture(
            str(name), str(a.get("vendor", "")), (int(tile[0]), int(tile[1])),
            int(vals["tiles_per_unit"] or 1), float(vals["issue_fraction"] or 1.0),
            float(vals["k_overhead"] or 0.0), float(vals["kernel_floor_us"] or 0.0) * 1e-6,
            prov, *(_fraction(vals[k]) for k in ATTENTION_KEYS))
    techs: dict[str, MemoryTechnology] = {}
    for name, m in (d.get("memory_technologies") or {}).items():
        p = f"memory_technologies.{name}"
        if not c.keys(p, m, {"read", "triad", "copy", "write", "notes"}):
            continue
        start = len(c.provenance)
        v: dict[str, float] = {}
        for k in ("read", "triad", "copy", "write"):
            if k not in m:
                c.add(f"{p}.{k}", "missing")
            v[k] = float(c.leaf(f"{p}.{k}", m[k]) or 1.0) if k in m else 1.0
        if any(x > 1 for x in v.values()):
            c.add(p, "efficiencies are fractions of peak, each must be <= 1")
        prov = {k.rsplit(".", 1)[-1]: val for k, val in list(c.provenance.items())[start:]}
        techs[str(name).lower()] = MemoryTechnology(
            str(name), v["read"], v["triad"], v["copy"], v["write"], provenance=prov)
    raise_problems(str(path), c.problems, "fix these keys (format: docs/hw_spec_format.md)")
    return archs, techs


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
    if path.is_dir():
        raise SpecError(f"{path} is a folder, not a device spec",
                        "name a device (perfmodel hw) or a spec YAML file")
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
    defaults = _defaults(str(directory))
    return device_from_dict(raw, str(path), architectures=load_architectures(directory),
                            defaults=defaults)
