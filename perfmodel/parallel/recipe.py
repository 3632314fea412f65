"""Training framework recipes: a published split of a model over GPUs, as data.

A recipe (``recipes/<framework>/<recipe>.yaml``, shipped in the wheel; format in
docs/recipe_format.md) is what a framework ships to train one model: the parallel plan, the
global batch, sequence and dtype, the GEMM precision recipe, the GPU count and system it was
published for, each figure ``{value, source}`` citing the framework's file. Framework-wide
figures (the memory a framework leaves unusable, its MFU convention, its defaults) live in
``recipes/_frameworks.yaml``; a recipe inherits a framework default it does not set.

A recipe is addressed as ``framework:recipe`` (case-insensitive), or by the path of a YAML
file of the same format.

>>> r = load_recipe("nemo:llama3-70b")
>>> r.model, r.reference_gpus, r.mfu_convention
('llama-3-70b', 32, 'megatron')
>>> p = r.plan(64)
>>> p.data_parallel, p.tensor_parallel, p.pipeline_parallel, p.context_parallel
(2, 4, 4, 2)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from perfmodel.errors import PlanError, SpecError, UnknownNameError, did_you_mean
from perfmodel.files import data_dir, read_yaml
from perfmodel.hardware.checks import Checker, begin_checks
from perfmodel.parallel.mfu import CONVENTIONS
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan, plan_for_devices

__all__ = ["Recipe", "load_recipe", "list_recipes", "recipe_from_dict", "recipes_dir",
           "GEMM_RECIPES", "PLAN_KEYS"]

DOC = "docs/recipe_format.md"
GEMM_RECIPES = (None, "fp8-delayed", "fp8-current", "fp8-blockwise", "mxfp8", "nvfp4", "mxfp4")
# plan keys a recipe may set -> the type of their value (ParallelPlan's fields, and those the
# plan is gaining: they are kept on the Recipe and passed once ParallelPlan has them)
PLAN_KEYS: dict[str, type] = {
    "tensor_parallel": int, "pipeline_parallel": int, "context_parallel": int,
    "expert_parallel": int, "virtual_stages": int, "micro_batch": int, "schedule": str,
    "zero_stage": int, "recompute": str, "sequence_parallel": bool,
    "overlap_grad_reduce": bool, "context_kind": str, "moe_capacity_factor": float,
    "moe_imbalance": float, "shard_group": int, "reduce_dtype": str,
    "attention_dropout": bool, "quantized_all_gather": bool, "hidden_dropout": bool,
    "fused_glu": bool, "embedding_as_layers": bool}
JOB_KEYS: dict[str, type] = {"global_batch": int, "seq": int, "dtype": str,
                             "gemm_recipe": str, "batch_scales": bool, "optimizer": str}
JOB_REQUIRED = ("global_batch", "seq", "dtype", "batch_scales")
TOP = {"schema", "framework", "name", "model", "sources", "plan", "job", "reference",
       "reserve_gb", "tp_comm_overlap", "notes"}
REQUIRED = ("schema", "framework", "name", "model", "plan", "job", "reference")
# framework defaults a recipe inherits where it does not set them
DEFAULT_KEYS: dict[str, type] = {"overlap_grad_reduce": bool, "zero_stage": int,
                                 "tp_comm_overlap": bool, "gemm_recipe": str}


@dataclass(frozen=True)
class Recipe:
    """One framework's recipe for one model (see the module docstring). ``plan_fields``
    holds the plan keys the recipe (or its framework's defaults) set; ``reserve_gb`` is the
    memory the framework leaves unusable per device, in GB (1e9 B)."""

    framework: str
    name: str
    model: str
    plan_fields: Mapping[str, Any]
    global_batch: int
    seq: int
    dtype: str
    gemm_recipe: str | None
    batch_scales: bool
    reference_gpus: int
    reference_system: str | None
    reserve_gb: float
    mfu_convention: str
    optimizer: str = "adam"
    tp_comm_overlap: bool = False
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    notes: str = ""
    path: str = ""

    @property
    def ref(self) -> str:
        """``framework:name``, the name to load it by."""
        return f"{self.framework}:{self.name}"

    def _model_split(self) -> int:
        f = self.plan_fields
        return (int(f.get("tensor_parallel", 1)) * int(f.get("pipeline_parallel", 1))
                * int(f.get("context_parallel", 1)))

    def plan(self, gpus: int) -> ParallelPlan:
        """The recipe's plan on ``gpus`` devices: data parallel = gpus / (tp x pp x cp).
        Plan keys ParallelPlan does not (yet) have stay on the recipe."""
        split = self._model_split()
        if isinstance(gpus, int) and gpus > 0 and gpus % split:
            raise PlanError(f"{self.ref} splits the model over tp x pp x cp = {split} GPUs; "
                            f"{gpus} is not a multiple of it",
                            f"use a multiple of {split} GPUs (the recipe was published for "
                            f"{self.reference_gpus})")
        known = {f.name for f in dataclasses.fields(ParallelPlan)}
        sizes = {k: v for k, v in self.plan_fields.items() if k in known}
        # an HSDP shard group is checked against the data-parallel size, which
        # plan_for_devices works out first: it is set once that size is known
        group = {k: sizes.pop(k) for k in ("shard_group",) if k in sizes}
        return dataclasses.replace(plan_for_devices(gpus, **sizes), **group)

    def batch(self, gpus: int) -> int:
        """Sequences per step on ``gpus`` devices: the recipe's global batch, scaled by
        gpus / reference GPUs if the recipe's batch is per device (``batch_scales``)."""
        if not self.batch_scales:
            return self.global_batch
        scaled, rest = divmod(self.global_batch * gpus, self.reference_gpus)
        if rest or scaled <= 0:
            raise PlanError(f"{self.ref}'s batch is per device ({self.global_batch} over "
                            f"{self.reference_gpus} GPUs): {gpus} GPUs give no whole batch",
                            "choose a GPU count that scales the batch to a whole number")
        return scaled

    def job(self, gpus: int) -> Job:
        """The training Job on ``gpus`` devices (batch as :meth:`batch`). ``gemm_recipe`` is
        passed if Job has that field, else it stays on the recipe."""
        extra: dict[str, Any] = ({"gemm_recipe": self.gemm_recipe}
                 if "gemm_recipe" in {f.name for f in dataclasses.fields(Job)} else {})
        return Job(phase="train", batch=self.batch(gpus), seq=self.seq, dtype=self.dtype,
                   optimizer=self.optimizer, **extra)

    def describe(self) -> dict[str, Any]:
        """The recipe as one flat row (list_recipes' columns)."""
        f = self.plan_fields
        return {"recipe": self.ref, "framework": self.framework, "name": self.name,
                "model": self.model, "gpus": self.reference_gpus,
                "system": self.reference_system,
                **{k: f.get(k, 1) for k in ("tensor_parallel", "pipeline_parallel",
                                            "context_parallel", "expert_parallel")},
                "zero_stage": f.get("zero_stage", 0), "global_batch": self.global_batch,
                "seq": self.seq, "dtype": self.dtype, "gemm_recipe": self.gemm_recipe,
                "mfu_convention": self.mfu_convention, "reserve_gb": self.reserve_gb}


def recipes_dir() -> Path:
    """The shipped recipes (package data, or the checkout's ``recipes/``)."""
    return data_dir("recipes")


def _text(c: Checker, path: str, d: Any, allowed: tuple[Any, ...] | None = None,
          nullable: bool = False) -> str | None:
    """A string figure {value: ..., source: ...}, optionally one of ``allowed``."""
    raw = d.get("value") if isinstance(d, Mapping) else None
    c.leaf(path, {**d, "value": 1} if isinstance(d, Mapping) else d)  # the source
    if raw is None and nullable and isinstance(d, Mapping):
        return None
    if not isinstance(raw, str) or not raw:
        c.add(f"{path}.value", f"must be a name, got {raw!r}")
        return None
    if allowed is not None and raw not in allowed:
        names = [a for a in allowed if a is not None]
        c.add(f"{path}.value", f"must be one of {', '.join(names)}"
              f"{' or null' if None in allowed else ''}, got {raw!r} "
              f"({did_you_mean(raw, names)})")
        return None
    return raw


def _figure(c: Checker, path: str, d: Any, kind: type, allowed: Any = None) -> Any:
    """One {value, source} figure of ``kind`` (int, float, bool, str); whole numbers are
    positive but for a ZeRO stage."""
    if kind is str:
        return _text(c, path, d, allowed, nullable=allowed is not None and None in allowed)
    if kind is bool:
        return c.leaf(path, d, bool)
    v = c.leaf(path, d, float, positive=kind is int and not path.endswith("zero_stage"))
    if v is None or (isinstance(d, Mapping) and d.get("value") is None):
        return None
    if kind is int and float(v) != int(v):
        c.add(f"{path}.value", f"must be a whole number, got {v}")
        return None
    return int(v) if kind is int else float(v)


def _section(c: Checker, name: str, d: Any, keys: Mapping[str, type],
             choices: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not c.keys(name, d, set(keys)):
        return out
    for k, v in d.items():
        if k in keys:
            val = _figure(c, f"{name}.{k}", v, keys[k], (choices or {}).get(k))
            if val is not None or k == "gemm_recipe":
                out[k] = val
    return out


def _frameworks(directory: Path) -> dict[str, dict[str, Any]]:
    """The checked framework table: name -> {reserve_gb, mfu_convention, defaults}."""
    path = directory / "_frameworks.yaml"
    d = read_yaml(path)
    c = begin_checks(d, str(path), "framework table", DOC, {"schema", "sources", "frameworks"},
                     ("schema", "frameworks"))
    out: dict[str, dict[str, Any]] = {}
    if c.keys("frameworks", d.get("frameworks"), set(d.get("frameworks") or {})):
        for fw, spec in d["frameworks"].items():
            where = f"frameworks.{fw}"
            if not c.keys(where, spec, {"display_name", "reserve_gb", "mfu_convention",
                                        "defaults"}):
                continue
            out[str(fw)] = {
                "reserve_gb": _figure(c, f"{where}.reserve_gb", spec.get("reserve_gb"), float),
                "mfu_convention": _text(c, f"{where}.mfu_convention",
                                        spec.get("mfu_convention"), tuple(CONVENTIONS)),
                "defaults": _section(c, f"{where}.defaults", spec.get("defaults") or {},
                                     DEFAULT_KEYS, {"gemm_recipe": GEMM_RECIPES})}
    if c.problems:
        raise SpecError(f"{path}: " + "; ".join(c.problems), f"fix the listed keys ({DOC})")
    return out


def recipe_from_dict(d: Any, path: str = "<dict>", directory: Path | None = None) -> Recipe:
    """Check a recipe mapping (every problem at once, with its key path) and freeze it,
    with its framework's defaults from ``directory``'s ``_frameworks.yaml``."""
    frameworks = _cached_frameworks(str(directory or recipes_dir()))
    c = begin_checks(d, path, "recipe", DOC, TOP, REQUIRED)
    if d.get("schema") not in (None, 1):
        c.add("schema", f"unknown schema {d.get('schema')!r} (this perfmodel reads schema 1)")
    fw = str(d.get("framework", "")).lower()
    if "framework" in d and fw not in frameworks:
        c.add("framework", f"unknown framework {d['framework']!r} "
                           f"({did_you_mean(fw, frameworks)})")
    plan = _section(c, "plan", d.get("plan") or {}, PLAN_KEYS)
    job = _section(c, "job", d.get("job") or {}, JOB_KEYS, {"gemm_recipe": GEMM_RECIPES})
    for k in JOB_REQUIRED:
        if isinstance(d.get("job"), Mapping) and k not in d["job"]:
            c.add(f"job.{k}", "missing required key")
    ref = _section(c, "reference", d.get("reference") or {}, {"gpus": int, "system": str})
    if isinstance(d.get("reference"), Mapping) and "gpus" not in d["reference"]:
        c.add("reference.gpus", "missing required key")
    reserve = _figure(c, "reserve_gb", d["reserve_gb"], float) if "reserve_gb" in d else None
    overlap = _figure(c, "tp_comm_overlap", d["tp_comm_overlap"], bool) \
        if "tp_comm_overlap" in d else None
    if c.problems:
        raise SpecError(f"{path}: " + "; ".join(c.problems), f"fix the listed keys ({DOC})")
    base = frameworks[fw]
    defaults = base["defaults"]
    plan = {**{k: defaults[k] for k in ("overlap_grad_reduce", "zero_stage") if k in defaults},
            **plan}
    return Recipe(
        framework=fw, name=str(d["name"]).lower(), model=str(d["model"]), plan_fields=plan,
        global_batch=job["global_batch"], seq=job["seq"], dtype=job["dtype"],
        gemm_recipe=job.get("gemm_recipe"), batch_scales=bool(job["batch_scales"]),
        reference_gpus=ref["gpus"], reference_system=ref.get("system"),
        reserve_gb=float(reserve if reserve is not None else base["reserve_gb"]),
        mfu_convention=str(base["mfu_convention"]), optimizer=job.get("optimizer", "adam"),
        tp_comm_overlap=bool(overlap if overlap is not None
                             else defaults.get("tp_comm_overlap", False)),
        sources={k: str(v) for k, v in (d.get("sources") or {}).items()},
        notes=str(d.get("notes") or ""), path=path)


@lru_cache(maxsize=4)
def _cached_frameworks(directory: str) -> dict[str, dict[str, Any]]:
    return _frameworks(Path(directory))


@lru_cache(maxsize=4)
def _index(directory: str) -> dict[str, Path]:
    """``framework:name`` (lower case) -> file, for every shipped recipe."""
    return {f"{p.parent.name}:{p.stem}".lower(): p
            for p in sorted(Path(directory).glob("*/*.yaml"))}


def load_recipe(ref: str | Path, directory: Path | None = None) -> Recipe:
    """A shipped recipe by ``framework:name`` (case-insensitive), or a user's recipe YAML
    by path (its framework must be one of ``_frameworks.yaml``'s).

    Raises
    ------
    UnknownNameError
        No shipped recipe of that name (the hint names the nearest).
    SpecError
        The file is malformed: every problem, with its key path.
    """
    folder = str(directory or recipes_dir())
    key = str(ref)
    path = Path(key)
    if key.endswith((".yaml", ".yml")) or path.is_file():
        return recipe_from_dict(read_yaml(path), str(path), Path(folder))
    idx = _index(folder)
    hit = idx.get(key.strip().lower())
    if hit is None:
        raise UnknownNameError(f"unknown recipe {key!r}",
                               did_you_mean(key.strip().lower(), idx)
                               + f" (list them with list_recipes(), format: {DOC})")
    return recipe_from_dict(read_yaml(hit), f"{hit.parent.name}/{hit.name}", Path(folder))


def list_recipes(directory: Path | None = None) -> pd.DataFrame:
    """Every shipped recipe, one row each (``Recipe.describe``'s columns), by name."""
    folder = str(directory or recipes_dir())
    rows = [load_recipe(ref, Path(folder)).describe() for ref in _index(folder)]
    return pd.DataFrame(rows).sort_values("recipe", ignore_index=True)
