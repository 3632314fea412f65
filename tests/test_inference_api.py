"""pm.infer: names in, the inference prediction out, the same numbers the CLI prints.

The calls go through perfmodel.inference_api.infer, the function pm.infer serves; the
library package is perfmodel.inference, so importing it never shadows the public name
(test_pm_infer_survives_an_earlier_import_of_the_inference_package)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import perfmodel as pm
from perfmodel.cli.main import main
from perfmodel.errors import PlanError, ShapeError, UnknownNameError
from perfmodel.inference.engine import load_engine
from perfmodel.inference_api import default_input_len, infer, resolve_split

ARGS = dict(system="dgx-h100", tp=8, engine="vllm", batch=64, input_len=1024, output_len=512)


@pytest.fixture(scope="module")
def pred():
    return infer("llama-3-70b", **ARGS)


def test_frames(pred):
    frames = pred.frames()
    assert set(frames) == {"summary", "memory", "breakdown", "passes"}
    s = frames["summary"]
    assert len(s) == 1 and s.loc[0, "model"] == "llama-3-70b"
    assert s.loc[0, "gpus"] == 8 and s.loc[0, "system"] == "dgx-h100"
    assert set(frames["breakdown"]["component"]) == {"compute", "memory", "communication",
                                                     "host"}
    assert frames["breakdown"]["share"].sum() == pytest.approx(1.0)
    assert len(frames["passes"]) == 512          # one prefill, 511 decode steps


def test_the_cli_prints_the_same_numbers(pred, capsys):
    argv = ["infer", "llama-3-70b", "--system", "dgx-h100", "--tp", "8", "--engine", "vllm",
            "--batch", "64", "--input-len", "1024", "--output-len", "512", "--format", "json"]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    s = pred.summary_frame()
    assert d["summary"]["ttft_s"] == s.loc[0, "ttft_s"]
    assert d["summary"]["tpot_s"] == s.loc[0, "tpot_s"]


def test_records_work_as_well_as_names(pred):
    again = infer(pm.load_model("llama-3-70b"), system=pm.load_system("dgx-h100"),
                     **{k: v for k, v in ARGS.items() if k != "system"})
    assert again.summary["ttft_s"] == pred.summary["ttft_s"]


def test_a_device_alone_runs_on_one_gpu_or_its_shipped_system():
    one = infer("llama-2-7b", "h100", batch=4, input_len=256, output_len=16)
    assert one.summary["gpus"] == 1 and one.summary["system"] is None
    two = infer("llama-2-7b", "h100", batch=4, input_len=256, output_len=16, gpus=2)
    assert (two.summary["tp"], two.summary["system"]) == (2, "dgx-h100")


def test_the_default_prompt_fits_the_trained_context():
    graph = pm.load_model("llama-2-7b")
    assert default_input_len(graph, 128) == 4096 - 128
    p = infer(graph, "h100", output_len=128)
    assert p.summary["input_len"] + p.summary["output_len"] <= 4096


def test_split_follows_the_engine_unless_told():
    vllm, lcpp = load_engine("vllm"), load_engine("llama.cpp")
    assert resolve_split(vllm, 4, None, 1, 1, 1) == (4, 1)
    assert resolve_split(lcpp, 4, None, 1, 1, 1) == (1, 4)
    assert resolve_split(lcpp, 4, "tensor", 1, 1, 1) == (4, 1)
    assert resolve_split(vllm, 4, None, 2, 2, 1) == (2, 2)
    assert resolve_split(vllm, None, None, 2, 1, 1) == (2, 1)
    with pytest.raises(PlanError, match="does not match"):
        resolve_split(vllm, 8, None, 2, 1, 1)
    with pytest.raises(PlanError, match="--split tensor"):
        resolve_split(vllm, 4, "tensor", 1, 4, 1)


def test_bad_calls_raise_perfmodel_errors():
    with pytest.raises(PlanError, match="not both"):
        infer("llama-2-7b", "h100", system="dgx-h100")
    with pytest.raises(PlanError, match="device or a system"):
        infer("llama-2-7b")
    with pytest.raises(UnknownNameError, match="engine"):
        infer("llama-2-7b", "h100", engine="vlm")
    with pytest.raises(ShapeError, match="input_len"):
        infer("llama-2-7b", "h100", input_len=0)
    with pytest.raises(PlanError, match="dense"):
        infer("llama-2-7b", "h100", ep=2)
    with pytest.raises(PlanError, match="context"):
        infer("llama-2-7b", "h100", input_len=4096, output_len=8)


def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.slow
def test_pm_infer_is_the_function_in_a_fresh_process():
    out = _fresh("import perfmodel as pm\n"
                 "p = pm.infer('llama-2-7b', 'h100', batch=2, input_len=64, output_len=4)\n"
                 "print(p.summary['ttft_s'] > 0)")
    assert out.stdout.strip() == "True", out.stderr[-2000:]


@pytest.mark.slow
def test_pm_infer_survives_an_earlier_import_of_the_inference_package():
    # the package is perfmodel.inference, not perfmodel.infer: importing it first cannot
    # shadow the public function
    out = _fresh("import perfmodel.inference.engine\nimport perfmodel as pm\n"
                 "print(callable(pm.infer))")
    assert out.stdout.strip() == "True", out.stderr[-2000:]
