"""perfmodel calibrate FILE --hw HW -o OUT.yaml: fit efficiency curves, cross-validated."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.cli.validate import add_measurement_arguments, load_rows
from perfmodel.errors import PerfModelError
from perfmodel.files import check_writable, write_yaml
from perfmodel.hardware.load import load_device
from perfmodel.hardware.write import write_spec
from perfmodel.validate.calibrate import calibrate, calibrated_spec
from perfmodel.validate.engines import engine_holdout, fit_engines, fitted_profile
from perfmodel.zoo.registry import load_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_measurement_arguments(p)
    p.add_argument("-o", "--output", default=None, metavar="YAML",
                   help="write the calibrated spec here")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    p.add_argument("--group", default=None,
                   help="fit the inference launch overhead per value of these columns in "
                        "cross-validation (e.g. framework, or framework,dtype); 'engine' "
                        "fits each engine profile's host figures on its rows instead")
    p.add_argument("--engines-dir", default=None, metavar="DIR",
                   help="with --group engine: write one fitted profile per engine here "
                        "(NAME-fitted.yaml, inheriting the shipped profile)")


def _table(cal_summary: pd.DataFrame, uncal: pd.DataFrame) -> pd.DataFrame:
    u = uncal.set_index("family")
    out = cal_summary[["family", "rows", "predicted"]].copy()
    out["uncalibrated_mape"] = out["family"].map(u["mape"])
    out["cv_mape"] = cal_summary["mape"]
    out["cv_median_abs_error"] = cal_summary["median_abs_error"]
    out["cv_p90_abs_error"] = cal_summary["p90_abs_error"]
    return out


def _engines(args: argparse.Namespace) -> str:
    """--group engine: fit each engine profile's host figures on its rows; the error of
    each device's rows with the fit that left that device out."""
    df = load_rows(args)
    figures, rows = fit_engines(df, load_model)
    if figures.empty:
        raise PerfModelError("no inference row names an engine that a profile claims",
                             "see perfmodel infer --list-engines, and the framework column")
    written = []
    if args.engines_dir:
        folder = Path(args.engines_dir)
        folder.mkdir(parents=True, exist_ok=True)
        where = args.measurements or f"reference:{args.reference}"
        for fig in figures.to_dict(orient="records"):
            path = write_yaml(folder / f"{fig['engine']}-fitted.yaml",
                              fitted_profile(fig, where), force=args.force,
                              header="engine profile fitted by `perfmodel calibrate --group "
                                     "engine` (format: docs/engine_format.md)")
            announce(path)
            written.append(str(path))
    holdout = engine_holdout(rows)
    if args.format == "json":
        return to_json({"figures": figures.to_dict(orient="records"),
                        "by_device": holdout.to_dict(orient="records"), "written": written})
    if args.format == "csv":
        return emit_frame(holdout, "csv")
    pct = {c: (lambda v: "-" if pd.isna(v) else f"{100 * v:+.1f}%")
           for c in holdout.columns if "median" in c or "mae" in c}
    return "\n".join([f"engine host figures fitted on {len(rows)} rows", "",
                      emit_frame(figures, "table"), "",
                      "error by engine and device: in-sample, and fitted without that device",
                      emit_frame(holdout, "table", pct)])


def handle(args: argparse.Namespace) -> str:
    if args.group == "engine":
        return _engines(args)
    if args.engines_dir:
        raise PerfModelError("--engines-dir needs --group engine",
                             "add --group engine, or drop --engines-dir")
    if args.folds < 2:
        raise PerfModelError(f"--folds must be at least 2, got {args.folds}",
                             "cross-validation fits on some folds and reports on the rest")
    if args.output:  # refused before the fit, not after it
        check_writable(args.output, args.force, (".yaml", ".yml"))
    df = load_rows(args)
    base = load_device(args.hw) if args.hw else load_device(df["hw"].iloc[0])
    cal = calibrate(df, folds=args.folds, seed=args.seed, group=args.group, models=load_model)
    table = _table(cal.summary, cal.uncalibrated)
    worse = _worse(table)
    for line in worse:
        sys.stderr.write(f"perfmodel: warning: {line}\n")
    written = None
    if args.output:
        spec = calibrated_spec(base, cal, args.measurements or f"reference:{args.reference}")
        written = str(write_spec(args.output, spec, force=args.force, header=(
            f"{base.display_name}, calibrated by `perfmodel calibrate`.")))
    e = cal.efficiency
    if args.format == "json":
        return to_json({"table": table.to_dict(orient="records"), "output": written,
                        "warnings": worse,
                        "launch_overhead_s": e.launch_overhead_s, "compute": e.compute,
                        "memory": e.memory,
                        "compute_curves": {k: c.to_points() for k, c in e.compute_curves.items()},
                        "memory_curve": e.memory_curve.to_points() if e.memory_curve else None,
                        "group_overheads_s": dict(cal.group_overheads_s)})
    if args.format == "csv":
        return emit_frame(table, "csv")
    pct = {c: (lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
           for c in table.columns if "mape" in c or "error" in c}
    lines = [f"calibrated on {len(df)} rows; errors on held-out rows ({args.folds}-fold "
             "cross-validation) next to the uncalibrated spec's", "",
             emit_frame(table, "table", pct), "",
             f"fitted: launch overhead {e.launch_overhead_s * 1e6:.3g} us, compute "
             f"{e.compute:.3f} and memory {e.memory:.3f} (large kernels), compute curves for "
             f"{', '.join(e.compute_curves) or 'none'}, memory curve with "
             f"{len(e.memory_curve.sizes) if e.memory_curve else 0} points"]
    lines += [f"WARNING: {w}" for w in worse]
    if written:
        lines.append(f"wrote {written} (use it: perfmodel roofline MODEL --hw {written})")
    return "\n".join(lines)


def _worse(table: pd.DataFrame) -> list[str]:
    """A line per family whose held-out error the fit makes worse than the spec's own."""
    rows = table[(table["family"] != "all") & table["cv_mape"].notna()
                 & table["uncalibrated_mape"].notna()]
    return [f"the fit prices held-out {r.family} rows worse than the uncalibrated spec (MAPE "
            f"{100 * r.uncalibrated_mape:.1f}% -> {100 * r.cv_mape:.1f}%): keep the spec's "
            f"own figures for {r.family}, or measure more rows"
            for r in rows.itertuples() if r.cv_mape > r.uncalibrated_mape]
