"""validate.engines: an engine's host figures are recovered from rows made with them, and
the leave-one-device-out fit predicts the device it did not see."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from perfmodel.hardware.load import load_device
from perfmodel.inference.engine import load_engine
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


def test_fit_of_a_graph_engine_recovers_eager_graph_and_step_figures():
    # vLLM-style: eager prefill (host 15 us a kernel), decode in CUDA graphs (2 us a node),
    # 400 us a step; rows at several batches and lengths on one device
    truth = dataclasses.replace(load_engine("vllm"), host_per_kernel_s=15e-6,
                                graph_per_kernel_s=2e-6, per_step_s=400e-6)
    g = load_model("llama-2-7b")
    a100 = load_device("a100-sxm4-40gb")
    rows = pd.DataFrame([{"family": "inference", "phase": "generate", "model": "llama-2-7b",
                          "hw": "a100-sxm4-40gb", "batch": b, "seq": s, "out_seq": o,
                          "num_devices": 1, "framework": "vLLM", "dtype": "fp16"}
                         for b, s, o in ((1, 16, 8), (1, 256, 32), (8, 64, 16), (32, 512, 4))])
    rows["time_s"] = [price_row(r, g, a100, truth)[0] for r in rows.itertuples(index=False)]
    figures, priced = fit_engines(rows, load_model)
    fig = figures.iloc[0]
    assert (fig["host_per_kernel_us"], fig["graph_per_kernel_us"]) == (15.0, 2.0)
    assert fig["per_step_us"] == pytest.approx(400.0, rel=1e-6)
    assert priced["error"].abs().max() < 1e-9


def test_calibrate_group_engine_writes_fitted_profiles(tmp_path, capsys):
    # the command line: fit on a user's rows, write NAME-fitted.yaml that loads and holds
    # the figures the rows were made with; an existing file is kept without --force
    from perfmodel.bench.measurement import measurement_frame, write_measurements
    from perfmodel.cli.main import main
    rows = _rows().assign(benchmark="e2e", backend="reference", device="x")
    csv = tmp_path / "rows.csv"
    write_measurements(measurement_frame(rows.to_dict(orient="records")), csv)
    out = tmp_path / "engines"
    code = main(["calibrate", str(csv), "--group", "engine", "--engines-dir", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    prof = load_engine(str(out / "pytorch-fitted.yaml"))
    assert prof.host_per_kernel_s == pytest.approx(8e-6)
    assert prof.per_call_s == pytest.approx(100e-6, rel=1e-3)
    assert prof.fusion == load_engine("pytorch").fusion  # the rest inherited
    code = main(["calibrate", str(csv), "--group", "engine", "--engines-dir", str(out)])
    _, err = capsys.readouterr()
    assert code == 2 and "exists" in err
