"""Plan search: every valid (dp, tp, pp, cp, ep, schedule, v, micro-batch, ZeRO / HSDP,
recompute) plan for a model, a system and a global batch; those that do not fit in what the
framework leaves of a device are rejected, the rest ranked by step time, time to train or
cost.

The footprint is evaluated vectorized (numpy, one ``footprint`` call per group of plans
that differ only in their dp, tp and pp); per-device roofline times are computed once per
(tp, micro-batch, sequence parallel, recompute) and whatever else ``stage_times`` is told
(expert / context parallel sizes, the GEMM recipe), with ZeRO's optimizer sharding applied
to the cached times, and the collectives are cached, so each plan costs a few arithmetic
operations. Sequence parallelism is on whenever tp > 1 (Korthikanti et al. 2023 recommend
it with selective recomputation); tensor parallelism stays inside a node (Narayanan et al.
2021, sec. 3.3: "use tensor model parallelism up to the number of GPUs in a server").
Expert-parallel ranks are carved out of the data- and context-parallel ones (Megatron-Core
``initialize_model_parallel``), so ep divides both the routed experts and dp x cp.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.memory import footprint
from perfmodel.analytic.pipeline import check_pipeline
from perfmodel.errors import PerfModelError, PlanError, UnknownNameError, did_you_mean
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import SystemSpec
from perfmodel.parallel.context import check_ulysses
from perfmodel.parallel.partition import LayerCosts, StageTimes, layer_costs, shape_of, stage_times
from perfmodel.parallel.recipe import _cached_frameworks, recipes_dir
from perfmodel.parallel.step import step_from_costs
from perfmodel.progress import track
from perfmodel.workload.job import Job
from perfmodel.workload.plan import SCHEDULES, ParallelPlan

__all__ = ["search_plans", "candidate_plans", "PlanSearch", "SEARCH_COLUMNS", "RANK_KEYS",
           "time_to_train_h", "training_cost", "context_split_ok", "memory_reserve",
           "check_money", "least_framework_reserve"]

SEARCH_COLUMNS = ("rank", "dp", "tp", "pp", "ep", "cp", "cp_kind", "schedule", "v",
                  "micro_batch", "m", "zero", "shard", "recompute", "sp", "gemm", "step_s",
                  "tokens_per_s", "mfu", "hfu", "bubble", "hours", "cost", "memory_GB",
                  "usable_GB", "fits")
RANK_KEYS = ("step_s", "hours", "cost", "memory_GB")
MICRO_BATCHES = (1, 2, 4, 8)
VIRTUAL = (2, 3, 4, 6, 8)
RECOMPUTES = ("none", "selective", "full")
# Schedules searched by default, where the plan record knows them: 1F1B, interleaved 1F1B
# and the zero-bubble ones that need no more memory than 1F1B (ZB-H1, Qi et al. 2024) or
# that DeepSeek-V3 trains with (DualPipe: even pp, m >= 2 pp; check_pipeline says which).
DEFAULT_SCHEDULES = ("1f1b", "interleaved", "zb-h1", "dualpipe")
# Context parallelism is searched from this sequence length up: below it attention is a
# small share of a layer, so the KV exchange has little to hide under (a heuristic; pass
# context_parallel= to search it anyway); each rank keeps at least CP_MIN_TOKENS tokens.
CP_MIN_SEQ = 8192
CP_MIN_TOKENS = 2048
# plan fields a search copies from its base plan instead of searching them
_BASE_FIELDS = ("overlap_grad_reduce", "attention_dropout", "reduce_dtype",
                "moe_capacity_factor", "moe_imbalance", "moe_node_limit")
# the plan / job fields stage_times may take besides its positional sizes (passed only if
# it names them, so the search prices what predict_step prices before and after they land)
_TIMES_EXTRAS = ("expert_parallel", "context_parallel", "context_kind", "moe_capacity_factor",
                 "moe_imbalance", "moe_node_limit", "gemm_recipe")


@dataclass(frozen=True)
class PlanSearch:
    """The ranked plans (``table``, columns SEARCH_COLUMNS; ``hours`` only with ``tokens``,
    ``cost`` only with a price) and the search's size: plans considered (``candidates``),
    plans that fit in ``usable_bytes`` = capacity - reserve (``fitting``), and what was
    assumed (``assumptions``: the reserve's source, the ranking)."""

    table: pd.DataFrame = field(repr=False)
    candidates: int
    fitting: int
    capacity_bytes: float
    reserve_bytes: float = 0.0
    tokens: float | None = None
    price_per_gpu_hour: float | None = None
    assumptions: dict[str, str] = field(default_factory=dict)

    @property
    def usable_bytes(self) -> float:
        """Bytes per device a plan may use: the capacity less the framework's reserve."""
        return self.capacity_bytes - self.reserve_bytes


def time_to_train_h(tokens: float, tokens_per_s: Any) -> Any:
    """Hours to train ``tokens`` tokens at ``tokens_per_s``.

    >>> time_to_train_h(3.6e9, 1e6)
    1.0
    """
    return tokens / tokens_per_s / 3600.0


def training_cost(hours: Any, devices: int, price_per_gpu_hour: float) -> Any:
    """Dollars of ``hours`` on ``devices`` devices at ``price_per_gpu_hour``.

    >>> training_cost(2.0, 8, 3.0)
    48.0
    """
    return hours * devices * price_per_gpu_hour


def context_split_ok(shape: ModelShape, tensor_parallel: int, context_parallel: int,
                     kind: str) -> bool:
    """Whether a context-parallel split works for these heads: ring attention passes KV
    chunks and splits no heads; Ulysses all-to-alls the heads over the c ranks, so the
    query and KV heads of a tensor-parallel rank divide by c (``context.check_ulysses``,
    the rule the step model applies)."""
    if kind != "ulysses" or context_parallel == 1:
        return True
    try:
        check_ulysses(shape.num_attention_heads // tensor_parallel,
                      max(shape.num_key_value_heads // tensor_parallel, 1), context_parallel)
    except PlanError:
        return False
    return True


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class _Space:
    """What the enumeration may choose from (each axis already restricted by the caller)."""

    devices: int
    batch: int
    seq: int
    per_node: int
    schedules: tuple[str, ...]
    expert: tuple[int, ...] | None
    context: tuple[int, ...] | None
    shard_groups: bool


def _context_sizes(space: _Space, rest: int) -> list[int]:
    if space.context is not None:
        return [c for c in space.context if rest % c == 0]
    if space.seq < CP_MIN_SEQ:
        return [1]
    return [c for c in _divisors(rest)
            if space.seq % (2 * c) == 0 and space.seq // c >= CP_MIN_TOKENS]


def _expert_sizes(shape: ModelShape, space: _Space, dp_cp: int) -> list[int]:
    experts = shape.num_local_experts if shape.is_moe else 1
    sizes = space.expert if space.expert is not None else _divisors(experts)
    return [e for e in sizes if experts % e == 0 and dp_cp % e == 0]


def _layouts(shape: ModelShape, space: _Space) -> Iterator[tuple[int, int, int, str, int, int]]:
    """(tp, pp, cp, cp kind, ep, dp) of every split of the devices."""
    heads, layers = shape.num_attention_heads, shape.num_hidden_layers
    for tp in (t for t in _divisors(space.per_node) if heads % t == 0):
        for pp in (p for p in _divisors(layers) if space.devices % (tp * p) == 0):
            rest = space.devices // (tp * pp)
            for cp in _context_sizes(space, rest):
                kinds = ("ring",) if cp == 1 else tuple(
                    k for k in ("ring", "ulysses") if context_split_ok(shape, tp, cp, k))
                for kind, ep in itertools.product(
                        kinds, _expert_sizes(shape, space, rest)):
                    yield tp, pp, cp, kind, ep, rest // cp


def _schedules(space: _Space, pp: int, m: int, layers: int) -> list[tuple[str, int]]:
    out = []
    for sched in space.schedules if pp > 1 else ("1f1b",):
        vs = [v for v in VIRTUAL if layers % (pp * v) == 0] if sched == "interleaved" else [1]
        for v in vs:
            try:
                check_pipeline(pp, m, sched, v)
            except PerfModelError:
                continue
            out.append((sched, v))
    return out


def _sharding(space: _Space, pp: int, dp: int, tp: int, cp: int) -> list[tuple[int, int | None]]:
    """(ZeRO stage, HSDP group): 0 and 1 with dp > 1, and without pipelining ZeRO 3 over
    all of dp or (HSDP) over the data-parallel ranks of a node or of one node's worth."""
    if dp == 1:
        return [(0, None)]
    out: list[tuple[int, int | None]] = [(0, None), (1, None)]
    if pp == 1:
        out.append((3, None))
        if space.shard_groups:
            groups = {max(1, space.per_node // (tp * cp)), space.per_node}
            out += [(3, g) for g in sorted(groups) if 1 < g < dp and dp % g == 0]
    return out


def candidate_plans(graph: ModelGraph, devices: int, global_batch: int,
                    devices_per_node: int, *, seq: int | None = None,
                    schedules: Sequence[str] | None = None,
                    expert_parallel: Sequence[int] | None = None,
                    context_parallel: Sequence[int] | None = None,
                    shard_groups: bool = True,
                    base: ParallelPlan | None = None) -> list[ParallelPlan]:
    """Every plan the step model accepts: tp a divisor of the heads up to a node, pp a
    divisor of the layers, cp (from ``CP_MIN_SEQ`` tokens, ring or Ulysses where the heads
    split), ep a divisor of the routed experts and of dp x cp, dp = devices / (tp pp cp)
    dividing the global batch with the micro-batch, each schedule where its pipeline rules
    allow (interleaving where Megatron-LM allows it), ZeRO 0/1 (3 and HSDP only without
    pipelining), and each recompute mode. ``base`` gives the fields not searched."""
    shape = shape_of(graph)
    space = _Space(devices, global_batch, int(seq or graph.default_seq), devices_per_node,
                   tuple(s for s in (schedules or DEFAULT_SCHEDULES) if s in SCHEDULES),
                   tuple(expert_parallel) if expert_parallel else None,
                   tuple(context_parallel) if context_parallel else None, shard_groups)
    kept = {k: getattr(base, k) for k in _BASE_FIELDS} if base else {}
    out = []
    for tp, pp, cp, kind, ep, dp in _layouts(shape, space):
        for mb in MICRO_BATCHES:
            if global_batch % (dp * mb):
                continue
            m = global_batch // (dp * mb)
            for (sched, v), (zero, shard), rc in itertools.product(
                    _schedules(space, pp, m, shape.num_hidden_layers),
                    _sharding(space, pp, dp, tp, cp), RECOMPUTES):
                try:
                    out.append(ParallelPlan(
                        data_parallel=dp, tensor_parallel=tp, pipeline_parallel=pp,
                        context_parallel=cp, context_kind=kind, expert_parallel=ep,
                        micro_batch=mb, schedule=sched, virtual_stages=v, zero_stage=zero,
                        shard_group=shard, recompute=rc, sequence_parallel=tp > 1, **kept))
                except PerfModelError:  # a rule of the plan record this enumeration missed
                    continue
    return out


def _memory(graph: ModelGraph, plans: list[ParallelPlan], jobs: list[Job],
            device: DeviceSpec) -> np.ndarray:
    """Per-device bytes of each plan: one vectorized footprint per group of plans (and
    jobs) that differ only in their dp, tp and pp."""
    total = np.zeros(len(plans))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, (p, job) in enumerate(zip(plans, jobs, strict=True)):
        key = replace(p, data_parallel=1, tensor_parallel=1, pipeline_parallel=1,
                      sequence_parallel=False, expert_parallel=1, shard_group=None)
        groups.setdefault((key, p.sequence_parallel, p.expert_parallel, p.shard_group, job),
                          []).append(i)
    for (*_, job), idx in groups.items():
        p0 = plans[idx[0]]
        dp, tp, pp = (np.array([getattr(plans[i], k) for i in idx])
                      for k in ("data_parallel", "tensor_parallel", "pipeline_parallel"))
        total[idx] = footprint(graph, p0, job, device=device, data_parallel=dp,
                               tensor_parallel=tp, pipeline_parallel=pp)["total"]
    return total


@lru_cache(maxsize=8)
def _accepted(fn: Any) -> frozenset[str]:
    return frozenset(inspect.signature(fn).parameters)


def _extras(fn: Any, plan: ParallelPlan, job: Job) -> dict[str, Any]:
    """The optional fields ``fn`` takes (_TIMES_EXTRAS), from the plan or the job."""
    names = _accepted(fn)
    return {k: getattr(plan, k, getattr(job, k, None)) for k in _TIMES_EXTRAS if k in names}


class _Pricer:
    """Layer costs per job and stage times per key, computed once each (the search's two
    caches); ZeRO's sharding of the optimizer step over dp is applied to the cached times
    (partition.stage_times divides only the optimizer rows by dp)."""

    def __init__(self, graph: ModelGraph, device: DeviceSpec, attention_dropout: bool):
        self.graph, self.device, self.dropout = graph, device, attention_dropout
        self.costs: dict[Job, LayerCosts] = {}
        self.times: dict[tuple[Any, ...], StageTimes] = {}

    def layer_costs(self, job: Job, plan: ParallelPlan) -> LayerCosts:
        if job not in self.costs:
            extra = {k: v for k, v in _extras(layer_costs, plan, job).items()
                     if k == "gemm_recipe"}
            self.costs[job] = layer_costs(self.graph, int(job.seq or 1), job.dtype,
                                          job.optimizer, self.dropout, **extra)
        return self.costs[job]

    def stage_times(self, job: Job, plan: ParallelPlan) -> StageTimes:
        costs = self.layer_costs(job, plan)
        extra = _extras(stage_times, plan, job)
        key = (job, plan.tensor_parallel, plan.micro_batch_of(job.batch),
               plan.sequence_parallel, plan.recompute, tuple(sorted(extra.items())))
        if key not in self.times:
            self.times[key] = stage_times(costs, self.device, *key[1:5], 0, 1, **extra)
        base = self.times[key]
        share = plan.data_parallel if plan.zero_stage >= 1 else 1
        return base if share == 1 else replace(base, layer_opt=base.layer_opt / share,
                                               extras_opt=base.extras_opt / share)


def least_framework_reserve() -> tuple[float, str]:
    """(GB, note): the smallest reserve any framework in ``recipes/_frameworks.yaml`` keeps
    (CUDA context, one NCCL communicator's buffers, allocator slack): what no training run
    can use, whichever framework runs it."""
    frameworks = {k: v["reserve_gb"] for k, v in
                  _cached_frameworks(str(recipes_dir())).items() if v.get("reserve_gb")}
    name = min(frameworks, key=frameworks.__getitem__)
    return float(frameworks[name]), (f"no framework named: the least any framework keeps, "
                                     f"{name}'s (recipes/_frameworks.yaml; pass reserve_gb / "
                                     "--reserve-gb or a recipe)")


def memory_reserve(reserve_gb: float | None, recipe: Any, capacity: float) -> tuple[float, str]:
    """Bytes per device the framework keeps for itself (``reserve_gb``, else the recipe's
    ``reserve_gb``, else the least any framework keeps) and a note of where the figure
    comes from; one PlanError for a negative reserve or one that leaves nothing of
    ``capacity``."""
    if reserve_gb is None and recipe is not None and getattr(recipe, "reserve_gb", None) \
            is not None:
        reserve_gb, note = float(recipe.reserve_gb), \
            f"{getattr(recipe, 'framework', 'the recipe')}'s reserve (recipe)"
    elif reserve_gb is None:
        reserve_gb, note = least_framework_reserve()
    else:
        note = "given"
    if not math.isfinite(reserve_gb) or reserve_gb < 0:
        raise PlanError(f"memory reserve must be 0 GB or more, got {reserve_gb!r}",
                        "pass --reserve-gb 0 .. the device's capacity")
    if reserve_gb * 1e9 >= capacity:
        raise PlanError(f"memory reserve {reserve_gb:g} GB leaves nothing of the device's "
                        f"{capacity / 1e9:.0f} GB", f"pass --reserve-gb below "
                                                    f"{capacity / 1e9:.0f}")
    return reserve_gb * 1e9, f"{reserve_gb:g} GB per device kept by the framework ({note})"


def _jobs(job: Job, gemm_recipes: Sequence[str | None] | None) -> list[Job]:
    if not gemm_recipes:
        return [job]
    if "gemm_recipe" not in {f.name for f in fields(Job)}:
        raise PlanError("this perfmodel prices no low-precision GEMM recipes yet",
                        "search without gemm_recipes")
    return [replace(job, gemm_recipe=r) for r in dict.fromkeys(gemm_recipes)]  # type: ignore[call-arg]


def _row(plan: ParallelPlan, job: Job, r: dict[str, Any], total: float, usable: float,
         ok: bool) -> tuple[Any, ...]:
    return (plan.data_parallel, plan.tensor_parallel, plan.pipeline_parallel,
            plan.expert_parallel, plan.context_parallel, plan.context_kind, plan.schedule,
            plan.virtual_stages, plan.micro_batch_of(job.batch), plan.micro_batches(job.batch),
            plan.zero_stage, plan.shard_group or 0, plan.recompute, plan.sequence_parallel,
            getattr(job, "gemm_recipe", None) or "-", r["step_s"], r["tokens_per_s"],
            r["mfu"], r["hfu"], r["bubble_fraction"], math.nan, math.nan, total / 1e9,
            usable / 1e9, bool(ok))


def _rank(df: pd.DataFrame, rank_by: str, tokens: float | None, price: float | None,
          devices: int) -> pd.DataFrame:
    if tokens is not None:
        df["hours"] = time_to_train_h(tokens, df["tokens_per_s"].to_numpy())
        if price is not None:
            df["cost"] = training_cost(df["hours"], devices, price)
    df = df.drop(columns=[c for c, given in (("hours", tokens), ("cost", price))
                          if given is None])
    if rank_by not in df.columns:
        raise PlanError(f"cannot rank by {rank_by!r} without "
                        + ("tokens" if rank_by == "hours" else "tokens and a price"),
                        "pass tokens= (and price_per_gpu_hour= for cost)")
    df = df.sort_values(["fits", rank_by, "memory_GB"], ascending=[False, True, True],
                        kind="stable", ignore_index=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def check_money(tokens: float | None, price: float | None) -> None:
    """One PlanError for tokens to train or a price per GPU-hour that is not a positive
    number, or a price without the tokens it would pay for."""
    for name, value in (("tokens", tokens), ("price per GPU-hour", price)):
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise PlanError(f"{name} must be a positive number, got {value!r}",
                            "e.g. --tokens 15T --price-per-gpu-hour 2.5")
    if price is not None and tokens is None:
        raise PlanError("a cost needs the tokens to train", "pass --tokens with --price-per-"
                                                             "gpu-hour")


def _check_money(tokens: float | None, price: float | None, rank_by: str | None) -> str:
    check_money(tokens, price)
    key = rank_by or ("cost" if price is not None else "hours" if tokens else "step_s")
    if key not in RANK_KEYS:
        raise UnknownNameError(f"unknown ranking {key!r}", did_you_mean(key, RANK_KEYS))
    return key


def search_plans(graph: ModelGraph, job: Job, system: SystemSpec, devices: int, *,
                 device: DeviceSpec | None = None, top: int | None = 10,
                 include_unfit: bool = False, reserve_gb: float | None = None,
                 recipe: Any = None, base: ParallelPlan | None = None,
                 tokens: float | None = None, price_per_gpu_hour: float | None = None,
                 rank_by: str | None = None, gemm_recipes: Sequence[str | None] | None = None,
                 schedules: Sequence[str] | None = None,
                 expert_parallel: Sequence[int] | None = None,
                 context_parallel: Sequence[int] | None = None,
                 shard_groups: bool = True) -> PlanSearch:
    """Rank the plans of a training ``job`` (its global batch, sequence, dtype and GEMM
    recipe; ``gemm_recipes`` searches those instead) on ``devices`` devices of ``system``
    that fit in capacity - ``reserve_gb`` (None: the ``recipe``'s reserve, else 0, said in
    the assumptions). ``tokens`` adds the hours to train them (tokens / tokens_per_s /
    3600), ``price_per_gpu_hour`` their cost (hours x devices x price); ``rank_by`` one of
    RANK_KEYS (default: cost, else hours, else step_s; with one device count and one
    global batch the three orders agree; ties go to the plan using less memory).
    ``base`` supplies the plan fields not searched (overlap, MoE capacity, ...)."""
    device = device or system.device_spec()
    if devices <= 0:
        raise PlanError("devices must be positive", "pass --gpus 1 or more")
    key = _check_money(tokens, price_per_gpu_hour, rank_by)
    cap = device.memory_capacity
    reserve, reserve_note = memory_reserve(reserve_gb, recipe, cap)
    job = job.with_seq(graph.default_seq)
    plans = candidate_plans(graph, devices, job.batch, system.devices_per_node, seq=job.seq,
                            schedules=schedules, expert_parallel=expert_parallel,
                            context_parallel=context_parallel, shard_groups=shard_groups,
                            base=base)
    jobs = _jobs(job, gemm_recipes)
    pairs = [(p, j) for j in jobs for p in plans]
    if not pairs:
        raise PlanError(f"no plan splits {job.batch} sequences over {devices} devices",
                        "choose a global batch that is a multiple of the device count")
    mem = _memory(graph, [p for p, _ in pairs], [j for _, j in pairs], device)
    usable = cap - reserve
    fits = mem <= usable
    if not fits.any() and not include_unfit:
        raise PlanError(f"no plan of {graph.name} fits in {usable / 1e9:.1f} GB per device "
                        f"({cap / 1e9:.0f} GB less {reserve / 1e9:g} GB reserve) on "
                        f"{devices} devices", "add devices or lower the sequence length")
    pricer = _Pricer(graph, device, bool(base and base.attention_dropout))
    rows = []
    for (plan, pjob), total, ok in track(zip(pairs, mem, fits, strict=True), "pricing plans",
                                         len(pairs)):
        if not ok and not include_unfit:
            continue
        try:
            r = step_from_costs(pricer.layer_costs(pjob, plan), pricer.stage_times(pjob, plan),
                                plan, pjob, system, device)
        except PerfModelError:  # a plan the step model does not price (yet)
            continue
        rows.append(_row(plan, pjob, r, total, usable, ok))
    df = _rank(pd.DataFrame(rows, columns=list(SEARCH_COLUMNS[1:])), key, tokens,
               price_per_gpu_hour, devices)
    notes = {"reserve": reserve_note, "ranking": f"by {key}, those that fit first"}
    return PlanSearch(df.head(top) if top else df, len(pairs), int(fits.sum()), cap, reserve,
                      tokens, price_per_gpu_hour, notes)
