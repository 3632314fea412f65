"""The shipped engine profiles carry the host figures of measurements/reference/engine_fit.csv
(written by perfmodel calibrate --reference all --group engine), each marked fitted."""

from __future__ import annotations

import pandas as pd
import pytest

from perfmodel.files import data_dir
from perfmodel.inference.engine import load_engine

FIT = pd.read_csv(data_dir("measurements") / "reference" / "engine_fit.csv")


@pytest.mark.parametrize("row", FIT.to_dict(orient="records"), ids=list(FIT["engine"]))
def test_profile_holds_its_fitted_figures(row):
    eng = load_engine(row["engine"])
    assert eng.host_per_kernel_s * 1e6 == pytest.approx(row["host_per_kernel_us"])
    assert "host_per_kernel_us" in eng.fitted()
    step = row["per_step_us"] if pd.notna(row["per_step_us"]) else row["per_call_us"]
    got = eng.per_step_s if pd.notna(row["per_step_us"]) else eng.per_call_s
    assert got * 1e6 == pytest.approx(step, abs=0.06)
    if eng.decode_graphs:
        assert eng.graph_per_kernel_s * 1e6 == pytest.approx(row["graph_per_kernel_us"])
    assert f"{row['rows']} shipped reference rows" in eng.provenance["host_per_kernel_us"]
