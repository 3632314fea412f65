"""Speed of the compression comparison: the issue's example tables, built in process.

    python benchmarks/bench_compress.py

Targets: the 7-strategy ResNet-50 table and the 3-strategy Llama-2-7B decode table, each
< 1 s (transforms + workloads + roofline + energy for every row). Best of 3 repeats.
"""

from __future__ import annotations

import platform
import time

import perfmodel as pm
from perfmodel.compress.registry import parse_strategy
from perfmodel.compress.tradeoff import compare_strategies
from perfmodel.workload.job import Job

CASES = (
    ("resnet50 on a100, 7 strategies", "resnet50", "a100", Job(dtype="fp16"),
     ("fp16", "int8", "prune:0.5:structured", "prune:0.9:unstructured", "prune:2:4",
      "share:16", "lowrank:0.25")),
    ("llama-2-7b decode on h100, 3 strategies", "llama-2-7b", "h100",
     Job(phase="decode", dtype="fp16"), ("w4a16", "w8a8", "fp8")),
)


def main() -> None:
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}")
    for label, model, hw, req, texts in CASES:
        graph, device = pm.load_model(model), pm.load_device(hw)
        strategies = [parse_strategy(t) for t in texts]
        best = min(_time(compare_strategies, graph, device, strategies, req)
                   for _ in range(3))
        print(f"{label:45s} {best * 1e3:8.1f} ms   target < 1000 ms   "
              f"{'ok' if best < 1 else 'OVER TARGET'}")


def _time(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
