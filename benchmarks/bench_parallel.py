"""3D-parallel training: accuracy against published A100 runs, and perfmodel's own speed.

    python benchmarks/bench_parallel.py

Accuracy: every row of measurements/reference/training.csv (Korthikanti et al. 2022 Table 5
iteration times, via Calculon's transcription; torchtitan FSDP2 tokens/s per GPU) predicted
with the analytic step (perfmodel.parallel.step) on DGX A100 with A100 80GB devices, with the
device spec's efficiency and no per-row factor; the error of each row is printed. Then one
22B layer's forward / backward time against Korthikanti et al. 2022 Table 4.

Speed targets (the parallel issue): the discrete-event simulation of one GPT-3 175B step on
1,024 GPUs (tp 8, pp 16, dp 8, 64 micro-batches) in < 10 s; the plan search for a 530B model
(Korthikanti's Turing-NLG 530B shape) on ~5,000 GPUs in < 10 s; a 1,024-GPU MoE step
(DeepSeek-V3 on DGX H100, tp 4 x pp 8 x dp 32 with ep 8 carved out of dp, i.e. 4 expert-
data-parallel replicas) analytic in < 0.5 s and simulated in < 10 s; a search over >= 2,000
candidate plans (Mixtral 8x22B, experts and context parallelism searched) in < 10 s.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time

import pandas as pd

from perfmodel.errors import PerfModelError
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system
from perfmodel.parallel.search import search_plans
from perfmodel.parallel.step import predict_step
from perfmodel.validate.training import load_cases, validate_layer_times, validate_training
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan
from perfmodel.zoo.registry import load_model


def accuracy() -> None:
    t = validate_training(load_model)
    pd.set_option("display.width", 200)
    cols = ["row_id", "model", "gpus", "tp", "pp", "dp", "v", "recompute", "sp", "published",
            "predicted", "error_pct", "mfu_pred"]
    for metric, grp in t.groupby("metric", sort=False):
        err = grp["error_pct"].abs()
        print(f"\n== {metric}: {grp['source'].iloc[0]} ==")
        print(grp[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        print(f"|error| mean {err.mean():.1f} %, max {err.max():.1f} %, rows under 10 %: "
              f"{(err < 10).sum()} of {len(err)}")
    layer = validate_layer_times(load_model)
    print("\n== one 22B layer (tp 8, b 4): Korthikanti et al. 2022 Table 4, ms ==")
    print(layer.to_string(index=False, float_format=lambda x: f"{x:.2f}"))


def speed() -> None:
    system, device = load_system("dgx-a100"), load_device("a100-sxm4-80gb")
    gpt3 = load_model("gpt3-175b")
    plan = ParallelPlan(data_parallel=8, tensor_parallel=8, pipeline_parallel=16,
                        micro_batch=1, recompute="selective", sequence_parallel=True,
                        zero_stage=1)
    job = Job(phase="train", batch=512, seq=2048, dtype="bf16")
    t0 = time.perf_counter()
    pred = predict_step(gpt3, job, plan, system, device, method="sim")
    wall = time.perf_counter() - t0
    sim = pred.simulation
    print(f"\nDES of one GPT-3 175B step, 1,024 GPUs (tp 8, pp 16, dp 8, m = "
          f"{plan.micro_batches(job.batch)}): {wall:.3f} s wall (target < 10 s); simpy "
          f"{sim['events']} events in {sim['wall_s']:.3f} s; simulated step "
          f"{pred.step_s:.3f} s vs analytic "
          f"{predict_step(gpt3, job, plan, system, device).step_s:.3f} s")
    t0 = time.perf_counter()
    case = next(c for c in load_cases() if "530B" in c.label)
    g530 = load_model(case.model, name="turing-530B")  # flash attention: a search of today
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = search_plans(g530, Job(phase="train", batch=2240, seq=2048, dtype="bf16"), system,
                         4480, device=device, top=5)
    wall = time.perf_counter() - t0
    print(f"plan search, 530B on 4,480 GPUs, global batch 2,240: {wall:.3f} s wall "
          f"(target < 10 s; model build {build:.2f} s), {found.candidates} candidates, "
          f"{found.fitting} fit")
    print(found.table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def moe_speed() -> None:
    system = load_system("dgx-h100")
    t0 = time.perf_counter()
    dsv3 = load_model("deepseek-v3")
    build = time.perf_counter() - t0
    plan = ParallelPlan(data_parallel=32, tensor_parallel=4, pipeline_parallel=8,
                        expert_parallel=8, micro_batch=1, recompute="selective",
                        sequence_parallel=True, zero_stage=1)
    job = Job(phase="train", batch=1024, seq=4096, dtype="bf16")
    for method, target in (("analytic", 0.5), ("sim", 10.0)):
        t0 = time.perf_counter()
        try:
            pred = predict_step(dsv3, job, plan, system, method=method)
        except PerfModelError as exc:  # EP is priced once the step model has it
            print(f"MoE step ({method}), DeepSeek-V3 on {plan.devices} GPUs: not yet priced "
                  f"({exc})")
            continue
        wall = time.perf_counter() - t0
        print(f"MoE step ({method}), DeepSeek-V3 on {plan.devices} GPUs (ep 8 x tp 4 x pp 8 "
              f"x dp 32, m = {plan.micro_batches(job.batch)}): {wall:.3f} s wall (target < "
              f"{target:g} s; model build {build:.2f} s); step {pred.step_s:.3f} s, MFU "
              f"{pred.mfu * 100:.1f} %")
    llama = load_model("llama-3-70b")
    recipes = [None, "fp8-delayed"] if "gemm_recipe" in {
        f.name for f in dataclasses.fields(Job)} else None
    t0 = time.perf_counter()
    found = search_plans(llama, Job(phase="train", batch=1024, seq=4096, dtype="bf16"), system,
                         256, top=5, reserve_gb=2.9, gemm_recipes=recipes, tokens=15e12,
                         price_per_gpu_hour=2.5)
    wall = time.perf_counter() - t0
    print(f"plan search, Llama 3 70B on 256 GPUs, global batch 1,024 x 4,096, GEMM recipes "
          f"{recipes}: {wall:.3f} s wall (target < 10 s), {found.candidates} candidates, "
          f"{found.fitting} fit in {found.usable_bytes / 1e9:.1f} GB (baseline: the 530B "
          "3D search above)")
    print(found.table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    mixtral = load_model("mixtral-8x22b")
    t0 = time.perf_counter()
    found = search_plans(mixtral, Job(phase="train", batch=512, seq=8192, dtype="bf16"),
                         system, 128, top=5, reserve_gb=2.9)
    wall = time.perf_counter() - t0
    print(f"plan search, Mixtral 8x22B on 128 GPUs, global batch 512 x 8,192 (ep, cp ring / "
          f"Ulysses, zb-h1 / dualpipe, HSDP searched): {wall:.3f} s wall (target < 10 s), "
          f"{found.candidates} candidates, {found.fitting} fit")


def main() -> None:
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    accuracy()
    speed()
    moe_speed()


if __name__ == "__main__":
    main()
