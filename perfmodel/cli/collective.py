"""perfmodel collective PRIMITIVE --system SYS: nccl-tests style size sweeps, --sim, compare.

    perfmodel collective all_reduce --system dgx-h100 --gpus 8 --min-bytes 8 --max-bytes 8G
    perfmodel collective all_reduce --system dgx-a100 --nodes 16 --algo hierarchical --sim
    perfmodel collective all_to_all --system my_cluster.yaml --bytes 256M --plot links.png
    perfmodel collective compare --system pcie-8x-4090 --bytes 1G
    perfmodel collective check --system dgx-a100 --nccl-tests all_reduce.txt \
        --calibrate-out my-dgx.yaml       # measured vs predicted; fit a system file

Arguments in, output out: the sweep is ``perfmodel.sim.collective_sweep``, the check
``perfmodel.validate.collectives.check_collectives``, the file ``perfmodel.hardware.write``.
The simulator and the validation layer are imported by the commands that use them, so
``perfmodel --help`` loads neither.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from perfmodel.analytic.collectives import ALGORITHMS, PRIMITIVES
from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.errors import PerfModelError, ShapeError
from perfmodel.files import check_writable
from perfmodel.hardware.system import SystemSpec, load_system
from perfmodel.units import parse_bytes, sweep_sizes
from perfmodel.workload.job import check_positive

if TYPE_CHECKING:
    from perfmodel.sim.collective_sweep import CollectiveSweep
    from perfmodel.validate.collectives import CollectiveCheck


NCCL_COLUMNS = ["size_bytes", "count", "type", "time_us", "algbw_GBps", "busbw_GBps",
                "algorithm"]
SYSTEM_SUFFIXES = (".yaml", ".yml")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("primitive", choices=[*PRIMITIVES, "compare", "check"],
                   help="collective; compare (parameter server vs ring all-reduce); or check "
                        "(--nccl-tests files, each collective as the file states)")
    p.add_argument("--system", required=True, help="system name (hw_specs/systems) or YAML")
    p.add_argument("--nodes", type=int, default=None, help="nodes (default: the system's)")
    p.add_argument("--gpus", type=int, default=None, help="devices per node (default: all)")
    p.add_argument("--bytes", default=None, help="one message size, e.g. 256M")
    p.add_argument("--min-bytes", default=None, help="sweep start (default 8)")
    p.add_argument("--max-bytes", default=None, help="sweep end (default 1G)")
    p.add_argument("--step-factor", type=float, default=2.0, help="sweep factor (default 2)")
    p.add_argument("--algo", default="auto", choices=["auto", *ALGORITHMS],
                   help="algorithm (auto: fastest of ring and tree for all_reduce, as NCCL)")
    p.add_argument("--dtype", default="fp32", help="element type for the count column")
    p.add_argument("--sim", action="store_true", help="use the discrete-event simulator")
    p.add_argument("--chunks", type=int, default=1, help="simulator pieces per step")
    p.add_argument("--slow", action="append", default=[], metavar="DEVICE=FACTOR",
                   help="simulated straggler, e.g. n0.d3=2 (repeatable; needs --sim)")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="one size: link-occupancy Gantt (simulated); a sweep: busbw vs size")
    p.add_argument("--nccl-tests", nargs="+", default=None, metavar="FILE",
                   help="nccl-tests stdout file(s): print measured beside predicted, per size")
    p.add_argument("--calibrate-out", default=None, metavar="YAML",
                   help="with --nccl-tests: fit the system's latencies and efficiency curves "
                        "to the files and write the calibrated system file here")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing --plot or --calibrate-out file")


def _sizes(args: argparse.Namespace) -> np.ndarray:
    """--bytes, or the --min-bytes .. --max-bytes sweep."""
    if args.bytes is not None:
        if args.min_bytes or args.max_bytes:
            raise PerfModelError("give --bytes or --min-bytes/--max-bytes, not both",
                                 "one size: --bytes; a sweep: --min-bytes and --max-bytes")
        return np.array([parse_bytes(args.bytes)], dtype=float)
    return sweep_sizes(parse_bytes(args.min_bytes or "8"), parse_bytes(args.max_bytes or "1G"),
                       args.step_factor)


def _slowdowns(args: argparse.Namespace) -> dict[str, float]:
    """--slow DEVICE=FACTOR, repeated."""
    out = {}
    for item in args.slow:
        name, _, factor = item.partition("=")
        try:
            out[name.strip()] = float(factor)
        except ValueError:
            raise ShapeError(f"cannot read --slow {item!r}", "write --slow n0.d3=2") from None
    if out and not args.sim:
        raise PerfModelError("--slow needs --sim", "stragglers are simulated, add --sim")
    return out


def _run(args: argparse.Namespace, system: SystemSpec, v: np.ndarray, method: str,
         record: bool = False) -> CollectiveSweep:
    from perfmodel.sim.collective_sweep import collective_sweep

    check_positive("chunks", args.chunks)
    return collective_sweep(system, args.primitive, v, args.nodes, args.gpus, args.algo,
                            args.dtype, method=method, chunks=args.chunks,
                            slowdown=_slowdowns(args) if method == "sim" else None,
                            record=record)


def _header(system: SystemSpec, sweep: CollectiveSweep, primitive: str) -> str:
    a = sweep.assumptions
    return (f"# {primitive} on {system.display_name}: {a['nodes']} node(s) x "
            f"{a['per_node']} devices = {int(sweep.table['p'].iloc[0])}, algorithm "
            f"{a['algorithm']}, " + ("discrete-event simulation" if sweep.method == "sim"
                                     else "alpha-beta model"))


def _footer(a: dict[str, Any]) -> list[str]:
    lines = ["# assumptions (sources: perfmodel collective ... --format json):",
             f"#   launch latency {a['launch_latency_us']:.3g} us; scale-up "
             f"{a['intra']['name']} ({a['intra']['topology']}): alpha "
             f"{a['intra']['alpha_us']:.3g} us/step, ring bandwidth "
             f"{a['intra']['ring_GBps']:.4g} GB/s per direction x efficiency(per-step "
             "message)"]
    if "inter" in a:
        lines.append(f"#   scale-out {a['inter']['name']}: alpha {a['inter']['alpha_us']:.3g} "
                     f"us/step, {a['inter']['node_GBps']:.4g} GB/s per node x efficiency("
                     "per-step message)")
    lines.append("#   size: " + a["size_convention"])
    return lines


def _fmt() -> dict[str, Any]:
    return {"time_us": lambda x: f"{x:.2f}", "algbw_GBps": lambda x: f"{x:.2f}",
            "busbw_GBps": lambda x: f"{x:.2f}"}


LONG_SIM_DEVICES = 256  # from here a discrete-event run takes seconds to minutes


def _announce_long_sim(args: argparse.Namespace, system: SystemSpec, v: np.ndarray) -> None:
    """Before a simulation at cluster scale: say so on stderr, with the alpha-beta model's
    answer first, so a user waiting has a number (and knows the wait is expected)."""
    model = _run(args, system, v, "analytic").table
    p = int(model["p"].iloc[0])
    if not args.sim or p < LONG_SIM_DEVICES or args.format != "table":
        return
    t = ", ".join(f"{int(s)} B: {u:.4g} us" for s, u in
                  zip(model["size_bytes"].head(3), model["time_us"].head(3), strict=False))
    sys.stderr.write(f"perfmodel: simulating {len(v)} size(s) on {p} devices: expect "
                     f"seconds to minutes (the simulator runs about 10^5-10^6 transfers/s); "
                     f"the alpha-beta model says {t}{' ...' if len(v) > 3 else ''}\n")


def _sweep(args: argparse.Namespace, system: SystemSpec) -> str:
    v = _sizes(args)
    if args.sim:
        _announce_long_sim(args, system, v)
    sweep = _run(args, system, v, "sim" if args.sim else "analytic",
                 record=bool(args.plot) and len(v) == 1)
    table, last = sweep.table, sweep.last_run
    if args.plot:
        _plot(args, system, sweep, v)
    if args.format == "json":
        out: dict[str, Any] = {"assumptions": sweep.assumptions, "method":
                               "simulation" if args.sim else "analytic",
                               "rows": table.to_dict("records")}
        if last is not None:
            out["simulation"] = dict(last.assumptions)
        return to_json(out)
    if args.format == "csv":
        return emit_frame(table, "csv")
    lines = [_header(system, sweep, args.primitive),
             emit_frame(table[NCCL_COLUMNS].rename(columns={
                 "size_bytes": "size(B)", "count": "count(elts)", "time_us": "time(us)",
                 "algbw_GBps": "algbw(GB/s)", "busbw_GBps": "busbw(GB/s)"}), "table",
                 {k.replace("_us", "(us)").replace("_GBps", "(GB/s)"): f
                  for k, f in _fmt().items()}),
             *_footer(sweep.assumptions)]
    if last is not None:
        lines.append(f"#   simulated {last.events} events in {last.wall_s:.3g} s (last size)")
    return "\n".join(lines)


def _plot(args: argparse.Namespace, system: SystemSpec, sweep: CollectiveSweep,
          v: np.ndarray) -> None:
    """One size: the simulated link-occupancy Gantt chart; a sweep: busbw vs size, the
    simulated curve beside the model's."""
    from perfmodel.report.collectives import plot_busbw, plot_link_gantt

    title = f"{args.primitive} on {system.name}, p = {int(sweep.table['p'].iloc[0])}"
    if len(v) == 1:
        last = sweep.last_run or _run(args, system, v, "sim", record=True).last_run
        announce(plot_link_gantt(last.timeline, args.plot, f"{title}, {int(v[0])} B",
                                 overwrite=args.force))
    elif args.sim:
        announce(plot_busbw({"alpha-beta model": _run(args, system, v, "analytic").table,
                             "simulated": sweep.table}, args.plot, title, overwrite=args.force))
    else:
        announce(plot_busbw({"alpha-beta model": sweep.table}, args.plot, title,
                            overwrite=args.force))


