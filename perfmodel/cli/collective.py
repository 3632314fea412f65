"""perfmodel collective PRIMITIVE --system SYS: nccl-tests style size sweeps, --sim, compare.

    perfmodel collective all_reduce --system dgx-h100 --gpus 8 --min-bytes 8 --max-bytes 8G
    perfmodel collective all_reduce --system dgx-a100 --nodes 16 --algo hierarchical --sim
    perfmodel collective all_to_all --system my_cluster.yaml --bytes 256M --plot links.png
    perfmodel collective compare --system pcie-8x-4090 --bytes 1G
    perfmodel collective check --system dgx-a100 --nccl-tests all_reduce.txt \
        --calibrate-out my-dgx.yaml       # measured vs predicted; fit a system file
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.collectives import ALGORITHMS, BUS_FACTOR, PRIMITIVES
from perfmodel.analytic.network import COLUMNS, CollectivePrediction, predict_collective
from perfmodel.cli.output import emit_frame, to_json
from perfmodel.errors import PerfModelError, ShapeError
from perfmodel.hardware.system import SystemSpec, load_system, system_from_dict
from perfmodel.units import dtype_bytes

HELP = "collective time, algbw and busbw per message size (nccl-tests columns), or compare"

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
NCCL_COLUMNS = ["size_bytes", "count", "type", "time_us", "algbw_GBps", "busbw_GBps",
                "algorithm"]


def parse_bytes(text: str) -> int:
    """'8', '256M', '8G' -> bytes; K/M/G/T are binary, as nccl-tests -b/-e read them."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ShapeError(f"cannot read a byte count from {text!r}",
                         "write it like 8, 64K, 256M or 8G (binary, as nccl-tests)")
    value = int(float(m.group(1)) * _SUFFIX[m.group(2).upper()])
    if value <= 0:
        raise ShapeError(f"byte count must be positive, got {text!r}", "e.g. --bytes 1M")
    return value


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


def sizes(args: argparse.Namespace) -> np.ndarray:
    if args.bytes is not None:
        if args.min_bytes or args.max_bytes:
            raise PerfModelError("give --bytes or --min-bytes/--max-bytes, not both",
                                 "one size: --bytes; a sweep: --min-bytes and --max-bytes")
        return np.array([parse_bytes(args.bytes)], dtype=float)
    lo = parse_bytes(args.min_bytes or "8")
    hi = parse_bytes(args.max_bytes or "1G")
    if hi < lo or not args.step_factor > 1:
        raise ShapeError(f"a sweep needs min <= max and --step-factor > 1, got {lo}..{hi} "
                         f"x{args.step_factor}", "e.g. --min-bytes 8 --max-bytes 8G")
    out: list[float] = []
    v = float(lo)
    while v <= hi and len(out) < 200:
        out.append(v)
        v = np.floor(v * args.step_factor)
    return np.array(out)


def _slowdowns(args: argparse.Namespace) -> dict[str, float]:
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


