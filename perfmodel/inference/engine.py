"""Inference engine profiles: what a serving or inference stack adds to the GPU's own time.

A profile is data (``engines/*.yaml``, shipped in the wheel; a user passes a file of their
own), one figure per field, each ``{value, source}``. A figure fitted on the shipped A100 /
V100 reference rows says so: its source starts with ``fitted``. The fields
(docs/engine_format.md):

* ``fusion`` — the roofline's fusion mode (``none``: one kernel per op, ``epilogue``:
  elementwise / norm ops run inside the kernel before them; perfmodel.analytic.roofline).
* ``attention`` — the attention kernel family (flash, paged, unfused, mla), stated.
* ``host_per_kernel_us`` — CPU time to dispatch one kernel when launched eagerly (framework
  dispatch + the CUDA launch call); ``graph_per_kernel_us`` — the same inside a captured
  CUDA / HIP graph (the GPU front end's gap between graph nodes). Kernels run behind a
  launch queue: a step takes max over kernels j of (launch of j + the GPU time of j and
  all after it) (perfmodel.inference.timing.queue_time).
* ``decode_graphs`` / ``prefill_graphs`` — whether decode steps / prefill run as graphs.
* ``per_step_us`` — serial CPU work per forward step of a generation (scheduler, sampling,
  detokenization, output processing); ``per_call_us`` — per forward call of a non-generative
  model (session run, input copy, Python).
* ``chunked_prefill_tokens`` — prompt tokens per prefill chunk (0: the whole prompt at once).
* ``memory_fraction`` — the share of device memory the engine lets itself use (vLLM's
  ``gpu_memory_utilization``), of the whole device or, with ``memory_fraction_of: free``,
  of what is free once the weights and the overhead are loaded (TensorRT-LLM's
  ``free_gpu_memory_fraction``); ``memory_overhead_GB`` — what it holds besides weights,
  KV cache and activations (CUDA context, allocator, graphs).
* ``tp_overlap`` — the share of tensor-parallel communication hidden under compute.
* ``split`` — how several GPUs share a model by default: ``tensor`` or ``layer`` (llama.cpp's
  ``--split-mode layer``: each GPU holds whole layers, one request runs through them in turn).
* ``quantization`` — per weight format (fp8, int8, int4) the kernel path: ``w8a8`` / ``fp8``
  (both operands in the narrow type, on devices with that tensor unit), ``weight_only``
  (weights stored narrow, dequantized to 16 bits in the GEMM's prologue), or ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from perfmodel.errors import SpecError, UnknownNameError, did_you_mean
from perfmodel.files import data_dir, read_yaml
from perfmodel.hardware.checks import begin_checks

__all__ = ["EngineProfile", "load_engine", "list_engines", "engine_from_dict", "engines_dir",
           "engine_for_framework", "QUANT_PATHS", "SPLITS", "ATTENTION_KERNELS"]

QUANT_PATHS = ("native", "weight_only", "none")
SPLITS = ("tensor", "layer")
ATTENTION_KERNELS = ("flash", "paged", "unfused", "mla", "fused")
STACKS = ("cuda", "rocm", "habana", "cpu", "tpu", "any")
FUSIONS = ("none", "epilogue")
KINDS = ("serving", "compiled", "eager", "local")

# numeric figures: name -> (allow zero, bool?)
NUMBERS = {"host_per_kernel_us": True, "graph_per_kernel_us": True, "per_step_us": True,
           "per_call_us": True, "chunked_prefill_tokens": True, "memory_fraction": False,
           "memory_overhead_GB": True, "tp_overlap": True}
FLAGS = ("decode_graphs", "prefill_graphs")
CHOICES = {"fusion": FUSIONS, "attention": ATTENTION_KERNELS, "split": SPLITS}
OPTIONAL_CHOICES = {"memory_fraction_of": ("total", "free")}
TOP = {"schema", "name", "display_name", "aliases", "frameworks", "stack", "kind", "sources",
       "notes", "quantization", "inherits", *NUMBERS, *FLAGS, *CHOICES, *OPTIONAL_CHOICES}
REQUIRED = ("schema", "name", "stack", "kind", *NUMBERS, *FLAGS, *CHOICES)


@dataclass(frozen=True)
class EngineProfile:
    """One inference stack's costs besides the GPU's kernels (see the module docstring).
    Times in seconds, memory in bytes."""

    name: str
    display_name: str
    stack: str
    kind: str
    fusion: str
    attention: str
    host_per_kernel_s: float
    graph_per_kernel_s: float
    decode_graphs: bool
    prefill_graphs: bool
    per_step_s: float
    per_call_s: float
    chunked_prefill_tokens: int
    memory_fraction: float
    memory_overhead_bytes: float
    tp_overlap: float
    split: str
    quantization: Mapping[str, str]
    aliases: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    memory_fraction_of: str = "total"
    path: str = ""
    notes: str = ""
    provenance: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def fitted(self) -> tuple[str, ...]:
        """The figures fitted on reference rows rather than taken from a cited source."""
        return tuple(k for k, v in self.provenance.items()
                     if str(v).lower().startswith("fitted"))

    def usable_bytes(self, capacity: float, loaded: float) -> float:
        """Bytes of a device of ``capacity`` the engine lets a run use, ``loaded`` being
        what it holds before the KV cache (weights, overhead): the fraction of the device,
        or with ``memory_fraction_of: free`` all that is loaded plus the fraction of the
        rest."""
        if self.memory_fraction_of == "free":
            return loaded + self.memory_fraction * max(capacity - loaded, 0.0)
        return self.memory_fraction * capacity

    def quant_path(self, fmt: str) -> str:
        """The kernel path for weights in ``fmt`` (fp8, int8, int4): native, weight_only or
        none; formats the profile does not name run ``none``."""
        return self.quantization.get(fmt, "none")

    def describe(self) -> dict[str, Any]:
        """The profile's figures in the units a user reads (us, GB), with their sources."""
        return {
            "engine": self.display_name, "profile": self.path or self.name,
            "stack": self.stack, "fusion": self.fusion, "attention": self.attention,
            "host_per_kernel_us": self.host_per_kernel_s * 1e6,
            "graph_per_kernel_us": self.graph_per_kernel_s * 1e6,
            "decode_graphs": self.decode_graphs, "prefill_graphs": self.prefill_graphs,
            "per_step_us": self.per_step_s * 1e6, "per_call_us": self.per_call_s * 1e6,
            "chunked_prefill_tokens": self.chunked_prefill_tokens,
            "memory_fraction": self.memory_fraction,
            "memory_fraction_of": self.memory_fraction_of,
            "memory_overhead_GB": self.memory_overhead_bytes / 1e9,
            "tp_overlap": self.tp_overlap, "split": self.split,
            "quantization": dict(self.quantization),
            "fitted_figures": list(self.fitted()),
            "sources": dict(self.provenance)}


