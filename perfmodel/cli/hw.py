"""perfmodel hw [show NAME]: the device library, or one device with every source."""

from __future__ import annotations

import argparse

import pandas as pd

from perfmodel.catalog import device_figures, device_table
from perfmodel.cli.output import emit_frame, to_json
from perfmodel.hardware.load import load_device


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["list", "show"], default="list",
                   help="list: every device; show NAME: one device with every source")
    p.add_argument("name", nargs="?", help="device name, alias or spec file (for show)")


def handle(args: argparse.Namespace) -> str:
    if args.action == "show":
        if not args.name:
            from perfmodel.errors import PerfModelError
            raise PerfModelError("hw show needs a device name", "e.g. perfmodel hw show a100")
        d = load_device(args.name)
        table = device_figures(d)
        if args.format == "json":
            return to_json({"name": d.name, "display_name": d.display_name,
                            "aliases": list(d.aliases), "figures": table.to_dict("records"),
                            "notes": d.raw.get("notes", "")})
        if args.format == "csv":
            return emit_frame(table, "csv")
        lines = [f"{d.display_name} ({d.name}; aliases: {', '.join(d.aliases) or '-'})", ""]
        lines += [f"{r.figure:40s} {r.value!s:>10}   {r.source_key}" for r in table.itertuples()]
        cited = dict(zip(table["source_key"], table["source"], strict=True))
        lines += ["", "Sources:"] + [f"  {k}: {v}" if k != v else f"  {k}"
                                     for k, v in cited.items()]
        if d.raw.get("notes"):
            lines += ["", "notes: " + str(d.raw["notes"]).strip()]
        return "\n".join(lines)
    table = device_table()
    if args.format != "table":
        return emit_frame(table, args.format)
    num = {c: (lambda v: "-" if pd.isna(v) else f"{v:.4g}") for c in table.columns
           if c.endswith(("TFLOPS", "TOPS", "GB", "GBps", "_B", "_W"))}
    num["year"] = lambda v: "-" if pd.isna(v) else str(int(v))
    return emit_frame(table, "table", num)
