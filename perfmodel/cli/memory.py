"""perfmodel memory MODEL --hw HW: does it fit, and what bounds decode?"""

from __future__ import annotations

import argparse

import pandas as pd

from perfmodel.analytic.capacity import MemoryReport, memory_report
from perfmodel.analytic.memory import OPTIMIZER_STATE_BYTES
from perfmodel.cli.output import (
    add_allow_oom,
    announce,
    emit_frame,
    fit_warnings,
    to_json,
)
from perfmodel.errors import ShapeError
from perfmodel.graph.model_graph import ATTENTION_KERNELS
from perfmodel.hardware.load import load_device
from perfmodel.units import GB, format_si
from perfmodel.workload.build import check_context
from perfmodel.workload.job import PHASES, PRECISIONS, Job
from perfmodel.workload.plan import RECOMPUTE, SCHEDULES, ParallelPlan
from perfmodel.zoo.registry import load_model, trace_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name, model YAML or HF config.json")
    p.add_argument("--hw", required=True, help="device name or spec YAML")
    p.add_argument("--phase", default="inference", choices=PHASES,
                   help="inference (one forward), prefill (the prompt), decode (one token per "
                        "sequence against a KV cache of --seq), train (forward, backward, "
                        "optimizer)")
    p.add_argument("--batch", type=int, default=1, help="global batch (sequences or images)")
    p.add_argument("--micro-batch", type=int, default=None, help="training micro-batch")
    p.add_argument("--seq", type=int, default=None, help="sequence / context length")
    p.add_argument("--allow-long-context", action="store_true",
                   help="price a --seq past the model's trained context (refused otherwise)")
    p.add_argument("--dtype", default=None, help="weights and activations (default: device's)")
    p.add_argument("--weight-dtype", default=None, help="weights only (e.g. int4)")
    p.add_argument("--kv-dtype", default=None, help="KV cache (default: --dtype)")
    p.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZER_STATE_BYTES),
                   help="training optimizer (its states per parameter)")
    p.add_argument("--precision", default="mixed", choices=PRECISIONS,
                   help="mixed: 16-bit weights/grads + fp32 master and states")
    p.add_argument("--zero", type=int, default=0, help="ZeRO stage 0-3 (3 = FSDP)")
    p.add_argument("--fsdp", action="store_true", help="same as --zero 3")
    p.add_argument("--dp", type=int, default=1, help="data-parallel size")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel size")
    p.add_argument("--pp", type=int, default=1, help="pipeline-parallel size")
    p.add_argument("--sequence-parallel", action="store_true",
                   help="Megatron sequence parallelism: norms and dropout split over the "
                        "tensor-parallel group (needs --tp > 1)")
    p.add_argument("--recompute", default="none", choices=RECOMPUTE,
                   help="activation recomputation: none, full (every layer), selective "
                        "(attention only, Korthikanti et al. 2022), or torchtitan's "
                        "selective_op / selective_layer")
    p.add_argument("--schedule", default="1f1b", choices=SCHEDULES,
                   help="pipeline schedule: 1f1b (PipeDream-Flush), gpipe, or interleaved 1F1B "
                        "(Megatron, with --virtual)")
    p.add_argument("--virtual", type=int, default=1, help="chunks per device (interleaved)")
    p.add_argument("--attention", default="flash", choices=ATTENTION_KERNELS,
                   help="flash keeps no s x s attention scores for backward (default); "
                        "unfused (Megatron-LM 2022) keeps them")
    p.add_argument("--workspace-gb", type=float, default=0.0, help="library workspace, GB")
    p.add_argument("--overhead-gb", type=float, default=0.0,
                   help="framework overhead (CUDA context, allocator), GB; default 0")
    add_allow_oom(p)
    p.add_argument("--plot", default=None, metavar="FILE", help="stacked breakdown bar")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def model_options(attention: str) -> dict[str, bool]:
    """Builder options for --attention: unfused kernels are a transformer built without
    fused attention (zoo builders of other models take no such option)."""
    return {"fused_attention": False} if attention == "unfused" else {}


