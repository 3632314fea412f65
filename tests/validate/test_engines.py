"""validate.engines: an engine's host figures are recovered from rows made with them, and
the leave-one-device-out fit predicts the device it did not see."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from perfmodel.hardware.load import load_device
from perfmodel.infer.engine import load_engine
from perfmodel.validate.engines import engine_holdout, fit_engines, fitted_profile, price_row
from perfmodel.zoo.registry import load_model

FRAMEWORK = "PyTorch (pytorch-21.03 NGC container) [Mixed Precision Inference Latency]"


def _rows() -> pd.DataFrame:
    # BERT-base forwards on two devices, made with host 8 us per kernel and 100 us per call
    truth = dataclasses.replace(load_engine("pytorch"), host_per_kernel_s=8e-6,
                                per_call_s=100e-6)
    rows = []
    for hw in ("a100-sxm4-80gb", "v100-sxm2-16gb"):
        for batch in (1, 8, 64):
            rows.append({"family": "inference", "phase": "inference", "model": "bert-base",
                         "hw": hw, "batch": batch, "seq": 128, "out_seq": float("nan"),
                         "num_devices": 1, "framework": FRAMEWORK, "dtype": "fp16"})
    df = pd.DataFrame(rows)
    g = load_model("bert-base")
    df["time_s"] = [price_row(r, g, load_device(r.hw), truth)[0]
                    for r in df.itertuples(index=False)]
    return df


def test_fit_recovers_the_figures_the_rows_were_made_with():
    figures, rows = fit_engines(_rows(), load_model)
    fig = figures.iloc[0]
    assert fig["engine"] == "pytorch" and fig["rows"] == 6
    assert fig["host_per_kernel_us"] == 8.0  # a point of HOST_GRID_US
    assert fig["per_call_us"] == pytest.approx(100.0, rel=1e-6)
    assert rows["error"].abs().max() < 1e-9
    # each device predicted by the fit on the other one: the same figures, no error
    assert rows["holdout_error"].abs().max() < 1e-9
    by = engine_holdout(rows)
    assert set(by["family"]) == {"a100", "v100"} and (by["rows"] == 3).all()


def test_fitted_profile_inherits_the_shipped_one():
    figures, _ = fit_engines(_rows(), load_model)
    prof = fitted_profile(figures.iloc[0].to_dict(), "rows.csv")
    assert prof["inherits"] == "pytorch" and prof["host_per_kernel_us"]["value"] == 8.0
    assert prof["sources"]["FIT"].startswith("fitted: perfmodel calibrate --group engine")
