"""The GEMM shape each matrix-engine op carries in the workload (gemm_batch, gemm_m, gemm_n)."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


def _rows(model, **kw):
    wl = build_workload(load_model(model), **kw)
    return wl.table.set_index("name")


def test_linear_rows_are_tokens_by_out_features():
    # gpt2 (hidden 768, FFN 3072): a prefill of 2 x 128 tokens -> the first MLP
    # projection is one GEMM of M = 256 tokens, N = 3072, K = 768 (= macs / (M N))
    t = _rows("gpt2", batch=2, seq=128, phase="prefill")
    fc1 = t.loc["layers.0.mlp.fc1"]
    assert (fc1["gemm_batch"], fc1["gemm_m"], fc1["gemm_n"]) == (1, 256, 3072)
    assert fc1["macs"] / (fc1["gemm_m"] * fc1["gemm_n"]) == pytest.approx(768)


def test_conv_is_an_implicit_gemm_and_vector_ops_have_none():
    # resnet50's stem: 7x7 conv, 64 channels, 112 x 112 output at batch 4 ->
    # M = 4 x 112 x 112, N = 64, K = 3 x 7 x 7
    t = _rows("resnet50", batch=4)
    stem = t[t["kind"] == "conv2d"].iloc[0]
    assert (stem["gemm_m"], stem["gemm_n"]) == (4 * 112 * 112, 64)
    assert stem["macs"] / (stem["gemm_m"] * stem["gemm_n"]) == pytest.approx(3 * 49)
    assert np.isnan(t[t["kind"] == "relu"]["gemm_m"]).all()