def build_report(args: argparse.Namespace) -> MemoryReport:
    device = load_device(args.hw)
    graph = load_model(args.model, **model_options(args.attention),
                       **trace_options(args.model, getattr(args, "batch", None), args.seq))
    check_context(graph, args.seq, args.allow_long_context)
    for name in ("workspace_gb", "overhead_gb"):
        if getattr(args, name) < 0:
            raise ShapeError(f"--{name.replace('_', '-')} must be >= 0", "pass 0 or more")
    job = Job(phase=args.phase, batch=args.batch, seq=args.seq,
              dtype=args.dtype or device.default_dtype, kv_dtype=args.kv_dtype,
              weight_dtype=args.weight_dtype, optimizer=args.optimizer,
              precision=args.precision)
    plan = ParallelPlan(
        data_parallel=args.dp, tensor_parallel=args.tp, pipeline_parallel=args.pp,
        micro_batch=args.micro_batch, zero_stage=3 if args.fsdp else args.zero,
        sequence_parallel=args.sequence_parallel, recompute=args.recompute,
        schedule=args.schedule, virtual_stages=args.virtual)
    return memory_report(graph, plan, job, device, workspace_bytes=args.workspace_gb * GB,
                         overhead_bytes=args.overhead_gb * GB)


def handle(args: argparse.Namespace) -> str:
    report = build_report(args)
    v = report.verdict
    warnings = fit_warnings(args, v.fits, v.total_bytes, v.capacity_bytes, args.model)
    if args.plot:
        from perfmodel.report.memory import plot_breakdown
        announce(plot_breakdown(report, args.model, load_device(args.hw), args.plot,
                                args.force))
    if args.format == "json":
        return to_json({**report.to_dict(), "warnings": warnings})
    if args.format == "csv":  # the components, then total and capacity with the verdict
        v = report.verdict
        extra = pd.DataFrame({"component": ["total", "capacity"],
                              "bytes": [v.total_bytes, v.capacity_bytes]})
        return emit_frame(pd.concat([report.breakdown, extra], ignore_index=True)
                          .assign(fits=v.fits), "csv")
    return "\n".join([*warnings, _table(report, args)])


def _gb(v: float | None) -> str:
    return "-" if v is None else f"{v / GB:,.2f} GB"


def _table(r: MemoryReport, args: argparse.Namespace) -> str:
    v = r.verdict
    total = max(v.total_bytes, 1.0)
    bd = r.breakdown.assign(share=r.breakdown["bytes"] / total)
    lines = [f"{args.model} on {args.hw}: {args.phase}, batch {args.batch}, per device", "",
             emit_frame(bd, "table", {"bytes": _gb, "share": lambda x: f"{100 * x:.1f}%"}), "",
             f"total {_gb(v.total_bytes)} of {_gb(v.capacity_bytes)}: "
             + ("FITS" if v.fits else "DOES NOT FIT")
             + f" (headroom {_gb(v.headroom_bytes)})",
             f"largest {v.max_batch_field.replace('_', '-')} that fits: {v.max_batch or 'none'}"
             + (f"; longest sequence: {v.max_seq or 'none'}" if v.max_seq is not None
                or args.phase != "train" else ""),
             f"fewest devices that fit: {v.min_devices or 'more than 1024'} ({v.min_devices_axis})"]
    if r.limits:
        lim = r.limits
        cb = lim["compute_bound_batch"]
        lines += ["", "Decode limits (bandwidth-bound):",
                  f"  floor per step {format_si(lim['decode_floor_s'], 's')} "
                  f"({_gb(lim['bytes_per_step'])} read per step)",
                  f"  ceiling {lim['tokens_per_s_ceiling_per_device']:.4g} tokens/s per device, "
                  f"{lim['tokens_per_s_ceiling_system']:.4g} for the system",
                  f"  decode turns compute-bound at batch "
                  f"{'never (KV cache dominates)' if cb is None else f'{cb:.0f}'} "
                  f"(ridge {lim['ridge_flop_per_byte']:.0f} FLOP/B, {lim['ridge_dtype']})"]
    if len(r.suggestions):
        lines += ["", "What to change (each alone):",
                  emit_frame(r.suggestions, "table", {"total_bytes": _gb, "saves_bytes": _gb})]
    lines += ["", "Assumptions:"] + [f"  {k}: {val}" for k, val in r.assumptions.items()
                                     if k != "plan"]
    return "\n".join(lines)
