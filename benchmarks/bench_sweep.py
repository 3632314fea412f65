"""Speed of sweeps: 10^5 roofline points, and the per-point loop a user would write instead.

    python benchmarks/bench_sweep.py            # the 10^5-point grid (target: < 10 s)
    python benchmarks/bench_sweep.py --quick    # 1/10 of it

The grid (issue #19): 20 models (10 CNNs / vision, 10 LLMs at seq 512) x 25 devices x
4 batches x 50 main-memory bandwidths = 100,000 points. The baseline beside it is the loop
``for ...: predict(build_workload(...), override_device(...))`` over 200 points of the same
grid, the rate a 14-line notebook loop gets. The same 200 points are compared with the
sweep's rows: the relative latency difference must be below 1e-9 on every one.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import perfmodel as pm
from perfmodel.hardware.overrides import override_device

MODELS = ["resnet50", "resnet18", "mobilenet_v2", "efficientnet_b0", "vgg16", "densenet121",
          "convnext_tiny", "vit_b_16", "swin_t", "bert-base",
          "llama-2-7b", "llama-3-8b", "mistral-7b", "qwen2-7b", "gpt2", "gpt2-xl", "phi-3-mini",
          "falcon-7b", "gemma-2-9b", "llama-2-13b"]
DEVICES = ["a10", "a100-sxm4-80gb", "a100-pcie-80gb", "a30", "b200", "gh200", "h100-sxm5-80gb",
           "h100-pcie-80gb", "h200-sxm-141gb", "l4", "l40s", "mi210", "mi250x", "mi300x",
           "mi325x", "rtx-3090", "rtx-4090", "rtx-a6000", "t4", "tpu-v4", "tpu-v5e",
           "tpu-v5p", "gaudi2", "v100-sxm2-32gb", "jetson-agx-orin-64gb"]
BATCHES = [1, 8, 32, 128]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="5 bandwidths instead of 50")
    args = ap.parse_args()
    bandwidths = list(np.geomspace(500, 16000, 5 if args.quick else 50))
    t = time.perf_counter()
    df = pm.sweep(model=MODELS, hw=DEVICES, batch=BATCHES, seq=512, phase="inference",
                  override={"memory.bandwidth_GBps": bandwidths})
    sweep_s = time.perf_counter() - t
    priced = df["latency_s"].notna()

    sample = df[priced].sample(200, random_state=0) if priced.sum() >= 200 else df[priced]
    graphs = {m: pm.load_model(m) for m in set(sample["model"])}
    t = time.perf_counter()
    worst = 0.0
    for _, row in sample.iterrows():
        dev = override_device(pm.load_device(row["hw"]),
                              {"memory.bandwidth_GBps": row["memory.bandwidth_GBps"]})
        seq = None if np.isnan(row["seq"]) else int(row["seq"])
        wl = pm.build_workload(graphs[row["model"]], batch=int(row["batch"]), seq=seq,
                               dtype=row["dtype"], phase="inference")
        got = pm.predict(wl, dev, dtype_fallback=True).summary["latency_s"]
        worst = max(worst, abs(got - row["latency_s"]) / got)
    loop_s = time.perf_counter() - t

    n = len(df)
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    print(f"sweep: {n:,} points ({int(priced.sum()):,} priced, {int((~priced).sum()):,} "
          f"with an error: a dtype the device lacks) in {sweep_s:.2f} s = "
          f"{n / sweep_s:,.0f} points/s   [target < 10 s for 100,000]")
    print(f"per-point loop (baseline): {len(sample)} points in {loop_s:.2f} s = "
          f"{len(sample) / loop_s:,.0f} points/s")
    print(f"speed-up: {n / sweep_s / (len(sample) / loop_s):.0f}x; largest relative "
          f"difference from predict on {len(sample)} sampled points: {worst:.2e} "
          f"[must be < 1e-9]")
    print(f"fits: {int((df['fits'] == True).sum()):,} points fit, "  # noqa: E712
          f"{int((df['fits'] == False).sum()):,} do not")  # noqa: E712
    assert worst < 1e-9


if __name__ == "__main__":
    main()
