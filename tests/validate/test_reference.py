"""Shipped reference measurements: converted to our schema, citations kept."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from perfmodel.errors import UnknownNameError
from perfmodel.validate.reference import (
    GPU_STREAM_ARRAY_BYTES,
    convert_reference,
    load_reference,
    reference_dir,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "measurements"


@pytest.fixture(scope="module")
def a100():
    return load_reference("a100")


def test_a100_rows_by_family(a100):
    counts = a100["family"].value_counts()
    assert counts["gemm"] >= 400 and counts["membw"] >= 20 and counts["inference"] >= 300
    assert set(a100["hw"]) <= {"a100-sxm4-80gb", "a100-sxm4-40gb", "a100-pcie-80gb"}
    assert (a100["source"] != "").all() and (a100["row_id"] != "").all()


def test_llmcompass_gemm_row(a100):
    # gemm-00001: LLMCompass matmul_A100.csv row 1: "64, 12288, 12288, 0.1900ms, 101.7124Tflops"
    r = a100.set_index("row_id").loc["gemm-00001"]
    assert (r.m, r.n, r.k, r["dtype"]) == (64, 12288, 12288, "fp16")
    assert r.time_s == pytest.approx(190e-6)
    assert r.achieved_TFLOPS == pytest.approx(101.7124)
    assert 2 * 64 * 12288 * 12288 / r.time_s / 1e12 == pytest.approx(101.7, rel=1e-3)


def test_gpu_stream_triad_bytes(a100):
    # membw-00098: gpu-stream triad on A100 80GB, 1759 GB/s; main.cu counts 3 arrays of
    # (128 Mi + 2) doubles
    r = a100.set_index("row_id").loc["membw-00098"]
    assert r.bytes == 3 * GPU_STREAM_ARRAY_BYTES == 3 * (128 * 2**20 + 2) * 8
    assert r.time_s == pytest.approx(r.bytes / 1759e9)


def test_mislabelled_paddle_trt_tables_go_to_a30_and_a10():
    a30 = load_reference("a30")
    assert len(a30) == 27 and (a30["framework"].str.startswith("Paddle-TRT")).all()
    assert "A30" in a30["quote_or_note"].iloc[0]


def test_mislabelled_mxnet_t4_table_goes_to_t4():
    # MXNet RN50v1.5 README, table "Inference performance: NVIDIA T4": batch 256 fp16 runs
    # 1,559 img/s at 164.15 ms; the collected rows carry the DGX-1 V100 heading above it
    t4 = load_reference("t4")
    assert len(t4) == 10 and set(t4["hw"]) == {"t4"}
    assert t4.set_index("batch")["time_s"].astype(float)[256] == pytest.approx(0.16415)
    assert not load_reference("v100")["framework"].str.contains("T4").any()


def test_llama_cpp_rows_say_how_batch_is_read(a100):
    notes = a100[a100["framework"] == "llama.cpp"]["quote_or_note"]
    # 40 single-GPU rows (2 models x 4 batches x 5 lengths), 80 on 2 and 4 GPUs
    assert len(notes) == 120 and notes.str.contains("llama-bench's -b").all()


def test_unknown_reference():
    with pytest.raises(UnknownNameError, match="no reference measurements"):
        load_reference("h900")


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/reference not beside the checkout")
def test_shipped_files_are_the_conversion_of_the_shared_data():
    for name, df in convert_reference(SHARED).items():
        shipped = pd.read_csv(reference_dir() / f"{name}.csv", dtype=str,
                              keep_default_na=False)
        assert len(shipped) == len(df), name
        assert list(shipped["row_id"]) == list(df["row_id"]), name


def test_gpu_l2_cache_rows_count_every_block(a100):
    # membw-00001: gpu-l2-cache on A100 80GB, "512 kB  2048 kB  10ms  5481.9 GB/s": 100,000
    # blocks of 512 KiB each (gpu-l2-cache/main.cu blockCount) from a 2048 KiB data set
    r = a100.set_index("row_id").loc["membw-00001"]
    assert r.bytes == 512 * 1024 * 100_000 and r.working_set_bytes == 2048 * 1024
    assert r.time_s == pytest.approx(0.00956, rel=1e-3)  # the printed 10 ms, rounded
