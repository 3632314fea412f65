"""3D-parallel training: accuracy against published A100 runs, and perfmodel's own speed.

    python benchmarks/bench_parallel.py

Accuracy: every row of measurements/reference/training.csv (Korthikanti et al. 2022 Table 5
iteration times, via Calculon's transcription; torchtitan FSDP2 tokens/s per GPU) predicted
with the analytic step (perfmodel.parallel.step) on DGX A100 with A100 80GB devices, with the
device spec's efficiency and no per-row factor; the error of each row is printed. Then one
22B layer's forward / backward time against Korthikanti et al. 2022 Table 4.

Speed targets (the parallel issue): the discrete-event simulation of one GPT-3 175B step on
1,024 GPUs (tp 8, pp 16, dp 8, 64 micro-batches) in < 10 s; the plan search for a 530B model
(Korthikanti's Turing-NLG 530B shape) on ~5,000 GPUs in < 10 s.
"""

from __future__ import annotations

import os
import platform
import time

import pandas as pd

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


def main() -> None:
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    accuracy()
    speed()


if __name__ == "__main__":
    main()
