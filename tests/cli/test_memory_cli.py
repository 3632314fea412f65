"""perfmodel memory / memory-wall: formats, verdicts, plots and errors."""

from __future__ import annotations

import json

import pytest

from perfmodel.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_memory_llama70b_decode_json(capsys):
    code, out, err = run(capsys, "memory", "llama-2-70b", "--hw", "h100", "--phase", "decode",
                         "--batch", "32", "--seq", "4096", "--dtype", "fp16", "--kv-dtype",
                         "fp8", "--format", "json")
    assert code == 3, err   # 70B at batch 32 does not fit one H100: printed, exit 3
    d = json.loads(out)
    # KV cache: 2 x 80 layers x 8 KV heads x 128 x 4096 x 32 x 1 B (fp8) = 21,474,836,480.
    assert d["components"]["kv_cache"] == 2 * 80 * 8 * 128 * 4096 * 32
    assert d["components"]["weights"] == 2 * 68_976_648_192
    assert d["verdict"]["fits"] is False
    assert d["limits"]["decode_floor_s"] > 0


def test_memory_gpt3_training_plan_table(capsys):
    code, out, err = run(capsys, "memory", "gpt3-175b", "--hw", "a100", "--phase", "train",
                         "--batch", "1536", "--micro-batch", "1", "--seq", "2048",
                         "--optimizer", "adam", "--precision", "mixed", "--zero", "1",
                         "--dp", "64", "--tp", "8", "--pp", "16", "--recompute", "selective")
    assert code == 0, err
    assert "FITS" in out and "activations" in out and "What to change" in out


def test_memory_resnet_on_orin_csv(capsys):
    code, out, _ = run(capsys, "memory", "resnet50", "--hw", "jetson-orin", "--batch", "64",
                       "--phase", "train", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "component,bytes,fits"   # the verdict rides along
    assert out.splitlines()[-1].startswith("capacity,")


def _train_json(capsys, *argv):
    code, out, err = run(capsys, "memory", "gpt2", "--hw", "a100", "--phase", "train",
                         "--seq", "1024", "--dtype", "fp16", "--format", "json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_memory_attention_flag(capsys):
    # GPT-2 (12 layers, h 768, a 12, vocabulary 50,257), batch 1, seq 1024, fp16, no
    # recompute: flash keeps 34 sbh = 34 x 1024 x 768 = 26,738,688 B per layer, x 12 =
    # 320,864,256, plus fp32 logits 4 x 1024 x 50,257 = 205,852,672: 526,716,928 B.
    # Unfused kernels add 5as/h x sbh = 5 x 12 x 1024^2 = 62,914,560 B per layer.
    flash = _train_json(capsys, "--batch", "1", "--attention", "flash")
    unfused = _train_json(capsys, "--batch", "1", "--attention", "unfused")
    assert flash["components"]["activations"] == 12 * 34 * 1024 * 768 + 4 * 1024 * 50257
    assert unfused["components"]["activations"] - flash["components"]["activations"] == \
        12 * 5 * 12 * 1024 * 1024
    assert "flash attention keeps no s x s scores" in flash["assumptions"]["activations"]
    assert "5as/h score tensors" in unfused["assumptions"]["activations"]


def test_memory_virtual_flag(capsys):
    # pp 2, m = 8 micro-batches of 1: 1F1B holds min(p, m) = 2 in flight, interleaved with
    # v = 2 holds 2 x (1 + 1/(2 x 2)) = 2.5 (Korthikanti et al. 2023 sec. 4.2.3); 6 layers
    # per stage x 26,738,688 B (flash, see above), no logits off the last stage
    argv = ("--batch", "8", "--micro-batch", "1", "--pp", "2")
    one_f = _train_json(capsys, *argv)
    inter = _train_json(capsys, *argv, "--schedule", "interleaved", "--virtual", "2")
    assert one_f["components"]["activations"] == 6 * 2 * 34 * 1024 * 768
    assert inter["components"]["activations"] == 6 * 2.5 * 34 * 1024 * 768
    assert inter["assumptions"]["plan"]["virtual_stages"] == 2


@pytest.mark.parametrize("argv, needle", [
    (["--tp", "3"], "does not divide"),
    (["--pp", "100"], "exceed llama-2-7b's 32 layers"),
    (["--batch", "0"], "batch must be a positive"),
    (["--zero", "5"], "ZeRO stage"),
    (["--overhead-gb", "-1"], "must be >= 0"),
    (["--virtual", "2"], "interleaved schedule only"),
    (["--attention", "xformers"], "invalid choice"),
])
def test_memory_bad_plans_exit_2(capsys, argv, needle):
    code, _, err = run(capsys, "memory", "llama-2-7b", "--hw", "h100", *argv)
    assert code == 2 and needle in err and "Traceback" not in err


def test_memory_plot_and_memory_wall(tmp_path, capsys):
    png = tmp_path / "bar.png"
    code, _, err = run(capsys, "memory", "llama-2-7b", "--hw", "a100", "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"
    wall = tmp_path / "wall.png"
    code, out, err = run(capsys, "memory-wall", "--plot", str(wall))
    assert code == 0, err
    assert wall.read_bytes()[:4] == b"\x89PNG" and "growth per year" in out
    code, out, _ = run(capsys, "memory-wall", "--format", "json")
    d = json.loads(out)
    a100 = next(r for r in d["devices"] if r["device"] == "a100-sxm4-80gb")
    assert a100["flop_per_byte"] == pytest.approx(312e12 / 2039e9)
