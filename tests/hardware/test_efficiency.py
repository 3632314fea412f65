"""Size-dependent efficiency curves: log interpolation, spec loading, roofline use."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.analytic.roofline import roofline
from perfmodel.errors import SpecError
from perfmodel.hardware.efficiency import EfficiencyCurve
from perfmodel.hardware.load import device_from_dict
from perfmodel.validate.compare import gemm_workload, one_op_workload
from tests.conftest import tiny_device_dict


def test_log_interpolation_and_clamping():
    c = EfficiencyCurve.from_points([[1e5, 0.6], [1e3, 0.2]])  # sorted on construction
    # 1e4 is half-way between 1e3 and 1e5 in log10: (0.2 + 0.6) / 2
    assert c.at(np.array([1e4, 1e2, 1e7])) == pytest.approx([0.4, 0.2, 0.6])


def curved(**eff):
    return device_from_dict(tiny_device_dict(efficiency={
        **tiny_device_dict()["efficiency"], **eff}), "t.yaml")


def test_compute_curve_prices_tensor_ops():
    # 10x10x10 fp16 GEMM: 2000 FLOP; curve 0.5 at 2000 -> 2000 / (100 x 0.5) = 40 s compute
    dev = curved(compute_curve={"fp16": {"value": [[1000, 0.5], [1e6, 0.5]], "source": "HAND"}})
    ops = roofline(gemm_workload([10], [10], [10], np.array(["fp16"], dtype=object)), dev)
    assert ops["compute_s"][0] == pytest.approx(40.0)


def test_memory_curve_prices_bytes():
    # 100 bytes at 10 B/s: 10 s at efficiency 1; curve gives 0.25 at 100 B -> 40 s
    dev = curved(memory_curve={"value": [[10, 0.1], [1000, 0.4]], "source": "HAND"})
    wl = one_op_workload(np.zeros(1), np.array([100.0]), np.zeros(1), np.zeros(1),
                         "vector", "fp32")
    assert roofline(wl, dev)["memory_s"][0] == pytest.approx(40.0)


def test_vector_ops_keep_the_scalar_compute_factor():
    dev = curved(compute_curve={"fp32": {"value": [[1, 0.5]], "source": "HAND"}})
    wl = one_op_workload(np.array([100.0]), np.zeros(1), np.zeros(1), np.zeros(1), "vector",
                         "fp32")
    assert roofline(wl, dev)["compute_s"][0] == pytest.approx(10.0)  # 100 / (10 x 1.0)


def test_bad_curves_reported_together():
    with pytest.raises(SpecError) as exc:
        curved(compute_curve={"fp16": {"value": [[1, 1.5]], "source": "HAND"},
                              "fp17": {"value": [[1, 0.5]], "source": "HAND"}},
               memory_curve={"value": [[-1, 0.5], [3]], "source": "HAND"})
    msg = str(exc.value)
    assert "compute_curve.fp16.value: efficiencies are fractions" in msg
    assert "compute_curve.fp17: unknown key" in msg
    assert "memory_curve.value: must be a non-empty list" in msg
