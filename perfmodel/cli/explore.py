"""perfmodel explore --hw HW --vary PATH=LO..HI ...: the design space of a hypothetical chip
(spec figures varied over ranges, a workload suite priced at every design, the Pareto front
of latency or throughput against a cost, each workload's memory/compute crossover); and
``--search-models A,B --budget-ms T``: which model variant or compression meets a latency
budget with the least loss of size."""

from __future__ import annotations

import argparse
import re
from typing import Any

from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.errors import PerfModelError

VARY_HINT = ("e.g. --vary memory.bandwidth_GBps=2000..16000 or "
             "--vary compute.tensor_TFLOPS.fp8=500,1000,2000")
_RANGE = re.compile(r"^\s*([^=\s]+)\s*=\s*([^=]+?)\s*$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hw", required=True, help="the chip: device name (perfmodel hw) or spec "
                                               "YAML")
    p.add_argument("--vary", action="append", default=None, metavar="PATH=LO..HI",
                   help="a spec figure (dotted path) over a range, or PATH=V1,V2,...; repeat "
                        "for more axes")
    p.add_argument("--points", type=int, default=8, help="values per LO..HI range")
    p.add_argument("--scale", choices=("log", "linear"), default="log",
                   help="spacing of the values in a range")
    p.add_argument("--workloads", default=None, metavar="SUITE",
                   help="workload suite YAML (default: the shipped workloads/"
                        "review-suite.yaml; format in docs/review.md)")
    p.add_argument("--model", default=None, help="one model instead of a suite (zoo name or "
                                                 "model file)")
    p.add_argument("--phase", default="inference", help="with --model or --search-models: "
                                                        "inference, prefill, decode or train")
    p.add_argument("--batch", type=int, default=1, help="with --model or --search-models")
    p.add_argument("--seq", type=int, default=None, help="with --model or --search-models: "
                                                         "sequence (decode: KV length)")
    p.add_argument("--dtype", default=None,
                   help="run every workload in this dtype (default: each entry's, else the "
                        "device's)")
    p.add_argument("--objective", choices=("latency", "throughput"), default="latency",
                   help="what the front trades against the cost")
    p.add_argument("--cost", default=None, metavar="EXPR",
                   help="cost of a design: numbers, spec paths, + - * / ** (default: "
                        "power.tdp_W)")
    p.add_argument("--budget", action="append", default=None, metavar="FIELD=MAX",
                   help="a design is feasible only with FIELD (a spec path, or 'cost') at "
                        "most MAX; repeat for more")
    p.add_argument("--require-fit", action="store_true",
                   help="a design where a workload does not fit in memory is not feasible")
    p.add_argument("--top", type=int, default=20, help="front rows listed")
    p.add_argument("--yes", action="store_true", help="allow more than a million designs")
    p.add_argument("--plot", default=None, metavar="FILE", help="Pareto scatter")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot")
    g = p.add_argument_group("model search")
    g.add_argument("--search-models", default=None, metavar="A,B,...",
                   help="candidate models (zoo names or families, e.g. resnet,mobilenet_v2): "
                        "which meets --budget-ms with the least loss of size")
    g.add_argument("--strategy", action="append", default=None,
                   help="also each candidate compressed so (perfmodel compress syntax: int8, "
                        "w4a16, prune:0.5:structured); repeat for more")
    g.add_argument("--budget-ms", type=float, default=None, help="latency budget of a run")
    g.add_argument("--size", choices=("params", "macs"), default="params",
                   help="size measure (params: parameters not pruned away)")


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise PerfModelError(f"{what}: {text!r} is not a number", VARY_HINT) from None


def parse_vary(items: list[str]) -> dict[str, Any]:
    """--vary PATH=LO..HI | PATH=V1,V2,... | PATH=V as {path: (lo, hi) | [values]}."""
    out: dict[str, Any] = {}
    for item in items:
        m = _RANGE.match(item)
        if not m:
            raise PerfModelError(f"--vary {item!r}: expected PATH=LO..HI or PATH=V1,V2,...",
                                 VARY_HINT)
        path, spec = m.groups()
        if path in out:
            raise PerfModelError(f"--vary {path} given twice", "give each figure once")
        what = f"--vary {item}"
        if ".." in spec:
            lo, _, hi = spec.partition("..")
            out[path] = (_number(lo.strip(), what), _number(hi.strip(), what))
        else:
            out[path] = [_number(v.strip(), what) for v in spec.split(",")]
    return out


