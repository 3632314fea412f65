"""Quantization: uniform bit widths, weights-only or weights + activations, mixed precision.

A scheme names three dtypes: the weights' (stored and moved), the activations' (read and
written by each op) and the compute dtype (the unit the op runs on). Weights-only schemes
(``w4a16``, ``w8``) shrink storage and weight bytes; weights + activations (``int8``,
``fp8``) also switch to the device's low-precision peak where it has one (DOMAIN.md
section 3). Whether the device has that unit is the roofline's business: a dtype it lacks
runs at the next wider one (perfmodel.analytic.compression).

FP32 -> INT8 stores each weight in 8 bits instead of 32: 4x smaller (seed document
000_b09e94c4aa0114f1.txt, "模型量化": "从 FP32 量化成 Int8，bit 位数从 32 位变成 8 位").
Binarized nets (XNOR-Net, Rastegari et al. 2016) are ``binary``: int1 weights and
activations, whose multiplies become XNOR + popcount on hardware with a bitwise unit.

Only matrix-engine layers and embeddings get low-precision weights; normalization and
other small parameter tensors keep the model's dtype.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfmodel.compress.rewrite import renamed, with_attrs
from perfmodel.compress.select import ALL, Selection, weighted_layers
from perfmodel.errors import SpecError, UnknownNameError, did_you_mean, raise_problems
from perfmodel.files import read_yaml
from perfmodel.graph.kinds import TENSOR_KINDS, ZERO_COST_KINDS, OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.op import Op
from perfmodel.units import dtype as lookup_dtype

__all__ = ["QuantScheme", "SCHEMES", "BIT_WIDTHS", "PRESETS", "quantize", "quantize_kv",
           "mixed_precision", "load_bit_widths", "scheme"]


@dataclass(frozen=True)
class QuantScheme:
    """Weight, activation and compute dtypes; None keeps the model's (the workload's)."""

    name: str
    weight: str
    act: str | None
    compute: str | None = None

    def attrs(self, op: Op) -> dict[str, Any]:
        """The per-op attrs this scheme sets (perfmodel.workload.compressed)."""
        out: dict[str, Any] = {}
        if op.kind in ZERO_COST_KINDS:
            return out
        if self.act:
            out["act_dtype"] = self.act
        if self.compute or self.act:
            out["compute_dtype"] = self.compute or self.act
        if op.weights and (op.kind in TENSOR_KINDS or op.kind == OpKind.EMBEDDING):
            out["weight_dtype"] = self.weight
        return out


def _s(name: str, weight: str, act: str | None, compute: str | None = None) -> QuantScheme:
    return QuantScheme(name, weight, act, compute)


SCHEMES: dict[str, QuantScheme] = {s.name: s for s in (
    _s("fp32", "fp32", "fp32"),
    _s("tf32", "fp32", "fp32", "tf32"),     # stored fp32, tensor cores compute in tf32
    _s("fp16", "fp16", "fp16"),
    _s("bf16", "bf16", "bf16"),
    _s("fp8", "fp8", "fp8"),
    _s("fp4", "fp4", "fp4"),
    _s("int8", "int8", "int8"),             # = w8a8
    _s("w8a8", "int8", "int8"),
    _s("w8a16", "int8", "fp16"),            # weights-only, half-precision activations
    _s("w4a16", "int4", "fp16"),            # e.g. GPTQ / AWQ LLM deployments
    _s("w4a8", "int4", "int8"),
    _s("int4", "int4", "int4"),             # = w4a4
    _s("w4a4", "int4", "int4"),
    _s("binary", "int1", "int1"),           # XNOR-Net: binary weights and activations
    _s("w1a1", "int1", "int1"),
    _s("w8", "int8", None),                 # weights-only, activations as the model's
    _s("w4", "int4", None),
)}

# Bit widths in a mixed-precision file: weights and activations at that width.
BIT_WIDTHS: dict[int, str] = {32: "fp32", 16: "fp16", 8: "int8", 4: "int4", 1: "binary"}


def scheme(name: str | int) -> QuantScheme:
    """A scheme by name (``int8``, ``w4a16``) or bit width (8 -> int8)."""
    if isinstance(name, int) and not isinstance(name, bool):
        if name not in BIT_WIDTHS:
            raise UnknownNameError(f"no scheme for {name} bits",
                                   f"use one of {', '.join(map(str, BIT_WIDTHS))} bits")
        return SCHEMES[BIT_WIDTHS[name]]
    key = str(name).strip().lower()
    if key not in SCHEMES:
        raise UnknownNameError(f"unknown quantization scheme {name!r}",
                               did_you_mean(key, SCHEMES))
    return SCHEMES[key]


def quantize(graph: ModelGraph, qs: QuantScheme | str, select: Selection = ALL) -> ModelGraph:
    """Every selected op computed in ``qs`` (weights of matrix layers and embeddings too)."""
    qs = scheme(qs) if isinstance(qs, str) else qs
    ops = select.pick(graph, graph.ops)
    attrs = {op.name: a for op in ops if (a := qs.attrs(op))}
    return with_attrs(graph, attrs, renamed(graph, qs.name))


def quantize_kv(graph: ModelGraph, dtype: str) -> ModelGraph:
    """The KV cache stored (written and read) in ``dtype``, e.g. int8 or fp8."""
    name = lookup_dtype(dtype).name
    ops = [op for op in graph.ops if any(t.role == "kv" for t in (*op.inputs, *op.outputs))]
    return with_attrs(graph, {op.name: {"kv_dtype": name} for op in ops},
                      renamed(graph, f"kv{name}"))


def mixed_precision(graph: ModelGraph, plan: Sequence[tuple[str, str | int]],
                    default: str | int | None = None, label: str = "mixed") -> ModelGraph:
    """Per-layer schemes: the first (op-name glob, scheme) of ``plan`` matching an op wins;
    ops matching none get ``default`` (None or "none": left as they are)."""
    rules = [(pat, None if str(s).lower() in ("none", "keep") else scheme(s))
             for pat, s in plan]
    fallback = None if default is None or str(default).lower() in ("none", "keep") \
        else scheme(default)
    attrs: dict[str, dict[str, Any]] = {}
    for op in graph.ops:
        hit = next((i for i, (pat, _) in enumerate(rules)
                    if fnmatch.fnmatchcase(op.name, pat)), None)
        qs = fallback if hit is None else rules[hit][1]
        if qs is not None and (a := qs.attrs(op)):
            attrs[op.name] = a
    return with_attrs(graph, attrs, renamed(graph, label))


def load_bit_widths(path: str | Path) -> tuple[list[tuple[str, str | int]], str | int | None]:
    """Read a mixed-precision file: ``default:`` and ``layers:`` (op-name glob -> scheme
    name or bit width, first match wins). Every problem is reported at once."""
    p = Path(path)
    d = read_yaml(p)
    problems: list[str] = []
    if not isinstance(d, Mapping):
        raise SpecError(f"{p}: a bit-width file must be a mapping with layers:",
                        "see the README, section Compression")
    for k in d:
        if k not in ("default", "layers"):
            problems.append(f"{k}: unknown key ({did_you_mean(str(k), ['default', 'layers'])})")
    layers = d.get("layers") or {}
    if not isinstance(layers, Mapping):
        problems.append("layers: must map op-name patterns to schemes or bit widths")
        layers = {}
    plan = [(str(k), v) for k, v in layers.items()]
    entries = [(f"layers.{k}", v) for k, v in plan]
    if "default" in d:
        entries.insert(0, ("default", d["default"]))
    for key, value in entries:
        if str(value).lower() in ("none", "keep"):
            continue
        try:
            scheme(value)
        except UnknownNameError as exc:
            problems.append(f"{key}: {exc.message} ({exc.hint})")
    raise_problems(str(p), problems, "fix these keys (format: README, section Compression)")
    return plan, d.get("default")


def _preset_ends(qs: str) -> Callable[[ModelGraph], ModelGraph]:
    def apply(graph: ModelGraph) -> ModelGraph:
        return quantize(graph, qs, Selection(skip_first=True, skip_last=True))
    return apply


def _preset_sensitive(graph: ModelGraph) -> ModelGraph:
    """int8 everywhere but the first and last layers and depthwise convs, kept in fp16."""
    ends = weighted_layers(graph)
    keep = {ends[0].name, ends[-1].name} if ends else set()
    keep |= {op.name for op in graph.ops if op.attr("depthwise", False)}
    plan = [(name, "fp16") for name in sorted(keep)]
    return mixed_precision(graph, plan, "int8", "sensitive")


# Sensitivity-aware presets. First and last layers stay wide (XNOR-Net sec. 4; GPTQ,
# Frantar et al. ICLR 2023, quantizes the transformer blocks and keeps embeddings and the
# output layer in fp16); depthwise convs lose the most accuracy at int8 (Sheng et al., "A
# quantization-friendly separable convolution for MobileNets", 2018).
PRESETS: dict[str, Callable[[ModelGraph], ModelGraph]] = {
    "int8-ends": _preset_ends("int8"),
    "w4a16-ends": _preset_ends("w4a16"),
    "sensitive": _preset_sensitive,
}
