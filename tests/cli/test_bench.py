"""perfmodel bench / validate / calibrate: the CPU loop end to end, formats, bad input."""

from __future__ import annotations

import json

import pytest

from perfmodel.cli.main import main
from perfmodel.hardware.load import load_device


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def host_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("host")
    csv, spec = d / "host.csv", d / "host.yaml"
    code = main(["bench", "--backend", "cpu", "--suite", "launch,gemm,membw", "--quick",
                 "--repeats", "3", "--out", str(csv), "--spec-out", str(spec)])
    assert code == 0
    return d, csv, spec


def test_bench_cpu_writes_measurements_and_spec(host_files):
    _, csv, spec = host_files
    assert csv.read_text().startswith("benchmark,family,backend")
    assert load_device(spec).category == "cpu"


def test_bench_refuses_to_overwrite(host_files, capsys):
    _, csv, _ = host_files
    code, _, err = run(capsys, "bench", "--backend", "cpu", "--suite", "launch", "--out",
                       str(csv))
    assert code == 2 and "already exists" in err


def test_bench_json(tmp_path, capsys):
    code, out, _ = run(capsys, "bench", "--backend", "cpu", "--suite", "launch", "--repeats",
                       "2", "--out", str(tmp_path / "l.csv"), "--format", "json")
    assert code == 0
    assert {r["family"] for r in json.loads(out)["rows"]} == {"launch"}


def test_calibrate_then_validate(host_files, capsys):
    d, csv, spec = host_files
    cal = d / "cal.yaml"
    code, out, err = run(capsys, "calibrate", str(csv), "--hw", str(spec), "-o", str(cal),
                         "--folds", "3")
    assert code == 0, err
    assert "cv_mape" in out and "wrote" in out
    assert load_device(cal).efficiency.compute_curves
    code, out, err = run(capsys, "validate", str(csv), "--hw", str(cal), "--format", "json")
    assert code == 0, err
    families = {r["family"] for r in json.loads(out)["summary"]}
    assert {"gemm", "membw", "launch", "all"} <= families


def test_validate_csv_and_plot(host_files, capsys):
    d, csv, spec = host_files
    code, out, _ = run(capsys, "validate", str(csv), "--hw", str(spec), "--format", "csv",
                       "--plot", str(d / "v.png"), "--force")
    assert code == 0 and out.splitlines()[0].startswith("benchmark,")
    assert (d / "v.png").stat().st_size > 1000


def test_validate_reference_a100_gemm(capsys):
    code, out, err = run(capsys, "validate", "--reference", "a100", "--family", "gemm,membw")
    assert code == 0, err
    assert "gemm" in out and "membw" in out and "MAPE" not in err


@pytest.mark.parametrize("argv, needle", [
    (["validate"], "give one measurement file or --reference"),
    (["validate", "missing.csv", "--hw", "a100"], "measurement file not found"),
    (["validate", "--reference", "a100", "--by", "colour"], "cannot group by"),
    (["calibrate", "--reference", "a100", "--folds", "1"], "--folds must be at least 2"),
    (["bench", "--backend", "cpu"], "bench needs --out"),
    (["bench", "--backend", "cpu", "--suite", "gemmm", "--out", "x.csv"], "unknown CPU suite"),
])
def test_bad_input_exit_2(capsys, argv, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_validate_rows_without_device(host_files, capsys):
    _, csv, _ = host_files
    code, _, err = run(capsys, "validate", str(csv))
    assert code == 2 and "pass --hw" in err


def test_spec_out_needs_gemm_and_membw(tmp_path, capsys):
    code, _, err = run(capsys, "bench", "--backend", "cpu", "--suite", "launch", "--out",
                       str(tmp_path / "l.csv"), "--spec-out", str(tmp_path / "h.yaml"))
    assert code == 2 and "the gemm and membw suites" in err


def test_validate_prices_inference_rows_by_model_name(tmp_path, capsys):
    # The CLI resolves the model names of inference rows with perfmodel.load_model (the
    # library takes a resolver): a ResNet-50 row is priced as predict(build_workload(...)).
    from perfmodel.analytic.roofline import predict
    from perfmodel.bench.measurement import measurement_frame, write_measurements
    from perfmodel.workload.build import build_workload
    from perfmodel.zoo.registry import load_model

    csv = tmp_path / "e2e.csv"
    write_measurements(measurement_frame([{
        "benchmark": "e2e", "family": "inference", "backend": "torch", "device": "a100",
        "model": "resnet50", "batch": 8, "dtype": "fp16", "phase": "inference",
        "repeats": 1, "time_s": 2e-3}]), csv)
    code, out, err = run(capsys, "validate", str(csv), "--hw", "a100", "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    want = predict(build_workload(load_model("resnet50"), batch=8, dtype="fp16"),
                   load_device("a100")).summary["latency_s"]
    assert row["predicted_s"] == pytest.approx(want)


def test_validate_groups_by_engine_and_forces_a_fusion(tmp_path, capsys):
    # a vLLM generation row is priced through the vllm profile (perfmodel infer); --fusion
    # none prices it as forward passes without host costs, so the two differ
    from perfmodel.bench.measurement import measurement_frame, write_measurements
    from perfmodel.inference.run import infer
    from perfmodel.zoo.registry import load_model

    csv = tmp_path / "llm.csv"
    write_measurements(measurement_frame([{
        "benchmark": "e2e", "family": "inference", "backend": "reference", "device": "a100",
        "model": "llama-2-7b", "batch": 4, "seq": 128, "out_seq": 16, "dtype": "fp16",
        "phase": "generate", "framework": "vLLM", "num_devices": 1, "time_s": 0.5}]), csv)
    code, out, err = run(capsys, "validate", str(csv), "--hw", "a100", "--by", "engine",
                         "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert [s["engine"] for s in d["summary"]] == ["vllm", "all"]
    want = infer(load_model("llama-2-7b"), load_device("a100"), engine="vllm", batch=4,
                 input_len=128, output_len=16, dtype="fp16").summary["total_s"]
    assert d["rows"][0]["predicted_s"] == pytest.approx(want)
    code, out, _ = run(capsys, "validate", str(csv), "--hw", "a100", "--fusion", "none",
                       "--format", "json")
    assert code == 0 and json.loads(out)["rows"][0]["predicted_s"] < want
