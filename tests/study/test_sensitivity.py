"""Spec overrides and sensitivity: hand-worked elasticities on a device of round numbers."""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.errors import SpecError, UnknownNameError
from perfmodel.hardware.load import device_from_dict
from perfmodel.hardware.overrides import numeric_fields, override_device
from perfmodel.study.sensitivity import sensitivity
from perfmodel.workload.build import build_workload


def _device():
    f = {"source": "HAND"}
    return device_from_dict({
        "name": "round", "display_name": "Round", "category": "datacenter-gpu",
        "sources": {"HAND": "round numbers"},
        "compute": {"tensor_TFLOPS": {"fp16": {"value": 1000, **f}},
                    "vector_TFLOPS": {"fp16": {"value": 100, **f}, "fp32": {"value": 50, **f}}},
        "memory": [{"name": "hbm", "role": "main", "capacity_GB": {"value": 80, **f},
                    "bandwidth_GBps": {"value": 1000, **f}}],
        "efficiency": {"compute": {"value": 1.0, **f}, "memory": {"value": 1.0, **f},
                       "launch_overhead_us": {"value": 0, **f}},
    }, "round.yaml")


def test_override_changes_one_figure_and_names_the_variant():
    d = _device()
    fast = override_device(d, {"memory.bandwidth_GBps": 2000})
    assert fast.memory_bandwidth == 2 * d.memory_bandwidth
    assert fast.peak_flops == d.peak_flops and fast.name == "round+memory.bandwidth_GBps=2000"
    assert override_device(d, {"memory.hbm.capacity_GB": 40}).memory_capacity == 40e9
    assert "efficiency.launch_overhead_us" in numeric_fields(d)
    with pytest.raises(UnknownNameError, match="did you mean"):
        override_device(d, {"memory.bandwith_GBps": 1})
    with pytest.raises(SpecError, match="positive"):
        override_device(d, {"memory.bandwidth_GBps": -1})


def test_a_memory_bound_pass_has_elasticity_minus_one_to_bandwidth():
    # no launch floor, efficiency 1: a decode step at batch 1 is every op's bytes over
    # 1 TB/s (all ops memory-bound on this device), so T = bytes / BW exactly: e = -1 to
    # the bandwidth, 0 to the tensor peak
    g = pm.load_model("llama-2-7b")
    wl = build_workload(g, batch=1, seq=512, phase="decode")
    df = sensitivity(lambda dev: pm.predict(wl, dev).summary["latency_s"], _device())
    e = dict(zip(df["field"], df["elasticity"], strict=True))
    assert e["memory.bandwidth_GBps"] == pytest.approx(-1.0, abs=1e-9)
    assert e["compute.tensor_TFLOPS.fp16"] == pytest.approx(0.0, abs=1e-9)
    # the memory efficiency (1, at its bound) moves T the same way, measured one-sided
    assert e["efficiency.memory"] == pytest.approx(-1.0, abs=1e-9)
    assert set(df["field"].head(2)) == {"memory.bandwidth_GBps", "efficiency.memory"}


def test_elasticities_are_the_time_shares_of_the_bound_ops():
    # each op takes max(compute, memory): if no op is within 10 % of its ridge, raising the
    # tensor peak shortens exactly the tensor ops that are compute-bound, and the bandwidth
    # exactly the memory-bound ones, so e(peak) = -their share of the time, e(bw) likewise
    g = pm.load_model("llama-2-7b")
    wl = build_workload(g, batch=2, seq=2048, phase="prefill")
    dev = _device()
    ops = pm.predict(wl, dev).ops
    t = ops["time_s"].sum()
    c, m = ops["compute_s"], ops["memory_s"]
    assert ((c / m).between(1 / 1.25, 1.25) == False).all()  # noqa: E712 - none near a ridge
    tensor = (ops["unit"] == "tensor") & (c > m)
    df = sensitivity(lambda d: pm.predict(wl, d).summary["latency_s"], dev,
                     fields=["compute.tensor_TFLOPS.fp16", "memory.bandwidth_GBps"])
    e = dict(zip(df["field"], df["elasticity"], strict=True))
    # share s of time scales as 1/x: ln T(x) = ln((1 - s) + s / x); central difference of it
    import math
    for field, share in (("compute.tensor_TFLOPS.fp16", ops.loc[tensor, "time_s"].sum() / t),
                         ("memory.bandwidth_GBps", ops.loc[m > c, "time_s"].sum() / t)):
        want = (math.log(1 - share + share / 1.1) - math.log(1 - share + share / 0.9)) \
            / (math.log(1.1) - math.log(0.9))
        assert e[field] == pytest.approx(want, rel=1e-9)
    assert e["compute.tensor_TFLOPS.fp16"] < -0.5  # mostly GEMM time


def test_pm_sensitivity_and_its_tornado(tmp_path):
    from perfmodel.report.sensitivity import plot_tornado
    df = pm.sensitivity("llama-2-7b", "h100", phase="decode", batch=1, seq=2048)
    assert df.iloc[0]["field"] == "memory.bandwidth_GBps" and df.iloc[0]["elasticity"] < -0.5
    out = plot_tornado(df, tmp_path / "tornado.png")
    assert out.stat().st_size > 5_000


def test_the_command_prints_plots_and_gives_json(tmp_path, capsys):
    import json

    from perfmodel.cli.main import main
    png = tmp_path / "t.png"
    code = main(["sensitivity", "llama-2-7b", "--hw", "h100", "--phase", "decode", "--seq",
                 "2048", "--plot", str(png), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)["sensitivity"]
    assert rows[0]["field"] == "memory.bandwidth_GBps" and png.stat().st_size > 5_000
