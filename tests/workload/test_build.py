"""build_workload: schema, phases, dtypes, training rows, errors."""

from __future__ import annotations

import pytest

from perfmodel.errors import PlanError, ShapeError, UnknownNameError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload
from perfmodel.workload.schema import COLUMNS


def _mlp():
    b = GraphBuilder("mlp", default_batch=1)
    x = b.input("x", (8,))
    x = b.relu(b.linear(x, 4))
    b.linear(x, 2)
    return b.build()


def test_schema_columns_and_attrs():
    wl = build_workload(_mlp(), batch=3, dtype="bf16")
    assert tuple(wl.columns) == COLUMNS
    assert wl.attrs["batch"] == 3 and wl.attrs["dtype"] == "bf16"
    assert wl.attrs["total_params"] == (8 * 4 + 4) + (4 * 2 + 2)
    assert (wl["bytes"] == wl["weight_bytes"] + wl["input_bytes"] + wl["output_bytes"]).all()


def test_macs_scale_with_batch_weights_do_not():
    one, four = build_workload(_mlp(), batch=1), build_workload(_mlp(), batch=4)
    assert four["macs"].sum() == 4 * one["macs"].sum() == 4 * (8 * 4 + 4 * 2)
    assert four["weight_bytes"].sum() == one["weight_bytes"].sum()


def test_weight_dtype_separate_from_activation_dtype():
    wl = build_workload(_mlp(), batch=1, dtype="fp16", weight_dtype="int8")
    first = wl.iloc[0]
    assert first["weight_bytes"] == (8 * 4 + 4) * 1   # int8 weights
    assert first["input_bytes"] == 8 * 2              # fp16 activations


def test_training_rows_by_hand():
    wl = build_workload(_mlp(), batch=2, phase="train", optimizer="adam")
    by_phase = wl.groupby("phase")["macs"].sum()
    fwd = 2 * (8 * 4 + 4 * 2)
    assert by_phase["forward"] == fwd
    assert by_phase["backward"] == 2 * fwd      # backward ~ 2x forward (DOMAIN.md sec. 2)
    opt = wl[wl["phase"] == "optimizer"]
    assert len(opt) == 2 and (opt["dtype"] == "fp32").all()
    # Adam: 10 FLOPs per parameter (perfmodel.workload.training).
    assert opt["flops"].sum() == 10 * (36 + 10)
    # bytes per param: 2 x 12 fp32 state + fp16 grad 2 + fp16 weight 2 = 28.
    assert opt["weight_bytes"].sum() == 28 * (36 + 10)


def test_errors_are_user_errors():
    with pytest.raises(ShapeError, match="batch must be a positive integer"):
        build_workload(_mlp(), batch=0)
    with pytest.raises(ShapeError):
        build_workload(_mlp(), batch=1, seq=-5)
    with pytest.raises(UnknownNameError, match="unknown dtype"):
        build_workload(_mlp(), batch=1, dtype="fp12")
    with pytest.raises(UnknownNameError, match="unknown phase"):
        build_workload(_mlp(), batch=1, phase="infer")
    with pytest.raises(PlanError, match="autoregressive"):
        build_workload(_mlp(), batch=1, phase="decode")


def test_unsupported_op_is_reported_not_zeroed():
    b = GraphBuilder("odd", default_batch=1)
    x = b.input("x", (4,))
    b.add_op("deformable_conv", [x], (1, 4))
    wl = build_workload(b.build(), batch=1)
    assert not wl["costed"].iloc[0]
    assert wl.attrs["unsupported"] == ["deformable_conv"]
