"""Quantization: uniform, weights-only, per-layer (mixed) and presets."""

from __future__ import annotations

import pytest

from perfmodel.compress.quantize import (
    PRESETS,
    load_bit_widths,
    mixed_precision,
    quantize,
    quantize_kv,
)
from perfmodel.compress.select import Selection
from perfmodel.errors import SpecError, UnknownNameError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


def _conv():
    b = GraphBuilder("conv", default_batch=1)
    b.relu(b.conv2d(b.input("x", (16, 8, 8)), 32, 3, padding=1))
    return b.build()


def _size(g, dtype="fp32", **kw):
    return build_workload(g, batch=1, dtype=dtype, **kw).table["storage_bytes"].sum()


def test_fp32_to_int8_is_4x_smaller_weights():
    # Seed 000_b09e94c4aa0114f1.txt ("模型量化"): FP32 -> Int8, 32 bits -> 8 bits per weight.
    # conv 3x3, 16 -> 32 with bias: 4608 + 32 = 4640 weights: 18560 B -> 4640 B.
    g = _conv()
    q = quantize(g, "int8")
    assert _size(g) == 4640 * 4 and _size(q) == 4640
    assert _size(g) / _size(q) == 4
    wl = build_workload(q, batch=1, dtype="fp32").table.set_index("name")
    assert wl.loc["conv2d", "weight_bytes"] == 4640 and wl.loc["conv2d", "dtype"] == "int8"


def test_resnet50_int8_keeps_batchnorm_in_the_model_dtype():
    # 25,557,032 params, of which 53,120 BatchNorm scales/shifts stay fp32:
    # 25,503,912 x 1 B + 53,120 x 4 B = 25,716,392 B (vs 102,228,128 B at fp32).
    g = load_model("resnet50")
    assert _size(g) == 25_557_032 * 4
    assert _size(quantize(g, "int8")) == 25_503_912 + 53_120 * 4


def test_weights_only_keeps_activation_and_compute_dtypes():
    q = quantize(_conv(), "w4a16")
    r = build_workload(q, batch=1, dtype="fp32").table.set_index("name").loc["conv2d"]
    assert (r["weight_dtype"], r["dtype"]) == ("int4", "fp16")
    assert r["weight_bytes"] == 4640 * 0.5 and r["input_bytes"] == 16 * 64 * 2
    w8 = build_workload(quantize(_conv(), "w8"), batch=1, dtype="bf16").table.set_index("name")
    assert (w8.loc["conv2d", "weight_dtype"], w8.loc["conv2d", "dtype"]) == ("int8", "bf16")


def test_skip_first_and_last_layers():
    q = quantize(load_model("resnet50"), "int8", Selection(skip_first=True, skip_last=True))
    assert "weight_dtype" not in q.op("conv1").attrs and "weight_dtype" not in q.op("fc").attrs
    assert q.op("layer1.0.conv1").attr("weight_dtype") == "int8"


def test_mixed_precision_first_match_wins_and_default_applies():
    g = load_model("resnet18")
    q = mixed_precision(g, [("conv1", "fp16"), ("layer4.*", 4), ("fc", "none")], "int8")
    assert q.op("conv1").attr("weight_dtype") == "fp16"
    assert q.op("layer4.1.conv2").attr("weight_dtype") == "int4"
    assert "weight_dtype" not in q.op("fc").attrs
    assert q.op("layer2.0.conv1").attr("weight_dtype") == "int8"


def test_bit_width_file(tmp_path):
    p = tmp_path / "bits.yaml"
    p.write_text("default: 8\nlayers:\n  conv1: 16\n  'layer4.*': w4a16\n")
    plan, default = load_bit_widths(p)
    assert plan == [("conv1", 16), ("layer4.*", "w4a16")] and default == 8


def test_bad_bit_width_file_reports_every_problem(tmp_path):
    p = tmp_path / "bits.yaml"
    p.write_text("defualt: 8\nlayers:\n  conv1: 12\n  fc: int9\n")
    with pytest.raises(SpecError) as exc:
        load_bit_widths(p)
    msg = str(exc.value)
    assert "3 problem(s)" in msg and "defualt" in msg and "conv1" in msg and "fc" in msg


def test_unknown_scheme_suggests_the_nearest():
    with pytest.raises(UnknownNameError, match="w4a16"):
        quantize(_conv(), "w4a61")


def test_sensitive_preset_keeps_ends_and_depthwise_wide():
    q = PRESETS["sensitive"](load_model("mobilenet_v2"))
    dw = next(op for op in q.ops if op.attr("depthwise", False))
    assert dw.attr("weight_dtype") == "fp16"
    assert q.ops[0].attr("weight_dtype") == "fp16"        # the stem conv
    assert q.op("classifier.1").attr("weight_dtype") == "fp16"
    assert q.op("features.2.conv.0.0").attr("weight_dtype") == "int8"


def test_kv_cache_quantization_halves_its_bytes():
    g = load_model("llama-2-7b")
    base = build_workload(g, batch=1, seq=1024, phase="decode", dtype="fp16").table
    kv8 = build_workload(quantize_kv(g, "int8"), batch=1, seq=1024, phase="decode",
                         dtype="fp16").table
    attn = base["kind"] == "attention"
    # each layer reads K and V: 2 x 32 heads x 1024 x 128 at 2 B -> 1 B
    kv = 2 * 32 * 1024 * 128
    assert (base[attn]["input_bytes"] - kv8[attn]["input_bytes"]).iloc[0] == kv
