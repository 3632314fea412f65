"""perfmodel models: the zoo, with parameters and MACs."""

from __future__ import annotations

import argparse

import pandas as pd

from perfmodel.cli.output import emit_frame
from perfmodel.units import format_si
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model, models, references

HELP = "list the model zoo with parameters and MACs"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--family", default=None, help="only this family (e.g. resnet, llama)")


def zoo_table(family: str | None = None) -> pd.DataFrame:
    """One row per zoo model: params, MACs for one sample (CNNs) or one token (LLMs)."""
    refs = references()
    rows = []
    for name in sorted(models()):
        g = load_model(name)
        if family and g.meta.get("family") != family:
            continue
        llm = bool(g.meta.get("is_llm")) or "config" in g.meta
        wl = build_workload(g, batch=1, seq=1 if llm else None, dtype="fp16")
        ref = refs.get(name, {})
        rows.append({"model": name, "family": g.meta.get("family", ""),
                     "input": "1 token" if llm else g.meta.get("input", ""),
                     "params": g.params, "macs": float(wl["macs"].sum()),
                     "reference_params": ref.get("params"), "ops": g.num_ops,
                     "source": ref.get("source", g.meta.get("source", ""))})
    return pd.DataFrame(rows)


def handle(args: argparse.Namespace) -> str:
    df = zoo_table(args.family)
    if args.format != "table":
        return emit_frame(df, args.format)
    fmt = {"params": lambda v: format_si(v), "macs": lambda v: format_si(v)}
    return emit_frame(df.drop(columns=["reference_params", "source"]), "table", fmt)