def _check(args: argparse.Namespace, system: SystemSpec) -> str:
    """Measured (nccl-tests files) beside predicted; with --calibrate-out, the fit too."""
    from perfmodel.bench.nccl_tests import read_nccl_tests
    from perfmodel.hardware.write import write_spec
    from perfmodel.validate.collectives import check_collectives

    out = args.calibrate_out
    if out is not None:  # refused before the files are read and fitted
        if Path(out).suffix not in SYSTEM_SUFFIXES:
            raise PerfModelError(f"--calibrate-out {out} is not a .yaml file",
                                 "name the system file to write, e.g. my-cluster.yaml")
        check_writable(out, args.force)
    runs = [read_nccl_tests(f) for f in args.nccl_tests]
    source = ", ".join(args.nccl_tests)
    check = check_collectives(system, runs, None if args.primitive == "check" else
                              args.primitive, args.nodes, args.gpus, args.algo,
                              calibrate=out is not None, source=source,
                              name=Path(out).stem if out else "")
    written = None
    if out is not None and check.spec is not None:
        written = str(write_spec(out, check.spec, force=args.force, header=(
            f"{system.display_name}, calibrated by `perfmodel collective --calibrate-out` "
            f"to {source}.")))
    if args.format == "json":
        return to_json({k: v.to_dict("records") if isinstance(v, pd.DataFrame) else v
                        for k, v in _check_result(system, check, written).items()})
    if args.format == "csv":
        return emit_frame(check.rows, "csv")
    return _check_text(system, runs, check, written)


