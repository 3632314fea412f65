"""CPU host backend: real numpy measurements, checked; a host spec from them."""

from __future__ import annotations

import os

import numpy as np
import pytest

from perfmodel.bench.host import HostInfo, detect_host, host_spec, run_host, time_call
from perfmodel.bench.measurement import check_measurements, measurement_frame
from perfmodel.hardware.load import device_from_dict

INFO = HostInfo("Test CPU", "TestVendor", 4, 8e9, ((1, "Data", 32e3), (3, "Unified", 8e6)),
                3000.0)


def test_detect_host_counts_cores():
    info = detect_host()
    assert info.cores == os.cpu_count()
    assert info.last_level_cache_bytes > 0


def test_time_call_median_of_repeats():
    calls = []
    med, p10, p90 = time_call(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and 0 <= p10 <= med <= p90


def test_launch_and_gemm_suites_give_checked_rows():
    df = run_host(["launch", "gemm"], quick=True, repeats=2, info=INFO)
    check_measurements(df)
    assert set(df["family"]) == {"launch", "gemm"}
    gemm = df[df["family"] == "gemm"]
    assert (gemm["check_rel_err"] < 1e-4).all()
    assert (gemm["flops"] == 2.0 * gemm["m"] * gemm["n"] * gemm["k"]).all()
    assert (df["backend"] == "cpu").all() and (df["device"] == "Test CPU").all()


def test_host_spec_from_measurements():
    rows = [  # 1 TFLOP in 10 s = 0.1 TFLOP/s best fp32; 2 TB / 100 s = 20 GB/s above the LLC
        {"benchmark": "gemm_numpy", "family": "gemm", "dtype": "fp32", "m": 1, "n": 1, "k": 1,
         "achieved_TFLOPS": 0.1}, {"benchmark": "gemm_numpy", "family": "gemm",
                                   "dtype": "fp32", "m": 1, "n": 1, "k": 1,
                                   "achieved_TFLOPS": 0.05},
        {"benchmark": "stream_copy", "family": "membw", "working_set_bytes": 64e6,
         "achieved_GBps": 20.0},
        {"benchmark": "stream_copy", "family": "membw", "working_set_bytes": 1e6,
         "achieved_GBps": 90.0},  # cache-resident: not the DRAM figure
    ]
    spec = host_spec(measurement_frame(rows), INFO, date="2026-01-02")
    dev = device_from_dict(spec, "host.yaml")
    assert dev.peak("vector", "fp32") == pytest.approx(0.1e12)
    assert dev.memory_bandwidth == pytest.approx(20e9)
    assert dev.extras["units"] == 4 and dev.memory_capacity == pytest.approx(8e9)
    assert "measured by `perfmodel bench --backend cpu` on 2026-01-02" in \
        dev.provenance["compute.vector_TFLOPS.fp32"]
    assert "detected by perfmodel on 2026-01-02" in dev.provenance["compute.units"]
    assert np.isclose(dev.memory[1].capacity_bytes, 8e6)


def test_host_spec_launch_overhead_is_the_measured_call_not_the_a100s():
    # launch rows of 2 and 4 us: the spec's per-call overhead is their median, 3 us; without
    # launch rows it is 0, never the A100 kernel launch of _defaults.yaml (3.3 us)
    base = [{"benchmark": "gemm_numpy", "family": "gemm", "dtype": "fp32", "m": 1, "n": 1,
             "k": 1, "achieved_TFLOPS": 0.1},
            {"benchmark": "stream_copy", "family": "membw", "working_set_bytes": 64e6,
             "achieved_GBps": 20.0}]
    launch = [{"benchmark": "python_call_add", "family": "launch", "time_s": t}
              for t in (2e-6, 4e-6)]
    with_launch = device_from_dict(host_spec(measurement_frame(base + launch), INFO), "h.yaml")
    assert with_launch.efficiency.launch_overhead_s == pytest.approx(3e-6)
    without = device_from_dict(host_spec(measurement_frame(base), INFO), "h.yaml")
    assert without.efficiency.launch_overhead_s == 0.0
