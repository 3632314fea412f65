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
    # measured: +7.8 % .. +26.5 %, mean 18.1 % (was +8 .. +41 %, mean 27.4 %, while
    # torchtitan's selective op / layer checkpointing was priced as attention-only);
    # still optimistic: see the README's validation paragraph
    assert err.abs().max() < 28.0
    assert err.abs().mean() < 19.0
    assert (err > 0).all()


def test_torchtitan_rows_use_torchtitan_checkpointing_modes():
    # docs/performance.md "selective op" / "selective layer" are torchtitan's op-level SAC
    # and every-2nd-block AC (parallelize_llama.py), not Megatron's attention-only mode
    modes = {c.label.split(" AC ")[1]: c.plan.recompute for c in load_cases()
             if c.metric == "tokens_per_s_per_gpu"}
    assert modes == {"selective layer": "selective_layer", "selective op": "selective_op",
                     "full": "full", "no": "none"}
    assert all(c.plan.reduce_dtype == "fp32" for c in load_cases()
               if c.metric == "tokens_per_s_per_gpu")


def test_torchtitan_70b_selective_op_batch_2_does_not_fit():
    # torchtitan docs/performance.md, footnote 1: Llama 2 70B "with local batch size 2 will
    # cause an OOM error when selective activation checkpointing is used" (A100 80GB);
    # batch 1 (selective op) and batch 2 with full AC ran
    from dataclasses import replace

    from perfmodel.hardware.load import load_device
    from perfmodel.hardware.system import load_system
    from perfmodel.parallel.step import predict_step
    system, device = load_system("dgx-a100"), load_device("a100-sxm4-80gb")
    case = next(c for c in load_cases() if c.row_id == "training-00223")
    g = case.graph()
    assert predict_step(g, case.plan, system, device).fits
    two = replace(case.plan, micro_batch=2, global_batch=128)
    assert not predict_step(g, two, system, device).fits
    assert predict_step(g, replace(two, recompute="full"), system, device).fits