def _check_result(system: SystemSpec, check: CollectiveCheck, written: str | None
                  ) -> dict[str, Any]:
    """The --format json document, keys in their printed order."""
    result: dict[str, Any] = {"system": system.name, "rows": check.rows,
                              "summary": check.summary}
    if check.fit is not None:
        result.update(fit=check.fit.values, fit_rows=check.fit.rows_used,
                      fit_notes=check.fit.notes, fitted_summary=check.fitted_summary,
                      held_out_summary=check.held_out_summary, written=written)
    return result


def _check_text(system: SystemSpec, runs: list[Any], check: CollectiveCheck,
                written: str | None) -> str:
    pct = {c: (lambda x: f"{100 * x:+.1f}%") for c in ("time_err",)}
    gpu = {run.path: run.gpu for run in runs}
    lines = []
    for key, grp in check.rows.groupby("source", sort=False):
        n, g = int(grp["nodes"].iloc[0]), int(grp["per_node"].iloc[0])
        lines.append(f"# {key}: {grp['collective'].iloc[0]}, {n} node(s) x {g} GPUs"
                     + (f", measured on {gpu[key]}" if gpu.get(key) else "")
                     + f"; predicted on {system.display_name} (device {system.device})")
        view = grp[["size_bytes", "t_meas_us", "t_pred_us", "time_err", "busbw_meas",
                    "busbw_pred", "algorithm"]].astype({"size_bytes": "int64"}).rename(columns={
                        "size_bytes": "size(B)", "t_meas_us": "measured(us)",
                        "t_pred_us": "predicted(us)", "busbw_meas": "busbw_meas(GB/s)",
                        "busbw_pred": "busbw_pred(GB/s)"})
        lines.append(emit_frame(view, "table", {
            "measured(us)": lambda x: f"{x:.2f}", "predicted(us)": lambda x: f"{x:.2f}",
            "busbw_meas(GB/s)": lambda x: f"{x:.2f}", "busbw_pred(GB/s)": lambda x: f"{x:.2f}",
            **pct}))
    summ = {c: (lambda x: f"{100 * x:.1f}%") for c in (
        "median_abs_time_err", "mean_abs_time_err", "median_abs_busbw_err")}
    lines += ["# |error| of the model as shipped, per size range:",
              emit_frame(check.summary, "table", summ)]
    if check.fit is not None:
        lines.append("# fitted (rows used: " + ", ".join(
            f"{k} {v}" for k, v in check.fit.rows_used.items()) + "):")
        lines += [f"#   {k}: {v}" for k, v in check.fit.values.items()]
        lines += [f"#   note: {n}" for n in check.fit.notes]
        lines += ["# |error| after the fit, held out (fitted on every other size, "
                  "predicting the rest):", emit_frame(check.held_out_summary, "table",
                                                       summ),
                  f"# calibrated system written to {written} (use it with "
                  f"--system {written})"]
    return "\n".join(lines)


