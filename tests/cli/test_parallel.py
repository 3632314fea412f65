"""perfmodel parallel and perfmodel pipeline: every format, --sim, --search, --plot, and
bad input as one line on stderr with exit code 2."""

from __future__ import annotations

import json

import pytest

from perfmodel.cli.main import main

GPT3 = ["parallel", "gpt3-175b", "--system", "dgx-a100", "--hw", "a100-sxm4-80gb", "--gpus",
        "1024", "--tp", "8", "--pp", "16", "--dp", "8", "--micro-batch", "1",
        "--global-batch", "512", "--schedule", "interleaved", "--virtual", "2", "--zero", "1",
        "--recompute", "selective", "--sequence-parallel"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_parallel_table(capsys):
    code, out, err = run(capsys, *GPT3)
    assert code == 0, err
    for word in ("step", "tokens/s", "MFU", "HFU", "bubble", "memory per device", "tp_comm",
                 "pp_p2p", "dp_comm", "assumptions"):
        assert word in out


def test_attention_kernels_flag(capsys):
    # unfused attention (Megatron-LM 2022) adds memory-bound passes over the s^2 scores and
    # a dropout kernel, so the same plan's step is longer; the kernels are the model's
    # (built unfused), the dropout kernel the plan's, and the assumptions say both
    _, out, _ = run(capsys, *GPT3, "--format", "json")
    flash = json.loads(out)
    code, out, _ = run(capsys, *GPT3, "--attention", "unfused", "--attention-dropout",
                       "--format", "json")
    unfused = json.loads(out)
    assert code == 0 and unfused["assumptions"]["attention"] == \
        "unfused + attention dropout kernel"
    assert flash["assumptions"]["attention"] == "flash"
    assert unfused["plan"]["attention_dropout"] is True
    assert unfused["step_s"] > flash["step_s"]
    # the job is its own record beside the plan
    assert unfused["job"] == {"phase": "train", "batch": 512, "seq": 2048, "dtype": "bf16",
                              "weight_dtype": None, "kv_dtype": None, "optimizer": "adam",
                              "precision": "mixed"}


def test_parallel_json_csv_and_sim(capsys):
    code, out, _ = run(capsys, *GPT3, "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["plan"]["tensor_parallel"] == 8 and d["method"] == "analytic"
    assert d["bubble_fraction"] == pytest.approx(15 / (2 * 64))
    code, out, _ = run(capsys, *GPT3, "--sim", "--format", "json")
    s = json.loads(out)
    assert code == 0 and s["method"] == "sim" and s["simulation"]["events"] > 0
    assert s["step_s"] == pytest.approx(d["step_s"], rel=0.03)
    code, out, _ = run(capsys, *GPT3, "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("model,")


def test_parallel_search(capsys):
    code, out, err = run(capsys, "parallel", "llama-2-70b", "--system", "dgx-h100", "--gpus",
                         "64", "--search", "--global-batch", "512", "--seq", "4096",
                         "--format", "json", "--top", "3")
    assert code == 0, err
    d = json.loads(out)
    assert len(d["plans"]) == 3 and all(p["fits"] for p in d["plans"])
    code, out, _ = run(capsys, "parallel", "llama-2-70b", "--system", "dgx-h100", "--gpus",
                       "64", "--search", "--global-batch", "512")
    assert code == 0 and "best plans" in out


def test_plot_refuses_to_overwrite(capsys, tmp_path):
    path = tmp_path / "g.png"
    code, _, err = run(capsys, "pipeline", "--stages", "4", "--micro-batches", "8",
                       "--schedule", "interleaved", "--virtual", "2", "--plot", str(path))
    assert code == 0, err and path.stat().st_size > 0
    code, _, err = run(capsys, "pipeline", "--stages", "4", "--micro-batches", "8",
                       "--plot", str(path))
    assert code == 2 and "--force" in err
    code, _, err = run(capsys, *GPT3, "--plot", str(tmp_path / "p.png"))
    assert code == 0, err


def test_pipeline_formats(capsys):
    code, out, _ = run(capsys, "pipeline", "--stages", "2", "--micro-batches", "3",
                       "--schedule", "gpipe", "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["step_s"] == 12.0 and d["closed_form_step_s"] == 12.0
    assert d["timeline"][0] == {"device": "d0", "start": 0.0, "end": 1.0, "label": "F0"}
    code, out, _ = run(capsys, "pipeline", "--stages", "4", "--micro-batches", "8",
                       "--virtual", "2", "--schedule", "interleaved", "--layers", "16")
    assert code == 0 and "layers device 0: 0, 1, 8, 9" in out  # Megatron's assignment
    code, out, _ = run(capsys, "pipeline", "--stages", "2", "--micro-batches", "3",
                       "--format", "csv", "--timeline")
    assert code == 0 and out.splitlines()[0] == "device,start,end,label"


@pytest.mark.parametrize("argv", [
    ["parallel", "gpt3-175b", "--system", "dgx-a100", "--gpus", "64", "--tp", "8", "--pp",
     "4", "--dp", "1"],                                     # 8 x 4 x 1 != 64
    ["parallel", "gpt3-175b", "--system", "dgx-a100", "--gpus", "8", "--tp", "7", "--dp",
     "1", "--pp", "1"],                                     # 7 does not divide 8 GPUs / heads
    ["parallel", "gpt3-175b", "--system", "nosuch", "--gpus", "8"],
    ["parallel", "resnet50", "--system", "dgx-a100", "--gpus", "8"],
    ["parallel", "gpt3-175b", "--system", "dgx-a100", "--gpus", "8", "--recompute", "x"],
    ["pipeline", "--stages", "0", "--micro-batches", "8"],
    ["pipeline", "--stages", "4", "--micro-batches", "6", "--schedule", "interleaved",
     "--virtual", "2"],
    ["pipeline", "--stages", "2", "--micro-batches", "2", "--t-forward", "a,b"],
])
def test_bad_input_exit_2(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "error:" in err and len(err.strip().splitlines()) == 1
