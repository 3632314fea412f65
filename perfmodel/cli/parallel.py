"""perfmodel parallel MODEL --system SYS --gpus N: a parallel training step (DP x TP x PP x
CP, EP inside DP x CP), or the best plans (--search); --recipe framework:name fills the plan
and the job from a framework's published recipe, explicit flags overriding it."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from typing import Any

import pandas as pd

from perfmodel.cli.memory import model_options
from perfmodel.cli.output import (
    add_allow_oom,
    announce,
    emit_frame,
    fit_warnings,
    to_json,
)
from perfmodel.errors import PerfModelError, PlanError, check_choice
from perfmodel.graph.model_graph import ATTENTION_KERNELS
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system
from perfmodel.parallel.search import (
    check_money,
    memory_reserve,
    search_plans,
    time_to_train_h,
    training_cost,
)
from perfmodel.parallel.step import BREAKDOWN, StepPrediction, gemm_dtype, predict_step
from perfmodel.workload.build import check_context
from perfmodel.workload.job import Job
from perfmodel.workload.plan import (
    CONTEXT_KINDS,
    RECOMPUTE,
    SCHEDULES,
    ParallelPlan,
    plan_for_devices,
)
from perfmodel.zoo.registry import load_model, trace_options

try:  # the low-precision GEMM recipes (perfmodel.workload.precision) ship with Job's field
    from perfmodel.workload.precision import GEMM_RECIPES
except ImportError:  # pragma: no cover - an older tree without them
    GEMM_RECIPES = ()

FP8_SHORTHAND = "fp8-delayed"  # --fp8: Transformer Engine's default recipe (DelayedScaling)
# flag (argparse dest) -> plan field; None from argparse means "not given"
PLAN_FLAGS = {"dp": "data_parallel", "tp": "tensor_parallel", "pp": "pipeline_parallel",
              "ep": "expert_parallel", "cp": "context_parallel", "cp_kind": "context_kind",
              "micro_batch": "micro_batch", "schedule": "schedule",
              "virtual": "virtual_stages", "zero": "zero_stage", "recompute": "recompute",
              "sequence_parallel": "sequence_parallel",
              "capacity_factor": "moe_capacity_factor", "moe_imbalance": "moe_imbalance",
              "moe_node_limit": "moe_node_limit", "shard_group": "shard_group",
              "attention_dropout": "attention_dropout"}
# what a flag left unset means without a recipe (the plan record's own default otherwise)
FLAG_DEFAULTS = {"micro_batch": 1}
JOB_DEFAULTS = {"seq": 2048, "dtype": "bf16"}
TOKEN_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="zoo name, model YAML or HF config.json (a transformer); default: "
                        "the --recipe's model")
    p.add_argument("--system", default=None, help="system name or system YAML (default: the "
                   "system the --recipe was published for)")
    p.add_argument("--gpus", type=int, default=None, help="devices in the run (default: "
                   "the --recipe's)")
    p.add_argument("--hw", default=None, help="device override (default: the system's)")
    p.add_argument("--recipe", default=None, metavar="FRAMEWORK:NAME",
                   help="a framework's published recipe (e.g. nemo:llama3-70b-fp8) for the "
                        "plan and the job; explicit flags override it")
    p.add_argument("--list-recipes", action="store_true",
                   help="list the shipped recipes (for MODEL, if given) and exit")
    _plan_arguments(p)
    _job_arguments(p)
    p.add_argument("--reserve-gb", type=float, default=None,
                   help="GB per device the framework keeps for itself (default: the "
                        "recipe's framework's, else the least any framework keeps, "
                        "recipes/_frameworks.yaml); plans must fit in the rest")
    p.add_argument("--tokens", default=None, help="tokens to train (e.g. 15e12 or 15T): "
                   "prints the time to train")
    p.add_argument("--price-per-gpu-hour", type=float, default=None,
                   help="dollars per GPU-hour: prints the cost of --tokens")
    p.add_argument("--mfu-convention", default=None,
                   help="also report MFU / HFU as this framework counts model FLOP "
                        "(narayanan, megatron, maxtext, palm, 6n; default: the recipe's)")
    p.add_argument("--no-overlap", action="store_true",
                   help="do not overlap the DP gradient reduction with backward")
    p.add_argument("--sim", action="store_true", help="simulate the pipeline (simpy)")
    p.add_argument("--search", action="store_true", help="rank every plan that fits")
    add_allow_oom(p)
    p.add_argument("--top", type=int, default=10, help="plans shown by --search")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="per-device pipeline Gantt chart (simulated)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def _plan_arguments(p: argparse.ArgumentParser) -> None:
    for flag, what in (("--tp", "tensor-parallel size (default 1)"),
                       ("--pp", "pipeline-parallel size (default 1)"),
                       ("--dp", "data-parallel size (default: gpus / (tp x pp x cp))"),
                       ("--ep", "expert-parallel size, carved out of dp x cp (MoE; default 1)"),
                       ("--cp", "context-parallel size: each sequence split over cp ranks "
                                "(default 1)")):
        p.add_argument(flag, type=int, default=None, help=what)
    p.add_argument("--cp-kind", default=None, choices=CONTEXT_KINDS,
                   help="context parallelism: ring (ring attention, default) or ulysses "
                        "(all-to-all over heads)")
    p.add_argument("--capacity-factor", type=float, default=None,
                   help="MoE expert capacity factor (default: no token dropping)")
    p.add_argument("--moe-imbalance", type=float, default=None,
                   help="MoE load of the busiest expert-parallel rank over the mean (>= 1)")
    p.add_argument("--moe-node-limit", type=int, default=None,
                   help="MoE node-limited routing: nodes a token's experts may span")
    p.add_argument("--micro-batch", type=int, default=None,
                   help="sequences per micro-batch on one data-parallel rank (default 1)")
    p.add_argument("--schedule", default=None, choices=SCHEDULES,
                   help="pipeline schedule (default 1f1b): " + ", ".join(SCHEDULES))
    p.add_argument("--virtual", type=int, default=None, help="chunks per device (interleaved)")
    p.add_argument("--zero", type=int, default=None, help="ZeRO stage 0-3 (3 = FSDP)")
    p.add_argument("--fsdp", action="store_true", help="same as --zero 3")
    p.add_argument("--shard-group", type=int, default=None,
                   help="HSDP: shard over groups of this many dp ranks (with --fsdp)")
    p.add_argument("--recompute", default=None, choices=RECOMPUTE,
                   help="activation recomputation: none, full (every layer), selective "
                        "(attention only, Korthikanti et al. 2022), or torchtitan's "
                        "selective_op / selective_layer")
    p.add_argument("--sequence-parallel", action="store_true", default=None,
                   help="Megatron sequence parallelism: norms and dropout split over the "
                        "tensor-parallel group (needs --tp > 1)")
    p.add_argument("--attention-dropout", action="store_true", default=None,
                   help="unfused attention also runs dropout on the probabilities")


def _job_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--global-batch", type=int, default=None,
                   help="sequences per step (default: the recipe's, else dp x micro-batch)")
    p.add_argument("--seq", type=int, default=None, help="tokens per sequence (default 2048)")
    p.add_argument("--allow-long-context", action="store_true",
                   help="price a --seq past the model's trained context (refused otherwise)")
    p.add_argument("--dtype", default=None, help="compute dtype of the training step "
                   "(default bf16)")
    p.add_argument("--gemm-recipe", default=None, choices=GEMM_RECIPES or None,
                   help="low-precision GEMMs: " + (", ".join(GEMM_RECIPES) or "none yet"))
    p.add_argument("--fp8", action="store_true",
                   help=f"same as --gemm-recipe {FP8_SHORTHAND}")
    p.add_argument("--attention", default="flash", choices=ATTENTION_KERNELS,
                   help="attention kernels: flash (fused, causal-aware; default) or unfused "
                        "(Megatron-LM 2022: baddbmm, softmax, bmm over all s^2 scores)")


def parse_tokens(text: str) -> float:
    """Tokens from '15e12', '15T', '1.5 B' (K, M, B or G, T, P: powers of 1,000).

    >>> parse_tokens("15T"), parse_tokens("2e9")
    (15000000000000.0, 2000000000.0)
    """
    m = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([KMBGTP]?)\s*", str(text),
                     re.IGNORECASE)
    value = float(m.group(1)) * TOKEN_SUFFIX[m.group(2).upper()] if m else math.nan
    if not math.isfinite(value) or value <= 0:
        raise PlanError(f"--tokens must be a positive number of tokens, got {text!r}",
                        "e.g. --tokens 15T or --tokens 15e12")
    return value


def _recipe(args: argparse.Namespace) -> Any:
    if not args.recipe:
        return None
    from perfmodel.parallel.recipe import load_recipe

    return load_recipe(args.recipe)


def _plan_fields(args: argparse.Namespace, recipe: Any) -> dict[str, Any]:
    """The plan's fields: the recipe's, then the defaults of flags left unset, then every
    flag given (data parallel is worked out from the GPUs unless --dp is given)."""
    known = {f.name for f in dataclasses.fields(ParallelPlan)}
    fields = {k: v for k, v in (recipe.plan_fields if recipe else {}).items() if k in known}
    fields.pop("data_parallel", None)
    if not recipe:
        fields.update({PLAN_FLAGS[k]: v for k, v in FLAG_DEFAULTS.items()})
    fields.update({field: getattr(args, flag) for flag, field in PLAN_FLAGS.items()
                   if getattr(args, flag) is not None})
    if args.fsdp:
        fields["zero_stage"] = 3
    if args.no_overlap:
        fields["overlap_grad_reduce"] = False
    return fields


def build_plan(args: argparse.Namespace, recipe: Any = None,
               graph: Any = None) -> tuple[ParallelPlan, Job]:
    """The plan (the recipe's, overridden by --tp --pp --ep --cp ...; dp defaults to what
    --gpus leaves) and the job (--global-batch, default the recipe's or dp x micro-batch;
    --seq; --dtype; --gemm-recipe)."""
    fields = _plan_fields(args, recipe)
    group = fields.pop("shard_group", None)  # checked against dp, known only after the split
    plan = plan_for_devices(args.gpus, **fields)
    if group is not None:
        plan = dataclasses.replace(plan, shard_group=group)
    if graph is not None and plan.context_parallel > 1 and plan.context_kind == "ulysses":
        from perfmodel.parallel.context import check_ulysses

        s = graph.require_shape("context parallelism")
        check_ulysses(s.num_attention_heads // plan.tensor_parallel,
                      max(s.num_key_value_heads // plan.tensor_parallel, 1),
                      plan.context_parallel)
    return plan, build_job(args, recipe, plan.data_parallel * plan.micro_batch_of(1))


def build_job(args: argparse.Namespace, recipe: Any, default_batch: int) -> Job:
    batch = args.global_batch if args.global_batch is not None else (
        recipe.batch(args.gpus) if recipe else default_batch)
    extra: dict[str, Any] = {"optimizer": recipe.optimizer} if recipe else {}
    gemm = _gemm_recipe(args, recipe)
    if gemm is not None:
        if "gemm_recipe" not in {f.name for f in dataclasses.fields(Job)}:
            raise PlanError("this perfmodel prices no low-precision GEMM recipes yet",
                            "drop --gemm-recipe / --fp8")
        extra["gemm_recipe"] = gemm
    return Job(phase="train", batch=batch, seq=_job_value(args, recipe, "seq"),
               dtype=_job_value(args, recipe, "dtype"), **extra)


def _job_value(args: argparse.Namespace, recipe: Any, name: str) -> Any:
    given = getattr(args, name)
    if given is not None:
        return given
    return getattr(recipe, name) if recipe else JOB_DEFAULTS[name]


def _gemm_recipe(args: argparse.Namespace, recipe: Any) -> str | None:
    if args.fp8 and args.gemm_recipe not in (None, FP8_SHORTHAND):
        raise PlanError(f"--fp8 means --gemm-recipe {FP8_SHORTHAND}, not {args.gemm_recipe}",
                        "pass one of them")
    if args.fp8:
        return FP8_SHORTHAND
    if args.gemm_recipe is not None:
        return str(args.gemm_recipe)
    return recipe.gemm_recipe if recipe else None


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def _head(pred: StepPrediction) -> str:
    p, job = pred.plan, pred.job
    attention = pred.assumptions["attention"].split(" ")[0]
    gemm = getattr(job, "gemm_recipe", None)
    return (f"# {pred.model} on {pred.system}: {p.devices} devices = dp {p.data_parallel} x "
            f"tp {p.tensor_parallel} x pp {p.pipeline_parallel}"
            + (f" x cp {p.context_parallel} ({p.context_kind})" if p.context_parallel > 1
               else "")
            + (f", ep {p.expert_parallel}" if p.expert_parallel > 1 else "")
            + f", {p.schedule}" + (f" v = {p.virtual_stages}" if p.virtual_stages > 1 else "")
            + f", micro-batch {p.micro_batch_of(job.batch)} x m = "
            f"{p.micro_batches(job.batch)}, global batch "
            f"{job.batch} x {job.seq} tokens, ZeRO {p.zero_stage}"
            + (f" (HSDP groups of {p.shard_group})" if p.shard_group else "")
            + f", recompute {p.recompute}"
            + (", sequence parallel" if p.sequence_parallel else "")
            + (f", {gemm} GEMMs" if gemm else "")
            + (f", MoE capacity {p.moe_capacity_factor:g}" if p.moe_capacity_factor else "")
            + (f", MoE imbalance {p.moe_imbalance:g}" if p.moe_imbalance != 1 else "")
            + (f", MoE node limit {p.moe_node_limit}" if p.moe_node_limit else "")
            + (f", {attention} attention" + (" + dropout" if p.attention_dropout else "")
               if attention != "flash" else "")
            + (" (simulated pipeline)" if pred.method == "sim" else " (analytic)"))


def _recipe_line(recipe: Any) -> list[str]:
    if recipe is None:
        return []
    sources = "; ".join(f"{k}: {v}" for k, v in (recipe.sources or {}).items())
    return [f"# recipe {recipe.ref} ({recipe.framework}, published for "
            f"{recipe.reference_gpus} GPUs on {recipe.reference_system}); sources: "
            f"{sources or 'none given'}"]


def _extras(pred: StepPrediction, x: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows beside the step's own: the framework convention's MFU / HFU, time and cost."""
    rows = []
    conv = x.get("mfu_convention")
    if conv:
        rows += [(f"MFU ({conv['name']} convention)", f"{conv['mfu'] * 100:.1f} %"),
                 (f"HFU ({conv['name']} convention)", f"{conv['hfu'] * 100:.1f} %")]
    if x.get("time_to_train_h") is not None:
        h = x["time_to_train_h"]
        rows.append(("time to train", f"{h:,.1f} h = {h / 24:,.1f} days for "
                                      f"{x['tokens']:.4g} tokens"))
    if x.get("cost_usd") is not None:
        rows.append(("cost", f"${x['cost_usd']:,.0f} at ${x['price_per_gpu_hour']:g} per "
                             f"GPU-hour x {pred.plan.devices} GPUs"))
    return rows


