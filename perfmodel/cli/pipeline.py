"""perfmodel pipeline: simulate a pipeline schedule beside its closed forms."""

from __future__ import annotations

import argparse
from typing import Any

import pandas as pd

from perfmodel.analytic.pipeline import SCHEDULES, layer_assignment
from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.errors import ShapeError
from perfmodel.sim.schedules import PipelineRun, simulate_pipeline
from perfmodel.workload.job import check_positive


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stages", type=int, required=True, help="pipeline devices p")
    p.add_argument("--micro-batches", type=int, required=True, help="micro-batches m")
    p.add_argument("--schedule", default="1f1b", choices=SCHEDULES,
                   help="pipeline schedule: 1f1b (PipeDream-Flush), gpipe, interleaved 1F1B "
                        "(Megatron, with --virtual), zb-h1 / zb-v (zero bubble, Qi et al. "
                        "2024: use --t-weight), dualpipe (DeepSeek-V3), pipedream "
                        "(asynchronous, weight stashing)")
    p.add_argument("--virtual", type=int, default=1, help="chunks per device (interleaved)")
    p.add_argument("--t-forward", default="1",
                   help="forward seconds per micro-batch on one device's stage (with "
                        "--virtual v each of its v chunks takes 1/v of it, with zb-v each of "
                        "its 2), or one time per "
                        "virtual stage, comma-separated (uneven stages, taken as given); the "
                        "defaults 1 and 2 are a unit step with backward = 2 x forward")
    p.add_argument("--t-backward", default="2", help="backward seconds, same convention")
    p.add_argument("--t-weight", default="0",
                   help="weight-gradient seconds split off the backward (then --t-backward "
                        "is the input gradient only), same convention; the zero-bubble "
                        "schedules defer it into the bubbles (default 0: none split off)")
    p.add_argument("--activation-bytes", type=float, default=0.0,
                   help="bytes sent between stages per micro-batch")
    p.add_argument("--link-GBps", type=float, default=None, help="p2p link bandwidth")
    p.add_argument("--link-latency-us", type=float, default=0.0, help="p2p link latency")
    p.add_argument("--layers", type=int, default=None,
                   help="also print Megatron's layer assignment of this many layers")
    p.add_argument("--timeline", action="store_true", help="print every op (table format)")
    p.add_argument("--plot", default=None, metavar="FILE", help="per-device Gantt chart")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def _times(text: str, name: str) -> Any:
    try:
        vals = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ShapeError(f"cannot read --{name} {text!r}", "write e.g. 1 or 1,1,2,1") from None
    if not vals:
        raise ShapeError(f"--{name} is empty", "write e.g. 1 or 1,1,2,1")
    return vals[0] if len(vals) == 1 else vals


def run(args: argparse.Namespace) -> PipelineRun:
    if args.link_GBps is not None and args.link_GBps <= 0:
        raise ShapeError("--link-GBps must be positive", "e.g. --link-GBps 25")
    if args.link_latency_us < 0 or args.activation_bytes < 0:
        raise ShapeError("latency and bytes must be >= 0", "pass 0 or more")
    tf, tb = _times(args.t_forward, "t-forward"), _times(args.t_backward, "t-backward")
    tw = _times(args.t_weight, "t-weight")
    check_positive("virtual", args.virtual)
    # a device's stage time, split over its chunks (v interleaved, the V's 2 for ZB-V)
    chunks = {"interleaved": args.virtual, "zb-v": 2}.get(args.schedule, 1)
    if chunks > 1:
        tf, tb, tw = (t / chunks if isinstance(t, float) else t for t in (tf, tb, tw))
    return simulate_pipeline(
        args.schedule, args.stages, args.micro_batches, tf, tb, virtual=args.virtual,
        t_weight=tw,
        activation_bytes=args.activation_bytes,
        link_bandwidth_Bps=(args.link_GBps * 1e9 if args.link_GBps else float("inf")),
        link_latency_s=args.link_latency_us * 1e-6)


def handle(args: argparse.Namespace) -> str:
    r = run(args)
    s = r.summary()
    if args.layers is not None:
        check_positive("layers", args.layers)
    layers = layer_assignment(args.layers, args.stages, args.virtual) if args.layers else None
    if args.plot:
        from perfmodel.report.pipeline import plot_pipeline_gantt
        announce(plot_pipeline_gantt(r.compute(), args.plot,
                            f"{r.schedule}: p = {r.stages}, m = {r.micro_batches}"
                            + (f", v = {r.virtual}" if r.virtual > 1 else ""),
                            overwrite=args.force))
    ops = pd.DataFrame(r.tuples(), columns=["device", "start", "end", "label"])
    if args.format == "json":
        out: dict[str, Any] = {**s, "timeline": ops.to_dict("records")}
        if layers:
            out["layer_assignment"] = layers
        return to_json(out)
    if args.format == "csv":
        return emit_frame(ops if args.timeline else pd.DataFrame([s]), "csv")
    lines = [f"# {r.schedule} pipeline: p = {r.stages} stages, m = {r.micro_batches} "
             f"micro-batches" + (f", v = {r.virtual} chunks" if r.virtual > 1 else "")
             + " (discrete-event simulation)",
             f"step             {r.step_s:.6g} s simulated, {s['closed_form_step_s']:.6g} s "
             "closed form (uniform stages)",
             f"bubble           {r.bubble:.4f} of ideal simulated, "
             f"{r.closed_form_bubble:.4f} closed form (perfmodel.analytic.pipeline."
             "bubble_fraction)",
             f"in flight        {s['in_flight_closed_form']:.4g} micro-batches on the first "
             "stage (m for GPipe, min(p, m) for 1F1B and ZB-H1, p + 1 for DualPipe)"]
    if layers:
        lines += [f"layers device {i}: {', '.join(map(str, ls))}" for i, ls in
                  enumerate(layers)]
    if args.timeline:
        lines.append(emit_frame(ops, "table"))
    return "\n".join(lines)
