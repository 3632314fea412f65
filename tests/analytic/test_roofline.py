"""Roofline on a tiny device (100 FLOP/s tensor fp16, 10 FLOP/s vector fp32, 10 B/s)."""

from __future__ import annotations

import pytest

from perfmodel.analytic.roofline import predict, roofline
from perfmodel.graph.builder import GraphBuilder
from perfmodel.hardware.load import device_from_dict
from perfmodel.workload.build import build_workload
from tests.conftest import tiny_device_dict


def _linear_graph(in_f=10, out_f=10):
    b = GraphBuilder("fc", default_batch=1)
    x = b.input("x", (in_f,))
    b.relu(b.linear(x, out_f, bias=False))
    return b.build()


def test_memory_bound_linear_by_hand(tiny_device):
    # linear 10 -> 10, batch 1, fp16 (2 B): flops = 2*100 = 200 -> 2 s at 100 FLOP/s.
    # bytes = weights 100*2 + input 10*2 + output 10*2 = 240 -> 24 s at 10 B/s: memory-bound.
    pred = predict(build_workload(_linear_graph(), batch=1, dtype="fp16"), tiny_device)
    lin = pred.ops.set_index("name").loc["linear"]
    assert lin["compute_s"] == pytest.approx(2.0)
    assert lin["memory_s"] == pytest.approx(24.0)
    assert lin["time_s"] == pytest.approx(24.0)
    assert lin["bound"] == "memory"
    # relu: 10 flops on the vector unit (no fp16 vector figure: fp32 at 10 FLOP/s) = 1 s;
    # bytes 20 + 20 = 40 -> 4 s.
    relu = pred.ops.set_index("name").loc["relu"]
    assert relu["dtype_used"] == "fp32" and relu["time_s"] == pytest.approx(4.0)
    assert pred.summary["latency_s"] == pytest.approx(28.0)
    assert pred.summary["bound"] == "memory"


def test_compute_bound_at_large_batch(tiny_device):
    # batch 1000: flops = 2*100*1000 = 2e5 -> 2000 s; bytes = 200 + 20000 + 20000 = 40200
    # -> 4020 s. Still memory-bound (intensity 4.97 < ridge 100/10 = 10 FLOP/B).
    # With in=out=100, batch 1000: flops 2e7 -> 2e5 s; bytes 2e4 + 2e5 + 2e5 = 4.2e5 -> 4.2e4 s.
    pred = predict(build_workload(_linear_graph(100, 100), batch=1000), tiny_device)
    lin = pred.ops.set_index("name").loc["linear"]
    assert lin["compute_s"] == pytest.approx(2e5)
    assert lin["memory_s"] == pytest.approx(4.2e4)
    assert lin["bound"] == "compute"


def test_latency_law_identity_holds(tiny_device):
    # L = W / (P x U): U is defined so that this is exact.
    s = predict(build_workload(_linear_graph(100, 100), batch=7), tiny_device).summary
    assert s["latency_s"] == pytest.approx(s["flops"] / (s["peak_flops_per_s"] *
                                                         s["utilization"]))


def test_efficiency_and_overhead_from_spec():
    d = tiny_device_dict()
    d["efficiency"] = {"compute": {"value": 0.5, "source": "HAND"},
                       "memory": {"value": 0.8, "source": "HAND"},
                       "launch_overhead_us": {"value": 1e6, "source": "HAND"}}  # 1 s
    dev = device_from_dict(d)
    pred = predict(build_workload(_linear_graph(), batch=1), dev)
    lin = pred.ops.set_index("name").loc["linear"]
    # memory 240 B / (10 B/s * 0.8) = 30 s; compute 200 / (100 * 0.5) = 4 s; + 1 s overhead.
    assert lin["time_s"] == pytest.approx(31.0)
    assert pred.summary["overhead_s"] == pytest.approx(2.0)  # linear and relu, not input
    assert pred.assumptions["compute_efficiency"] == 0.5
    assert pred.assumptions["compute_efficiency_source"] == "round numbers for tests"


def test_energy_at_tdp(tiny_device):
    s = predict(build_workload(_linear_graph(), batch=1), tiny_device).summary
    assert s["energy_j"] == pytest.approx(2 * 28.0)  # 2 W x 28 s


def test_zero_cost_ops_take_no_time(tiny_device):
    b = GraphBuilder("v", default_batch=1)
    b.flatten(b.input("x", (2, 5)))
    pred = predict(build_workload(b.build(), batch=3), tiny_device)
    assert pred.summary["latency_s"] == 0.0
    assert pred.ops["bound"].tolist() == ["none"]


