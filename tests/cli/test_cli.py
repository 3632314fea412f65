"""The perfmodel command: each --format, and bad input gives exit 2 with no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from perfmodel.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_roofline_table(capsys):
    code, out, err = run(capsys, "roofline", "resnet50", "--hw", "a100")
    assert code == 0, err
    assert "resnet50 on NVIDIA A100 SXM4 80GB" in out
    assert "params 25.6 M" in out and "MACs 4.09 G" in out
    assert "utilization" in out and "Assumptions:" in out


def test_roofline_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "roofline", "resnet50", "--hw", "a100", "--format", "json")
    assert code == 0
    d = json.loads(out)
    for key in ("params", "macs", "flops", "bytes", "latency_s", "throughput_per_s",
                "utilization", "bound"):
        assert key in d["summary"]
    assert d["summary"]["params"] == 25_557_032  # torchvision ResNet50_Weights.IMAGENET1K_V1
    assert d["assumptions"]["compute_efficiency_source"]
    assert len(d["ops"]) == d["summary"]["num_ops"] + 1  # + the flatten view
    s = d["summary"]
    assert s["latency_s"] == pytest.approx(s["flops"] / (s["peak_flops_per_s"] *
                                                         s["utilization"]))


def test_roofline_csv(capsys):
    code, out, _ = run(capsys, "roofline", "resnet18", "--hw", "h100", "--format", "csv")
    assert code == 0
    header = out.splitlines()[0].split(",")
    assert {"name", "kind", "time_s", "bound", "macs"} <= set(header)


def test_llm_decode(capsys):
    code, out, err = run(capsys, "roofline", "llama-2-7b", "--hw", "h100", "--phase", "decode",
                         "--batch", "8", "--seq", "4096", "--dtype", "fp16", "--format",
                         "json")
    assert code == 0, err
    s = json.loads(out)["summary"]
    assert s["throughput_unit"] == "tokens/s" and s["bound"] == "memory"


@pytest.mark.parametrize("argv, needle", [
    (["roofline", "resnet5", "--hw", "a100"], "unknown model 'resnet5'"),
    (["roofline", "resnet50", "--hw", "a1000"], "unknown device 'a1000'"),
    (["roofline", "resnet50", "--hw", "a100", "--batch", "0"], "batch must be a positive"),
    (["roofline", "resnet50", "--hw", "a100", "--batch", "-3"], "batch must be a positive"),
    (["roofline", "resnet50", "--hw", "a100", "--dtype", "fp8"], "does not support dtype"),
    (["roofline", "resnet50", "--hw", "a100", "--dtype", "fp12"], "unknown dtype"),
    (["roofline", "resnet50", "--hw", "missing.yaml"], "file not found"),
    (["roofline", "resnet50"], "--hw"),
    (["hw", "show", "nope"], "unknown device"),
    (["nosuchcommand"], "invalid choice"),
])
def test_bad_input_exit_2_one_line(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_malformed_spec_file(tmp_path, capsys):
    bad = tmp_path / "npu.yaml"
    bad.write_text("name: npu\ncompute: {tensor_TFLOPS: {fp16: {value: 1}}}\nmemory: []\n")
    code, _, err = run(capsys, "roofline", "resnet18", "--hw", str(bad))
    assert code == 2 and "source: missing" in err and "memory" in err


def test_user_model_and_user_device(tmp_path, capsys):
    import yaml

    from tests.conftest import tiny_device_dict
    (tmp_path / "npu.yaml").write_text(yaml.safe_dump(tiny_device_dict()))
    (tmp_path / "net.yaml").write_text(yaml.safe_dump({
        "name": "net", "input": [3, 8, 8],
        "layers": [{"conv2d": {"out_channels": 4, "kernel": 3, "padding": 1}},
                   {"relu": {}}, {"flatten": {}}, {"linear": {"out_features": 2}}]}))
    code, out, err = run(capsys, "roofline", str(tmp_path / "net.yaml"), "--hw",
                         str(tmp_path / "npu.yaml"), "--format", "json")
    # the tiny device holds 1 kB: the run does not fit, so exit 3 with the prediction printed
    assert code == 3 and "does not fit in memory" in err
    assert json.loads(out)["capacity"]["fits"] is False
    assert json.loads(out)["warnings"][0].startswith("DOES NOT FIT")
    s = json.loads(out)["summary"]
    # conv: 4 * (3*3*3) + 4 = 112 params; linear: 256 * 2 + 2 = 514.
    assert s["params"] == 112 + 514
    # MACs: conv 4*8*8*27 = 6912; linear 256*2 = 512.
    assert s["macs"] == 6912 + 512


def test_bad_user_model_file(tmp_path, capsys):
    f = tmp_path / "net.yaml"
    f.write_text("name: n\ninput: [3, 8, 8]\nlayers:\n  - conv2: {out_channels: 4}\n")
    code, _, err = run(capsys, "roofline", str(f), "--hw", "a100")
    assert code == 2 and "unknown layer 'conv2'" in err and "conv2d" in err


def test_plot_written_and_not_overwritten(tmp_path, capsys):
    png = tmp_path / "roofline.png"
    code, _, err = run(capsys, "roofline", "resnet18", "--hw", "a100", "--plot", str(png))
    assert code == 0, err
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, "roofline", "resnet18", "--hw", "a100", "--plot", str(png))
    assert code == 2 and "already exists" in err and "--force" in err


def test_models_lists_zoo_with_params(capsys):
    code, out, _ = run(capsys, "models", "--format", "json")
    assert code == 0
    rows = {r["model"]: r for r in json.loads(out)}
    assert rows["resnet50"]["params"] == 25_557_032
    assert rows["llama-2-7b"]["params"] == 6_738_415_616  # HF model card, safetensors total
    assert len(rows) >= 40


def test_hw_list_and_show(capsys):
    code, out, _ = run(capsys, "hw", "--format", "csv")
    assert code == 0 and "a100-sxm4-80gb" in out
    code, out, _ = run(capsys, "hw", "show", "a100")
    assert code == 0
    assert "compute.tensor_TFLOPS.fp16" in out and "312" in out and "NVIDIA" in out
    code, out, _ = run(capsys, "hw", "show", "a100", "--format", "json")
    figs = {f["figure"]: f for f in json.loads(out)["figures"]}
    assert figs["memory[0].bandwidth_GBps"]["value"] == 2039
    assert all(f["source"] for f in figs.values())


@pytest.mark.slow
def test_module_entry_point_runs_as_a_process():
    r = subprocess.run([sys.executable, "-m", "perfmodel", "roofline", "resnet50", "--hw",
                        "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
