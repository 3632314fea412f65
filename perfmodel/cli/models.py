"""perfmodel models: the zoo, with parameters and MACs."""

from __future__ import annotations

import argparse

from perfmodel.catalog import model_table
from perfmodel.cli.output import emit_frame
from perfmodel.units import format_si


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", default=None, help="only this family (e.g. resnet, llama)")


def handle(args: argparse.Namespace) -> str:
    df = model_table(args.family)
    if args.format != "table":
        return emit_frame(df, args.format)
    fmt = {"params": lambda v: format_si(v), "macs": lambda v: format_si(v)}
    return emit_frame(df.drop(columns=["reference_params", "source"]), "table", fmt)
