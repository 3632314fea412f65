"""perfmodel infer MODEL --hw HW | --system SYS --engine ENGINE: one inference run end to
end (TTFT, TPOT, tokens/s, memory per GPU, where the time goes), or the engine profiles
(--list-engines, --show-engine)."""

from __future__ import annotations

import argparse
import math

import pandas as pd

from perfmodel.cli.output import add_allow_oom, emit_frame, flag_oom, to_json
from perfmodel.errors import PerfModelError
from perfmodel.inference.engine import SPLITS, EngineProfile, list_engines, load_engine
from perfmodel.inference.run import BREAKDOWN, InferencePrediction
from perfmodel.inference_api import infer
from perfmodel.units import format_si


def batch_arg(text: str) -> int | str:
    """--batch: an integer (checked positive by the model, with its hint) or ``max``."""
    if text.strip().lower() == "max":
        return "max"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer or 'max', got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", default=None,
                   help="zoo name (perfmodel models), model YAML, HF config.json or folder, "
                        ".onnx, or pkg.module:factory")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--hw", default=None,
                       help="device name (perfmodel hw) or spec YAML; several GPUs run in "
                            "the smallest shipped system of that device")
    where.add_argument("--system", default=None,
                       help="system name (perfmodel hw --systems) or system YAML; the "
                            "device is the system's")
    p.add_argument("--engine", default="pytorch",
                   help="engine profile name (--list-engines) or profile YAML")
    p.add_argument("--batch", type=batch_arg, default=1,
                   help="sequences (or samples) served together, or 'max': the largest that "
                        "fits")
    p.add_argument("--input-len", type=int, default=None,
                   help="prompt tokens per sequence (default: the model's default sequence, "
                        "less --output-len where both would pass its trained context)")
    p.add_argument("--output-len", type=int, default=None,
                   help="generated tokens per sequence (default 128; language models only)")
    p.add_argument("--dtype", default=None,
                   help="precision: fp16, bf16, or fp8 / int8 / int4 through the engine's "
                        "kernel path (default: the device's)")
    p.add_argument("--kv-dtype", default=None, help="KV-cache dtype (default: --dtype's "
                                                    "activations)")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel size")
    p.add_argument("--pp", type=int, default=1, help="pipeline-parallel size (layer split)")
    p.add_argument("--ep", type=int, default=1,
                   help="expert-parallel size (mixture-of-experts; divides --dp)")
    p.add_argument("--dp", type=int, default=1, help="data-parallel replicas")
    p.add_argument("--gpus", type=int, default=None,
                   help="GPUs to share the model over by --split (instead of --tp / --pp)")
    p.add_argument("--split", choices=SPLITS, default=None,
                   help="how --gpus share the model: tensor (tp = gpus) or layer (pp = gpus, "
                        "llama.cpp's --split-mode layer); default: the engine's")
    p.add_argument("--chunk-tokens", type=int, default=None,
                   help="prefill chunk in tokens (default: the engine's chunked prefill)")
    p.add_argument("--imbalance", type=float, default=1.0,
                   help="busiest expert-parallel rank's load over the mean (1 to 64)")
    p.add_argument("--draft", default=None, metavar="MODEL",
                   help="draft model for speculative decoding (same sources as MODEL)")
    p.add_argument("--draft-tokens", type=int, default=4,
                   help="tokens the draft proposes per round (with --draft)")
    p.add_argument("--acceptance", type=float, default=0.7,
                   help="chance each drafted token is accepted, in [0, 1) (with --draft)")
    p.add_argument("--allow-long-context", action="store_true",
                   help="price a prompt + output past the model's trained context (refused "
                        "otherwise)")
    add_allow_oom(p)
    p.add_argument("--list-engines", action="store_true",
                   help="list the shipped engine profiles (no MODEL needed)")
    p.add_argument("--show-engine", default=None, metavar="ENGINE",
                   help="one engine profile's figures with their sources (no MODEL needed)")


