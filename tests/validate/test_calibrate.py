"""calibrate recovers known efficiency curves from synthetic measurements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfmodel.bench.measurement import measurement_frame
from perfmodel.errors import MeasurementError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.load import device_from_dict
from perfmodel.validate.calibrate import calibrate, calibrated_spec, fit_overhead
from tests.conftest import tiny_device_dict

# A device of 100 TFLOP/s fp16 and 1 TB/s; the truth: efficiency rises with work size.
TRUE_COMPUTE = EfficiencyCurve.from_points([[1e9, 0.2], [1e11, 0.6], [1e13, 0.9]])
TRUE_MEMORY = EfficiencyCurve.from_points([[1e5, 0.1], [1e7, 0.5], [1e9, 0.85]])
OVERHEAD = 2e-6


def device():
    d = tiny_device_dict()
    d["compute"]["tensor_TFLOPS"]["fp16"]["value"] = 100
    d["memory"][0]["bandwidth_GBps"]["value"] = 1000
    return device_from_dict(d, "synthetic.yaml")


def synthetic():
    rows = []
    for s in np.geomspace(1024, 16384, 24):  # square fp16 GEMMs: compute-bound
        m = int(s)
        flops = 2.0 * m ** 3
        t = flops / (100e12 * TRUE_COMPUTE.at(flops)) + OVERHEAD
        rows.append({"benchmark": "g", "family": "gemm", "dtype": "fp16", "m": m, "n": m,
                     "k": m, "time_s": float(t)})
    for b in np.geomspace(1e5, 1e9, 24):
        t = b / (1e12 * TRUE_MEMORY.at(b)) + OVERHEAD
        rows.append({"benchmark": "s", "family": "membw", "dtype": "fp32", "bytes": b,
                     "time_s": float(t)})
    rows += [{"benchmark": "l", "family": "launch", "time_s": OVERHEAD}] * 5
    return measurement_frame([{"backend": "cpu", "device": "synthetic", **r} for r in rows])


def test_recovers_curves_and_overhead():
    cal = calibrate(synthetic(), device(), folds=4, seed=1)
    e = cal.efficiency
    assert e.launch_overhead_s == pytest.approx(OVERHEAD)
    for x in np.geomspace(1e10, 8e12, 7):  # inside the measured range
        assert e.compute_at(np.array([x]), "fp16")[0] == pytest.approx(
            TRUE_COMPUTE.at(x), rel=0.05)
    for x in np.geomspace(2e5, 5e8, 7):
        assert e.memory_at(np.array([x]))[0] == pytest.approx(TRUE_MEMORY.at(x), rel=0.05)
    s = cal.summary.set_index("family")
    # held-out rows: the fitted curve runs through bin medians (>= 4 rows each), so between
    # its points it is a chord of the true curve: a few per cent, not more
    assert s.loc["gemm", "mape"] < 0.05 and s.loc["membw", "mape"] < 0.05
    u = cal.uncalibrated.set_index("family")
    assert u.loc["gemm", "mape"] > 0.2  # the scalar spec (efficiency 1) is far off


def test_fit_overhead_closed_form():
    # base 1 and 2 s, 10 ops each, measured 2 and 3 s: each needs 0.1 s per op
    assert fit_overhead(np.array([1.0, 2.0]), np.array([10.0, 10.0]),
                        np.array([2.0, 3.0])) == pytest.approx(0.1)


def test_calibrated_spec_loads_and_cites_the_file():
    cal = calibrate(synthetic(), device(), folds=3)
    spec = calibrated_spec(device(), cal, "synthetic.csv", date="2026-01-02")
    dev = device_from_dict(spec, "cal.yaml")
    assert dev.name == "tiny-calibrated"
    assert "synthetic.csv" in dev.provenance["efficiency.compute_curve.fp16"]
    assert "2026-01-02" in dev.provenance["efficiency.memory_curve"]
    assert dev.efficiency.launch_overhead_s == pytest.approx(OVERHEAD, rel=1e-3)


def test_a_dtype_with_too_few_rows_gets_no_curve():
    # three int8 GEMMs at 10 % of peak are too few for a curve (at least 4 rows): int8 is
    # priced with the fitted scalar, which the 24 fp16 GEMMs set
    rows = [{"benchmark": "g", "family": "gemm", "dtype": "int8", "m": m, "n": m, "k": m,
             "time_s": 2.0 * m ** 3 / (100e12 * 0.1)} for m in (4096, 8192, 16384)]
    df = pd.concat([synthetic(), measurement_frame(
        [{"backend": "cpu", "device": "synthetic", **r} for r in rows])], ignore_index=True)
    d = tiny_device_dict()
    d["compute"]["tensor_TFLOPS"]["fp16"]["value"] = 100
    d["compute"]["tensor_TFLOPS"]["int8"] = {"value": 100, "source": "HAND"}
    d["memory"][0]["bandwidth_GBps"]["value"] = 1000
    e = calibrate(df, device_from_dict(d, "synthetic.yaml"), folds=2).efficiency
    assert "int8" not in e.compute_curves and "fp16" in e.compute_curves
    assert e.compute_at(np.array([1e12]), "int8")[0] == pytest.approx(e.compute)


def test_overhead_is_fitted_per_group_of_columns():
    # two stacks, each needs exactly its own per-op overhead: 1 us and 5 us per op over the
    # roofline, so grouping by framework fits each one (closed form of fit_overhead)
    inf = pd.DataFrame({"predicted_s": [1.0] * 8, "overhead_s": [0.0] * 8,
                        "priced_ops": [1e3] * 8, "framework": ["a"] * 4 + ["b"] * 4,
                        "dtype": ["fp16"] * 8,
                        "time_s": [1.001] * 4 + [1.005] * 4})
    from perfmodel.validate.calibrate import _inference_cv
    pred, groups, _ = _inference_cv(inf, np.arange(8) % 2, ("framework", "dtype"))
    assert groups == pytest.approx({"a | fp16": 1e-6, "b | fp16": 5e-6})
    assert pred == pytest.approx(inf["time_s"].to_numpy())


def _my_net_rows(overhead_per_op: float) -> pd.DataFrame:
    """Inference rows of a user's own graph "my-net" (linear 10 -> 10 + relu) on tiny.

    Roofline by hand at batch b, fp16: linear max(200b / 100, (200 + 40b) / 10) = 20 + 4b s
    (memory-bound); relu 40b B / 10 B/s = 4b s. Base 20 + 8b s; measured = base + 2 ops x
    the per-op overhead."""
    rows = [{"backend": "cpu", "device": "tiny", "repeats": 1, "benchmark": "e2e",
             "family": "inference", "model": "my-net", "batch": b, "dtype": "fp16",
             "phase": "inference", "time_s": 20 + 8 * b + 2 * overhead_per_op}
            for b in (1, 2, 4, 8)]
    return measurement_frame(rows)


def _my_net():
    b = GraphBuilder("my-net", default_batch=1)
    b.relu(b.linear(b.input("x", (10,)), 10, bias=False))
    return b.build()


def test_inference_rows_need_a_model_resolver():
    with pytest.raises(MeasurementError, match="no resolver") as err:
        calibrate(_my_net_rows(0.5), device_from_dict(tiny_device_dict(), "t.yaml"), folds=2)
    assert "models=perfmodel.load_model" in err.value.hint


def test_inference_overhead_fitted_on_a_users_own_graph():
    # Every row needs exactly 0.5 s per op over the roofline (20 + 8b s, see _my_net_rows):
    # the fitted overhead is 0.5 s and every held-out row is predicted exactly.
    cal = calibrate(_my_net_rows(0.5), device_from_dict(tiny_device_dict(), "t.yaml"),
                    folds=2, models={"my-net": _my_net()}.__getitem__)
    assert cal.group_overheads_s == pytest.approx({"all": 0.5})
    assert cal.efficiency.launch_overhead_s == pytest.approx(0.5)  # no launch rows: pooled
    assert cal.cross_validated["predicted_s"].tolist() == pytest.approx([29.0, 37.0, 53.0,
                                                                         85.0])
    assert cal.uncalibrated.set_index("family").loc["inference", "rows"] == 4
    assert cal.rows_used["inference"] == 4