def simulate_table(system: SystemSpec, args: argparse.Namespace, v: np.ndarray,
                   primitive: str, algorithm: str) -> tuple[pd.DataFrame, Any]:
    """Simulated rows in the analytic table's columns, and the last run's result."""
    from perfmodel.sim.collectives import simulate_collective

    algo = "ring" if algorithm == "auto" else algorithm
    rows, last = [], None
    for size in v:
        last = simulate_collective(system, primitive, float(size), args.nodes, args.gpus,
                                   algo, args.chunks, device_slowdown=_slowdowns(args),
                                   record=bool(args.plot) and len(v) == 1)
        n, g = last.assumptions["nodes"], last.assumptions["per_node"]
        t = last.time_s
        rows.append({"size_bytes": int(size), "count": int(size // dtype_bytes(args.dtype)),
                     "type": args.dtype, "time_us": t * 1e6, "algbw_GBps": size / t / 1e9,
                     "busbw_GBps": size / t * BUS_FACTOR[primitive](np.asarray(float(n * g))) / 1e9,
                     "algorithm": algo, "p": n * g, "nodes": n, "per_node": g,
                     "events": last.events, "sim_wall_s": last.wall_s})
    return pd.DataFrame(rows), last


def _header(system: SystemSpec, pred: CollectivePrediction, primitive: str, sim: bool) -> str:
    a = pred.assumptions
    t = pred.table
    return (f"# {primitive} on {system.display_name}: {a['nodes']} node(s) x "
            f"{a['per_node']} devices = {int(t['p'].iloc[0])}, algorithm {a['algorithm']}, "
            + ("discrete-event simulation" if sim else "alpha-beta model"))


def _footer(pred: CollectivePrediction) -> list[str]:
    a = pred.assumptions
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


def _sweep(args: argparse.Namespace, system: SystemSpec) -> str:
    v = sizes(args)
    primitive = args.primitive
    pred = predict_collective(system, primitive, v, args.nodes, args.gpus, args.algo,
                              args.dtype)
    table, last = (simulate_table(system, args, v, primitive, args.algo) if args.sim
                   else (pred.table, None))
    if args.plot:
        _plot(args, system, pred, table, last, v)
    if args.format == "json":
        out: dict[str, Any] = {"assumptions": pred.assumptions, "method":
                               "simulation" if args.sim else "analytic",
                               "rows": table.to_dict("records")}
        if last is not None:
            out["simulation"] = dict(last.assumptions)
        return to_json(out)
    if args.format == "csv":
        return emit_frame(table, "csv")
    lines = [_header(system, pred, primitive, args.sim),
             emit_frame(table[NCCL_COLUMNS].rename(columns={
                 "size_bytes": "size(B)", "count": "count(elts)", "time_us": "time(us)",
                 "algbw_GBps": "algbw(GB/s)", "busbw_GBps": "busbw(GB/s)"}), "table",
                 {k.replace("_us", "(us)").replace("_GBps", "(GB/s)"): f
                  for k, f in _fmt().items()}),
             *_footer(pred)]
    if last is not None:
        lines.append(f"#   simulated {last.events} events in {last.wall_s:.3g} s (last size)")
    if args.plot:
        what = "link-occupancy Gantt chart (simulated)" if len(v) == 1 else "busbw vs size"
        lines.append(f"# {what} written to {args.plot}")
    return "\n".join(lines)


def _plot(args: argparse.Namespace, system: SystemSpec, pred: CollectivePrediction,
          table: pd.DataFrame, last: Any, v: np.ndarray) -> None:
    from perfmodel.report.collectives import plot_busbw, plot_link_gantt

    title = f"{args.primitive} on {system.name}, p = {int(pred.table['p'].iloc[0])}"
    if len(v) == 1:
        if last is None:  # a Gantt chart needs the simulator's timeline
            _, last = simulate_table(system, args, v, args.primitive, args.algo)
        plot_link_gantt(last.timeline, args.plot, f"{title}, {int(v[0])} B",
                        overwrite=args.force)
    else:
        curves = {"alpha-beta model": pred.table}
        if args.sim:
            curves["simulated"] = table
        plot_busbw(curves, args.plot, title, overwrite=args.force)


def compare_table(system: SystemSpec, size: float, nodes: int | None, per_node: int | None,
                  sim: bool = True) -> pd.DataFrame:
    """Parameter server vs ring all-reduce: analytic (and simulated) time and the ratio."""
    rows = []
    for algo in ("ring", "parameter_server"):
        t = predict_collective(system, "all_reduce", [size], nodes, per_node, algo).table
        row = {"algorithm": algo, "size_bytes": int(size), "p": int(t["p"].iloc[0]),
               "time_us": float(t["time_us"].iloc[0]),
               "busbw_GBps": float(t["busbw_GBps"].iloc[0])}
        if sim:
            from perfmodel.sim.collectives import simulate_collective
            r = simulate_collective(system, "all_reduce", size, nodes, per_node, algo,
                                    record=False)
            row["sim_time_us"] = r.time_s * 1e6
        rows.append(row)
    df = pd.DataFrame(rows)
    df["x_ring"] = df["time_us"] / df["time_us"].iloc[0]
    if sim:
        df["sim_x_ring"] = df["sim_time_us"] / df["sim_time_us"].iloc[0]
    return df


def _check(args: argparse.Namespace, system: SystemSpec) -> str:
    """Measured (nccl-tests files) beside predicted; with --calibrate-out, the fit too."""
    from perfmodel.importers.nccl_tests import read_nccl_tests
    from perfmodel.validate.collectives import (
        calibrated_system,
        compare_collectives,
        cross_validate,
        error_summary,
        fit_collectives,
        runs_frame,
    )

    out = Path(args.calibrate_out) if args.calibrate_out else None
    if out is not None:
        if out.suffix not in (".yaml", ".yml"):
            raise PerfModelError(f"--calibrate-out {out} is not a .yaml file",
                                 "name the system file to write, e.g. my-cluster.yaml")
        if out.exists() and not args.force:
            raise PerfModelError(f"{out} already exists", "pass --force to overwrite it")
    runs = [read_nccl_tests(f) for f in args.nccl_tests]
    prim = None if args.primitive == "check" else args.primitive
    frame = runs_frame(runs, prim, args.nodes, args.gpus)
    rows = compare_collectives(system, frame, args.algo)
    result: dict[str, Any] = {"system": system.name, "rows": rows,
                              "summary": error_summary(rows)}
    if out is not None:
        import yaml

        fit = fit_collectives(system, frame)
        held = cross_validate(system, frame)
        spec = calibrated_system(system, fit, ", ".join(args.nccl_tests), out.stem)
        fitted = system_from_dict(spec, str(out))  # the written file must load
        result.update(fit=fit.values, fit_rows=fit.rows_used, fit_notes=fit.notes,
                      fitted_summary=error_summary(compare_collectives(fitted, frame)),
                      held_out_summary=error_summary(held))
        out.write_text(f"# {system.display_name}, calibrated by `perfmodel collective "
                       f"--calibrate-out` to {', '.join(args.nccl_tests)}.\n"
                       + yaml.safe_dump(spec, sort_keys=False, width=100), encoding="utf-8")
        result["written"] = str(out)
    if args.format == "json":
        return to_json({k: v.to_dict("records") if isinstance(v, pd.DataFrame) else v
                        for k, v in result.items()})
    if args.format == "csv":
        return emit_frame(rows, "csv")
    return _check_text(system, runs, rows, result)


def _check_text(system: SystemSpec, runs: list[Any], rows: pd.DataFrame,
                result: dict[str, Any]) -> str:
    pct = {c: (lambda x: f"{100 * x:+.1f}%") for c in ("time_err",)}
    gpu = {run.path: run.gpu for run in runs}
    lines = []
    for key, grp in rows.groupby("source", sort=False):
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
              emit_frame(result["summary"], "table", summ)]
    if "fit" in result:
        lines.append("# fitted (rows used: " + ", ".join(
            f"{k} {v}" for k, v in result["fit_rows"].items()) + "):")
        lines += [f"#   {k}: {v}" for k, v in result["fit"].items()]
        lines += [f"#   note: {n}" for n in result["fit_notes"]]
        lines += ["# |error| after the fit, held out (fitted on every other size, "
                  "predicting the rest):", emit_frame(result["held_out_summary"], "table",
                                                       summ),
                  f"# calibrated system written to {result['written']} (use it with "
                  f"--system {result['written']})"]
    return "\n".join(lines)


def handle(args: argparse.Namespace) -> str:
    _slowdowns(args)  # --slow is checked before any work
    system = load_system(args.system)
    if args.nccl_tests:
        return _check(args, system)
    if args.primitive == "check" or args.calibrate_out:
        raise PerfModelError("check and --calibrate-out need measured runs",
                             "pass --nccl-tests FILE (the stdout of an nccl-tests binary)")
    if args.primitive != "compare":
        return _sweep(args, system)
    size = float(parse_bytes(args.bytes or "1G"))
    df = compare_table(system, size, args.nodes, args.gpus)
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


__all__ = ["HELP", "add_arguments", "handle", "parse_bytes", "sizes", "compare_table",
           "COLUMNS"]
