"""build_workload: schema, phases, dtypes, training rows, errors."""

from __future__ import annotations

import pytest

from perfmodel.errors import PlanError, ShapeError, UnknownNameError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload
from perfmodel.workload.job import Job
from perfmodel.workload.schema import COLUMNS, Workload


def _mlp():
    b = GraphBuilder("mlp", default_batch=1)
    x = b.input("x", (8,))
    x = b.relu(b.linear(x, 4))
    b.linear(x, 2)
    return b.build()


def test_schema_columns_and_record():
    wl = build_workload(_mlp(), batch=3, dtype="bf16")
    assert isinstance(wl, Workload)
    assert tuple(wl.table.columns) == COLUMNS
    assert wl.job.batch == 3 and wl.job.dtype == "bf16"
    assert wl.total_params == (8 * 4 + 4) + (4 * 2 + 2)
    t = wl.table
    assert (t["bytes"] == t["weight_bytes"] + t["input_bytes"] + t["output_bytes"]).all()
    assert not t.attrs  # what the table was built for lives on the record, not in attrs
    assert (wl.model, wl.is_llm, wl.unsupported) == ("mlp", False, ())


def test_job_has_every_default_resolved():
    # weight and KV dtypes default to the compute dtype, seq to the graph's default_seq (1
    # for this MLP), dtype names are canonical; dims are the symbol values of the phase.
    wl = build_workload(_mlp(), batch=2, dtype="bfloat16")
    assert wl.job == Job(phase="inference", batch=2, seq=1, dtype="bf16",
                         weight_dtype="bf16", kv_dtype="bf16")
    assert wl.dims == {"B": 2, "S": 1, "T": 1, "L": 1}
    # Decode: one new token (S = L = 1) against a cache of T = seq tokens.
    b = GraphBuilder("lm", default_batch=1, is_llm=True)
    b.linear(b.input("x", ("S", 8)), 4)
    dec = build_workload(b.build(), batch=4, seq=128, phase="decode", kv_dtype="fp8")
    assert dec.dims == {"B": 4, "S": 1, "T": 128, "L": 1}
    assert (dec.job.kv_dtype, dec.job.weight_dtype, dec.is_llm) == ("fp8", "fp16", True)


def test_macs_scale_with_batch_weights_do_not():
    one, four = build_workload(_mlp(), batch=1).table, build_workload(_mlp(), batch=4).table
    assert four["macs"].sum() == 4 * one["macs"].sum() == 4 * (8 * 4 + 4 * 2)
    assert four["weight_bytes"].sum() == one["weight_bytes"].sum()


def test_weight_dtype_separate_from_activation_dtype():
    wl = build_workload(_mlp(), batch=1, dtype="fp16", weight_dtype="int8")
    assert wl.job.weights == "int8" and wl.job.kv == "fp16"
    first = wl.table.iloc[0]
    assert first["weight_bytes"] == (8 * 4 + 4) * 1   # int8 weights
    assert first["input_bytes"] == 8 * 2              # fp16 activations


def test_training_rows_by_hand():
    wl = build_workload(_mlp(), batch=2, phase="train", optimizer="adam").table
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
    with pytest.raises(UnknownNameError, match="unknown optimizer"):
        build_workload(_mlp(), batch=1, phase="train", optimizer="lion")


def test_unsupported_op_is_reported_not_zeroed():
    b = GraphBuilder("odd", default_batch=1)
    x = b.input("x", (4,))
    b.add_op("deformable_conv", [x], (1, 4))
    wl = build_workload(b.build(), batch=1)
    assert not wl.table["costed"].iloc[0]
    assert wl.unsupported == ("deformable_conv",)