def _text(pred: StepPrediction, x: dict[str, Any], recipe: Any) -> str:
    verdict = "fits" if x["fits"] else "DOES NOT FIT"
    rows = [("step", f"{pred.step_s:.4g} s"), ("tokens/s", f"{pred.tokens_per_s:,.0f}"),
            ("TFLOP/s per device", f"{pred.tflops_per_device:.1f}"),
            ("MFU", f"{pred.mfu * 100:.1f} %"), ("HFU", f"{pred.hfu * 100:.1f} %"),
            *_extras(pred, x),
            ("bubble", f"{pred.bubble_fraction:.4f} of ideal"),
            ("memory per device", f"{_gb(pred.memory['total'])} of {_gb(x['usable_bytes'])} "
             f"usable = {_gb(pred.capacity_bytes)} capacity - {_gb(x['reserve_bytes'])} "
             f"reserve: {verdict}")]
    width = max(20, *(len(k) + 2 for k, _ in rows))
    lines = [*_recipe_line(recipe), _head(pred)] + [f"{k:<{width}}{v}" for k, v in rows]
    lines += ["", "step split (s):"]
    lines += [f"  {k:<12}{v:10.4g}  {v / pred.step_s * 100:5.1f} %"
              for k, v in pred.breakdown.items() if k in BREAKDOWN]
    lines += ["", "memory per device:"] + [
        f"  {k:<12}{_gb(v)}" for k, v in pred.memory.items() if k != "total" and v > 0]
    a = pred.assumptions
    lines += ["", f"# assumptions: compute efficiency {a['compute_efficiency']:.2f} "
              f"({a['efficiency_source']}); collectives: {a['collectives']}; TP comm "
              f"overlap: {a['tp_comm_overlap']}; DP overlap: {a['dp_overlap']}; model FLOP: "
              f"{a['model_flops']}; memory reserve: {x['reserve_note']}; not modelled: "
              f"{a['not_modelled']}"]
    if pred.simulation:
        s = pred.simulation
        lines.append(f"# simulated {s['events']} events in {s['wall_s']:.3g} s: {s['scope']}")
    return "\n".join(lines)


