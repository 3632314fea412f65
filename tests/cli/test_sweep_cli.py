"""perfmodel sweep on the command line: a table or a file out, and each bad input one line,
exit 2, no traceback."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from perfmodel.cli.main import main


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_axes_on_the_command_line(capsys):
    rc, out, err = _run(capsys, "sweep", "--model", "resnet18,gpt2", "--hw", "a100,t4",
                        "--batch", "1,8", "--seq", "128", "--phase", "inference,decode",
                        "--override", "memory.bandwidth_GBps=500,2000")
    assert rc == 0, err
    # resnet18: 1 phase x 2 x 2 x 2 = 8 points, gpt2: 2 phases x 2 x 2 x 2 = 16
    assert out.startswith("24 points: 24 priced, 0 with an error")
    assert "note: left out of the grid" in out and "resnet18 decode" in out
    assert "memory.bandwidth_GBps" in out


def test_study_file_to_csv_and_json(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("models: [resnet18]\nhw: [a100, h100]\nbatch: [1, 8]\n")
    out = tmp_path / "r.csv"
    rc, text, err = _run(capsys, "sweep", str(study), "--out", str(out))
    assert rc == 0, err and f"wrote {out}" in text
    assert len(pd.read_csv(out)) == 4
    rc, _, err = _run(capsys, "sweep", str(study), "--out", str(out))
    assert rc == 2 and "exists" in err  # nothing overwritten without --force
    rc, text, _ = _run(capsys, "sweep", str(study), "--format", "json")
    rows = json.loads(text)
    assert len(rows) == 4 and {"latency_s", "fits", "latency_lo"} <= set(rows[0])


@pytest.mark.parametrize("argv,match", [
    (["--model", "resnet18", "--hw", "a100", "--batch", "0"], "positive whole number"),
    (["--model", "resnet18", "--hw", "a100", "--batch", "one"], "list of numbers"),
    (["--model", "resnet18", "--hw", "a100", "--override", "memory.bandwith_GBps=1"],
     "did you mean 'memory.bandwidth_GBps'"),
    (["--model", "resnet18", "--hw", "a100", "--override", "bandwidth"], "PATH=V1,V2"),
    (["--model", "resnet18", "--hw", "a100", "--batch", ","], "axis 'batch' is empty"),
    (["--model", "resnet18", "--hw", "a100", "--batch", ",".join(map(str, range(1, 1001))),
      "--override", "memory.bandwidth_GBps=" + ",".join(map(str, range(100, 1101)))],
     "1,001,000 points"),
    (["--model", "resnet18"], "needs a study file, or --model and --hw"),
    (["--model", "resnet18", "--hw", "nosuchchip"], "nosuchchip"),
])
def test_bad_input_is_one_line(capsys, argv, match):
    rc, _, err = _run(capsys, "sweep", *argv)
    assert rc == 2
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_study_files(tmp_path, capsys):
    cases = {"empty_axis.yaml": ("models: [resnet18]\nhw: []\n", "axis 'hw' is empty"),
             "typo.yaml": ("models: [resnet18]\nhw: [a100]\nbatchez: [1]\n", "batch"),
             "broken.yaml": ("models: [resnet18\nhw: a100\n", "YAML"),
             "list.yaml": ("- resnet18\n", "mapping of axes")}
    for name, (text, match) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        rc, _, err = _run(capsys, "sweep", str(f))
        assert rc == 2 and match in err and "Traceback" not in err, (name, err)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    rc, _, err = _run(capsys, "sweep", str(binary))
    assert rc == 2 and "Traceback" not in err
    rc, _, err = _run(capsys, "sweep", str(tmp_path / "missing.yaml"))
    assert rc == 2 and "missing.yaml" in err


def test_plans_on_the_command_line(capsys):
    rc, out, err = _run(capsys, "sweep", "--model", "llama-2-7b", "--system", "dgx-h100",
                        "--plan", "tp=2,pp=1,dp=4", "--plan", "tp=3,pp=1,dp=2",
                        "--batch", "64", "--seq", "2048")
    assert rc == 0, err
    assert out.startswith("2 points: 1 priced, 1 with an error")
    assert "does not divide" in out and "mfu" in out
    rc, _, err = _run(capsys, "sweep", "--model", "gpt2", "--system", "dgx-a100", "--plan",
                      "tq=2")
    assert rc == 2 and "unknown plan key 'tq'" in err and "Traceback" not in err
