"""perfmodel validate FILE --hw HW | --reference a100: predicted vs measured, per row."""

from __future__ import annotations

import argparse

import pandas as pd

from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.errors import PerfModelError
from perfmodel.hardware.load import load_device
from perfmodel.validate.compare import COMPARE_COLUMNS, compare
from perfmodel.validate.metrics import error_summary
from perfmodel.validate.reference import REFERENCE_DEVICES, measurement_rows
from perfmodel.zoo.registry import load_model

ROW_COLUMNS = ["benchmark", "family", "hw_used", "dtype", "m", "n", "k", "model", "batch",
               "seq", "bytes", "time_s", "predicted_s", "error", "predict_note"]


def add_measurement_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("measurements", nargs="?", help="measurement CSV (perfmodel bench --out)")
    p.add_argument("--reference", choices=sorted(REFERENCE_DEVICES), default=None,
                   help="use the shipped published measurements of this GPU instead")
    p.add_argument("--hw", default=None, help="device (name or spec YAML) for rows that name "
                                              "none (files from perfmodel bench)")
    p.add_argument("--family", default=None, help="only these families (comma list)")


def load_rows(args: argparse.Namespace) -> pd.DataFrame:
    """The measurement rows a validate/calibrate command works on, with hw filled in."""
    families = [f.strip() for f in args.family.split(",")] if args.family else []
    return measurement_rows(args.measurements, args.reference, families=families, hw=args.hw)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_measurement_arguments(p)
    p.add_argument("--efficiency-from", default=None, metavar="SPEC",
                   help="price every row with this spec's efficiency block (a calibrated "
                        "spec) on the row's own device")
    p.add_argument("--by", default="family", help="group the statistics by this column "
                                                  "(family, framework, engine, model, dtype, "
                                                  "...)")
    p.add_argument("--fusion", default="auto", choices=("auto", "none", "epilogue"),
                   help="inference rows: auto prices each through its engine profile "
                        "(perfmodel infer); none / epilogue force one fusion mode and the "
                        "single-GPU forward passes of the rows, without engine host costs")
    p.add_argument("--leave-one-device-out", action="store_true",
                   help="per device: error of the A100-fitted defaults (before), of the "
                        "shipped kernel model, and of efficiency fitted on the other devices "
                        "(use with --reference all)")
    p.add_argument("--plot", default=None, metavar="FILE", help="predicted-vs-measured scatter")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def summary_text(summary: pd.DataFrame, by: str) -> str:
    pct = {c: (lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
           for c in ("mape", "median_abs_error", "p90_abs_error", "median_error")}
    return emit_frame(summary, "table", pct)


def holdout_text(table: pd.DataFrame) -> str:
    """The leave-one-device-out table, median |error| and bias of each prediction, as
    percentages (MAPE in --format csv / json)."""
    table = table[[c for c in table.columns if not c.endswith("_mape")]]
    pct = {c: (lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%")
           for c in table.columns if c.endswith("_median")}
    pct.update({c: (lambda v: "-" if pd.isna(v) else f"{100 * v:+.1f}%")
                for c in table.columns if c.endswith("_bias")})
    return emit_frame(table, "table", pct)


def _holdout(args: argparse.Namespace, df: pd.DataFrame) -> str:
    from perfmodel.validate.holdout import leave_one_device_out
    if args.plot or args.efficiency_from:
        raise PerfModelError("--leave-one-device-out prices each device three ways itself",
                             "drop --plot and --efficiency-from")
    h = leave_one_device_out(df, models=load_model)
    if args.format == "json":
        return to_json({"table": h.table.astype(object).where(h.table.notna(), None)
                        .to_dict(orient="records")})
    if args.format == "csv":
        return emit_frame(h.table, "csv")
    return "\n".join([
        f"leave one device out: {len(df)} measurements on {h.table['held_out'].nunique() - 1} "
        "chips; error = (predicted - measured) / measured on the chip left out",
        "before = one efficiency fitted on A100 rows for every device (in sample on a100); "
        "model = the shipped kernel model (its issue fractions, memory levels and kernel "
        "floor were fitted on A100 / V100 rows: in sample there); refit = the kernel model "
        "with those figures refitted on the other chips (out of sample everywhere); "
        "fitted = efficiency curves fitted on the other chips' rows", "",
        holdout_text(h.table)])


def handle(args: argparse.Namespace) -> str:
    df = load_rows(args)
    if args.leave_one_device_out:
        return _holdout(args, df)
    eff = load_device(args.efficiency_from) if args.efficiency_from else None
    if args.by not in df.columns and args.by not in COMPARE_COLUMNS:
        raise PerfModelError(f"cannot group by {args.by!r}: not a measurement column",
                             "e.g. --by family, framework, engine, model, dtype, benchmark")
    compared = compare(df, efficiency_from=eff, models=load_model, fusion=args.fusion)
    summary = error_summary(compared, by=args.by)
    if args.plot:
        from perfmodel.report.validation import plot_validation
        announce(plot_validation(compared, args.plot, overwrite=args.force,
                                 title=f"perfmodel vs {args.reference or args.measurements}"))
    if args.format == "json":
        return to_json({"summary": summary.to_dict(orient="records"),
                        "rows": compared[ROW_COLUMNS].astype(object)
                        .where(compared[ROW_COLUMNS].notna(), None).to_dict(orient="records")})
    if args.format == "csv":
        return emit_frame(compared, "csv")
    worst = compared.dropna(subset=["error"]).reindex(
        compared["abs_error"].dropna().sort_values(ascending=False).index).head(5)
    lines = [f"{len(compared)} measurements, {int(compared['predicted_s'].notna().sum())} "
             f"predicted; error = (predicted - measured) / measured", "",
             summary_text(summary, args.by), "", "Largest errors:",
             emit_frame(worst[["benchmark", "family", "hw_used", "time_s", "predicted_s",
                               "error"]], "table",
                        {"error": lambda v: f"{100 * v:+.1f}%"})]
    skipped = compared[compared["predict_note"] != ""]["predict_note"].value_counts()
    lines += [f"not predicted: {n} x {note}" for note, n in skipped.items()]
    return "\n".join(lines)