def _money(args: argparse.Namespace) -> tuple[float | None, float | None]:
    tokens = parse_tokens(args.tokens) if args.tokens is not None else None
    check_money(tokens, args.price_per_gpu_hour)
    return tokens, args.price_per_gpu_hour


def _convention(args: argparse.Namespace, recipe: Any, graph: Any, pred: StepPrediction,
                peak: float | None) -> dict[str, Any] | None:
    """MFU / HFU as the framework counts model FLOP (perfmodel.parallel.mfu)."""
    name = args.mfu_convention or (recipe.mfu_convention if recipe else None)
    if not name:
        return None
    from perfmodel.parallel.mfu import CONVENTIONS, mfu

    name = check_choice("MFU convention", name, tuple(CONVENTIONS))
    if not peak:
        raise PlanError(f"{pred.job.dtype} has no tensor peak on this device",
                        "pass a --dtype the device has a tensor peak for")
    value = mfu(graph.shape, int(pred.job.seq or 1), pred.tokens_per_s / pred.plan.devices,
                peak, name)
    ratio = pred.hfu / pred.mfu if pred.mfu else 1.0
    return {"name": name, "mfu": value, "hfu": value * ratio,
            "peak_flops": peak, "note": "HFU = this MFU x our recomputed-FLOP ratio"}