def engines_dir() -> Path:
    """The shipped engine profiles (package data, or the checkout's ``engines/``)."""
    return data_dir("engines")


def _names(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    v = d.get(key) or ()
    return tuple(str(x) for x in (v if isinstance(v, list | tuple) else [v]))


def engine_from_dict(d: Any, path: str = "<dict>") -> EngineProfile:
    """Check an engine mapping (every problem at once, with its key path) and freeze it."""
    c = begin_checks(d, path, "engine", "docs/engine_format.md", TOP, REQUIRED)
    if d.get("schema") not in (None, 1):
        c.add("schema", f"unknown schema {d.get('schema')!r} (this perfmodel reads schema 1)")
    for k in ("stack", "kind"):
        allowed = STACKS if k == "stack" else KINDS
        if k in d and str(d[k]).lower() not in allowed:
            c.add(k, f"must be one of {', '.join(allowed)}, got {d[k]!r}")
    nums = {k: c.leaf(k, d[k], float, positive=False) if k in d else None for k in NUMBERS}
    if nums["memory_fraction"] is not None and not 0 < nums["memory_fraction"] <= 1:
        c.add("memory_fraction.value", f"a share of memory: in (0, 1], got "
                                       f"{nums['memory_fraction']}")
    if nums["tp_overlap"] is not None and nums["tp_overlap"] > 1:
        c.add("tp_overlap.value", f"a share: in [0, 1], got {nums['tp_overlap']}")
    flags = {k: c.leaf(k, d[k], bool) if k in d else None for k in FLAGS}
    choices = {k: c.choice(k, d[k], allowed, lower=True) if k in d else None
               for k, allowed in {**CHOICES, **OPTIONAL_CHOICES}.items()}
    quant: dict[str, str] = {}
    q = d.get("quantization") or {}
    if c.keys("quantization", q, {"fp8", "int8", "int4"}):
        for fmt, fig in q.items():
            v = c.choice(f"quantization.{fmt}", fig, QUANT_PATHS, lower=True)
            if v:
                quant[str(fmt)] = v
    if c.problems:
        raise SpecError(f"{path}: " + "; ".join(c.problems),
                        "fix the listed keys (format: docs/engine_format.md)")
    name = str(d["name"]).lower()
    return EngineProfile(
        name=name, display_name=str(d.get("display_name") or d["name"]),
        stack=str(d["stack"]).lower(), kind=str(d["kind"]).lower(),
        fusion=str(choices["fusion"]), attention=str(choices["attention"]),
        host_per_kernel_s=float(nums["host_per_kernel_us"] or 0) * 1e-6,
        graph_per_kernel_s=float(nums["graph_per_kernel_us"] or 0) * 1e-6,
        decode_graphs=bool(flags["decode_graphs"]), prefill_graphs=bool(flags["prefill_graphs"]),
        per_step_s=float(nums["per_step_us"] or 0) * 1e-6,
        per_call_s=float(nums["per_call_us"] or 0) * 1e-6,
        chunked_prefill_tokens=int(nums["chunked_prefill_tokens"] or 0),
        memory_fraction=float(nums["memory_fraction"] or 1.0),
        memory_overhead_bytes=float(nums["memory_overhead_GB"] or 0) * 1e9,
        tp_overlap=float(nums["tp_overlap"] or 0), split=str(choices["split"]),
        quantization=quant, aliases=_names(d, "aliases"), frameworks=_names(d, "frameworks"),
        memory_fraction_of=str(choices["memory_fraction_of"] or "total"), path=path,
        notes=str(d.get("notes") or ""), provenance=dict(c.provenance))


def _merged(d: Any, directory: Path, seen: tuple[str, ...] = ()) -> Any:
    """A profile with ``inherits: NAME`` completed from that shipped profile: every field
    it does not set comes from the parent (sources too)."""
    if not isinstance(d, Mapping) or "inherits" not in d:
        return d
    parent_name = str(d["inherits"]).lower()
    if parent_name in seen:
        raise SpecError(f"engine profiles inherit in a loop: {' -> '.join((*seen, parent_name))}",
                        "make one profile stand on its own")
    idx = _index(str(directory))
    if parent_name not in idx:
        raise UnknownNameError(f"inherits: unknown engine {d['inherits']!r}",
                               did_you_mean(parent_name, idx))
    parent = _merged(read_yaml(idx[parent_name]), directory, (*seen, parent_name))
    out = {k: v for k, v in parent.items() if k not in ("aliases", "frameworks", "notes")}
    out.update({k: v for k, v in d.items() if k != "inherits"})
    out["sources"] = {**(parent.get("sources") or {}), **(d.get("sources") or {})}
    return out


@lru_cache(maxsize=8)
def _index(directory: str) -> dict[str, Path]:
    """name or alias (lower-case) -> file, for every shipped engine profile."""
    idx: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        d = read_yaml(path)
        for key in (path.stem, d.get("name", ""), *_names(d, "aliases")):
            if key:
                idx[str(key).lower()] = path
    return idx


def list_engines(directory: Path | None = None) -> list[str]:
    """Canonical names of the shipped engine profiles."""
    return sorted({p.stem for p in _index(str(directory or engines_dir())).values()})


@lru_cache(maxsize=64)
def _load(key: str, directory: str) -> EngineProfile:
    path = Path(key)
    if path.is_dir():
        raise SpecError(f"{path} is a folder, not an engine profile",
                        "name an engine (perfmodel infer --list-engines) or a YAML file")
    if key.endswith((".yaml", ".yml")) or path.is_file():
        return engine_from_dict(_merged(read_yaml(path), Path(directory)), str(path))
    own = Path(directory) / f"{key.lower()}.yaml"  # a shipped name: no index needed
    if own.is_file():
        return engine_from_dict(_merged(read_yaml(own), Path(directory)), own.stem)
    idx = _index(directory)
    hit = idx.get(key.lower())
    if hit is None:
        raise UnknownNameError(f"unknown engine {key!r}",
                               did_you_mean(key.lower(), sorted(set(idx))) +
                               "; or pass an engine profile YAML (docs/engine_format.md)")
    return engine_from_dict(_merged(read_yaml(hit), Path(directory)), hit.stem)


def load_engine(name_or_path: str | Path, directory: Path | None = None) -> EngineProfile:
    """A shipped engine profile by name or alias, case-insensitively (``"vllm"``,
    ``"vLLM"``, ``"trt-llm"``), or a user's profile file by path."""
    return _load(str(name_or_path), str(directory or engines_dir()))


def engine_for_framework(text: str, directory: Path | None = None) -> EngineProfile | None:
    """The profile whose ``frameworks`` patterns occur in a published row's framework text
    (case-insensitive; the longest pattern wins, so "Paddle-TRT" beats "Paddle"); None if
    no profile claims it."""
    folder = str(directory or engines_dir())
    low = str(text).lower()
    best: tuple[int, str] | None = None
    for stem in {p.stem for p in _index(folder).values()}:
        prof = _load(stem, folder)
        for pat in prof.frameworks:
            if pat.lower() in low and (best is None or len(pat) > best[0]):
                best = (len(pat), stem)
    return _load(best[1], folder) if best else None
