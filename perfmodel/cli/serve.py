"""perfmodel serve MODEL --hw HW | --system SYS --rate R: serving under load, simulated
(continuous batching on replicas behind a router): TTFT, TPOT, end-to-end and queueing at
p50 / p90 / p99, throughput and goodput against SLOs, GPU busy, KV occupancy."""

from __future__ import annotations

import argparse
import math

import pandas as pd

from perfmodel.cli.output import announce, emit_frame, to_json
from perfmodel.errors import PerfModelError
from perfmodel.inference.engine import SPLITS
from perfmodel.inference_api import serve, serve_search
from perfmodel.serving.simulate import POLICIES, ROUTERS
from perfmodel.units import format_si


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo name (perfmodel models), model YAML, HF config.json or "
                                 "folder: a language model")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--hw", default=None, help="device name (perfmodel hw) or spec YAML; "
                                                  "several GPUs run in its shipped system")
    where.add_argument("--system", default=None, help="system name or YAML; the device is "
                                                      "the system's")
    p.add_argument("--engine", default="vllm", help="engine profile (perfmodel infer "
                                                    "--list-engines) or profile YAML")
    p.add_argument("--rate", type=float, default=1.0, help="requests per second arriving")
    p.add_argument("--requests", type=int, default=1000, help="requests to simulate")
    p.add_argument("--arrival", default="poisson",
                   help="arrival process: poisson, or gamma:CV (burstier above CV 1)")
    p.add_argument("--input-len", default="1024",
                   help="prompt tokens: a number, or lognormal:MEAN,SIGMA, uniform:LO,HI, "
                        "exponential:MEAN")
    p.add_argument("--output-len", default="256", help="generated tokens, as --input-len")
    p.add_argument("--trace", default=None, metavar="CSV",
                   help="requests from a CSV (arrival_s, input_len, output_len) instead of "
                        "--rate / --requests / lengths")
    p.add_argument("--seed", type=int, default=0, help="seed of the arrivals and lengths")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel size of a replica")
    p.add_argument("--pp", type=int, default=1, help="pipeline stages of a replica")
    p.add_argument("--gpus", type=int, default=None, help="GPUs per replica, split by --split")
    p.add_argument("--split", choices=SPLITS, default=None,
                   help="how --gpus share a replica (default: the engine's)")
    p.add_argument("--replicas", type=int, default=1, help="model copies behind the router")
    p.add_argument("--router", choices=ROUTERS, default="round-robin",
                   help="how requests are sent to replicas")
    p.add_argument("--scheduler", choices=POLICIES, default="continuous",
                   help="continuous batching (iteration-level) or static batching")
    p.add_argument("--max-num-seqs", type=int, default=256,
                   help="sequences a replica runs at once (vLLM --max-num-seqs)")
    p.add_argument("--max-batched-tokens", type=int, default=None,
                   help="tokens per iteration (default: the engine's prefill chunk, else "
                        "8192)")
    chunk = p.add_mutually_exclusive_group()
    chunk.add_argument("--chunked-prefill", dest="chunked_prefill", action="store_true",
                       default=None, help="decode every iteration and fill the token budget "
                                          "with prompt chunks (Sarathi-Serve)")
    chunk.add_argument("--no-chunked-prefill", dest="chunked_prefill", action="store_false",
                       help="whole prompts, prefill-first (vLLM V0); default: the engine's")
    p.add_argument("--block-size", type=int, default=16, help="KV cache block in tokens")
    p.add_argument("--preemption", choices=("recompute", "swap"), default="recompute",
                   help="when KV blocks run out: drop and recompute the latest sequence, or "
                        "swap its KV cache to host memory over PCIe")
    p.add_argument("--disaggregate", default=None, metavar="prefill=NxTP,decode=NxTP",
                   help="separate prefill and decode pools (Splitwise / DistServe), each KV "
                        "cache moved between them over the system's links")
    p.add_argument("--prefix-hit", type=float, default=0.0,
                   help="share of each prompt found in the prefix cache, in [0, 1)")
    p.add_argument("--dtype", default=None, help="precision (fp16, bf16, fp8, int8, int4)")
    p.add_argument("--kv-dtype", default=None, help="KV-cache dtype")
    p.add_argument("--slo-ttft", type=float, default=None, help="TTFT target in seconds "
                                                                "(goodput)")
    p.add_argument("--slo-tpot", type=float, default=None, help="TPOT target in seconds "
                                                                "(goodput)")
    p.add_argument("--allow-long-context", action="store_true",
                   help="price requests past the model's trained context")
    p.add_argument("--requests-out", default=None, metavar="CSV",
                   help="write the per-request table here")
    p.add_argument("--plot", default=None, metavar="FILE",
                   help="timeline (batch, queue, KV occupancy) and latency CDFs")
    p.add_argument("--force", action="store_true", help="overwrite --plot / --requests-out")
    s = p.add_argument_group("search (--search): the cheapest deployment meeting the SLOs "
                             "at --rate")
    s.add_argument("--search", action="store_true",
                   help="rank deployments (engine, tp, batch, token budget, chunked prefill, "
                        "replicas) by GPUs, then GPU-hours per million output tokens")
    s.add_argument("--search-engines", default="vllm", help="engines to try (comma list)")
    s.add_argument("--search-tp", default="1,2,4,8", help="tensor-parallel sizes to try")
    s.add_argument("--search-max-num-seqs", default="64,128,256",
                   help="max sequences per replica to try")
    s.add_argument("--search-budgets", default="2048,8192",
                   help="tokens per iteration to try")
    s.add_argument("--search-disaggregate", action="store_true",
                   help="also try separate prefill and decode pools (every tp pair)")
    s.add_argument("--percentile", type=float, default=99.0,
                   help="the latency percentile the SLOs hold at (50 to 100)")
    s.add_argument("--max-replicas", type=int, default=64,
                   help="most replicas a deployment may use")
    s.add_argument("--workers", type=int, default=1,
                   help="processes evaluating deployments in parallel")
    s.add_argument("--top", type=int, default=10, help="deployments listed (table format)")


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise PerfModelError(f"{flag} {text!r}: not a comma list of whole numbers",
                             f"e.g. {flag} 1,2,4,8") from None
    if not vals:
        raise PerfModelError(f"{flag} is empty", f"e.g. {flag} 1,2,4,8")
    return vals