def _search(args: argparse.Namespace, graph: Any, system: Any, device: Any,
            recipe: Any) -> str:
    if args.top <= 0:
        raise PlanError("--top must be positive", "e.g. --top 10")
    job = build_job(args, recipe, args.gpus)
    fields = _plan_fields(args, recipe)
    base = ParallelPlan(**{k: fields[k] for k in ("overlap_grad_reduce", "attention_dropout",
                                                  "moe_capacity_factor", "moe_imbalance",
                                                  "moe_node_limit", "reduce_dtype")
                           if k in fields})
    tokens, price = _money(args)
    found = search_plans(
        graph, job, system, args.gpus, device=device, top=args.top, reserve_gb=args.reserve_gb,
        recipe=recipe, base=base, tokens=tokens, price_per_gpu_hour=price,
        schedules=[args.schedule] if args.schedule else None,
        expert_parallel=[args.ep] if args.ep else None,
        context_parallel=[args.cp] if args.cp else None)
    df = found.table
    if args.format == "json":
        return to_json({"model": graph.name, "system": system.name, "gpus": args.gpus,
                        "recipe": recipe.ref if recipe else None, "job": job.to_dict(),
                        "global_batch": job.batch, "candidates": found.candidates,
                        "fitting": found.fitting, "capacity_GB": found.capacity_bytes / 1e9,
                        "reserve_GB": found.reserve_bytes / 1e9,
                        "usable_GB": found.usable_bytes / 1e9, "tokens": tokens,
                        "price_per_gpu_hour": price, "assumptions": found.assumptions,
                        "plans": df.to_dict("records")})
    if args.format == "csv":
        return emit_frame(df, "csv")
    fmt = {"step_s": lambda x: f"{x:.4g}", "tokens_per_s": lambda x: f"{x:,.0f}",
           "mfu": lambda x: f"{x * 100:.1f}%", "hfu": lambda x: f"{x * 100:.1f}%",
           "bubble": lambda x: f"{x:.3f}", "memory_GB": lambda x: f"{x:.1f}",
           "usable_GB": lambda x: f"{x:.1f}", "hours": lambda x: f"{x:,.1f}",
           "cost": lambda x: f"${x:,.0f}"}
    return "\n".join([*_recipe_line(recipe),
                      f"# best plans for {graph.name} on {args.gpus} x {device.name} "
                      f"({system.name}), global batch {job.batch} x {job.seq}: "
                      f"{found.fitting} of {found.candidates} plans fit in "
                      f"{found.usable_bytes / 1e9:.1f} GB = {found.capacity_bytes / 1e9:.0f} "
                      f"GB capacity - {found.reserve_bytes / 1e9:g} GB reserve",
                      emit_frame(df, "table", fmt),
                      f"# memory reserve: {found.assumptions['reserve']}; ranked "
                      f"{found.assumptions['ranking']}",
                      "# analytic ranking; confirm a winner with --sim and its sizes"])


