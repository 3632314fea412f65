"""The compression comparison table (perfmodel.compress.tradeoff) and the speed-up vs size
chart (perfmodel.report.compress).

Peak memory is the analytic memory model's total on one device
(perfmodel.analytic.memory.footprint with a default ParallelPlan); the tiny-graph tests
work its components by hand."""

from __future__ import annotations

import pytest

from perfmodel.analytic.memory import footprint
from perfmodel.compress.registry import parse_strategy
from perfmodel.compress.tradeoff import (
    TABLE_COLUMNS,
    Exchange,
    compare_strategies,
    peak_memory,
)
from perfmodel.errors import PerfModelError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.hardware.load import device_from_dict, load_device
from perfmodel.report.compress import plot_tradeoff
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan
from perfmodel.zoo.registry import load_model
from tests.conftest import tiny_device_dict


def _table(*texts, device="a100", model="resnet50", **job):
    return compare_strategies(load_model(model), load_device(device),
                              [parse_strategy(t) for t in texts], Job(**job))


def _total(graph, device, job) -> float:
    return float(footprint(graph, ParallelPlan(), job, device=device)["total"])


def _fc():
    """linear 10 -> 10 (100 weights, no bias) + relu, one sample by default."""
    b = GraphBuilder("fc", default_batch=1)
    b.relu(b.linear(b.input("x", (10,)), 10, bias=False))
    return b.build()


def test_baseline_first_and_speedups_relative_to_it():
    df = _table("int8", "prune:0.9:unstructured", dtype="fp16")
    assert list(df.columns) == list(TABLE_COLUMNS)
    assert df["strategy"].tolist() == ["baseline", "int8", "prune:0.9:unstructured"]
    assert not df.attrs
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
    g, a100 = load_model("resnet50"), load_device("a100")
    graphs = {"baseline": g, "w4a16": parse_strategy("w4a16")(g)}
    for row in df.to_dict(orient="records"):
        assert 0 < row["energy_j"] < row["energy_tdp_j"]
        assert row["peak_memory_bytes"] > row["size_on_disk_bytes"]
        # the memory model's total for this graph, job and device
        assert row["peak_memory_bytes"] == _total(graphs[row["strategy"]], a100,
                                                  Job(dtype="fp16"))


def test_peak_memory_of_a_tiny_graph_by_hand():
    # Inference, fp16, batch 1: weights 100 x 2 B = 200 B; no gradients, optimizer states,
    # saved activations or KV cache; workspace = the largest op's inputs + outputs,
    # 10 + 10 elements x 2 B = 40 B. Total 240 B.
    g, dev = _fc(), device_from_dict(tiny_device_dict(), "tiny.yaml")
    fp = footprint(g, ParallelPlan(), Job(dtype="fp16"), device=dev)
    assert {k: float(v) for k, v in fp.items()} == {
        "weights": 200.0, "gradients": 0.0, "optimizer": 0.0, "activations": 0.0,
        "kv_cache": 0.0, "workspace": 40.0, "overhead": 0.0, "total": 240.0}
    assert peak_memory(g, dev, Job(dtype="fp16")) == 240.0
    # int8 (= w8a8): weights 100 x 1 B = 100 B, and the op's activations are int8 too, so
    # the workspace is 10 + 10 elements x 1 B = 20 B. Total 120 B.
    df = compare_strategies(g, dev, [parse_strategy("int8")], Job(dtype="fp16"))
    assert df["peak_memory_bytes"].tolist() == [240.0, 120.0]
    assert df["size_on_disk_bytes"].tolist() == [200.0, 100.0]


def test_training_peak_memory_of_a_tiny_graph_by_hand():
    # Training, fp16 mixed precision, Adam, batch 1 (Rajbhandari et al. 2020: 2 + 2 + 12 B
    # per parameter): weights 200 + gradients 200 + optimizer 12 x 100 = 1,200; saved
    # activations = every op's output, (10 + 10) x 2 B = 40; workspace 40. Total 1,680 B.
    g = _fc()
    a100 = load_device("a100")
    job = Job(phase="train", batch=1, dtype="fp16")
    fp = footprint(g, ParallelPlan(), job, device=a100)
    assert [float(fp[k]) for k in ("weights", "gradients", "optimizer", "activations",
                                   "workspace")] == [200.0, 200.0, 1200.0, 40.0, 40.0]
    df = compare_strategies(g, a100, [], job)
    assert df["peak_memory_bytes"].tolist() == [1680.0]


