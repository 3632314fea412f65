"""A sweep's grid: the axes of a what-if study, checked, counted and cut into tasks.

A grid is the cartesian product of its axes: models (zoo names or model files), devices
(shipped names or spec files), compression strategies (``perfmodel compress`` syntax; none
by default), phases, batches, sequence lengths, dtypes (the device's default where not given)
and spec overrides (``{dotted path: [values]}``, perfmodel.hardware.overrides). Written as
YAML for ``perfmodel sweep``::

    models: [resnet50, llama-3-8b]
    hw: [a100, h100, my_npu.yaml]
    batch: [1, 8, 64, 256]
    seq: [2048]
    dtype: [fp16, fp8]
    phase: [prefill, decode]
    override:
      memory.bandwidth_GBps: [2000, 4000, 8000]
    fusion: none                    # or epilogue

A phase that does not apply to a model (``decode`` for a CNN) is not a point of the grid, and
a model without a sequence length ignores the ``seq`` axis; ``Grid.points`` counts what is
left. Work is cut into tasks of one model and strategy (one graph), each holding whole
workloads (all devices and overrides of a phase, batch, seq and dtype), so a task is the unit
of parallel work and of resuming.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from perfmodel.analytic.roofline import FUSION_MODES
from perfmodel.errors import PerfModelError, UnknownNameError, did_you_mean
from perfmodel.files import read_yaml
from perfmodel.study.plans import parse_plan
from perfmodel.workload.job import PHASES
from perfmodel.workload.plan import ParallelPlan

__all__ = ["Grid", "Workpoint", "Task", "AXES", "LARGE_GRID", "grid_from_yaml", "tasks_of"]

# the axes a grid may give, in the order the result's columns show them
AXES = ("models", "strategy", "hw", "phase", "batch", "seq", "dtype", "override")
KEYS = (*AXES, "fusion", "system", "plan")
LARGE_GRID = 1_000_000  # points: more than this needs yes=True (perfmodel sweep --yes)


def _tuple(name: str, value: Any) -> tuple[Any, ...]:
    """An axis as a tuple: a scalar is an axis of one value; an empty axis is an error."""
    if value is None:
        return (None,)
    if isinstance(value, str | int | float):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise PerfModelError(f"sweep axis {name!r} must be a list, got {value!r}",
                             f"e.g. {name}: [1, 8]")
    out = tuple(value)
    if not out:
        raise PerfModelError(f"sweep axis {name!r} is empty: the grid has no points",
                             f"give {name} at least one value, or leave it out")
    return out


def _positive_ints(name: str, values: tuple[Any, ...], optional: bool) -> tuple[Any, ...]:
    for v in values:
        if v is None and optional:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise PerfModelError(f"sweep axis {name!r}: {v!r} is not a positive whole number",
                                 f"e.g. {name}: [1, 8, 64]")
        if v > 10**7:
            raise PerfModelError(f"sweep axis {name!r}: {v} is absurdly large",
                                 f"keep {name} at or under 10,000,000")
    return values


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep (see the module docstring). ``override`` maps spec paths to
    their values; ``fusion`` is the roofline's fusion mode for every point. With ``plan``
    (and ``system``) the grid is of training steps instead (perfmodel.study.plans): models x
    systems x plans x batches x seqs x dtypes, no devices or overrides."""

    models: tuple[Any, ...]
    hw: tuple[Any, ...]
    batch: tuple[int, ...] = (1,)
    seq: tuple[int | None, ...] = (None,)
    dtype: tuple[str | None, ...] = (None,)
    phase: tuple[str, ...] = ("inference",)
    strategy: tuple[str | None, ...] = (None,)
    override: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    fusion: str = "none"
    system: tuple[Any, ...] = ()
    plan: tuple[ParallelPlan, ...] = ()

    @classmethod
    def of(cls, *, models: Any, hw: Any = None, batch: Any = 1, seq: Any = None,
           dtype: Any = None, phase: Any = "inference", strategy: Any = None,
           override: Mapping[str, Any] | None = None, fusion: str = "none",
           system: Any = None, plan: Any = None) -> Grid:
        """A grid from axis values (scalars or lists), each checked: one clear error for an
        empty axis, a non-positive batch or seq, an unknown phase or fusion mode, an override
        that is not a list of positive numbers."""
        ph = _tuple("phase", phase)
        for p in ph:
            if p not in PHASES:
                raise UnknownNameError(f"sweep axis 'phase': unknown phase {p!r}",
                                       did_you_mean(str(p), PHASES))
        if fusion not in FUSION_MODES:
            raise UnknownNameError(f"unknown fusion mode {fusion!r}",
                                   did_you_mean(str(fusion), FUSION_MODES))
        if override is not None and not isinstance(override, Mapping):
            raise PerfModelError("override must map spec paths to lists of values",
                                 "e.g. override: {memory.bandwidth_GBps: [2000, 4000]}")
        ov = {}
        for path, values in (override or {}).items():
            vs = _tuple(f"override {path}", values)
            for v in vs:
                if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                    raise PerfModelError(f"override {path}: {v!r} is not a positive number",
                                         f"e.g. {path}: [1000, 2000]")
            ov[str(path)] = tuple(float(v) for v in vs)
        if plan is not None:
            return cls._of_plans(models, system, plan, batch, seq, dtype, ph, hw, override,
                                 strategy)
        if system is not None:
            raise PerfModelError("a system is for plan sweeps (training steps)",
                                 "give plan=[...] too, or devices with hw=[...]")
        if hw is None:
            raise PerfModelError("a sweep needs devices (hw), or systems and plans",
                                 "e.g. hw: [a100, h100]")
        return cls(models=_tuple("models", models), hw=_tuple("hw", hw),
                   batch=_positive_ints("batch", _tuple("batch", batch), False),
                   seq=_positive_ints("seq", _tuple("seq", seq), True),
                   dtype=_tuple("dtype", dtype), phase=ph, strategy=_tuple("strategy", strategy),
                   override=ov, fusion=fusion)

    @classmethod
    def _of_plans(cls, models: Any, system: Any, plan: Any, batch: Any, seq: Any,
                  dtype: Any, phase: tuple[str, ...], hw: Any, override: Any,
                  strategy: Any) -> Grid:
        """A grid of training steps: plans on systems (see the class docstring)."""
        if system is None:
            raise PerfModelError("a plan sweep needs the systems to run on",
                                 "e.g. system: [dgx-a100, dgx-h100]")
        if hw is not None or override or strategy is not None:
            raise PerfModelError("a plan sweep prices training steps on systems: it takes "
                                 "no hw, override or strategy axis",
                                 "sweep devices and plans separately")
        if phase != ("train",) and phase != ("inference",):
            raise PerfModelError("a plan sweep prices training steps: phase is train",
                                 "leave phase out, or give phase: train")
        plans = tuple(parse_plan(p) for p in _tuple("plan", plan))
        return cls(models=_tuple("models", models), hw=(), system=_tuple("system", system),
                   plan=plans, batch=_positive_ints("batch", _tuple("batch", batch), False),
                   seq=_positive_ints("seq", _tuple("seq", seq), True),
                   dtype=_tuple("dtype", dtype), phase=("train",))

    @property
    def settings(self) -> list[dict[str, float]]:
        """Every combination of the override values (one empty setting without overrides)."""
        paths = list(self.override)
        return [dict(zip(paths, vs, strict=True))
                for vs in itertools.product(*(self.override[p] for p in paths))]

    @property
    def size(self) -> int:
        """Points before phases and sequence lengths that do not apply are left out."""
        if self.plan:
            n = len(self.plan) * len(self.system)
            for axis in (self.models, self.batch, self.seq, self.dtype):
                n *= len(axis)
            return n
        n = math.prod(len(v) for v in self.override.values())  # settings, not built
        for axis in (self.models, self.hw, self.batch, self.seq, self.dtype, self.phase,
                     self.strategy):
            n *= len(axis)
        return n

    def check_size(self, yes: bool) -> None:
        """Refuse a grid of more than LARGE_GRID points unless ``yes``."""
        if self.size > LARGE_GRID and not yes:
            raise PerfModelError(
                f"the grid has {self.size:,} points (more than {LARGE_GRID:,})",
                "shrink an axis, or confirm with --yes (yes=True in Python)")

    def key(self) -> str:
        """A digest of the grid, to tell a resumed run's parts from another grid's."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Workpoint:
    """One workload of a task: phase, batch, seq (None: the model's own) and dtype (None:
    each device's default)."""

    phase: str
    batch: int
    seq: int | None
    dtype: str | None


@dataclass(frozen=True)
class Task:
    """A unit of work: one model and strategy, some of its workloads, every device and
    every override setting. ``index`` numbers it in the grid (its part file's name)."""

    index: int
    model: Any
    strategy: str | None
    workpoints: tuple[Workpoint, ...]


def tasks_of(grid: Grid, applies: Mapping[Any, tuple[bool, frozenset[str]]],
             size: int = 16) -> list[Task]:
    """The grid's tasks, in the grid's order. ``applies[model]`` = (has a sequence length,
    phases it runs); phases outside them are left out, the seq axis collapses for a model
    without one. Each (model, strategy) is cut into tasks of at most ``size`` workloads, so a
    pool of workers has work even for one model (and the cut does not depend on the pool)."""
    out: list[Task] = []
    for model, strategy in itertools.product(grid.models, grid.strategy):
        has_seq, phases = applies[model]
        seqs = grid.seq if has_seq else (None,)
        wps = [Workpoint(p, b, s, d) for p, b, s, d in itertools.product(
            grid.phase, grid.batch, seqs, grid.dtype) if p in phases]
        if not wps:
            continue
        for i in range(0, len(wps), size):
            out.append(Task(len(out), model, strategy, tuple(wps[i:i + size])))
    return out


def grid_from_yaml(path: str | Path) -> Grid:
    """A grid from a study YAML file (the module docstring's format): one clear error for a
    missing, binary or malformed file, an unknown key or a missing axis."""
    raw = read_yaml(Path(path))
    if not isinstance(raw, Mapping):
        raise PerfModelError(f"{path}: a study file is a mapping of axes, got "
                             f"{type(raw).__name__}", "see `perfmodel sweep --help` for the "
                             "format: models: [...], hw: [...], batch: [...]")
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise UnknownNameError(f"{path}: unknown key {unknown[0]!r} in the study",
                               did_you_mean(str(unknown[0]), KEYS))
    for need in ("models", "system" if "plan" in raw else "hw"):
        if need not in raw:
            raise PerfModelError(f"{path}: the study gives no {need!r}",
                                 f"add e.g. {need}: [...]")
    return Grid.of(**{k: v for k, v in raw.items()})


def axis_names(grid: Grid) -> Sequence[str]:
    """The columns that identify a point, in order."""
    return ("model", *(("strategy",) if grid.strategy != (None,) else ()), "hw", "device",
            "phase", "batch", "seq", "dtype", *grid.override)
