"""perfmodel parallel MODEL --system SYS --gpus N: a 3D-parallel training step, or the best
plans (--search)."""

from __future__ import annotations

import argparse
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
from perfmodel.errors import PerfModelError, PlanError
from perfmodel.graph.model_graph import ATTENTION_KERNELS
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system
from perfmodel.parallel.search import search_plans
from perfmodel.parallel.step import BREAKDOWN, StepPrediction, predict_step
from perfmodel.workload.build import check_context
from perfmodel.workload.job import Job
from perfmodel.workload.plan import RECOMPUTE, SCHEDULES, ParallelPlan, plan_for_devices
from perfmodel.zoo.registry import load_model, trace_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name, model YAML or HF config.json (a transformer)")
    p.add_argument("--system", required=True, help="system name or system YAML")
    p.add_argument("--gpus", type=int, required=True, help="devices in the run")
    p.add_argument("--hw", default=None, help="device override (default: the system's)")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel size")
    p.add_argument("--pp", type=int, default=1, help="pipeline-parallel size")
    p.add_argument("--dp", type=int, default=None, help="data-parallel size (default: "
                   "gpus / (tp x pp))")
    p.add_argument("--micro-batch", type=int, default=1,
                   help="sequences per micro-batch on one data-parallel rank")
    p.add_argument("--global-batch", type=int, default=None,
                   help="sequences per step (default: dp x micro-batch)")
    p.add_argument("--seq", type=int, default=2048, help="tokens per sequence")
    p.add_argument("--allow-long-context", action="store_true",
                   help="price a --seq past the model's trained context (refused otherwise)")
    p.add_argument("--schedule", default="1f1b", choices=SCHEDULES,
                   help="pipeline schedule: 1f1b (PipeDream-Flush), gpipe, or interleaved 1F1B "
                        "(Megatron, with --virtual)")
    p.add_argument("--virtual", type=int, default=1, help="chunks per device (interleaved)")
    p.add_argument("--zero", type=int, default=0, help="ZeRO stage 0-3 (3 = FSDP)")
    p.add_argument("--fsdp", action="store_true", help="same as --zero 3")
    p.add_argument("--recompute", default="none", choices=RECOMPUTE,
                   help="activation recomputation: none, full (every layer), selective "
                        "(attention only, Korthikanti et al. 2022), or torchtitan's "
                        "selective_op / selective_layer")
    p.add_argument("--sequence-parallel", action="store_true",
                   help="Megatron sequence parallelism: norms and dropout split over the "
                        "tensor-parallel group (needs --tp > 1)")
    p.add_argument("--dtype", default="bf16", help="compute dtype of the training step")
    p.add_argument("--attention", default="flash", choices=ATTENTION_KERNELS,
                   help="attention kernels: flash (fused, causal-aware; default) or unfused "
                        "(Megatron-LM 2022: baddbmm, softmax, bmm over all s^2 scores)")
    p.add_argument("--attention-dropout", action="store_true",
                   help="unfused attention also runs dropout on the probabilities")
    p.add_argument("--no-overlap", action="store_true",
                   help="do not overlap the DP gradient reduction with backward")
    p.add_argument("--sim", action="store_true", help="simulate the pipeline (simpy)")
    p.add_argument("--search", action="store_true", help="rank every plan that fits")
    add_allow_oom(p)
    p.add_argument("--top", type=int, default=10, help="plans shown by --search")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="per-device pipeline Gantt chart (simulated)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def build_plan(args: argparse.Namespace) -> tuple[ParallelPlan, Job]:
    """The plan (--tp --pp --dp ...; dp defaults to what --gpus leaves) and the job
    (--global-batch, default dp x micro-batch; --seq; --dtype)."""
    plan = plan_for_devices(
        args.gpus, data_parallel=args.dp, tensor_parallel=args.tp,
        pipeline_parallel=args.pp, micro_batch=args.micro_batch, schedule=args.schedule,
        virtual_stages=args.virtual, zero_stage=3 if args.fsdp else args.zero,
        recompute=args.recompute, sequence_parallel=args.sequence_parallel,
        overlap_grad_reduce=not args.no_overlap, attention_dropout=args.attention_dropout)
    batch = args.global_batch if args.global_batch is not None \
        else plan.data_parallel * args.micro_batch
    job = Job(phase="train", batch=batch,
              seq=args.seq, dtype=args.dtype)
    return plan, job


def _gb(x: float) -> str:
    return f"{x / 1e9:.2f} GB"


