"""perfmodel compress MODEL --hw HW --strategy S ...: what each compression does here."""

from __future__ import annotations

import argparse

import pandas as pd

from perfmodel.cli.output import add_allow_oom, announce, emit_frame, flag_oom, to_json
from perfmodel.errors import PlanError
from perfmodel.hardware.load import load_device
from perfmodel.units import format_si
from perfmodel.workload.build import check_context
from perfmodel.workload.job import PHASES, Job
from perfmodel.zoo.registry import load_model, trace_options

SHOWN = ["strategy", "params", "size_on_disk_bytes", "weight_bytes_moved", "macs_executed",
         "latency_s", "speedup", "peak_memory_bytes", "fits", "energy_j"]
HEADERS = {"size_on_disk_bytes": "size on disk", "weight_bytes_moved": "weights moved",
           "macs_executed": "MACs run", "latency_s": "latency", "speedup": "speed-up",
           "peak_memory_bytes": "peak memory", "energy_j": "energy",
           "grad_exchange_bytes": "grad exchange", "comm_s": "exchange time"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (perfmodel models), model YAML, or HF config.json")
    p.add_argument("--hw", required=True, help="device name (perfmodel hw) or spec YAML")
    p.add_argument("--strategy", action="append", default=[], metavar="S",
                   help="a strategy in the mini-language (README, section Compression), "
                        "e.g. int8, w4a16:skip=ends, prune:0.5:structured, prune:2:4, "
                        "share:16, lowrank:0.25, distill:mobilenet_v2; repeat for more rows")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 1)")
    p.add_argument("--seq", type=int, default=None, help="sequence / context length (LLMs)")
    p.add_argument("--allow-long-context", action="store_true",
                   help="price a --seq past the model's trained context (refused otherwise)")
    p.add_argument("--dtype", default=None, help="baseline dtype (default: the device's "
                                                 "fp16, else bf16, else fp32)")
    p.add_argument("--phase", default="inference", choices=PHASES,
                   help="inference (one forward), prefill (the prompt), decode (one token per "
                        "sequence against a KV cache of --seq), train (forward, backward, "
                        "optimizer)")
    p.add_argument("--workers", type=int, default=8,
                   help="data-parallel workers exchanging gradients (--phase train)")
    p.add_argument("--link-latency-us", type=float, default=0.0,
                   help="per-message link latency alpha of the gradient exchange")
    p.add_argument("--memory-model", choices=["flat", "hierarchical"], default="flat",
                   help="hierarchical: activations that fit stay in the last-level cache")
    add_allow_oom(p)
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="write a speed-up vs size chart")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def compression_table(args: argparse.Namespace) -> tuple[pd.DataFrame, str, str, Job]:
    """The trade-off table, the model's and the device's names and the job it prices."""
    # imported here so that other commands do not pay for the compress package
    from perfmodel.compress.registry import parse_strategy
    from perfmodel.compress.tradeoff import Exchange, compare_strategies

    if not args.strategy:
        raise PlanError("no --strategy given", "e.g. --strategy int8 --strategy prune:2:4")
    device = load_device(args.hw)
    graph = load_model(args.model, **trace_options(args.model, args.batch, args.seq))
    check_context(graph, args.seq, args.allow_long_context)
    strategies = [parse_strategy(s, resolve_model=load_model) for s in args.strategy]
    batch = args.batch if args.batch is not None else int(graph.meta.get("default_batch", 1))
    job = Job(phase=args.phase, batch=batch,
              seq=args.seq, dtype=args.dtype or device.default_dtype)
    exchange = Exchange(workers=args.workers, link_latency_s=args.link_latency_us * 1e-6)
    df = compare_strategies(graph, device, strategies, job, exchange=exchange,
                            hierarchical=args.memory_model == "hierarchical")
    return df, graph.name, device.name, job


def handle(args: argparse.Namespace) -> str:
    df, model, device, job = compression_table(args)
    # exit 3 only when no row fits: a strategy that makes the model fit is the answer
    flag_oom(args, bool(df["fits"].any()), f"{model} under every strategy")
    if args.plot:
        from perfmodel.report.compress import plot_tradeoff
        announce(plot_tradeoff(df, args.plot, overwrite=args.force,
                               title=f"{model} on {device}: {job.phase}, baseline {job.dtype}"))
    if args.format == "json":
        return to_json(df.to_dict(orient="records"))
    if args.format == "csv":
        return emit_frame(df.assign(notes=df["notes"].map("; ".join)), "csv")
    return _table(df, args.workers, model, device, job)


def _table(df: pd.DataFrame, workers: int, model: str, device: str, job: Job) -> str:
    cols = SHOWN + [c for c in ("grad_exchange_bytes", "comm_s") if c in df]
    fmt = {"params": format_si, "macs_executed": format_si,
           "size_on_disk_bytes": lambda v: format_si(v, "B"),
           "weight_bytes_moved": lambda v: format_si(v, "B"),
           "peak_memory_bytes": lambda v: format_si(v, "B"),
           "grad_exchange_bytes": lambda v: format_si(v, "B"),
           "latency_s": lambda v: format_si(v, "s"), "comm_s": lambda v: format_si(v, "s"),
           "speedup": lambda v: f"{v:.2f}x", "energy_j": lambda v: format_si(v, "J")}
    shown = df[cols].rename(columns=HEADERS)
    lines = [f"{model} on {device}: {job.phase}, baseline {job.dtype}"
             + (f", {workers} data-parallel workers" if job.train else ""), "",
             emit_frame(shown, "table", {HEADERS.get(k, k): f for k, f in fmt.items()}), "",
             "Notes (what this device does with each format; baseline first):"]
    for strategy, notes in zip(df["strategy"], df["notes"], strict=True):
        lines += [f"  {strategy}: {n}" for n in notes]
    tdp = df["energy_tdp_j"].iloc[0]
    lines += ["", "Energy: per-op model (Horowitz ISSCC 2014, 45 nm; hw_specs/_energy.yaml)"
              + (f"; TDP x latency for the baseline: {format_si(tdp, 'J')} (upper bound)"
                 if tdp is not None and tdp == tdp else ""),
              "Peak memory: the memory model's per-device total, as `perfmodel memory` gives it "
              "(weights as held, KV cache, workspace; training adds gradients, optimizer "
              "states and saved activations)."]
    if job.train:
        lines.append("Training latency = step compute + gradient exchange (not overlapped): "
                     "ring all-reduce (dense) or all-gather (sparse).")
    return "\n".join(lines)
