"""Predicted vs published A100 training runs: the error of each row may not regress.

Bounds are the errors measured when the step model was written (benchmarks/
bench_parallel.py prints the table), rounded up a little; no row has a fitted factor.
"""

from __future__ import annotations

import pytest

from perfmodel.parallel.validation import load_cases, validate_layer_times, validate_training


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
    # measured: max 8.1 % (22B selective + SP, -8.1 %), mean 3.9 %; the goal is
    # under 10 % on every row (was max 18.1 %, mean 5.7 % before Megatron-LM 2022's
    # unfused attention, backward TP overlap and optimizer passes were modelled)
    assert err.max() < 9.0
    assert err.mean() < 4.5
    assert (err < 10).all()


def test_korthikanti_table4_layer_times():
    # one 22B layer (tp 8, b 4, s 2048), Korthikanti et al. 2022 Table 4: forward +
    # backward ms for 5 settings; measured errors -6.1 % .. -2.4 %
    t = validate_layer_times()
    assert len(t) == 5
    assert t["error_pct"].abs().max() < 7.0
    # the ratios the paper draws from it: full recompute costs ~39 % over the baseline,
    # selective + SP ~4 % (here: within 6 points)
    base, full, sel_sp = (float(t.loc[i, "combined_pred_ms"]) for i in (0, 2, 4))
    assert full / base - 1 == pytest.approx(0.39, abs=0.06)
    assert sel_sp / base - 1 == pytest.approx(0.04, abs=0.06)


def test_torchtitan_fsdp_error_does_not_regress(table):
    t = table[table["metric"] == "tokens_per_s_per_gpu"]
    err = t["error_pct"]
    # measured: +8 % .. +41 % (optimistic: torchtitan's per-layer FSDP overheads are not
    # modelled, and its "selective layer" checkpointing is priced as attention-only)
    assert err.abs().max() < 42.0
    assert err.abs().mean() < 28.0
