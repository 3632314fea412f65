"""Speed of perfmodel itself: prints wall times against the targets of the core issue.

    python benchmarks/bench_roofline.py

Targets: `perfmodel roofline resnet50 --hw a100` as a process < 1.5 s; in-process build +
predict for resnet50 and for llama-2-70b prefill at seq 4096 < 100 ms each; a synthetic
10,000-op graph < 1 s. Best of several repeats (the machines are noisy).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time

import perfmodel as pm
from perfmodel.graph.builder import GraphBuilder


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def synthetic(n_ops: int = 10_000) -> pm.ModelGraph:
    """A 10,000-op chain of linear + gelu + add blocks on (B, S, 256) tokens."""
    b = GraphBuilder("synthetic", default_batch=8, default_seq=128, is_llm=False)
    x = b.input("x", ("S", 256))
    while len(b._ops) < n_ops:
        y = b.act(b.linear(x, 256), "gelu")
        x = b.add(x, y)
    return b.build()


def main() -> None:
    a100 = pm.load_device("a100")
    cli = best_of(lambda: subprocess.run(
        [sys.executable, "-m", "perfmodel", "roofline", "resnet50", "--hw", "a100"],
        check=True, capture_output=True), repeats=3)
    resnet = best_of(lambda: pm.predict(
        pm.build_workload(pm.load_model("resnet50"), batch=1, dtype="fp16"), a100))
    llama = best_of(lambda: pm.predict(pm.build_workload(
        pm.load_model("llama-2-70b"), batch=1, seq=4096, phase="prefill"), a100))
    graph = synthetic()
    synth = best_of(lambda: pm.predict(pm.build_workload(graph, batch=8, seq=128), a100),
                    repeats=3)
    build_synth = best_of(synthetic, repeats=3)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
          f"python {platform.python_version()}")
    rows = [
        ("perfmodel roofline resnet50 --hw a100 (process)", cli, 1.5),
        ("resnet50 build + predict (in process)", resnet, 0.1),
        ("llama-2-70b prefill seq 4096 build + predict", llama, 0.1),
        (f"synthetic {graph.num_ops}-op graph: workload + predict", synth, 1.0),
        (f"synthetic {graph.num_ops}-op graph: GraphBuilder", build_synth, 1.0),
    ]
    for name, t, target in rows:
        flag = "ok" if t < target else "OVER TARGET"
        print(f"{name:58s} {t * 1e3:9.1f} ms   target < {target * 1e3:.0f} ms   {flag}")


if __name__ == "__main__":
    main()
