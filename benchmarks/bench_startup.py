"""Start-up cost of perfmodel: whole processes, each beside a bare numpy + pandas import.

    python benchmarks/bench_startup.py [--runs 7]

Targets (the "One model of a run" issue): ``import perfmodel`` under 40 % of its time before
the issue on the same machine (0.86 s then); ``perfmodel roofline resnet50 --hw a100``
within 1.2x of ``python -c "import numpy, pandas"``; ``perfmodel --help`` and
``perfmodel hw`` load neither simpy nor networkx (checked here too, by -X importtime).

Each command runs alternately with the baseline, after one warm-up of each, so both see the
same machine; the medians and the median of the per-pair ratios are printed. The machines
are noisy: quote medians and ratios, not single times. The children run with Python's
bytecode cache on (PYTHONDONTWRITEBYTECODE removed from their environment): an installed
numpy or pandas has its .pyc files from pip, and perfmodel's own modules must not be timed
compiling from source on every start where the caller's shell happens to forbid the cache.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

PY = sys.executable
BASELINE = [PY, "-c", "import numpy, pandas"]
COMMANDS = {
    "import perfmodel": [PY, "-c", "import perfmodel"],
    "perfmodel --help": [PY, "-m", "perfmodel", "--help"],
    "perfmodel hw": [PY, "-m", "perfmodel", "hw"],
    "perfmodel roofline resnet50 --hw a100": [PY, "-m", "perfmodel", "roofline", "resnet50",
                                              "--hw", "a100"],
}
HEAVY = ("simpy", "networkx", "matplotlib", "pandas")


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=ENV)
    return time.perf_counter() - t


def loaded(cmd: list[str]) -> list[str]:
    """The heavy packages a command imports (python -X importtime, top-level names)."""
    out = subprocess.run([PY, "-X", "importtime", *cmd[1:]], capture_output=True, text=True,
                         env=ENV)
    names = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()
             if line.startswith("import time:")}
    return sorted(n for n in HEAVY if n in names)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7, help="pairs per command (default 7)")
    runs = ap.parse_args().runs
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; {runs} pairs per command, medians")
    print(f"{'command':<40} {'median s':>9} {'baseline s':>11} {'ratio':>6}  heavy imports")
    for name, cmd in COMMANDS.items():
        wall(cmd), wall(BASELINE)  # warm-up: file cache, .pyc
        pairs = [(wall(cmd), wall(BASELINE)) for _ in range(runs)]
        a = statistics.median(p[0] for p in pairs)
        b = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        print(f"{name:<40} {a:9.3f} {b:11.3f} {ratio:6.2f}  {','.join(loaded(cmd)) or '-'}")


if __name__ == "__main__":
    main()