def _compare(args: argparse.Namespace, system: SystemSpec) -> str:
    from perfmodel.sim.collective_sweep import compare_algorithms

    size = float(parse_bytes(args.bytes or "1G"))
    df = compare_algorithms(system, size, args.nodes, args.gpus)
    if args.format != "table":
        return emit_frame(df, args.format)
    p = int(df["p"].iloc[0])
    return "\n".join([
        f"# all_reduce of {int(size)} B on {system.display_name}, p = {p}: "
        "parameter server (device 0 serves) vs ring",
        emit_frame(df, "table", {**_fmt(), "sim_time_us": lambda x: f"{x:.2f}",
                                 "x_ring": lambda x: f"{x:.2f}x",
                                 "sim_x_ring": lambda x: f"{x:.2f}x"}),
        f"# closed form, one switch, large V: PS/ring = 2(p-1)V/b / (2(p-1)V/(p b)) = p = {p}"
        "; the server's link carries (p-1)V per phase, every ring link 2(p-1)V/p."])


def handle(args: argparse.Namespace) -> str:
    _slowdowns(args)  # --slow is checked before any work
    system = load_system(args.system)
    if args.nccl_tests:
        return _check(args, system)
    if args.primitive == "check" or args.calibrate_out:
        raise PerfModelError("check and --calibrate-out need measured runs",
                             "pass --nccl-tests FILE (the stdout of an nccl-tests binary)")
    if args.primitive == "compare":
        return _compare(args, system)
    return _sweep(args, system)


__all__ = ["add_arguments", "handle"]
