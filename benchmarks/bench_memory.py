"""Speed of the memory footprint model: a vectorized 1,000-configuration sweep.

    python benchmarks/bench_memory.py

Target: footprint of 1,000 (batch, seq, tp, pp, dp) configurations in under 1 s.
"""

from __future__ import annotations

import platform
import time

import numpy as np

import perfmodel as pm
from perfmodel.analytic.memory import footprint
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan


def main() -> None:
    graph = pm.load_model("llama-2-70b")
    rng = np.random.default_rng(0)
    n = 1000
    grid = {"batch": rng.choice([1, 8, 32, 128, 512], n) * 8,
            "seq": rng.choice([512, 2048, 4096, 8192], n),
            "tensor_parallel": rng.choice([1, 2, 4, 8], n),
            "pipeline_parallel": rng.choice([1, 2, 4, 8], n), "data_parallel": np.full(n, 8)}
    plan = ParallelPlan(tensor_parallel=2, micro_batch=1, zero_stage=1, recompute="selective",
                        sequence_parallel=True)
    train = Job(phase="train", batch=64, seq=2048)
    best = min(_time(lambda: footprint(graph, plan, train, **grid)) for _ in range(5))
    dec = Job(phase="decode", batch=1, seq=4096)
    best_dec = min(_time(lambda: footprint(graph, ParallelPlan(), dec, batch=grid["batch"],
                                           seq=grid["seq"],
                                           tensor_parallel=grid["tensor_parallel"]))
                   for _ in range(5))
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    for name, t in (("train footprint, 1,000 configurations (vectorized)", best),
                    ("decode footprint, 1,000 configurations (vectorized)", best_dec)):
        print(f"{name:55s} {t * 1e3:8.2f} ms   target < 1000 ms   "
              f"{'ok' if t < 1 else 'OVER TARGET'}")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
