"""The Measurement schema: one CSV format, checked with every problem reported at once."""

from __future__ import annotations

import pandas as pd
import pytest

from perfmodel.bench.measurement import (
    COLUMNS,
    add_derived,
    check_measurements,
    measurement_frame,
    read_measurements,
    write_measurements,
)
from perfmodel.errors import MeasurementError


def row(**over):
    r = {"benchmark": "gemm_numpy", "family": "gemm", "backend": "cpu", "device": "cpu",
         "dtype": "fp32", "m": 10, "n": 10, "k": 10, "time_s": 1e-3}
    r.update(over)
    return r


def test_frame_has_every_column_in_schema_order():
    df = measurement_frame([row()])
    assert list(df.columns) == list(COLUMNS)
    assert df["hw"][0] == "" and pd.isna(df["bytes"][0])


def test_unknown_column_is_named_with_a_suggestion():
    with pytest.raises(MeasurementError, match="time_sec.*did you mean 'time_s'"):
        measurement_frame([{**row(), "time_sec": 1.0}])


def test_all_problems_reported_at_once():
    bad = pd.DataFrame([row(time_s=None), row(family="gemmm"), row(m=None), row(time_s=-1)])
    with pytest.raises(MeasurementError) as exc:
        check_measurements(bad)
    msg = str(exc.value)
    assert "row 0: time_s is missing" in msg
    assert "row 1: family 'gemmm' unknown" in msg and "did you mean 'gemm'" in msg
    assert "row 2: a gemm row needs m" in msg
    assert "row 3: time_s must be positive" in msg


def test_non_numeric_text_is_a_problem():
    with pytest.raises(MeasurementError, match="time_s='fast' is not a number"):
        check_measurements(pd.DataFrame([row(time_s="fast")]))


def test_derived_rates():
    # 2 TFLOP in 1 s = 2 TFLOP/s; 5 GB in 1 s = 5 GB/s
    df = add_derived(measurement_frame([row(flops=2e12, bytes=5e9, time_s=1.0)]))
    assert df["achieved_TFLOPS"][0] == pytest.approx(2.0)
    assert df["achieved_GBps"][0] == pytest.approx(5.0)


def test_write_read_round_trip_and_no_overwrite(tmp_path):
    p = tmp_path / "m.csv"
    df = measurement_frame([row(flops=2000.0), row(m=20, n=20, k=20, time_s=2e-3)])
    write_measurements(df, p)
    back = read_measurements(p)
    pd.testing.assert_frame_equal(back, df)
    with pytest.raises(MeasurementError, match="already exists"):
        write_measurements(df, p)


def test_missing_file():
    with pytest.raises(MeasurementError, match="not found"):
        read_measurements("nope.csv")