def run_prediction(args: argparse.Namespace) -> InferencePrediction:
    """The prediction for the command line (perfmodel.inference_api.infer)."""
    if args.model is None:
        raise PerfModelError("infer needs a MODEL",
                             "e.g. perfmodel infer llama-2-7b --hw h100 --engine vllm; "
                             "--list-engines needs none")
    output_len = {} if args.output_len is None else {"output_len": args.output_len}
    return infer(args.model, args.hw, system=args.system, engine=args.engine,
                 batch=args.batch, input_len=args.input_len, dtype=args.dtype,
                 kv_dtype=args.kv_dtype, tp=args.tp, pp=args.pp, ep=args.ep, dp=args.dp,
                 gpus=args.gpus, split=args.split, chunk_tokens=args.chunk_tokens,
                 imbalance=args.imbalance, draft=args.draft, draft_tokens=args.draft_tokens,
                 acceptance=args.acceptance, allow_long_context=args.allow_long_context,
                 **output_len)


def handle(args: argparse.Namespace) -> str:
    if args.list_engines:
        return emit_frame(engine_table(), args.format)
    if args.show_engine:
        return show_engine(load_engine(args.show_engine), args.format)
    pred = run_prediction(args)
    s = pred.summary
    flag_oom(args, pred.fits, f"{s['model']} at batch {s['batch']} on {s['gpus']} x "
                              f"{s['device']}")
    if args.format == "json":
        return to_json({**pred.to_dict(), "passes": pass_summary(pred).to_dict("records")})
    if args.format == "csv":
        return emit_frame(pred.summary_frame(), "csv")
    return "\n".join([*pred.warnings, _table(pred)])


def engine_table() -> pd.DataFrame:
    """One row per shipped engine profile."""
    rows = []
    for name in list_engines():
        e = load_engine(name)
        graphs = [phase for phase, on in (("decode", e.decode_graphs),
                                          ("prefill", e.prefill_graphs)) if on]
        rows.append({"engine": e.name, "name": e.display_name, "stack": e.stack,
                     "kind": e.kind, "fusion": e.fusion, "graphs": ",".join(graphs) or "-",
                     "split": e.split,
                     "quantization": ",".join(f"{k}:{v}" for k, v in e.quantization.items())
                     or "-",
                     "fitted": ",".join(f.removesuffix("_us") for f in e.fitted()) or "-"})
    return pd.DataFrame(rows)


