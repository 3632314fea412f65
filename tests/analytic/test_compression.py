"""Hardware-honest execution of compressed ops, on tiny devices worked by hand.

The tiny device (tests/conftest.py): 100 FLOP/s tensor fp16, 10 FLOP/s vector fp32,
10 B/s memory, efficiency 1, no launch overhead.
"""

from __future__ import annotations

import pytest

from perfmodel.analytic.compression import resolve_peak
from perfmodel.analytic.roofline import predict
from perfmodel.compress.rewrite import with_attrs
from perfmodel.errors import UnsupportedOpError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.hardware.load import device_from_dict, load_device
from perfmodel.workload.build import build_workload
from tests.conftest import tiny_device_dict


def _fc(n=100):
    b = GraphBuilder("fc", default_batch=1)
    b.linear(b.input("x", (n,)), n, bias=False)
    return b.build()


def _device(**compute):
    d = tiny_device_dict()
    d["compute"] = {**d["compute"], **compute}
    return device_from_dict(d, "tiny.yaml")


def _linear(g, device, batch=1000, **kw):
    wl = build_workload(g, batch=batch, dtype="fp16")
    return predict(wl, device, dtype_fallback=True, **kw).ops.set_index("name").loc["linear"]


HAND = "round numbers for tests"


def test_2_4_doubles_tensor_throughput_only_where_declared():
    # linear 100 -> 100, batch 1000, fp16: 2e7 FLOP -> 2e5 s at 100 FLOP/s (compute-bound:
    # bytes 2e4 + 2e5 + 2e5 = 4.2e5 -> 4.2e4 s).
    g = with_attrs(_fc(), {"linear": {"sparse_pattern": "2:4"}}, "24")
    dense = _linear(g, _device())
    sparse = _linear(g, _device(sparse_2_4={"value": True, "source": HAND}))
    assert dense["compute_s"] == pytest.approx(2e5)
    assert sparse["compute_s"] == pytest.approx(1e5)
    assert sparse["macs_executed"] == dense["macs"] / 2 == dense["macs_executed"] / 2
    # weights read compressed only where it runs: 1e4 x (16 + 2) bits / 2 = 11250 B
    assert dense["weight_bytes_moved"] == 2e4
    assert sparse["weight_bytes_moved"] == pytest.approx(11250)


def test_2_4_on_real_devices():
    # A100 declares sparse_2_4 (NVIDIA "312 | 624*" dense | sparse); MI250X does not.
    g = with_attrs(_fc(4096), {"linear": {"sparse_pattern": "2:4"}}, "24")
    a100 = _linear(g, load_device("a100"), batch=4096)
    mi250x = _linear(g, load_device("mi250x"), batch=4096)
    assert a100["macs_executed"] == a100["macs"] / 2
    assert mi250x["macs_executed"] == mi250x["macs"]


def test_unstructured_sparsity_is_dense_unless_declared():
    g = with_attrs(_fc(), {"linear": {"sparsity": 0.9, "index_bits": 8}}, "u")
    dense = _linear(g, _device())
    fast = _linear(g, _device(sparse_unstructured={"value": True, "source": HAND}))
    assert dense["compute_s"] == pytest.approx(2e5)   # zeros multiplied: dense speed
    assert fast["compute_s"] == pytest.approx(2e4)    # ideal: MACs x density 0.1
    assert dense["weight_bytes_moved"] == 2e4
    assert fast["weight_bytes_moved"] == pytest.approx(1000 * 24 / 8)  # nnz x (16 + 8) bits


def test_a_missing_dtype_falls_back_to_the_next_wider_unit_and_says_so():
    # int4 weights and compute on a device with only fp16 tensor: runs at fp16
    # (int4 -> int8 -> fp16); bytes shrink, FLOP/s does not rise.
    g = with_attrs(_fc(10), {"linear": {"weight_dtype": "int4", "act_dtype": "int4"}}, "q")
    wl = build_workload(g, batch=1, dtype="fp16")
    pred = predict(wl, _device(), dtype_fallback=True)
    lin = pred.ops.set_index("name").loc["linear"]
    assert lin["dtype_used"] == "fp16" and lin["peak_flops_per_s"] == 100
    assert lin["bytes"] == 100 * 0.5 + 10 * 0.5 + 10 * 0.5   # 60 B at int4 widths
    assert any("no int4 unit" in n and "fp16" in n for n in pred.assumptions["fallbacks"])
    with pytest.raises(UnsupportedOpError):  # without the fallback: the old error
        predict(wl, _device())


def test_the_workload_dtype_must_still_exist_on_the_device():
    wl = build_workload(_fc(10), batch=1, dtype="int4")
    with pytest.raises(UnsupportedOpError):
        predict(wl, _device(), dtype_fallback=True)


def test_binary_uses_an_int1_rate_only_if_the_spec_has_one():
    g = with_attrs(_fc(10), {"linear": {"weight_dtype": "int1", "act_dtype": "int1"}}, "b")
    int1 = {"fp16": {"value": 100e-12, "source": HAND}, "int1": {"value": 800e-12,
                                                                 "source": HAND}}
    with_unit = _linear(g, _device(tensor_TFLOPS=int1), batch=1)
    without = _linear(g, _device(), batch=1)
    assert (with_unit["dtype_used"], with_unit["peak_flops_per_s"]) == ("int1", 800)
    assert (without["dtype_used"], without["peak_flops_per_s"]) == ("fp16", 100)


def test_fallback_ladder_on_real_devices():
    # H100 has no int4 tensor rate: int4 runs at int8. A100 has no fp8: fp8 runs at fp16.
    assert resolve_peak(load_device("h100"), "tensor", "int4", True)[1] == "int8"
    assert resolve_peak(load_device("a100"), "tensor", "fp8", True)[1] == "fp16"
    assert resolve_peak(load_device("a100"), "tensor", "int4", True)[1] == "int4"


def test_codebook_lookups_cost_a_gather_per_weight():
    # 100 x 100 weights in 16 clusters: 1e4 look-ups on the vector unit (fp16 has no
    # vector rate on tiny: fp32 at 10 op/s) = 1000 s added to compute (2e5 s).
    g = with_attrs(_fc(), {"linear": {"codebook_bits": 4, "codebook_size": 16}}, "c")
    lin = _linear(g, _device())
    assert lin["compute_s"] == pytest.approx(2e5 + 1e3)
    assert lin["weight_bytes_moved"] == pytest.approx(1e4 * 0.5 + 16 * 2)
