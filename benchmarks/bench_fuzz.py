"""A longer fuzz run than CI's: the same properties (tests/fuzz/test_fuzz.py) with a random
seed and N examples each (default 3,000); prints the wall time and any failure.

    python benchmarks/bench_fuzz.py [N]
"""

from __future__ import annotations

import os
import sys
import time

import pytest

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    os.environ["PERFMODEL_FUZZ_EXAMPLES"] = str(n)
    os.environ["PERFMODEL_FUZZ_RANDOM"] = "1"
    t = time.perf_counter()
    code = pytest.main(["-q", "tests/fuzz", "-p", "no:cacheprovider",
                        "--hypothesis-show-statistics"])
    print(f"fuzz: {n} examples per property, {time.perf_counter() - t:.1f} s, exit {code}")
    sys.exit(code)
