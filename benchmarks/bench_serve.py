"""Speed of the serving simulation (the serving issue's targets), on this machine:

    python benchmarks/bench_serve.py [--requests 10000]

1. ``perfmodel serve``'s simulation of 10,000 requests (Poisson at 12/s, 1,024 in + 256
   out) of Llama-3-70B on a DGX H100, TP 8, vLLM: target under 10 s on a 2-core machine.
   Timed in-process, from setup (pricing the iteration model) to the summary, beside the
   same setup alone, so the simulation's own cost shows.
2. The same run as a whole process beside ``python -c "import perfmodel"``.
3. ``--search`` over 72 deployments (vLLM and SGLang, tp 2 / 4 / 8, 64 / 128 / 256
   sequences, token budgets 2,048 / 8,192, chunked prefill or not), each with the fewest
   replicas meeting p99 TTFT 0.5 s and TPOT 0.05 s at 40 requests/s (1,000 requests): target
   at least 200 configurations (deployment x replica count simulated) in under 60 s, two
   worker processes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from bench_startup import wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=10_000, help="requests simulated")
    n = ap.parse_args().requests
    import perfmodel as pm
    from perfmodel.inference.run import iteration_cost, prepare
    from perfmodel.workload.plan import ParallelPlan

    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    g = pm.load_model("llama-3-70b")
    dev = pm.load_device("h100")
    t = time.perf_counter()
    setup, _ = prepare(g, dev, engine="vllm", plan=ParallelPlan(tensor_parallel=8))
    iteration_cost(setup, lengths=(1024,), context=1280)
    setup_s = time.perf_counter() - t
    t = time.perf_counter()
    res = pm.serve(g, dev, engine="vllm", tp=8, rate=12.0, requests_n=n, input_len=1024,
                   output_len=256, slo_ttft=0.5, slo_tpot=0.05)
    total = time.perf_counter() - t
    s = res.summary
    print(f"{n:,} requests, {len(res.iterations):,} iterations: {total:.2f} s in all "
          f"(iteration model {setup_s:.2f} s); target < 10 s: "
          + ("met" if total < 10 else "MISSED"))
    print(f"  TTFT p99 {s['ttft_p99_s'] * 1e3:.0f} ms, TPOT p99 {s['tpot_p99_s'] * 1e3:.1f} ms,"
          f" {s['output_tokens_per_s']:,.0f} output tokens/s")
    cmd = [sys.executable, "-m", "perfmodel", "serve", "llama-3-70b", "--system", "dgx-h100",
           "--tp", "8", "--rate", "12", "--requests", str(n), "--input-len", "1024",
           "--output-len", "256"]
    proc, base = wall(cmd), wall([sys.executable, "-c", "import perfmodel"])
    print(f"as a process: {proc:.2f} s (bare import {base:.3f} s)")
    from perfmodel.inference_api import serve_search
    t = time.perf_counter()
    df = serve_search(g, dev, rate=40.0, requests_n=1000, input_len=1024, output_len=256,
                      slo_ttft=0.5, slo_tpot=0.05, engines=("vllm", "sglang"), tps=(2, 4, 8),
                      workers=2)
    took = time.perf_counter() - t
    sims = int(df["simulations"].sum())
    best = df.iloc[0]
    print(f"search: {len(df)} deployments, {sims} configurations simulated in {took:.1f} s; "
          f"target >= 200 in < 60 s: " + ("met" if sims >= 200 and took < 60 else "MISSED"))
    print(f"  cheapest: {best['engine']} tp {best['tp']} x {int(best['replicas'])} replicas = "
          f"{int(best['gpus'])} GPUs, {best['gpu_hours_per_m_tokens']:.2f} GPU-h per M tokens")


if __name__ == "__main__":
    main()
