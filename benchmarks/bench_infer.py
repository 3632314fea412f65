"""Cost of one ``perfmodel infer`` run: a whole process, beside the bare ``import perfmodel``.

    python benchmarks/bench_infer.py [--runs 5]

Target (the inference issue): ``perfmodel infer llama-3-70b --system dgx-h100 --tp 8 --engine
vllm --batch 64 --input-len 1024 --output-len 512`` (a prefill and 511 decode steps on eight
GPUs with their all-reduces) under 0.5 s beyond ``python -c "import perfmodel"`` on the same
machine. ``python -c "import numpy, pandas"`` runs beside them for scale: the inference model
prices pandas tables, so that import is part of every run (``import perfmodel`` loads
neither).

The three run in turn, after one warm-up of each, so all see the same machine; the medians
of each and the median of the per-round differences are printed. The machines are
noisy: quote medians, not single times. The children run with Python's bytecode cache on
(PYTHONDONTWRITEBYTECODE removed from their environment), as in bench_startup.py.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

from bench_startup import wall  # the same timing of a child process (bytecode cache on)

PY = sys.executable
BASELINE = [PY, "-c", "import perfmodel"]
PANDAS = [PY, "-c", "import numpy, pandas"]
COMMAND = [PY, "-m", "perfmodel", "infer", "llama-3-70b", "--system", "dgx-h100", "--tp", "8",
           "--engine", "vllm", "--batch", "64", "--input-len", "1024", "--output-len", "512"]
TARGET_S = 0.5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    runs = ap.parse_args().runs
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; {runs} rounds, medians")
    wall(COMMAND), wall(BASELINE), wall(PANDAS)  # warm-up: file cache, .pyc
    rounds = [(wall(COMMAND), wall(BASELINE), wall(PANDAS)) for _ in range(runs)]
    cmd, base, pd_ = (statistics.median(r[i] for r in rounds) for i in range(3))
    diff = statistics.median(r[0] - r[1] for r in rounds)
    print(f"{'import perfmodel':<34} {base:8.3f} s")
    print(f"{'import numpy, pandas (for scale)':<34} {pd_:8.3f} s")
    print(f"{'perfmodel infer (70B, tp 8)':<34} {cmd:8.3f} s")
    print(f"{'infer - import perfmodel':<34} {diff:8.3f} s   target < {TARGET_S} s: "
          + ("met" if diff < TARGET_S else "MISSED"))
    print(f"{'infer - import numpy, pandas':<34} "
          f"{statistics.median(r[0] - r[2] for r in rounds):8.3f} s")

if __name__ == "__main__":
    main()
