"""Job: what a model is asked to run — phase, batch, sequence length, dtypes, optimizer.

A run is three separate inputs (STYLE.md, after Calculon): what (a model and a Job), how (a
:class:`~perfmodel.workload.plan.ParallelPlan`) and where (a device or a system). The Job is
the "what": the same record describes one forward pass priced by the roofline, a decode step
whose memory is checked, and a training step split over a thousand devices.

``batch`` is the batch of the whole run: sequences (or samples) per step over all devices —
a training step's global batch, or the sequences served together at inference. A plan
splits it (``ParallelPlan.micro_batch``, ``micro_batches``). ``seq`` is the tokens per
sequence (the KV-cache length for decode); None means the model's default.

>>> Job(phase="decode", batch=8, seq=4096, kv_dtype="fp8").kv_dtype
'fp8'
>>> Job(phase="serve")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
perfmodel.errors.UnknownNameError: unknown phase 'serve' (hint: choose one of: decode, ...)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

import numpy as np

from perfmodel.errors import PerfModelError, PlanError, ShapeError, UnknownNameError, did_you_mean
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.precision import GEMM_RECIPES
from perfmodel.workload.training import OPTIMIZERS

__all__ = ["Job", "PHASES", "PRECISIONS", "LIMITS", "check_positive", "phase_dims",
           "record_from_dict"]

R = TypeVar("R")

PHASES = ("inference", "prefill", "decode", "train")

# Training precision: mixed (16-bit weights and gradients, fp32 master weights and optimizer
# states; Micikevicius et al. 2018), fp32, or half (everything in the 16-bit dtype).
PRECISIONS = ("mixed", "fp32", "half")


def phase_dims(phase: str, batch: int, seq: int) -> dict[str, int]:
    """Values of the graph symbols for a phase (perfmodel.graph.op): B batch, S new tokens,
    T attended context (the KV-cache length), L tokens that need logits."""
    if phase == "decode":
        return {"B": batch, "S": 1, "T": seq, "L": 1}
    if phase == "train":
        return {"B": batch, "S": seq, "T": seq, "L": seq}
    return {"B": batch, "S": seq, "T": seq, "L": 1}


# Plausibility guards: the largest size of each kind perfmodel takes. Past them a number is
# a typo (an exponent too many), not a run: 2**24 sequences or samples is a thousand times
# the largest published global batch (LLM pre-training runs use ~16 M tokens = ~4 K
# sequences per step); 2**24 tokens is above every model's context today (Llama 4 Scout:
# 10 M); 2**20 devices of one parallel degree is a thousand times today's largest clusters.
LIMITS: dict[str, int] = {"batch": 2**24, "seq": 2**24, "micro_batch": 2**24,
                          "parallel": 2**20}


def check_positive(name: str, value: Any, error: type[Exception] = ShapeError,
                   flag: str = "", limit: int | None = None) -> None:
    """One clear error for a size that is not a positive integer (bools are not sizes) or
    is past ``limit`` (default: ``LIMITS[name]``, if any); the hint names the command-line
    ``flag`` (default: the name with dashes)."""
    flag = flag or "--" + name.replace("_", "-")
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise error(f"{name} must be a positive integer, got {value!r}",
                    f"pass {flag} 1 or more")
    top = LIMITS.get(name) if limit is None else limit
    if top is not None and value > top:
        raise error(f"{name} {value:,} is past perfmodel's limit of {top:,} (a typo?)",
                    f"pass {flag} up to {top:,}")


@dataclass(frozen=True, kw_only=True)
class Job:
    """What is run: ``phase`` (inference | prefill | decode | train), ``batch`` (sequences
    or samples per step over all devices), ``seq`` (tokens per sequence; decode: the KV
    length; None: the model's default), ``dtype`` (compute and activations),
    ``weight_dtype`` / ``kv_dtype`` (default: ``dtype``), and for training ``optimizer``,
    ``precision`` and ``gemm_recipe`` (None: GEMMs in ``dtype``; else one of
    perfmodel.workload.precision.GEMM_RECIPES, e.g. "fp8-delayed", for training jobs only:
    inference quantization is ``weight_dtype`` / ``kv_dtype`` and compressed graphs).
    Checked when made: a bad value raises one error with its fix."""

    phase: str = "inference"
    batch: int = 1
    seq: int | None = None
    dtype: str = "fp16"
    weight_dtype: str | None = None
    kv_dtype: str | None = None
    optimizer: str = "adam"
    precision: str = "mixed"
    gemm_recipe: str | None = None

    def __post_init__(self) -> None:
        for name, value, choices in (("phase", self.phase, PHASES),
                                     ("optimizer", self.optimizer, tuple(OPTIMIZERS)),
                                     ("precision", self.precision, PRECISIONS)):
            if value not in choices:
                raise UnknownNameError(f"unknown {name} {value!r}",
                                       did_you_mean(str(value), choices))
        check_positive("batch", self.batch)
        if self.seq is not None:
            check_positive("seq", self.seq)
        for name in ("dtype", "weight_dtype", "kv_dtype"):
            if getattr(self, name) is not None:
                lookup_dtype(getattr(self, name))  # UnknownNameError with a hint
        if self.gemm_recipe is not None:
            if self.gemm_recipe not in GEMM_RECIPES:
                raise UnknownNameError(f"unknown gemm recipe {self.gemm_recipe!r}",
                                       did_you_mean(str(self.gemm_recipe), GEMM_RECIPES))
            if self.phase != "train":
                raise PlanError(f"gemm_recipe {self.gemm_recipe!r} prices training GEMMs; "
                                f"this job's phase is {self.phase!r}",
                                "drop gemm_recipe, or quantize inference with weight_dtype "
                                "/ kv_dtype")

    @property
    def train(self) -> bool:
        return self.phase == "train"

    @property
    def weights(self) -> str:
        """The dtype weights are stored in (``weight_dtype``, else ``dtype``)."""
        return self.weight_dtype or self.dtype

    @property
    def kv(self) -> str:
        """The dtype of the KV cache (``kv_dtype``, else ``dtype``)."""
        return self.kv_dtype or self.dtype

    def with_seq(self, default: int) -> Job:
        """This job with ``seq`` set (the model's default where it is None)."""
        return self if self.seq is not None else replace(self, seq=default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Job:
        return record_from_dict(cls, d, "job", ShapeError)


def record_from_dict(cls: type[R], d: Any, what: str, error: type[PerfModelError]) -> R:
    """A record (Job, ParallelPlan) from a plain dict of its fields: one error for a non-
    mapping, one UnknownNameError (with a did-you-mean) for an unknown field."""
    if not isinstance(d, dict):
        raise error(f"a {what} is a mapping of fields, got {type(d).__name__}",
                    f"pass a dict like {cls.__name__}().to_dict()")
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(d) - names)
    if unknown:
        raise UnknownNameError(f"unknown {what} field(s) {unknown}",
                               did_you_mean(unknown[0], names))
    return cls(**d)
