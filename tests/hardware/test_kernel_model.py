"""The kernel-efficiency model on hand-worked cases: wave and tile quantization, the tile
family, the cache cap, the sustained clock, memory patterns, and how a spec selects it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfmodel.analytic.roofline import roofline
from perfmodel.errors import SpecError
from perfmodel.hardware.kernel_model import Architecture, KernelModel, MemoryTechnology
from perfmodel.hardware.load import clock_factor, device_from_dict
from perfmodel.validate.compare import _price_resident, gemm_workload, one_op_workload
from tests.conftest import tiny_device_dict

ONE = np.array([1.0])


def model(tile=(64, 64), units=132, issue=1.0, k_over=0.0, clock=1.0, ridge=None):
    return KernelModel(Architecture("x", "v", tile, 1, issue, k_over, 0.0), units, clock,
                       cache_ridge=ridge)


def test_a_gemm_of_1_03_waves_is_priced_as_two_waves():
    # 136 tiles of 64 x 64 on 132 units (64 x 64 is the whole family): 136 / 132 = 1.03
    # waves -> 2 waves, so 136 tiles' work takes 264 tiles' time: e = 136 / 264
    e = model().gemm(ONE, np.array([136 * 64.0]), np.array([64.0]), np.array([8192.0]))
    assert e[0] == pytest.approx(136 / 264)
    # one tile fewer than the units: one wave, 131 / 132 busy
    e = model().gemm(ONE, np.array([131 * 64.0]), np.array([64.0]), np.array([8192.0]))
    assert e[0] == pytest.approx(131 / 132)


def test_tile_quantization_pads_the_edge_tiles():
    # M = 65 on 64-row tiles: 2 tiles in M, the second holds one row; 1 x 2 tiles on 132
    # units: one wave; work = 65 x 64 of the 2 x 64 x 64 computed -> e = 65 / (132 x 64)
    e = model().gemm(ONE, np.array([65.0]), np.array([64.0]), np.array([4096.0]))
    assert e[0] == pytest.approx(65 * 64 / (132 * 64 * 64))


def test_the_library_takes_the_tile_with_the_fewest_waves():
    # family of 128x128: (128,128), (64,128) [halve the larger side, M first], (64,64).
    # 136 tiles of 128 x 128 (M = 136 x 128, N = 128) on 132 units: 2 waves of full tiles
    # = time 2; 64 x 128: 272 tiles -> ceil(272/132) = 3 waves of half tiles = time 1.5;
    # 64 x 64: 544 tiles -> 5 waves of quarter tiles = 1.25 -> chosen: e = 136 / (1.25 x 132)
    km = model(tile=(128, 128))
    assert km.tiles() == ((128, 128), (64, 128), (64, 64))
    e = km.gemm(ONE, np.array([136 * 128.0]), np.array([128.0]), np.array([8192.0]))
    assert e[0] == pytest.approx(136 / (1.25 * 132))


def test_small_tiles_are_capped_by_the_cache_bandwidth():
    # ridge 57 FLOP/B (A100: 312 TFLOP/s / 5.48 TB/s L2): a 64 x 64 fp16 tile does
    # 2*64*64 / ((64+64)*2) = 32 FLOP per operand byte -> runs at 32/57 of its rate, so the
    # same 544-tile case now prefers 64 x 128 (42.7 FLOP/B -> 0.749): time 1.5 / 0.749
    km = model(tile=(128, 128), ridge=57.0)
    e = km.gemm(ONE, np.array([136 * 128.0]), np.array([128.0]), np.array([8192.0]))
    t64 = 1.25 / (32 / 57)
    t128x64 = 1.5 / ((2 * 64 * 128 / (192 * 2)) / 57)
    assert e[0] == pytest.approx(136 / (min(2.0, t64, t128x64) * 132))


def test_k_overhead_and_issue_fraction_and_clock_scale_the_rate():
    # one full wave of 132 tiles, K = 384 with 128 elements of prologue/epilogue:
    # e = 0.8 (clock) x 0.9 (issue) x 384 / 512
    km = model(issue=0.9, k_over=128.0, clock=0.8)
    e = km.gemm(ONE, np.array([132 * 64.0]), np.array([64.0]), np.array([384.0]))
    assert e[0] == pytest.approx(0.8 * 0.9 * 0.75)
    # unknown shape (NaN): a large full-wave GEMM
    assert km.gemm(ONE, np.array([np.nan]), np.array([64.0]), ONE)[0] == pytest.approx(0.72)


def test_power_capped_part_runs_at_its_sustained_clock():
    # a part whose peak is quoted at 1590 MHz but holds 1110 MHz under matrix load (cited
    # in its spec): every matrix op runs 1110 / 1590 slower than at the boost clock
    f, note = clock_factor({"boost_clock_MHz": 1590, "sustained_clock_MHz": 1110})
    assert f == pytest.approx(1110 / 1590) and "1110" in note
    assert clock_factor({"boost_clock_MHz": 1590}) == (
        1.0, "boost clock taken as held under load (no sustained clock published)")


def test_memory_efficiency_by_write_fraction():
    t = MemoryTechnology("hbm", read=0.95, triad=0.9, copy=0.88, write=0.8)
    # read 0, triad 1/3, copy 1/2, write 1; 0.75 is half-way between copy and write
    assert t.at(np.array([0, 1 / 3, 0.5, 1, 0.75])) == pytest.approx(
        [0.95, 0.9, 0.88, 0.8, 0.84])


ARCHS = ({"xarch": Architecture("xarch", "v", (64, 64), 1, 0.5, 0.0, 2e-6)},
         {"hbmx": MemoryTechnology("hbmx", 1.0, 0.5, 0.5, 0.25)})


def modelled(**over):
    d = tiny_device_dict(architecture="xarch", **over)
    d["compute"] = {**d["compute"], "units": {"value": 2, "source": "HAND"},
                    "boost_clock_MHz": {"value": 1000, "source": "HAND"},
                    "sustained_clock_MHz": {"value": 800, "source": "HAND"}}
    d["memory"] = [{**d["memory"][0], "name": "hbmx"}]
    if "efficiency" not in over:
        d.pop("efficiency")
    return device_from_dict(d, "m.yaml", architectures=ARCHS)


def test_a_spec_naming_its_architecture_gets_the_model():
    dev = modelled()
    e = dev.efficiency
    # scalars hold the model's large-kernel values: 0.8 clock x 0.5 issue; copy 0.5
    assert e.compute == pytest.approx(0.4) and e.memory == pytest.approx(0.5)
    assert e.launch_overhead_s == pytest.approx(2e-6)
    assert "kernel model (xarch)" in dev.provenance["efficiency.compute"]
    # a 64 x 64 x 64 fp16 GEMM (one tile on two units: half the slots) at 100 FLOP/s:
    # e = 0.4 x 1/2; 2 x 64^3 FLOP / (100 x 0.2) = 26214.4 s compute, plus 2 us launch
    ops = roofline(gemm_workload([64], [64], [64], np.array(["fp16"], dtype=object)), dev)
    assert ops["compute_s"][0] == pytest.approx(2 * 64**3 / 20)
    # 100 bytes written only (write fraction 1): 100 / (10 x 0.25) = 40 s
    wl = one_op_workload(np.zeros(1), np.zeros(1), np.zeros(1), np.array([100.0]),
                         "vector", "fp32")
    assert roofline(wl, dev)["memory_s"][0] == pytest.approx(40.0)


def test_the_spec_own_efficiency_wins_over_the_model():
    dev = modelled(efficiency={"compute": {"value": 0.9, "source": "HAND"}})
    assert dev.efficiency.compute == 0.9 and dev.efficiency.compute_model is None
    assert dev.efficiency.memory_model is not None   # memory still from the technology


def test_unknown_architecture_is_one_clear_error():
    d = tiny_device_dict(architecture="xarc")
    with pytest.raises(SpecError, match="unknown architecture 'xarc'.*xarch"):
        device_from_dict(d, "m.yaml", architectures=ARCHS)


def cached(**bandwidth):
    """The tiny device (main memory 10 B/s, memory efficiency 0.5) with a 40 MiB cache of
    the given bandwidth key (bandwidth_GBps: a peak; achieved_GBps: measured)."""
    d = tiny_device_dict()
    (key, value), = bandwidth.items()
    d["memory"] = [*d["memory"], {"name": "l2", "role": "cache",
                                  "capacity_MB": {"value": 40, "source": "HAND"},
                                  key: {"value": value, "source": "HAND"}}]
    d["efficiency"]["memory"] = {"value": 0.5, "source": "HAND"}
    return device_from_dict(d, "c.yaml")


def test_cache_capacity_is_mib_and_a_measured_bandwidth_is_not_discounted():
    dev = cached(achieved_GBps=20e-9)
    assert dev.cache.capacity_bytes == 40 * 2**20 and dev.cache.achieved
    rows = pd.DataFrame({"bytes": [100.0], "working_set_bytes": [1e6]})
    # fits the 40 MiB cache: 100 B at the measured 20 B/s as it is = 5 s (not 10 s at 0.5)
    assert _price_resident(rows, dev, "l2")[0][0] == pytest.approx(5.0)


def test_a_streaming_sweep_small_sizes_run_from_the_cache():
    # 40 MiB cache at a peak 40 B/s, main memory 10 B/s, memory efficiency 0.5 (scalar):
    # a copy of 1 MB total over a 1 MB data set fits -> 1e6 / (40 x 0.5) s; over 1 GB it
    # does not -> 1e6 / (10 x 0.5) s
    dev = cached(bandwidth_GBps=40e-9)
    rows = pd.DataFrame({"benchmark": ["stream_copy"] * 2, "bytes": [1e6, 1e6],
                         "working_set_bytes": [1e6, 1e9]})
    t = _price_resident(rows, dev, "membw")[0]
    assert t == pytest.approx([1e6 / 20, 1e6 / 5])
