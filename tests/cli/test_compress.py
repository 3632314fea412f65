"""perfmodel compress: each --format, the documented columns, bad input exits 2."""

from __future__ import annotations

import json

import pytest

from perfmodel.cli.main import main

ISSUE_STRATEGIES = ["fp16", "int8", "prune:0.5:structured", "prune:0.9:unstructured",
                    "prune:2:4", "share:16", "lowrank:0.25"]
COLUMNS = ("strategy", "params", "size_on_disk_bytes", "weight_bytes_moved", "macs_executed",
           "latency_s", "speedup", "peak_memory_bytes", "energy_j")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _args(*strategies):
    return [a for s in strategies for a in ("--strategy", s)]


def test_json_one_object_per_strategy(capsys):
    code, out, err = run(capsys, "compress", "resnet50", "--hw", "a100", "--format", "json",
                         *_args(*ISSUE_STRATEGIES))
    assert code == 0, err
    rows = json.loads(out)
    assert [r["strategy"] for r in rows] == ["baseline", *ISSUE_STRATEGIES]
    for r in rows:
        assert all(k in r for k in COLUMNS)
    by = {r["strategy"]: r for r in rows}
    assert by["fp16"]["speedup"] == pytest.approx(1.0)        # baseline is fp16 on an A100
    assert by["prune:2:4"]["macs_executed"] < by["baseline"]["macs_executed"]
    assert by["prune:0.9:unstructured"]["latency_s"] == pytest.approx(
        by["baseline"]["latency_s"])


def test_table_and_csv(capsys):
    code, out, err = run(capsys, "compress", "llama-2-7b", "--hw", "h100", "--phase", "decode",
                         *_args("w4a16", "w8a8", "fp8"))
    assert code == 0, err
    assert "llama-2-7b on h100-sxm5-80gb: decode, baseline fp16" in out
    assert "w4a16" in out and "speed-up" in out and "Notes" in out
    code, out, _ = run(capsys, "compress", "vgg16", "--hw", "cortex-a72", "--format", "csv",
                       *_args("distill:mobilenet_v2"))
    assert code == 0
    header = out.splitlines()[0].split(",")
    assert set(COLUMNS) <= set(header) and len(out.splitlines()) == 3


def test_plot(capsys, tmp_path):
    out = tmp_path / "tradeoff.png"
    code, _, err = run(capsys, "compress", "vgg16", "--hw", "cortex-a72", "--plot", str(out),
                       *_args("distill:mobilenet_v2"))
    assert code == 0, err and out.exists()
    code, _, err = run(capsys, "compress", "vgg16", "--hw", "cortex-a72", "--plot", str(out),
                       *_args("distill:mobilenet_v2"))
    assert code == 2 and "--force" in err


@pytest.mark.parametrize("argv, needle", [
    (["compress", "resnet50", "--hw", "a100", "--strategy", "int9"], "unknown strategy"),
    (["compress", "resnet50", "--hw", "a100"], "no --strategy"),
    (["compress", "resnet50", "--hw", "a100", "--strategy", "prune:2"], "bad strategy"),
    (["compress", "resnet50", "--hw", "a100", "--strategy", "distill:lenet5"], "takes"),
    (["compress", "resnet50", "--hw", "a100", "--strategy", "mixed:missing.yaml"],
     "not found"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_peak_memory_is_the_memory_models_total(capsys):
    # Llama-2-7B decode, batch 1, 1024 tokens, fp16 on an H100 (see
    # tests/report/test_tradeoff.py): weights 6,738,415,616 x 2 B + KV cache
    # 2 x 32 x 4096 x 1024 x 2 B = 536,870,912 + workspace (4096 x 2 + 11008 x 2 + 32000
    # logits) x 2 B = 124,416 -> 14,013,826,560 B. int8 keeps the 65 RMSNorm weights of 4096
    # at 2 B: (6,738,415,616 - 266,240) x 1 + 266,240 x 2 + the same KV cache and workspace
    # = 7,275,677,184 B.
    code, out, err = run(capsys, "compress", "llama-2-7b", "--hw", "h100", "--phase",
                         "decode", "--batch", "1", "--seq", "1024", "--dtype", "fp16",
                         "--format", "json", *_args("int8"))
    assert code == 0, err
    peak = {r["strategy"]: r["peak_memory_bytes"] for r in json.loads(out)}
    assert peak == {"baseline": 6_738_415_616 * 2 + 536_870_912 + 124_416,
                    "int8": (6_738_415_616 - 266_240) + 266_240 * 2 + 536_870_912 + 124_416}
    assert peak["baseline"] == 14_013_826_560 and peak["int8"] == 7_275_677_184
    code, out, err = run(capsys, "compress", "llama-2-7b", "--hw", "h100", "--phase",
                         "decode", *_args("int8"))
    assert code == 0, err
    assert "Peak memory: the memory model's per-device total" in out