def _search(args: argparse.Namespace) -> str:
    if args.slo_ttft is None or args.slo_tpot is None:
        raise PerfModelError("--search needs the SLOs it must meet",
                             "pass --slo-ttft SECONDS and --slo-tpot SECONDS")
    df = serve_search(args.model, args.hw, system=args.system, rate=args.rate,
                      requests_n=args.requests, input_len=args.input_len,
                      output_len=args.output_len, arrival=args.arrival, seed=args.seed,
                      trace=args.trace, slo_ttft=args.slo_ttft, slo_tpot=args.slo_tpot,
                      percentile=args.percentile,
                      engines=tuple(e.strip() for e in args.search_engines.split(",")
                                    if e.strip()),
                      tps=_ints(args.search_tp, "--search-tp"),
                      max_num_seqs=_ints(args.search_max_num_seqs, "--search-max-num-seqs"),
                      budgets=_ints(args.search_budgets, "--search-budgets"),
                      max_replicas=args.max_replicas,
                      disaggregate=args.search_disaggregate, dtype=args.dtype,
                      workers=args.workers)
    if args.format == "json":
        return to_json({"deployments": df.astype(object).where(df.notna(), None)
                        .to_dict(orient="records")})
    if args.format == "csv":
        return emit_frame(df, "csv")
    met = df[df["meets"]]
    head = (f"{len(df)} deployments of {args.model} searched for {args.rate:g} requests/s "
            f"with p{args.percentile:g} TTFT <= {args.slo_ttft:g} s and TPOT <= "
            f"{args.slo_tpot:g} s; {len(met)} meet them")
    if met.empty:
        return "\n".join([head, "", "none meets the SLOs: " + "; ".join(
            sorted(set(df["note"].astype(str))))[:400]])
    shown = met.head(args.top)[["engine", "tp", "replicas", "gpus", "max_num_seqs",
                                "max_batched_tokens", "chunked_prefill", "ttft_p_s",
                                "tpot_p_s", "gpu_hours_per_m_tokens", "note"]]
    return "\n".join([head, "", emit_frame(shown, "table")])