def _list_recipes(args: argparse.Namespace) -> str:
    from perfmodel.parallel.recipe import list_recipes

    df = list_recipes()
    if args.model:
        df = df[df["model"] == args.model]
    return emit_frame(df, args.format if args.format in ("json", "csv") else "table")


def _resolve_run(args: argparse.Namespace, recipe: Any) -> None:
    """MODEL, --system and --gpus: given, else the recipe's, else one clear error."""
    for name, attr in (("model", "model"), ("system", "reference_system"),
                       ("gpus", "reference_gpus")):
        if getattr(args, name) is None and recipe is not None:
            setattr(args, name, getattr(recipe, attr))
        if getattr(args, name) is None:
            flag = "MODEL" if name == "model" else f"--{name}"
            raise PerfModelError(f"perfmodel parallel needs {flag}",
                                 f"pass {flag}, or a --recipe that names it")


def _check_sizes(args: argparse.Namespace) -> None:
    for name in ("gpus", "tp", "pp", "ep", "cp", "micro_batch", "seq", "shard_group",
                 "moe_node_limit"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise PlanError(f"--{name.replace('_', '-')} must be positive, got {value}",
                            "pass 1 or more")


def handle(args: argparse.Namespace) -> str:
    if args.list_recipes:
        return _list_recipes(args)
    recipe = _recipe(args)
    _resolve_run(args, recipe)
    _check_sizes(args)
    system = load_system(args.system)
    device = load_device(args.hw) if args.hw else system.device_spec()
    seq = _job_value(args, recipe, "seq")
    graph = load_model(args.model, **model_options(args.attention),
                       **trace_options(args.model, getattr(args, "batch", None), seq))
    check_context(graph, seq, args.allow_long_context)
    if args.search:
        if args.sim or args.plot:
            raise PerfModelError("--search ranks analytically", "drop --sim / --plot, then "
                                 "check the winner with --sim")
        return _search(args, graph, system, device, recipe)
    return _one_plan(args, graph, system, device, recipe)


def _one_plan(args: argparse.Namespace, graph: Any, system: Any, device: Any,
              recipe: Any) -> str:
    plan, job = build_plan(args, recipe, graph)
    tokens, price = _money(args)
    reserve, note = memory_reserve(args.reserve_gb, recipe, device.memory_capacity)
    method = "sim" if (args.sim or args.plot) else "analytic"
    pred = predict_step(graph, job, plan, system, device, method=method)
    usable = pred.capacity_bytes - reserve
    fits = pred.memory["total"] <= usable
    warnings = fit_warnings(args, fits, pred.memory["total"], usable,
                            f"{graph.name} with this plan", "these devices with this plan")
    hours = float(time_to_train_h(tokens, pred.tokens_per_s)) if tokens else None
    extra: dict[str, Any] = {
        "recipe": _recipe_dict(recipe), "reserve_bytes": reserve, "usable_bytes": usable,
             "reserve_note": note, "fits": fits, "fits_capacity": pred.fits,
             "mfu_convention": _convention(args, recipe, graph, pred,
                                           device.peak("tensor", gemm_dtype(job))),
             "tokens": tokens, "time_to_train_h": hours, "price_per_gpu_hour": price,
             "cost_usd": training_cost(hours, plan.devices, price) if price and hours
             else None}
    if args.plot:
        from perfmodel.report.pipeline import plot_pipeline_gantt
        announce(plot_pipeline_gantt(pred.pipeline_run.compute(), args.plot,
                            f"{graph.name}: pp {plan.pipeline_parallel}, {plan.schedule}",
                            overwrite=args.force,
                            annotate=plan.micro_batches(job.batch) <= 32))
    if args.format == "json":
        return to_json({**pred.to_dict(), **extra, "warnings": warnings})
    if args.format == "csv":
        d = {**pred.to_dict(), **{k: v for k, v in extra.items() if k != "mfu_convention"}}
        flat = {k: v for k, v in d.items() if not isinstance(v, dict)}
        flat.update({f"{k}_s": v for k, v in pred.breakdown.items()})
        flat["memory_bytes"] = pred.memory["total"]
        conv = extra["mfu_convention"]
        if conv:
            flat.update(mfu_convention=conv["name"], mfu_framework=conv["mfu"],
                        hfu_framework=conv["hfu"])
        return emit_frame(pd.DataFrame([flat]), "csv")
    return "\n".join([*warnings, _text(pred, extra, recipe)])


def _recipe_dict(recipe: Any) -> dict[str, Any] | None:
    if recipe is None:
        return None
    return {"ref": recipe.ref, "framework": recipe.framework, "model": recipe.model,
            "reference_gpus": recipe.reference_gpus,
            "reference_system": recipe.reference_system, "reserve_gb": recipe.reserve_gb,
            "mfu_convention": recipe.mfu_convention, "sources": dict(recipe.sources or {})}