def test_table_prices_the_whole_job():
    # The job's optimizer and weight dtype are part of what is run. SGD with mixed
    # precision keeps only the fp32 master copy (4 B/param): 200 + 200 + 400 + 40 + 40
    # = 880 B. int8 weights at inference: 100 + 40 = 140 B, and 100 weight bytes moved.
    g, a100 = _fc(), load_device("a100")
    sgd = Job(phase="train", batch=1, dtype="fp16", optimizer="sgd")
    assert _total(g, a100, sgd) == 880.0
    assert compare_strategies(g, a100, [], sgd)["peak_memory_bytes"].tolist() == [880.0]
    w8 = Job(dtype="fp16", weight_dtype="int8")
    row = compare_strategies(g, a100, [], w8).iloc[0]
    assert row["peak_memory_bytes"] == _total(g, a100, w8) == 140.0
    assert row["weight_bytes_moved"] == 100.0


def test_decode_peak_memory_counts_the_kv_cache():
    # Llama-2-7B fp16, batch 1, 1024 tokens: KV cache = 2 x 32 layers x 4096 x 1024 x 2 B.
    df = _table(model="llama-2-7b", device="h100", phase="decode", batch=1, seq=1024,
                dtype="fp16")
    kv = 2 * 32 * 4096 * 1024 * 2
    base = df.iloc[0]
    assert base["peak_memory_bytes"] > base["size_on_disk_bytes"] + kv
    # The memory model's components: weights 6,738,415,616 x 2 B = 13,476,831,232; the KV
    # cache above = 536,870,912; workspace (decode: 1 token) = the MLP's working set
    # 2 x 4096 + 2 x 11008 = 30,208 elements plus the last token's 32,000 logits, x 2 B
    # = 124,416. Total 14,013,826,560 B.
    g, h100 = load_model("llama-2-7b"), load_device("h100")
    job = Job(phase="decode", batch=1, seq=1024, dtype="fp16")
    fp = footprint(g, ParallelPlan(), job, device=h100)
    assert float(fp["weights"]) == 6_738_415_616 * 2
    assert float(fp["kv_cache"]) == kv == 536_870_912
    assert float(fp["workspace"]) == (2 * 4096 + 2 * 11008 + 32000) * 2 == 124_416
    assert base["peak_memory_bytes"] == float(fp["total"]) == 14_013_826_560


def test_training_adds_the_gradient_exchange():
    # 8 workers, NVLink 300 GB/s per direction on the A100: dense ring all-reduce of
    # 102.2 MB = 2 x 7/8 x 102,228,128 / 300e9 s.
    df = _table("gradsparse:0.999", phase="train", batch=32, dtype="fp16")
    base, sparse = df.to_dict(orient="records")
    assert base["comm_s"] == pytest.approx(2 * 7 / 8 * 102_228_128 / 300e9)
    assert sparse["grad_exchange_bytes"] == pytest.approx(25_502_912 * 0.006 + 54_120 * 4)
    assert sparse["comm_s"] == pytest.approx(7 * sparse["grad_exchange_bytes"] / 300e9)
    assert sparse["latency_s"] < base["latency_s"]


def test_exchange_workers_and_latency_change_the_collective():
    # 4 workers and 1 ms per message: ring all-reduce 2 (p - 1) alpha + 2 (p - 1)/p V / B
    # = 6 ms + 2 x 3/4 x 102,228,128 / 300e9 s.
    g, a100 = load_model("resnet50"), load_device("a100")
    df = compare_strategies(g, a100, [], Job(phase="train", batch=32, dtype="fp16"),
                            exchange=Exchange(workers=4, link_latency_s=1e-3))
    assert df.iloc[0]["comm_s"] == pytest.approx(6e-3 + 2 * 3 / 4 * 102_228_128 / 300e9)


def test_plot_written_and_not_overwritten(tmp_path):
    df = _table("int8", dtype="fp16")
    out = tmp_path / "t.png"
    plot_tradeoff(df, out)
    assert out.stat().st_size > 1000
    with pytest.raises(PerfModelError, match="--force"):
        plot_tradeoff(df, out)
