"""perfmodel roofline MODEL --hw HW: per-op roofline prediction and its summary."""

from __future__ import annotations

import argparse

import pandas as pd

from perfmodel.analytic.roofline import FUSION_MODES, Prediction, predict
from perfmodel.cli.output import (
    add_allow_oom,
    announce,
    emit_frame,
    fit_warnings,
    to_json,
)
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.load import load_device
from perfmodel.units import format_si
from perfmodel.workload.build import build_workload, check_context
from perfmodel.workload.job import check_positive
from perfmodel.workload.schema import PHASES
from perfmodel.zoo.registry import load_model, trace_options

OP_COLUMNS = ["name", "kind", "unit_used", "dtype_used", "macs", "flops", "bytes", "intensity",
              "bound", "time_s", "share"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (perfmodel models), model YAML, or HF config.json")
    p.add_argument("--hw", required=True, help="device name (perfmodel hw) or spec YAML")
    p.add_argument("--batch", type=int, default=None, help="batch size (default 1)")
    p.add_argument("--seq", type=int, default=None, help="sequence / context length (LLMs)")
    p.add_argument("--allow-long-context", action="store_true",
                   help="price a --seq past the model's trained context (refused otherwise)")
    p.add_argument("--dtype", default=None, help="compute dtype (default: the device's "
                                                 "fp16, else bf16, else fp32)")
    p.add_argument("--weight-dtype", default=None, help="weight dtype (default: --dtype)")
    p.add_argument("--kv-dtype", default=None, help="KV-cache dtype (default: --dtype)")
    p.add_argument("--phase", default="inference", choices=PHASES,
                   help="inference (one forward), prefill (the prompt), decode (one token per "
                        "sequence against a KV cache of --seq), train (forward, backward, "
                        "optimizer)")
    p.add_argument("--memory-model", choices=["flat", "hierarchical"], default="flat",
                   help="hierarchical: activations that fit stay in the last-level cache")
    p.add_argument("--fusion", choices=FUSION_MODES, default="none",
                   help="epilogue: elementwise/norm ops run inside the kernel before them, "
                        "as inference engines (TensorRT, vLLM) do; none: one kernel per op")
    p.add_argument("--top", type=int, default=10, help="ops shown in the table (by time)")
    add_allow_oom(p)
    p.add_argument("--plot", default=None, metavar="FILE", help="write a roofline chart")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")


def run_prediction(args: argparse.Namespace) -> tuple[Prediction, ModelGraph]:
    device = load_device(args.hw)
    graph = load_model(args.model, **trace_options(args.model, args.batch, args.seq))
    check_context(graph, args.seq, args.allow_long_context)
    dtype = args.dtype or device.default_dtype
    wl = build_workload(graph, batch=args.batch, seq=args.seq, dtype=dtype, phase=args.phase,
                        weight_dtype=args.weight_dtype, kv_dtype=args.kv_dtype)
    return predict(wl, device, hierarchical=args.memory_model == "hierarchical",
                   fusion=getattr(args, "fusion", "none")), graph


def capacity(pred: Prediction) -> dict:
    """The run's memory verdict on one device (weights, KV cache, activations: the one
    memory model), as the prediction's summary carries it."""
    s = pred.summary
    return {"fits": s["fits"], "total_bytes": s["memory_bytes"],
            "capacity_bytes": s["capacity_bytes"]}


def handle(args: argparse.Namespace) -> str:
    check_positive("top", args.top)
    pred, _ = run_prediction(args)
    cap = capacity(pred)
    warnings = fit_warnings(args, cap["fits"], cap["total_bytes"], cap["capacity_bytes"],
                            f"{args.model} at batch {pred.summary['batch']}")
    if args.plot:
        from perfmodel.report.roofline import plot_roofline
        announce(plot_roofline(pred, load_device(args.hw), args.plot, overwrite=args.force))
    if args.format == "json":
        return to_json({**pred.to_dict(), "capacity": cap, "warnings": warnings})
    ops = pred.ops.assign(share=pred.ops["time_s"] / max(pred.summary["latency_s"], 1e-30))
    if args.format == "csv":  # the ops, then one summary row (name "TOTAL") with the verdict
        s = pred.summary
        total = {"model": s["model"], "name": "TOTAL", "kind": "summary",
                 **{c: float(ops[c].sum()) for c in ("macs", "flops", "bytes", "time_s",
                                                      "compute_s", "memory_s", "overhead_s")},
                 "bound": s["bound"], "share": 1.0, "fits": cap["fits"]}
        return emit_frame(pd.concat([ops.assign(fits=None), pd.DataFrame([total])],
                                    ignore_index=True), "csv")
    return "\n".join([*warnings, _table(pred, ops, args.top)])


def _table(pred: Prediction, ops, top: int) -> str:
    s, a = pred.summary, pred.assumptions
    priced = ops[ops["bound"] != "none"]   # views and no-ops cost nothing: not listed
    shown = priced.sort_values("time_s", ascending=False).head(top)[OP_COLUMNS]
    fmt = {"macs": lambda v: format_si(v), "flops": lambda v: format_si(v),
           "bytes": lambda v: format_si(v, "B"), "intensity": lambda v: f"{v:.3g}",
           "time_s": lambda v: format_si(v, "s"), "share": lambda v: f"{100 * v:.1f}%"}
    head = (f"{s['model']} on {a['device']}: {s['phase']}, batch {s['batch']}"
            + (f", seq {s['seq']}" if s["phase"] in ("prefill", "decode", "train") else "")
            + f", {s['dtype']}")
    energy = f"{s['energy_j']:.3g} J (at TDP)" if s["energy_j"] is not None else "n/a (no TDP)"
    lines = [
        head, "", f"Top {len(shown)} of {s['num_ops']} ops by time:",
        emit_frame(shown, "table", fmt), "", "Summary:",
        f"  params {format_si(s['params'])}, MACs {format_si(s['macs'])}, "
        f"FLOPs {format_si(s['flops'])}, bytes moved {format_si(s['bytes'], 'B')}",
        f"  latency {format_si(s['latency_s'], 's')}, throughput "
        f"{s['throughput_per_s']:.4g} {s['throughput_unit']}",
        f"  achieved {format_si(s['achieved_flops_per_s'], 'FLOP/s')} of peak "
        f"{format_si(s['peak_flops_per_s'], 'FLOP/s')}: utilization "
        f"{100 * s['utilization']:.2f}%  (L = W / (P x U))",
        f"  bound: {s['bound']} (time in compute-bound ops {format_si(s['compute_bound_s'], 's')}"
        f", memory-bound {format_si(s['memory_bound_s'], 's')}, overhead-bound "
        f"{format_si(s['overhead_bound_s'], 's')}; launch overhead in all: "
        f"{format_si(s['overhead_s'], 's')})",
        f"  energy {energy}",
        "", "Assumptions:",
        f"  {a['method']}",
        f"  efficiency: compute {a['compute_efficiency']:.2f}, memory "
        f"{a['memory_efficiency']:.2f}, launch overhead {format_si(a['launch_overhead_s'], 's')}"
        " per op",
        f"  fusion: {a['fusion']}",
        f"  dtypes: compute {a['dtype']}, weights {a['weight_dtype']}, KV cache {a['kv_dtype']}",
        *(f"  fallback: {n}" for n in a["fallbacks"]),
        "  sources: perfmodel roofline ... --format json (assumptions); "
        "perfmodel hw show <device>",
    ]
    if s["unsupported_ops"]:
        lines.append(f"  WARNING: {len(s['unsupported_ops'])} op(s) have no cost rule and are "
                     f"not priced: {', '.join(s['unsupported_ops'][:5])}")
    return "\n".join(lines)