def _value(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def show_engine(e: EngineProfile, fmt: str) -> str:
    d = e.describe()
    if fmt == "json":
        return to_json(d)
    sources = d.pop("sources")
    figures = pd.DataFrame({"figure": list(d), "value": [_value(v) for v in d.values()],
                            "source": [str(sources.get(k, "")) for k in d]})
    if fmt == "csv":
        return emit_frame(figures, "csv")
    lines = [f"{e.display_name} ({e.path or e.name})", ""]
    for k, v, src in figures.itertuples(index=False):
        lines.append(f"  {k:<24}{v}")
        if src:
            lines.append(f"  {'':<24}  source: {src}")
    if e.notes:
        lines += ["", f"notes: {e.notes}"]
    return "\n".join(lines)


def pass_summary(pred: InferencePrediction) -> pd.DataFrame:
    """The passes by kind (prefill, decode, verify, draft, forward) and wave: how many, and
    their seconds in all."""
    cols = ["seconds", "gpu_s", "compute_s", "memory_s", "communication_s", "host_s"]
    p = pred.passes
    g = p.groupby(["pass", "wave"], sort=False)
    out = g[cols].sum().reset_index()
    out.insert(2, "count", g.size().to_numpy())
    return out


def _s(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else format_si(v, "s", 4)


def _rate(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def _gb(v: float) -> str:
    return f"{v / 1e9:,.2f} GB"


def _precision(s: dict) -> str:
    """fp16, or fp8 weights, fp8 GEMMs, bf16 activations."""
    if s["weight_dtype"] == s["dtype"] == s["gemm_dtype"]:
        return s["dtype"]
    return (f"{s['weight_dtype']} weights, {s['gemm_dtype']} GEMMs, {s['dtype']} "
            "activations")


def _table(pred: InferencePrediction) -> str:
    s, a = pred.summary, pred.assumptions
    llm = s["input_len"] is not None
    par = ", ".join(f"{k} {s[k]}" for k in ("tp", "pp", "ep", "dp") if s[k] > 1)
    where = (f"{s['gpus']} x {s['device']}" + (f" ({s['system']})" if s["system"] else ""))
    head = (f"{s['model']} on {where}, {a['engine']['engine']}: batch {s['batch']}"
            + (f", {s['input_len']} in + {s['output_len']} out tokens" if llm else "")
            + f", {_precision(s)}"
            + (f", {par}" if par else ""))
    if llm:
        rows = [("TTFT (time to first token)", _s(s["ttft_s"])),
                ("TPOT (time per output token)", _s(s["tpot_s"])),
                ("end-to-end latency", _s(s["latency_s"])),
                ("input tokens/s", _rate(s["input_tokens_per_s"])),
                ("output tokens/s", _rate(s["output_tokens_per_s"])),
                ("total tokens/s", _rate(s["total_tokens_per_s"])),
                ("requests/s", _rate(s["requests_per_s"]))]
    else:
        rows = [("latency (one batch)", _s(s["latency_s"])),
                ("samples/s", _rate(s["requests_per_s"]))]
    if s["waves"] > 1:
        rows += [("whole batch", f"{_s(s['total_s'])} in {s['waves']} waves of up to "
                                 f"{s['wave_batch']}")]
    lines = [head, ""] + [f"{k:<30}{v}" for k, v in rows]
    usable = s["usable_bytes"]
    mem = pd.DataFrame({"component": [k for k, v in pred.memory.items()
                                      if k != "total" and v > 0],
                        "bytes": [v for k, v in pred.memory.items() if k != "total" and v > 0]})
    mem["share of usable"] = mem["bytes"] / usable if usable else float("nan")
    eng = a["engine"]
    lines += ["", "Memory per GPU:",
              emit_frame(mem, "table", {"bytes": _gb,
                                        "share of usable": lambda x: f"{100 * x:.1f}%"}),
              f"total {_gb(s['memory_per_gpu_bytes'])} of {_gb(usable)} usable "
              f"({eng['memory_fraction']:.0%} of {_gb(s['capacity_bytes'])} under "
              f"{eng['engine']}): " + ("FITS" if s["fits"] else "DOES NOT FIT"),
              f"largest batch that fits: {s['max_batch'] or 'none'}"
              + (f"; this batch runs in {s['waves']} waves" if s["waves"] > 1 else "")]
    total = sum(pred.breakdown.values())
    lines += ["", "Time split (whole run):"]
    lines += [f"  {k:<15}{_s(pred.breakdown[k]):>12}  "
              f"{100 * pred.breakdown[k] / total if total else 0:5.1f} %" for k in BREAKDOWN]
    fitted = ", ".join(eng["fitted_figures"])
    lines += ["", "Assumptions:",
              f"  engine: {eng['engine']} (profile {eng['profile']}, {eng['stack']}, attention "
              f"{eng['attention']})" + (f"; fitted figures: {fitted}" if fitted else ""),
              (f"  host: {eng['host_per_kernel_us']:g} us per eager kernel, "
               f"{eng['graph_per_kernel_us']:g} us per graph node, {eng['per_step_us']:g} us "
               f"per step; {a['host_per_kernel']}" if llm else
               f"  host: {eng['host_per_kernel_us']:g} us per eager kernel, "
               f"{eng['per_call_us']:g} us per call"),
              f"  method: {a['method']}",
              f"  fusion: {a['fusion']}",
              f"  precision: {a['precision']}" + (f"; KV cache {s['kv_dtype']}" if llm else ""),
              *([f"  prefill chunk: {a['prefill_chunk_tokens'] or 'whole prompt'}"] if llm
                else []),
              f"  tensor parallel: {a['tensor_parallel']}",
              f"  pipeline: {a['pipeline']}",
              f"  expert parallel: {a['expert_parallel']}",
              *([f"  speculative: {a['speculative']}"] if "speculative" in a else []),
              f"  memory: {a['memory']}",
              f"  system: {a['system']}",
              "  sources: perfmodel infer --show-engine "
              f"{eng['profile']}; ... --format json (assumptions)"]
    return "\n".join(lines)