def handle(args: argparse.Namespace) -> str:
    if args.search:
        return _search(args)
    from perfmodel.files import check_writable
    if args.requests_out:
        check_writable(args.requests_out, args.force, (".csv",))
    if args.plot:
        from perfmodel.report.figure import figure_path
        figure_path(args.plot, args.force)  # refused before the simulation, not after
    res = serve(args.model, args.hw, system=args.system, engine=args.engine, rate=args.rate,
                requests_n=args.requests, input_len=args.input_len,
                output_len=args.output_len, arrival=args.arrival, seed=args.seed,
                trace=args.trace, tp=args.tp, pp=args.pp, gpus=args.gpus, split=args.split,
                replicas=args.replicas, router=args.router, policy=args.scheduler,
                max_num_seqs=args.max_num_seqs, max_batched_tokens=args.max_batched_tokens,
                chunked_prefill=args.chunked_prefill, block_size=args.block_size,
                prefix_hit=args.prefix_hit, preemption=args.preemption, dtype=args.dtype,
                kv_dtype=args.kv_dtype,
                slo_ttft=args.slo_ttft, slo_tpot=args.slo_tpot,
                allow_long_context=args.allow_long_context, disaggregate=args.disaggregate)
    if args.requests_out:
        res.requests.to_csv(args.requests_out, index=False)
        announce(args.requests_out)
    if args.plot:
        from perfmodel.report.serve import plot_serving
        s = res.summary
        announce(plot_serving(res.requests, res.iterations, args.plot, overwrite=args.force,
                              title=f"{s['model']} on {s['gpus']} x {s['device']}, "
                                    f"{s['engine']}", slo_ttft=args.slo_ttft,
                              slo_tpot=args.slo_tpot))
    if args.format == "json":
        return to_json(res.to_dict())
    if args.format == "csv":
        return emit_frame(pd.DataFrame([res.summary]), "csv")
    return "\n".join([*res.warnings, _table(res.summary, res.assumptions)])


def _s(v: float) -> str:
    return "-" if not math.isfinite(v) else format_si(v, "s", 4)


def _table(s: dict, a: dict) -> str:
    where = f"{s['gpus']} x {s['device']}" + (f" ({s['system']})" if s["system"] else "")
    sc = a["scheduler"]
    shape = (a["disaggregation"] if "disaggregation" in a else
             f"{s['replicas']} replica(s) of tp {s['tp']} x pp {s['pp']}")
    lines = [f"{s['model']} served on {where}: {shape}, {a['engine']['engine']}, "
             f"{sc['policy']} batching"
             + (", chunked prefill" if sc["chunked_prefill"] else "")
             + f", router {a['router']}", "",
             f"{s['requests']:,} requests over {_s(s['duration_s'])}", "",
             f"{'':<12}{'p50':>12}{'p90':>12}{'p99':>12}{'mean':>12}"]
    for key, name in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end-to-end"),
                      ("queue", "queueing")):
        lines.append(f"{name:<12}" + "".join(f"{_s(s[f'{key}_{q}_s']):>12}"
                                             for q in ("p50", "p90", "p99", "mean")))
    lines += ["",
              f"throughput     {s['requests_per_s']:,.2f} requests/s, "
              f"{s['output_tokens_per_s']:,.0f} output tokens/s",
              f"goodput        {s['goodput_requests_per_s']:,.2f} requests/s within the SLOs "
              f"({100 * s['slo_attained']:.1f} % of requests)",
              f"GPU busy       {100 * s['gpu_busy']:.1f} %   mean batch {s['mean_batch']:.1f}",
              f"KV cache       {s['kv_tokens']:,} tokens a replica; occupancy mean "
              f"{100 * s['kv_occupancy_mean']:.1f} %, max {100 * s['kv_occupancy_max']:.1f} %; "
              f"preemptions {s['preemptions']:,}", "",
              "Assumptions:",
              f"  scheduler: max {sc['max_num_seqs']} sequences, {sc['max_batched_tokens']:,} "
              f"tokens an iteration, KV blocks of {sc['block_size']}, prefix hits "
              f"{100 * sc['prefix_hit']:.0f} %, preemption {sc['preemption']}",
              f"  precision: {a['precision']}",
              f"  iteration cost: {a['iteration']}",
              f"  KV pool: {a['kv_pool']['pool_bytes'] / 1e9:,.1f} GB a GPU of "
              f"{a['kv_pool']['usable_bytes'] / 1e9:,.1f} GB usable, after weights "
              f"{a['kv_pool']['weights_bytes'] / 1e9:,.1f} GB, overhead and workspace"]
    return "\n".join(lines)
