"""perfmodel sweep [STUDY.yaml]: roofline predictions over a grid of models, devices,
batches, dtypes, phases and spec overrides (pm.sweep), with a progress bar, resumable parts
(--out), a process pool (--workers) or a Dask cluster (--dask)."""

from __future__ import annotations

import argparse
import warnings
from typing import Any

from perfmodel.cli.output import announce, emit_frame
from perfmodel.errors import PerfModelError

SHOWN = ["model", "hw", "phase", "batch", "seq", "dtype", "latency_s", "throughput_per_s",
         "bound", "fits", "error"]
PLAN_SHOWN = ["model", "system", "plan", "gpus", "batch", "seq", "step_s", "tokens_per_s",
              "mfu", "fits", "error"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?", default=None,
                   help="study YAML (models, hw, batch, seq, dtype, phase, strategy, override, "
                        "fusion); or give the axes with the flags below")
    p.add_argument("--model", default=None, help="models, comma-separated")
    p.add_argument("--hw", default=None, help="devices (names or spec YAMLs), comma-separated")
    p.add_argument("--batch", default="1", help="batches, comma-separated")
    p.add_argument("--seq", default=None, help="sequence lengths, comma-separated")
    p.add_argument("--dtype", default=None, help="dtypes (default: each device's)")
    p.add_argument("--phase", default="inference",
                   help="phases: inference, prefill, decode, train")
    p.add_argument("--strategy", action="append", default=None,
                   help="compression strategy (perfmodel compress syntax); repeat for more")
    p.add_argument("--system", default=None,
                   help="with --plan: systems (names or YAMLs), comma-separated")
    p.add_argument("--plan", action="append", default=None, metavar="tp=2,pp=4,dp=8",
                   help="a parallel plan (tp, pp, dp, ep, cp, mb, zero, sp, v, schedule, "
                        "recompute); repeat for more: training steps on --system instead of "
                        "roofline passes on --hw")
    p.add_argument("--override", action="append", default=None, metavar="PATH=V1,V2",
                   help="spec figure by dotted path and its values, e.g. "
                        "memory.bandwidth_GBps=2000,4000; repeat for more")
    p.add_argument("--out", "-o", default=None, metavar="FILE",
                   help="write the table (.csv or .parquet); finished tasks kept in "
                        "FILE.parts/ until then, so a stopped run resumes")
    p.add_argument("--workers", type=int, default=1, help="local processes")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="run on a Dask cluster: scheduler address (tcp://host:8786) or "
                        "'local' (pip install \"perfmodel[dask]\")")
    p.add_argument("--yes", action="store_true", help="allow a grid of over a million points")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="draw --y against --x, a line per --hue, a panel per --col")
    p.add_argument("--x", default="batch", help="with --plot: x axis column")
    p.add_argument("--y", default="latency_s", help="with --plot: y axis column")
    p.add_argument("--hue", default="hw", help="with --plot: a line per value")
    p.add_argument("--col", default=None, help="with --plot: a panel per value")
    p.add_argument("--top", type=int, default=20, help="rows printed (table format)")
    p.add_argument("--force", action="store_true",
                   help="overwrite --out / --plot, or discard another sweep's parts")


def _list(text: str | None, cast: Any = str) -> list[Any] | None:
    if text is None:
        return None
    try:
        return [cast(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise PerfModelError(f"cannot read {text!r} as a list of numbers",
                             "e.g. --batch 1,8,64") from None


def _overrides(items: list[str] | None) -> dict[str, list[float]] | None:
    if not items:
        return None
    out = {}
    for item in items:
        path, sep, values = item.partition("=")
        if not sep or not path.strip():
            raise PerfModelError(f"--override {item!r}: expected PATH=V1,V2",
                                 "e.g. --override memory.bandwidth_GBps=2000,4000")
        out[path.strip()] = _list(values, float) or []
    return out


def handle(args: argparse.Namespace) -> str:
    from perfmodel.study_api import sweep

    if args.plot:
        from perfmodel.report.figure import figure_path
        figure_path(args.plot, args.force)  # refused before the work, not after
    axes = args.model is not None or args.hw is not None or args.plan is not None
    if args.study is not None and axes:
        raise PerfModelError("give a study file or --model/--hw, not both",
                             "perfmodel sweep study.yaml, or perfmodel sweep --model M --hw H")
    if args.study is None and not (args.model and (args.hw or args.plan)):
        raise PerfModelError("a sweep needs a study file, or --model and --hw (or --system "
                             "and --plan)",
                             "perfmodel sweep --model resnet50 --hw a100,h100 --batch 1,8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.study is not None:
            df = sweep(args.study, workers=args.workers, dask=args.dask, out=args.out,
                       force=args.force, yes=args.yes)
        else:
            df = sweep(model=_list(args.model), hw=_list(args.hw), batch=_list(args.batch, int),
                       seq=_list(args.seq, int), dtype=_list(args.dtype),
                       phase=_list(args.phase),
                       strategy=args.strategy, system=_list(args.system), plan=args.plan,
                       override=_overrides(args.override), workers=args.workers,
                       dask=args.dask, out=args.out, force=args.force, yes=args.yes)
    notes = [f"note: {w.message}" for w in caught if issubclass(w.category, UserWarning)]
    if args.plot:
        from perfmodel.report.sweep import plot_sweep
        announce(plot_sweep(df, args.plot, x=args.x, y=args.y, hue=args.hue, col=args.col,
                            overwrite=args.force))
    if args.format in ("json", "csv") and args.out is None:
        return emit_frame(df, args.format)
    priced = int(df["step_s" if "plan" in df else "latency_s"].notna().sum())
    plural = "s" if len(df) != 1 else ""
    head = [f"{len(df):,} point{plural}: {priced:,} priced, {len(df) - priced:,} with an error; "
            f"{int((df['fits'] == True).sum()):,} fit in memory, "  # noqa: E712
            f"{int((df['fits'] == False).sum()):,} do not"]  # noqa: E712
    if args.out:
        head.append(f"wrote {args.out}")
    if args.format != "table":
        return emit_frame(df.head(0), args.format) if args.out else emit_frame(df, args.format)
    cols = PLAN_SHOWN if "plan" in df else SHOWN
    shown = df[[c for c in cols if c in df] + [c for c in df.columns if "." in c]]
    return "\n".join([*head, *notes, "", emit_frame(shown.head(args.top), "table", {
        "latency_s": lambda v: f"{v:.4g}", "throughput_per_s": lambda v: f"{v:.4g}"})])