def _text(pred: StepPrediction) -> str:
    p, job = pred.plan, pred.job
    attention = pred.assumptions["attention"].split(" ")[0]
    head = (f"# {pred.model} on {pred.system}: {p.devices} devices = dp {p.data_parallel} x "
            f"tp {p.tensor_parallel} x pp {p.pipeline_parallel}, {p.schedule}"
            + (f" v = {p.virtual_stages}" if p.virtual_stages > 1 else "")
            + f", micro-batch {p.micro_batch_of(job.batch)} x m = "
            f"{p.micro_batches(job.batch)}, global batch "
            f"{job.batch} x {job.seq} tokens, ZeRO {p.zero_stage}, recompute {p.recompute}"
            + (", sequence parallel" if p.sequence_parallel else "")
            + (f", {attention} attention" + (" + dropout" if p.attention_dropout else "")
               if attention != "flash" else "")
            + (" (simulated pipeline)" if pred.method == "sim" else " (analytic)"))
    rows = [("step", f"{pred.step_s:.4g} s"), ("tokens/s", f"{pred.tokens_per_s:,.0f}"),
            ("TFLOP/s per device", f"{pred.tflops_per_device:.1f}"),
            ("MFU", f"{pred.mfu * 100:.1f} %"), ("HFU", f"{pred.hfu * 100:.1f} %"),
            ("bubble", f"{pred.bubble_fraction:.4f} of ideal"),
            ("memory per device", f"{_gb(pred.memory['total'])} of "
             f"{_gb(pred.capacity_bytes)}: " + ("fits" if pred.fits else "DOES NOT FIT"))]
    lines = [head] + [f"{k:<20}{v}" for k, v in rows] + ["", "step split (s):"]
    total = pred.step_s
    lines += [f"  {k:<12}{pred.breakdown[k]:10.4g}  {pred.breakdown[k] / total * 100:5.1f} %"
              for k in BREAKDOWN]
    lines += ["", "memory per device:"] + [
        f"  {k:<12}{_gb(v)}" for k, v in pred.memory.items() if k != "total" and v > 0]
    a = pred.assumptions
    lines += ["", f"# assumptions: compute efficiency {a['compute_efficiency']:.2f} "
              f"({a['efficiency_source']}); collectives: {a['collectives']}; TP comm "
              f"overlap: {a['tp_comm_overlap']}; DP overlap: {a['dp_overlap']}; model FLOP: "
              f"{a['model_flops']}; not modelled: {a['not_modelled']}"]
    if pred.simulation:
        s = pred.simulation
        lines.append(f"# simulated {s['events']} events in {s['wall_s']:.3g} s: {s['scope']}")
    return "\n".join(lines)


def _search(args: argparse.Namespace, graph: Any, system: Any, device: Any) -> str:
    if args.top <= 0:
        raise PlanError("--top must be positive", "e.g. --top 10")
    gb = args.global_batch if args.global_batch is not None else args.gpus
    job = Job(phase="train", batch=gb, seq=args.seq, dtype=args.dtype)
    found = search_plans(graph, job, system, args.gpus, device=device, top=args.top)
    df = found.table
    if args.format == "json":
        return to_json({"model": graph.name, "system": system.name, "gpus": args.gpus,
                        "global_batch": gb, "candidates": found.candidates,
                        "fitting": found.fitting, "capacity_GB": found.capacity_bytes / 1e9,
                        "plans": df.to_dict("records")})
    if args.format == "csv":
        return emit_frame(df, "csv")
    fmt = {"step_s": lambda x: f"{x:.4g}", "tokens_per_s": lambda x: f"{x:,.0f}",
           "mfu": lambda x: f"{x * 100:.1f}%", "hfu": lambda x: f"{x * 100:.1f}%",
           "bubble": lambda x: f"{x:.3f}", "memory_GB": lambda x: f"{x:.1f}"}
    return "\n".join([f"# best plans for {graph.name} on {args.gpus} x {device.name} "
                      f"({system.name}), global batch {gb} x {args.seq}: "
                      f"{found.fitting} of {found.candidates} plans fit in "
                      f"{found.capacity_bytes / 1e9:.0f} GB", emit_frame(df, "table", fmt),
                      "# analytic ranking; confirm a winner with --sim and its sizes"])


def handle(args: argparse.Namespace) -> str:
    system = load_system(args.system)
    device = load_device(args.hw) if args.hw else system.device_spec()
    for name in ("gpus", "tp", "pp", "micro_batch", "seq"):
        if getattr(args, name) <= 0:
            raise PlanError(f"--{name.replace('_', '-')} must be positive, got "
                            f"{getattr(args, name)}", "pass 1 or more")
    graph = load_model(args.model, **model_options(args.attention),
                       **trace_options(args.model, getattr(args, "batch", None), args.seq))
    check_context(graph, args.seq, args.allow_long_context)
    if args.search:
        if args.sim or args.plot:
            raise PerfModelError("--search ranks analytically", "drop --sim / --plot, then "
                                 "check the winner with --sim")
        return _search(args, graph, system, device)
    plan, job = build_plan(args)
    method = "sim" if (args.sim or args.plot) else "analytic"
    pred = predict_step(graph, job, plan, system, device, method=method)
    warnings = fit_warnings(args, pred.fits, pred.memory["total"], pred.capacity_bytes,
                            f"{graph.name} with this plan", "these devices with this plan")
    if args.plot:
        from perfmodel.report.pipeline import plot_pipeline_gantt
        announce(plot_pipeline_gantt(pred.pipeline_run.compute(), args.plot,
                            f"{graph.name}: pp {plan.pipeline_parallel}, {plan.schedule}",
                            overwrite=args.force,
                            annotate=plan.micro_batches(job.batch) <= 32))
    if args.format == "json":
        return to_json({**pred.to_dict(), "warnings": warnings})
    if args.format == "csv":
        d = pred.to_dict()
        flat = {k: v for k, v in d.items() if not isinstance(v, dict)}
        flat.update({f"{k}_s": v for k, v in pred.breakdown.items()})
        flat["memory_bytes"] = pred.memory["total"]
        return emit_frame(pd.DataFrame([flat]), "csv")
    return "\n".join([*warnings, _text(pred)])