def test_decode_throughput_in_tokens(tiny_device):
    from perfmodel.zoo.transformer import MODELS
    g = MODELS["gpt2"]()
    dev = tiny_device
    s = predict(build_workload(g, batch=4, seq=16, phase="decode"), dev).summary
    assert s["throughput_unit"] == "tokens/s"
    assert s["throughput_per_s"] == pytest.approx(4 / s["latency_s"])


def _with_cache(cap_mb: float, bw_gbps: float):
    d = tiny_device_dict()
    d["memory"].append({"name": "l2", "role": "cache",
                        "capacity_MB": {"value": cap_mb, "source": "HAND"},
                        "bandwidth_GBps": {"value": bw_gbps, "source": "HAND"}})
    return device_from_dict(d)


def test_hierarchical_memory_keeps_small_activations_in_cache():
    # Cache of 100 B at 40 B/s. linear 10->10: weights 200 B from main memory (20 s at
    # 10 B/s); input 20 B and output 20 B fit the cache; all 240 B through the cache take
    # 6 s. Main memory is the slower roof: 20 s (flat model: 24 s).
    dev = _with_cache(100e-6, 40e-9)
    wl = build_workload(_linear_graph(), batch=1)
    lin = predict(wl, dev, hierarchical=True).ops.set_index("name").loc["linear"]
    assert lin["memory_s"] == pytest.approx(20.0)
    # relu: 40 B, all cache-resident: 1 s through the cache.
    relu = predict(wl, dev, hierarchical=True).ops.set_index("name").loc["relu"]
    assert relu["memory_s"] == pytest.approx(1.0)


def test_hierarchical_without_cache_bandwidth_falls_back_and_says_so(tiny_device):
    pred = predict(build_workload(_linear_graph(), batch=1), tiny_device, hierarchical=True)
    assert pred.summary["latency_s"] == pytest.approx(28.0)
    assert any("flat model used" in n for n in pred.assumptions["fallbacks"])


def test_overhead_bound_when_launch_cost_dominates():
    # relu over 1 element: 2 B read + 2 B written = 4 B -> 0.4 s at 10 B/s, less than the
    # 1 s launch overhead: overhead-bound, latency 1.4 s.
    d = tiny_device_dict()
    d["efficiency"]["launch_overhead_us"] = {"value": 1e6, "source": "HAND"}
    b = GraphBuilder("one", default_batch=1)
    b.relu(b.input("x", (1,)))
    pred = predict(build_workload(b.build(), batch=1), device_from_dict(d))
    assert pred.ops["bound"].tolist() == ["overhead"]
    assert pred.summary["bound"] == "overhead"
    assert pred.summary["latency_s"] == pytest.approx(1.4)


def test_llm_training_throughput_in_tokens(tiny_device):
    from perfmodel.zoo.transformer import MODELS
    s = predict(build_workload(MODELS["gpt2"](), batch=2, seq=8, phase="train"),
                tiny_device).summary
    assert s["throughput_unit"] == "tokens/s"
    assert s["throughput_per_s"] == pytest.approx(2 * 8 / s["latency_s"])


def test_roofline_prices_a_table_and_predict_keeps_its_workload(tiny_device):
    # roofline takes the bare table (wl.table) and returns the priced table; predict takes
    # the Workload, whose job fills the summary and assumptions. Times as in
    # test_memory_bound_linear_by_hand: linear 24 s, relu 4 s.
    wl = build_workload(_linear_graph(), batch=1, dtype="fp16", weight_dtype="int8")
    table = roofline(wl.table, tiny_device)
    assert not table.attrs and len(table) == len(wl.table)
    assert "time_s" in table and "time_s" not in wl.table  # a new frame, input untouched
    pred = predict(wl, tiny_device)
    assert pred.workload is wl
    assert (pred.ops["time_s"].to_numpy() == table["time_s"].to_numpy()).all()
    # int8 weights: linear moves 100 * 1 + 20 + 20 = 140 B -> 14 s; relu 4 s.
    assert pred.summary["latency_s"] == pytest.approx(18.0)
    s = pred.summary
    assert (s["model"], s["phase"], s["batch"], s["seq"], s["dtype"]) == (
        "fc", "inference", 1, 1, "fp16")
    assert s["params"] == 100.0
    a = pred.assumptions
    assert (a["weight_dtype"], a["kv_dtype"], a["phase"]) == ("int8", "fp16", "inference")


def test_summary_params_count_tied_weights_once(tiny_device):
    # GPT-2's lm_head shares wte: the summary's params is the model's 124,439,808
    # (HF total), not the sum of rows plus a second 50257 * 768.
    from perfmodel.zoo.transformer import MODELS
    s = predict(build_workload(MODELS["gpt2"](), batch=1, seq=8), tiny_device).summary
    assert s["params"] == 124_439_808
