"""Predicted vs published A100 training runs: the error of each row may not regress.

Bounds are the errors measured when the step model was written (benchmarks/
bench_parallel.py prints the table), rounded up a little; no row has a fitted factor.
"""

from __future__ import annotations

import pytest

from perfmodel.validate.training import load_cases, validate_layer_times, validate_training
from perfmodel.zoo.registry import load_model


@pytest.fixture(scope="module")
def table():
    return validate_training(load_model)


def test_all_published_rows_are_priced(table):
    # Korthikanti et al. 2022 Table 5: 22B, 175B, 530B, 1T x (full, seq-par + selective)
    k = table[table["metric"] == "step_s"]
    assert sorted(k["row_id"]) == [f"training-{i:05d}" for i in range(520, 528)]
    assert len(table) == len(load_cases()) == 16


def test_korthikanti_table5_error_does_not_regress(table):
    k = table[table["metric"] == "step_s"]
    err = k["error_pct"].abs()
    # measured: max 11.9 % (22B selective + SP), mean 8.4 %, every row fast. With one
    # A100-fitted GEMM efficiency (0.72) for every kernel it was max 8.1 %, mean 3.9 %;
    # the per-kernel model (hardware/kernel_model.py: ampere issue fraction 0.85, checked
    # on the shipped A100 GEMM rows: bias -12 % -> -3 %) made it max 9.5 %, mean 5.9 %,
    # while it still priced tensor-parallel GEMMs at a wrong shape (K / t for column-
    # parallel linears and for the attention scores' head dimension: 16 instead of 128
    # at t = 8). Priced at the shapes that run (partition._reshape_gemms) the rows move
    # 2-5 points faster; Table 4 below puts the gap in the backward (forward within 1 %).
    # The goal stays under 10 % on every row: two rows (22B and 530B, selective + SP)
    # are past it, an open finding of issue "Training at today's scale".
    assert err.max() < 12.5
    assert err.mean() < 9.0


def test_korthikanti_table4_layer_times():
    # one 22B layer (tp 8, b 4, s 2048), Korthikanti et al. 2022 Table 4: forward +
    # backward ms for 5 settings; measured errors -9.7 % .. -6.3 %: the forward within
    # 1 % on all five, the backward 9-16 % fast (see test_korthikanti_table5)
    t = validate_layer_times(load_model)
    assert len(t) == 5
    assert t["error_pct"].abs().max() < 10.0
    assert ((t["forward_pred_ms"] / t["forward_ms"] - 1).abs() < 0.01).all()
    # the ratios the paper draws from it: full recompute costs ~39 % over the baseline,
    # selective + SP ~4 % (here: within 6 points)
    base, full, sel_sp = (float(t.loc[i, "combined_pred_ms"]) for i in (0, 2, 4))
    assert full / base - 1 == pytest.approx(0.39, abs=0.06)
    assert sel_sp / base - 1 == pytest.approx(0.04, abs=0.06)


def test_torchtitan_fsdp_error_does_not_regress(table):
    t = table[table["metric"] == "tokens_per_s_per_gpu"]
    err = t["error_pct"]
    # measured: +24.6 % .. +45.5 %, mean 36.0 % (with the single A100-fitted GEMM efficiency
    # 0.72: +7.8 .. +26.5 %, mean 18.1 %; see test_korthikanti_table5 for why the kernel
    # model moves it); optimistic: torchtitan's step overheads are not modelled (issue
    # "Training at today's scale"), see the README's validation paragraph
    assert err.abs().max() < 47.0
    assert err.abs().mean() < 37.0
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
    g = case.graph(load_model)
    assert predict_step(g, case.job, case.plan, system, device).fits
    two, job = replace(case.plan, micro_batch=2), replace(case.job, batch=128)
    assert not predict_step(g, job, two, system, device).fits
    assert predict_step(g, job, replace(two, recompute="full"), system, device).fits


def test_korthikanti_models_are_megatron_gpts_built_unfused():
    # The paper's 22B: hidden 6144, 48 layers, 64 heads, seq 2048 (Korthikanti et al. 2022,
    # Table 3), GPT-2 layer structure with the 51,200-token vocabulary, Megatron-LM 2022's
    # unfused attention kernels
    case = next(c for c in load_cases() if c.row_id == "training-00520")
    g = case.graph(load_model)
    s = g.shape
    assert (s.hidden_size, s.num_hidden_layers, s.num_attention_heads) == (6144, 48, 64)
    assert s.vocab_size == 51200 and s.intermediate_size == 4 * 6144
    assert g.attention_kernels == "unfused" and case.plan.attention_dropout
    # 12 h^2 + 13 h per block (Narayanan et al. 2021, eq. 2)
    assert g.stage_params.layer == 12 * 6144**2 + 13 * 6144


def test_cases_name_models_and_the_resolver_builds_them():
    # validation resolves no names itself: the resolver it is given does
    built = []

    def resolver(model, **options):
        built.append(model)
        return load_model(model, **options)

    case = next(c for c in load_cases() if c.metric == "tokens_per_s_per_gpu")
    assert isinstance(case.model, str)
    case.graph(resolver)
    assert built == [case.model]
