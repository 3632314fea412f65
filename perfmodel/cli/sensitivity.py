"""perfmodel sensitivity MODEL --hw HW: the latency's elasticity to every figure of the
device's spec (a tornado chart with --plot)."""

from __future__ import annotations

import argparse

from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.study_api import sensitivity


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (perfmodel models), model YAML, HF config.json or "
                                 "folder, .onnx, or pkg.module:factory")
    p.add_argument("--hw", required=True, help="device name (perfmodel hw) or spec YAML")
    p.add_argument("--phase", default="inference",
                   help="inference, prefill, decode or train (one roofline pass)")
    p.add_argument("--batch", type=int, default=1, help="batch of the pass")
    p.add_argument("--seq", type=int, default=None, help="sequence (decode: KV length)")
    p.add_argument("--dtype", default=None, help="dtype (default: the device's)")
    p.add_argument("--engine", default=None,
                   help="price a whole inference run through this engine instead of one pass")
    p.add_argument("--input-len", type=int, default=None, help="with --engine: prompt tokens")
    p.add_argument("--output-len", type=int, default=128,
                   help="with --engine: generated tokens")
    p.add_argument("--step", type=float, default=0.1,
                   help="each figure is scaled by 1 -+ step (default 0.1: 10 %%)")
    p.add_argument("--field", action="append", default=None, metavar="PATH",
                   help="only this spec figure (dotted path, e.g. memory.bandwidth_GBps); "
                        "repeat for more")
    p.add_argument("--top", type=int, default=12, help="figures listed / drawn")
    p.add_argument("--plot", default=None, metavar="FILE", help="tornado chart")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot")


def handle(args: argparse.Namespace) -> str:
    if args.plot:
        from perfmodel.report.figure import figure_path
        figure_path(args.plot, args.force)  # refused before the work, not after
    df = sensitivity(args.model, args.hw, phase=args.phase, batch=args.batch, seq=args.seq,
                     dtype=args.dtype, engine=args.engine, input_len=args.input_len,
                     output_len=args.output_len, step=args.step, fields=args.field)
    if args.plot:
        from perfmodel.report.sensitivity import plot_tornado
        announce(plot_tornado(df, args.plot, overwrite=args.force, top=args.top,
                              title=f"{args.model} on {args.hw}: latency sensitivity"))
    if args.format == "json":
        return to_json({"sensitivity": df.to_dict(orient="records")})
    if args.format == "csv":
        return emit_frame(df, "csv")
    head = (f"{args.model} on {args.hw}: latency {df['latency_s'].iloc[0] * 1e3:.4g} ms; "
            f"elasticity d ln(latency) / d ln(figure) at +-{args.step:.0%}, largest first")
    shown = df.head(args.top)[["field", "value", "elasticity"]]
    return "\n".join([head, "", emit_frame(shown, "table", {
        "elasticity": lambda v: f"{v:+.3f}"})])
