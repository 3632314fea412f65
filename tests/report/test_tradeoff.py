"""The compression comparison table and the speed-up vs size chart."""

from __future__ import annotations

import pytest

from perfmodel.compress.registry import parse_strategy
from perfmodel.errors import PerfModelError
from perfmodel.hardware.load import load_device
from perfmodel.report.compress import (
    TABLE_COLUMNS,
    Request,
    compare_strategies,
    plot_tradeoff,
)
from perfmodel.zoo.registry import load_model


def _table(*texts, device="a100", model="resnet50", **req):
    return compare_strategies(load_model(model), load_device(device),
                              [parse_strategy(t) for t in texts], Request(**req))


def test_baseline_first_and_speedups_relative_to_it():
    df = _table("int8", "prune:0.9:unstructured", dtype="fp16")
    assert list(df.columns) == list(TABLE_COLUMNS)
    assert df["strategy"].tolist() == ["baseline", "int8", "prune:0.9:unstructured"]
    base, int8, sparse = df.to_dict(orient="records")
    assert base["speedup"] == 1.0 and base["size_ratio"] == 1.0
    assert int8["size_on_disk_bytes"] == pytest.approx(base["size_on_disk_bytes"] / 2,
                                                       rel=0.01)   # fp16 -> int8, BN kept
    # unstructured on a device without sparse support: same MACs, bytes and latency
    assert sparse["speedup"] == pytest.approx(1.0)
    assert sparse["macs_executed"] == base["macs_executed"]
    assert sparse["size_ratio"] > 6
    assert any("dense speed" in n for n in sparse["notes"])


def test_energy_below_tdp_bound_and_peak_memory_at_least_the_weights():
    df = _table("w4a16", dtype="fp16")
    for row in df.to_dict(orient="records"):
        assert 0 < row["energy_j"] < row["energy_tdp_j"]
        assert row["peak_memory_bytes"] > row["size_on_disk_bytes"]


def test_decode_peak_memory_counts_the_kv_cache():
    # Llama-2-7B fp16, batch 1, 1024 tokens: KV cache = 2 x 32 layers x 4096 x 1024 x 2 B.
    df = _table(model="llama-2-7b", device="h100", phase="decode", batch=1, seq=1024,
                dtype="fp16")
    kv = 2 * 32 * 4096 * 1024 * 2
    base = df.iloc[0]
    assert base["peak_memory_bytes"] > base["size_on_disk_bytes"] + kv


def test_training_adds_the_gradient_exchange():
    # 8 workers, NVLink 300 GB/s per direction on the A100: dense ring all-reduce of
    # 102.2 MB = 2 x 7/8 x 102,228,128 / 300e9 s.
    df = _table("gradsparse:0.999", phase="train", batch=32, dtype="fp16")
    base, sparse = df.to_dict(orient="records")
    assert base["comm_s"] == pytest.approx(2 * 7 / 8 * 102_228_128 / 300e9)
    assert sparse["grad_exchange_bytes"] == pytest.approx(25_502_912 * 0.006 + 54_120 * 4)
    assert sparse["comm_s"] == pytest.approx(7 * sparse["grad_exchange_bytes"] / 300e9)
    assert sparse["latency_s"] < base["latency_s"]


def test_plot_written_and_not_overwritten(tmp_path):
    df = _table("int8", dtype="fp16")
    out = tmp_path / "t.png"
    plot_tradeoff(df, out)
    assert out.stat().st_size > 1000
    with pytest.raises(PerfModelError, match="--force"):
        plot_tradeoff(df, out)