def parse_budget(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        m = _RANGE.match(item)
        if not m:
            raise PerfModelError(f"--budget {item!r}: expected FIELD=MAX",
                                 "e.g. --budget power.tdp_W=700 or --budget cost=5000")
        key, value = m.groups()
        try:
            out[key] = float(value)
        except ValueError:
            raise PerfModelError(f"--budget {item!r}: {value!r} is not a number",
                                 "e.g. --budget power.tdp_W=700") from None
    return out


def _check_flags(args: argparse.Namespace) -> None:
    search = args.search_models is not None
    if search and args.vary:
        raise PerfModelError("--search-models and --vary are two different runs",
                             "give one of them")
    if search and args.plot:
        raise PerfModelError("--plot draws the design space, not a model search",
                             "drop --plot, or explore with --vary")
    if search and args.budget_ms is None:
        raise PerfModelError("--search-models needs a latency budget", "add --budget-ms 2")
    if not search and not args.vary:
        raise PerfModelError("nothing to explore: give --vary PATH=LO..HI (or "
                             "--search-models with --budget-ms)", VARY_HINT)
    if not search and (args.budget_ms is not None or args.strategy):
        raise PerfModelError("--budget-ms and --strategy belong to --search-models",
                             "add --search-models A,B, or use --budget FIELD=MAX")
    if args.top < 1:
        raise PerfModelError(f"--top {args.top}: must be at least 1", "e.g. --top 20")


def handle(args: argparse.Namespace) -> str:
    _check_flags(args)
    if args.plot:
        from perfmodel.report.figure import figure_path
        figure_path(args.plot, args.force)  # refused before the work, not after
    if args.search_models is not None:
        return _search(args)
    from perfmodel.explore_api import explore

    e = explore(args.hw, parse_vary(args.vary), workloads=args.workloads, model=args.model,
                phase=args.phase, batch=args.batch, seq=args.seq, dtype=args.dtype,
                objective=args.objective, cost=args.cost, budget=parse_budget(
                    args.budget or []), points=args.points, scale=args.scale,
                require_fit=args.require_fit, yes=args.yes)
    best = e.best()  # no feasible design: one error naming the closest
    if args.plot:
        from perfmodel.report.explore import axis_label, plot_pareto
        what = "throughput" if args.objective == "throughput" else "latency"
        announce(plot_pareto(e.points, args.plot, objective_column=e.objective_column,
                             objective_label=f"{what} ratio to {e.device} (geometric mean over "
                                             f"{len(e.base)} workloads)",
                             cost_label=axis_label(e.cost), best=best,
                             overwrite=args.force, title=f"{e.device}: design space"))
    if args.format == "csv":
        return emit_frame(e.points, "csv")
    shown = [*e.vary, e.objective_column, "cost",
             *(k for k in e.budget if k not in (*e.vary, "cost", e.cost)), "all_fit"]
    workloads = _per_workload(e, best)
    if args.format == "json":
        return to_json({"device": e.device, "designs": len(e.points), "vary": list(e.vary),
                        "objective": e.objective_column, "cost": e.cost,
                        "budget": dict(e.budget),
                        "feasible": int(e.points["feasible"].sum()),
                        "front": e.front[shown].to_dict(orient="records"),
                        "best": best[shown].to_dict(), "workloads": workloads.to_dict(
                            orient="records"),
                        "crossovers": e.crossovers.to_dict(orient="records"),
                        "assumptions": list(e.assumptions)})
    return _table(e, best, shown, workloads, args.top)


def _per_workload(e: Any, best: Any) -> Any:
    """Each workload on the device as specified and at the best design."""
    b = e.base.copy()
    b["best_latency_s"] = [best[f"{n}:latency_s"] for n in b["workload"]]
    b["speedup"] = b["latency_s"] / b["best_latency_s"]
    b["best_bound"] = [best[f"{n}:bound"] for n in b["workload"]]
    b["best_fits"] = [best[f"{n}:fits"] for n in b["workload"]]
    return b[["workload", "dtype", "latency_s", "bound", "best_latency_s", "best_bound",
              "speedup", "best_fits"]]


def _cell(r: Any) -> str:
    if r.crossover == r.crossover:  # not NaN
        return f"{r.crossover:.4g} ({r.bound_at_lo}->{r.bound_at_hi})"
    if r.bound_at_lo == r.bound_at_hi:
        return f"none ({r.bound_at_lo} throughout)"
    via = " via overhead" if {r.bound_at_lo, r.bound_at_hi} == {"memory", "compute"} else ""
    return f"none ({r.bound_at_lo}->{r.bound_at_hi}{via})"


def _table(e: Any, best: Any, shown: list[str], workloads: Any, top: int) -> str:
    from perfmodel.units import format_si

    pts = e.points
    axes = " x ".join(str(pts[p].nunique()) for p in e.vary)
    budget = ", ".join(f"{k} <= {v:g}" for k, v in e.budget.items()) or "none"
    front = e.front
    lines = [f"{e.device}: {len(pts):,} designs ({axes}); {len(e.base)} workload(s); "
             f"objective {e.objective_column} (vs {e.device} as specified)",
             f"cost = {e.cost}; budget: {budget}; feasible: {int(pts['feasible'].sum()):,}",
             "", f"Pareto front ({len(front)} design(s), cheapest first"
             + (f", first {top} shown" if len(front) > top else "") + "):",
             emit_frame(front[shown].head(top), "table", {
                 **dict.fromkeys(e.vary, lambda v: f"{v:.6g}"),
                 e.objective_column: lambda v: f"{v:.4f}", "cost": lambda v: f"{v:.6g}"}),
             "", "best design: " + ", ".join(f"{p}={best[p]:.6g}" for p in e.vary)
             + f": {e.objective_column} {best[e.objective_column]:.4f}, cost "
             f"{best['cost']:.4g}", emit_frame(workloads, "table", {
                 "latency_s": lambda v: format_si(v, "s"),
                 "best_latency_s": lambda v: format_si(v, "s"),
                 "speedup": lambda v: f"{v:.2f}x"})]
    if len(e.crossovers):
        cx = e.crossovers.assign(cell=[_cell(r) for r in e.crossovers.itertuples()])
        wide = cx.pivot(index="workload", columns="path", values="cell")
        wide = wide.reindex(list(dict.fromkeys(cx["workload"]))).reset_index()
        lines += ["", "crossover: where each workload's bound turns between memory and "
                      "compute, along each range (others at the spec's values)",
                  emit_frame(wide, "table")]
    lines += ["", "assumptions:", *(f"  - {a}" for a in e.assumptions)]
    return "\n".join(lines)


def _search(args: argparse.Namespace) -> str:
    from perfmodel.explore_api import model_search
    from perfmodel.study.explore import best_candidate

    names = [m.strip() for m in args.search_models.split(",") if m.strip()]
    if not names:
        raise PerfModelError("--search-models names no model", "e.g. --search-models "
                                                               "resnet18,resnet50")
    budget_s = args.budget_ms / 1e3
    t = model_search(names, args.hw, budget_s, strategies=args.strategy or [],
                     phase=args.phase, batch=args.batch, seq=args.seq, dtype=args.dtype,
                     size=args.size)
    chosen = best_candidate(t, budget_s, args.hw)
    if args.format == "csv":
        return emit_frame(t, "csv")
    if args.format == "json":
        return to_json({"budget_s": budget_s, "size": args.size,
                        "chosen": chosen.to_dict(), "candidates": t.to_dict(
                            orient="records")})
    size = "parameters not pruned away" if args.size == "params" else "MACs per sample"
    shown = t.assign(latency_ms=t["latency_s"] * 1e3)[
        ["candidate", "size", "size_loss", "latency_ms", "bound", "fits", "meets_budget",
         "chosen"]]
    return "\n".join([
        f"model search on {args.hw}: {args.phase}, batch {args.batch}, budget "
        f"{args.budget_ms:g} ms; size = {size}, loss vs the largest candidate", "",
        emit_frame(shown, "table", {"size": lambda v: f"{v:.4g}",
                                    "size_loss": lambda v: f"{v:.1%}",
                                    "latency_ms": lambda v: f"{v:.4g}"}), "",
        f"answer: {chosen['candidate']}: {chosen['latency_s'] * 1e3:.4g} ms, keeps "
        f"{1 - chosen['size_loss']:.1%} of the largest candidate's size",
        "assumptions: the roofline of one run per candidate; quantization keeps every "
        "parameter, and no candidate's accuracy is modelled: size stands in for capacity"])
