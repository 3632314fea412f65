"""Epilogue fusion in the roofline, worked by hand on the tiny device of conftest.py
(100 FLOP/s tensor fp16, 10 FLOP/s vector fp32, 10 B/s, efficiency 1), with a launch
overhead of 1 s per kernel."""

from __future__ import annotations

import dataclasses

import pytest

from perfmodel.analytic.roofline import predict
from perfmodel.errors import UnknownNameError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.hardware.load import device_from_dict, load_device
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model
from tests.conftest import tiny_device_dict


def _device():
    d = tiny_device_dict()
    d["efficiency"] = {"compute": {"value": 1.0, "source": "HAND"},
                       "memory": {"value": 1.0, "source": "HAND"},
                       "launch_overhead_us": {"value": 1e6, "source": "HAND"}}  # 1 s
    return device_from_dict(d)


def _linear_relu():
    b = GraphBuilder("fc", default_batch=1)
    b.relu(b.linear(b.input("x", (10,)), 10, bias=False))
    return b.build()


def _two_consumers():
    # linear feeds both relu and add: relu may not absorb it; add absorbs relu.
    b = GraphBuilder("fork", default_batch=1)
    y = b.linear(b.input("x", (10,)), 10, bias=False)
    b.add(y, b.relu(y))
    return b.build()


def test_linear_relu_fused_by_hand():
    wl = build_workload(_linear_relu(), batch=1, dtype="fp16")
    none = predict(wl, _device())
    # none: linear 2 s compute, 240 B -> 24 s, + 1 s; relu 1 s compute, 40 B -> 4 s, + 1 s.
    assert none.summary["latency_s"] == pytest.approx(30.0)
    fused = predict(wl, _device(), fusion="epilogue")
    ops = fused.ops.set_index("name")
    # linear does not write its 20 B output: 200 B weights + 20 B input = 220 B -> 22 s.
    # relu does not read it back: only its 20 B output -> 2 s, and no launch overhead.
    assert ops.loc["linear", "bytes_moved"] == pytest.approx(220.0)
    assert ops.loc["relu", "bytes_moved"] == pytest.approx(20.0)
    assert ops.loc["relu", "overhead_s"] == 0.0
    assert bool(ops.loc["relu", "fused"]) and not bool(ops.loc["linear", "fused"])
    # One kernel: max(compute 2 + 1, memory 22 + 2) = 24 s + 1 s overhead = 25 s, shared
    # 22 : 2 by the ops' own roofs (linear 22 + 1 s overhead, relu 2 s).
    assert ops.loc["linear", "time_s"] == pytest.approx(23.0)
    assert ops.loc["relu", "time_s"] == pytest.approx(2.0)
    s = fused.summary
    assert s["latency_s"] == pytest.approx(25.0)
    assert s["overhead_s"] == pytest.approx(1.0)
    assert (s["num_ops"], s["num_kernels"]) == (2, 1)
    assert fused.assumptions["fusion"].startswith("epilogue")


def test_producer_with_two_consumers_is_not_fused():
    wl = build_workload(_two_consumers(), batch=1, dtype="fp16")
    assert dict(zip(wl.table["name"], wl.table["fusible"], strict=True)) == {
        "linear": False, "relu": False, "add": True}
    ops = predict(wl, _device(), fusion="epilogue").ops.set_index("name")
    # linear writes its output (two readers): 240 B as unfused.
    assert ops.loc["linear", "bytes_moved"] == pytest.approx(240.0)
    # relu reads linear's 20 B and does not write (add takes it in the kernel): 20 B.
    assert ops.loc["relu", "bytes_moved"] == pytest.approx(20.0)
    # add reads linear's 20 B (the residual) and writes 20 B; relu's output is not read.
    assert ops.loc["add", "bytes_moved"] == pytest.approx(40.0)
    assert ops.loc["relu", "overhead_s"] == 1.0 and ops.loc["add", "overhead_s"] == 0.0


@pytest.mark.parametrize("model,kw", [("resnet50", {}),
                                      ("llama-2-7b", {"phase": "prefill", "seq": 256})])
def test_fusion_none_changes_nothing(model, kw):
    a100 = load_device("a100")
    wl = build_workload(load_model(model), batch=2, **kw)
    # as before the fusible column
    base = predict(dataclasses.replace(wl, table=wl.table.drop(columns="fusible")), a100)
    for pred in (predict(wl, a100), predict(wl, a100, fusion="none")):
        assert pred.summary["latency_s"] == base.summary["latency_s"]
        assert (pred.ops["time_s"].to_numpy() == base.ops["time_s"].to_numpy()).all()
        assert pred.summary["num_kernels"] == pred.summary["num_ops"]
    fused = predict(wl, a100, fusion="epilogue").summary
    assert fused["latency_s"] < base.summary["latency_s"]
    assert fused["num_kernels"] < fused["num_ops"]


def test_unknown_fusion_mode():
    wl = build_workload(_linear_relu(), batch=1)
    with pytest.raises(UnknownNameError, match="fusion"):
        predict(wl, _device(), fusion="horizontal")
