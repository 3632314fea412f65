"""perfmodel review --hw CANDIDATE --baseline A,B -o review.html: a design-review report of
a chip against baselines over a workload suite, as one self-contained HTML file."""

from __future__ import annotations

import argparse
import shlex

from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.errors import PerfModelError
from perfmodel.files import check_writable
from perfmodel.review_api import HTML_SUFFIXES, review, write_review
from perfmodel.units import format_si


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hw", required=True,
                   help="the candidate: a device name (perfmodel hw) or a spec YAML")
    p.add_argument("--baseline", required=True, metavar="A,B,...",
                   help="devices to compare it with, comma-separated (e.g. a100,h100,mi300x)")
    p.add_argument("--workloads", default=None, metavar="SUITE",
                   help="workload suite YAML (default: the shipped workloads/"
                        "review-suite.yaml; format in docs/review.md)")
    p.add_argument("--sensitivity-workload", default=None, metavar="NAME",
                   help="the suite workload of the sensitivity section (default: the first "
                        "one the candidate runs)")
    p.add_argument("--title", default=None, help="report title (default: Design review: "
                                                 "<candidate's display name>)")
    p.add_argument("-o", "--out", required=True, metavar="FILE.html",
                   help="the HTML file to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")


def _command(args: argparse.Namespace) -> str:
    """The command line, as given (shell-quoted), for the report's footer."""
    parts = ["perfmodel", "review", "--hw", args.hw, "--baseline", args.baseline]
    for flag, value in (("--workloads", args.workloads), ("--sensitivity-workload",
                        args.sensitivity_workload), ("--title", args.title)):
        if value is not None:
            parts += [flag, value]
    return shlex.join([*parts, "-o", args.out, *(["--force"] if args.force else [])])


def handle(args: argparse.Namespace) -> str:
    check_writable(args.out, args.force, HTML_SUFFIXES)  # refused before the work
    baseline = [b.strip() for b in args.baseline.split(",") if b.strip()]
    if not baseline:
        raise PerfModelError("--baseline names no device", "e.g. --baseline a100,mi300x")
    data = review(args.hw, baseline, args.workloads,
                  sensitivity_workload=args.sensitivity_workload, title=args.title,
                  command=_command(args))
    announce(write_review(data, args.out, overwrite=args.force))
    s = data.summary
    if args.format == "json":
        return to_json({"out": str(args.out), "candidate": data.candidate,
                        "summary": s.astype(object).where(s.notna(), None)
                        .to_dict(orient="records")})
    if args.format == "csv":
        return emit_frame(data.predictions, "csv")
    lines = [f"{data.title}: {args.out}", ""]
    for r in s.itertuples():
        if r.candidate_status != "ok":
            shown = f"{data.candidate}: {r.candidate_status}"
        else:
            shown = f"{data.candidate} {format_si(r.candidate_latency_s, 's')}"
        if isinstance(r.best_baseline, str):
            shown += (f"; best baseline {r.best_baseline} "
                      f"{format_si(r.best_baseline_latency_s, 's')}")
        if r.speedup == r.speedup:  # not NaN
            shown += f"; speedup {r.speedup:.2f}x"
        lines.append(f"  {r.workload}: {shown}")
    return "\n".join(lines)
