"""Predicted vs published A100 training runs: the error of each row may not regress.

Bounds are the errors measured when the step model was written (benchmarks/
bench_parallel.py prints the table), rounded up a little; no row has a fitted factor.
"""

from __future__ import annotations

import pytest

from perfmodel.parallel.validation import load_cases, validate_training


@pytest.fixture(scope="module")
def table():
    return validate_training()


def test_all_published_rows_are_priced(table):
    # Korthikanti et al. 2022 Table 5: 22B, 175B, 530B, 1T x (full, seq-par + selective)
    k = table[table["metric"] == "step_s"]
    assert sorted(k["row_id"]) == [f"training-{i:05d}" for i in range(520, 528)]
    assert len(table) == len(load_cases()) == 16


def test_korthikanti_table5_error_does_not_regress(table):
    k = table[table["metric"] == "step_s"]
    err = k["error_pct"].abs()
    # measured: max 18.1 % (22B selective, tp 8 GEMMs of h = 6144 run below the flat 0.72
    # efficiency), mean 5.7 %; six of eight rows under 7.3 %
    assert err.max() < 19.0
    assert err.mean() < 6.5
    assert (err < 7.5).sum() >= 7


def test_torchtitan_fsdp_error_does_not_regress(table):
    t = table[table["metric"] == "tokens_per_s_per_gpu"]
    err = t["error_pct"]
    # measured: +8 % .. +41 % (optimistic: torchtitan's per-layer FSDP overheads are not
    # modelled, and its "selective layer" checkpointing is priced as attention-only)
    assert err.abs().max() < 42.0
    assert err.abs().mean() < 28.0
