"""Guards on perfmodel's error against published runs (the shipped reference rows)."""

from __future__ import annotations

from perfmodel.validate.calibrate import calibrate
from perfmodel.validate.reference import load_reference
from perfmodel.zoo.registry import load_model


def test_llama_bench_rows_held_out_error():
    # LLM-Inference-Bench llama.cpp rows on one A100 40GB (llama-bench -pg L,L -b B; 40 rows,
    # Llama-2-7B and Llama-3-8B fp16, L = 128..2048): read as one sequence with a
    # micro-batched prompt, the held-out error is 1.5-1.9 % (34-79 % when B was read as
    # concurrent sequences). Bound: 5 %.
    df = load_reference("a100")
    rows = df[(df["framework"] == "llama.cpp") & (df["num_devices"].astype(float) == 1)]
    assert len(rows) == 40
    cal = calibrate(rows, folds=5, group="framework", models=load_model)
    s = cal.summary.set_index("family")
    assert s.loc["inference", "mape"] < 0.05
