"""One rule for every file a command writes: never over an existing file without --force
(checked on the final path, after .png is appended), unknown extensions refused with the
supported ones listed, a folder refused, the path written printed (on stderr)."""

from __future__ import annotations

import pytest

from perfmodel.cli.main import main

PLOTTING = [  # a quick command of each kind that draws a figure
    ("roofline", "resnet18", "--hw", "a100"),
    ("memory", "gpt2", "--hw", "a100"),
    ("memory-wall",),
    ("pipeline", "--stages", "2", "--micro-batches", "4"),
    ("validate", "--reference", "v100", "--family", "membw"),
]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("cmd", PLOTTING, ids=lambda c: c[0])
def test_a_name_without_extension_gets_png_and_is_never_overwritten(capsys, tmp_path, cmd):
    (tmp_path / "chart.png").write_text("mine")
    code, _, err = run(capsys, *cmd, "--plot", str(tmp_path / "chart"))
    assert code == 2 and "chart.png already exists" in err and "--force" in err
    assert (tmp_path / "chart.png").read_text() == "mine"
    code, _, err = run(capsys, *cmd, "--plot", str(tmp_path / "chart"), "--force")
    assert code == 0, err
    assert f"wrote {tmp_path / 'chart.png'}" in err
    assert (tmp_path / "chart.png").stat().st_size > 1000


@pytest.mark.parametrize("cmd", PLOTTING, ids=lambda c: c[0])
def test_bad_figure_paths_are_one_line_errors(capsys, tmp_path, cmd):
    code, _, err = run(capsys, *cmd, "--plot", str(tmp_path / "out.xyz"))
    assert code == 2 and ".png or .svg or .pdf" in err and "Traceback" not in err
    code, _, err = run(capsys, *cmd, "--plot", str(tmp_path), "--force")
    assert code == 2 and "is a folder" in err
    assert not (tmp_path.parent / f"{tmp_path.name}.png").exists()
    code, _, err = run(capsys, *cmd, "--plot", str(tmp_path / "no" / "such" / "x.png"))
    assert code == 2 and "does not exist" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("cmd", [
    ("roofline", "llama-2-70b", "--hw", "a100"),                 # 138 GB of fp16 weights
    ("memory", "llama-2-70b", "--hw", "a100"),
    ("parallel", "gpt3-175b", "--system", "dgx-a100", "--gpus", "8", "--tp", "8"),
], ids=lambda c: c[0])
def test_a_run_that_cannot_fit_exits_3_unless_allowed(capsys, cmd):
    code, out, err = run(capsys, *cmd)
    assert code == 3 and "does not fit in memory" in err and out   # printed, marked
    code, _, err = run(capsys, *cmd, "--allow-oom")
    assert code == 0 and "--allow-oom: exit 0" in err


def test_a_torch_factory_is_traced_at_the_batch_priced(capsys):
    # tests/importers/fx_factories.tiny_cnn through the CLI: --batch reaches the trace, so
    # the MACs are 4x those of batch 1; the table lists priced ops only ("Top 5 of 5")
    pytest.importorskip("torch")
    import json
    spec = "tests.importers.fx_factories:tiny_cnn"
    macs = []
    for batch in ("1", "4"):
        code, out, err = run(capsys, "roofline", spec, "--hw", "a100", "--batch", batch,
                             "--format", "json")
        assert code == 0, err
        macs.append(json.loads(out)["summary"]["macs"])
    assert macs[1] == 4 * macs[0]
    code, out, _ = run(capsys, "roofline", spec, "--hw", "a100")
    assert "Top 5 of 5 ops" in out


def test_interleaving_splits_a_device_stage_time_over_its_chunks(capsys):
    # p 4, m 8, forward 1 + backward 2 per device stage: 1F1B takes (m + p - 1) x 3 = 33 s;
    # interleaved with v = 2 runs chunks of 0.5 + 1 s: (v m + p - 1) x 1.5 = 28.5 s
    import json
    runs = {}
    for extra in ((), ("--schedule", "interleaved", "--virtual", "2")):
        code, out, err = run(capsys, "pipeline", "--stages", "4", "--micro-batches", "8",
                             *extra, "--format", "json")
        assert code == 0, err
        runs[extra[1] if extra else "1f1b"] = json.loads(out)
    assert runs["1f1b"]["step_s"] == pytest.approx(33.0)
    assert runs["interleaved"]["step_s"] == pytest.approx(28.5)


def test_calibrate_says_when_its_fit_is_worse_than_the_spec(capsys):
    # the shipped V100 bandwidth rows: the kernel model prices them at 0.5 % MAPE, a fit on
    # 12 rows cross-validates worse; calibrate must say so, not write it silently
    import json
    code, out, err = run(capsys, "calibrate", "--reference", "v100", "--family", "membw",
                         "--format", "json")
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    assert warnings and "membw" in warnings[0] and "worse" in err


def test_csv_carries_the_summary_and_the_verdict(capsys):
    import io

    import pandas as pd
    code, out, _ = run(capsys, "roofline", "resnet18", "--hw", "a100", "--format", "csv")
    df = pd.read_csv(io.StringIO(out))
    total = df[df["name"] == "TOTAL"].iloc[0]
    ops = df[df["name"] != "TOTAL"]
    assert total["macs"] == ops["macs"].sum() and bool(total["fits"])
    assert total["time_s"] == pytest.approx(ops["time_s"].sum())
    code, out, _ = run(capsys, "memory", "llama-2-70b", "--hw", "a100", "--format", "csv")
    df = pd.read_csv(io.StringIO(out)).set_index("component")
    assert code == 3 and not df["fits"].any()
    assert df.loc["capacity", "bytes"] == 80e9 < df.loc["total", "bytes"]


def test_compress_carries_a_verdict_per_strategy(capsys):
    # llama-2-70b on a 16 GB T4: fp16 (138 GB) and int8 (69 GB) weights fit neither: exit 3;
    # on an 80 GB A100 int8 fits though fp16 does not: the strategy is the answer, exit 0
    import json
    code, out, _ = run(capsys, "compress", "llama-2-70b", "--hw", "t4", "--strategy", "int8",
                       "--format", "json")
    assert code == 3 and not any(r["fits"] for r in json.loads(out))
    code, out, _ = run(capsys, "compress", "llama-2-70b", "--hw", "a100", "--strategy", "int8",
                       "--format", "json")
    rows = {r["strategy"]: r["fits"] for r in json.loads(out)}
    assert code == 0 and rows == {"baseline": False, "int8": True}
