"""perfmodel memory-wall: peak FLOP/s vs memory bandwidth vs capacity over the library."""

from __future__ import annotations

import argparse

from perfmodel.analytic.bandwidth import growth_rates, memory_wall_table
from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.hardware.load import list_devices, load_device


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plot", default=None, metavar="FILE", help="trend chart by year")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def handle(args: argparse.Namespace) -> str:
    table = memory_wall_table([load_device(n) for n in list_devices()])
    rates = growth_rates(table)
    if args.plot:
        from perfmodel.report.memory import plot_memory_wall
        announce(plot_memory_wall(table, args.plot, args.force))
    if args.format == "json":
        return to_json({"devices": table.to_dict(orient="records"), "growth": rates})
    if args.format == "csv":
        return emit_frame(table, "csv")
    fmt = {"peak_flops_per_s": lambda v: f"{v / 1e12:.4g} T",
           "bandwidth_Bps": lambda v: f"{v / 1e9:.4g} GB/s",
           "capacity_bytes": lambda v: f"{v / 1e9:.4g} GB",
           "flop_per_byte": lambda v: f"{v:.0f}",
           "bandwidth_per_capacity_per_s": lambda v: f"{v:.1f}/s",
           "year": lambda v: "-" if v != v else str(int(v))}
    g = rates
    lines = [emit_frame(table.drop(columns=["vendor"]), "table", fmt), ""]
    if "peak_flops_per_s_per_year" in g:
        lines.append(
            f"NVIDIA data-center GPUs ({int(g['devices'])} specs), least-squares growth per "
            f"year: peak {100 * g['peak_flops_per_s_per_year']:.0f} %, bandwidth "
            f"{100 * g['bandwidth_Bps_per_year']:.0f} %, capacity "
            f"{100 * g['capacity_bytes_per_year']:.0f} %")
    return "\n".join(lines)
