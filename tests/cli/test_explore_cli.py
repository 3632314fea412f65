"""perfmodel explore: a real run prints a front, the crossovers and the assumptions; bad
input is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import json

import pytest

from perfmodel.cli.main import main

VARY = ["--vary", "memory.bandwidth_GBps=1000..8000"]
ONE = ["--model", "llama-2-7b", "--phase", "decode", "--seq", "2048"]


def _run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_prints_the_front_the_best_design_and_the_assumptions(capsys):
    code, out, err = _run(capsys, [
        "explore", "--hw", "h100", *VARY, "--vary", "compute.tensor_TFLOPS.fp16=500..2000",
        *ONE, "--points", "3", "--cost", "compute.tensor_TFLOPS.fp16 / 10 + "
        "memory.bandwidth_GBps / 20"])
    assert code == 0, err
    assert "9 designs (3 x 3)" in out
    assert "Pareto front (" in out and "latency_ratio" in out
    assert "best design: " in out and "crossover" in out
    assert "llama-2-7b-decode-b1" in out and "(memory->compute)" in out
    assert "assumptions:" in out and "held fixed" in out


def test_the_default_tdp_cost_is_said_to_be_fixed(capsys):
    code, out, _ = _run(capsys, ["explore", "--hw", "h100", *VARY, *ONE, "--points", "2"])
    assert code == 0
    assert "power model" in out and "one value at every design" in out


def test_json_and_csv(capsys, tmp_path):
    code, out, _ = _run(capsys, ["explore", "--hw", "h100", *VARY, *ONE, "--points", "3",
                                 "--format", "json", "--vary", "power.tdp_W=350,700",
                                 "--budget", "cost=500"])
    assert code == 0
    doc = json.loads(out)
    assert doc["designs"] == 6 and doc["feasible"] == 3
    assert doc["best"]["memory.bandwidth_GBps"] == pytest.approx(8000)
    assert doc["best"]["power.tdp_W"] == 350
    assert {c["path"] for c in doc["crossovers"]} == {"memory.bandwidth_GBps", "power.tdp_W"}
    code, out, _ = _run(capsys, ["explore", "--hw", "h100", *VARY, *ONE, "--points", "2",
                                 "--format", "csv", "--plot", str(tmp_path / "front")])
    assert code == 0
    assert out.splitlines()[0].startswith("memory.bandwidth_GBps,latency_ratio,cost")
    assert len(out.splitlines()) == 3 and (tmp_path / "front.png").stat().st_size > 0


def test_model_search_names_its_answer(capsys):
    code, out, err = _run(capsys, ["explore", "--search-models", "resnet18,resnet50",
                                   "--strategy", "int8", "--hw", "h100", "--budget-ms", "0.5"])
    assert code == 0, err
    assert "answer: resnet18+int8" in out


@pytest.mark.parametrize("argv, needle", [
    (["--vary", "memory.bandwith_GBps=1000..2000"], "did you mean 'memory.bandwidth_GBps'"),
    (["--vary", "memory.bandwidth_GBps=4000..2000"], "low end must be less"),
    (["--vary", "memory.bandwidth_GBps=2000..2000"], "low end must be less"),
    (["--vary", "memory.bandwidth_GBps=-1..2000"], "two positive numbers"),
    (["--vary", "memory.bandwidth_GBps=0,1000"], "not a positive number"),
    (["--vary", "memory.bandwidth_GBps"], "expected PATH=LO..HI"),
    (["--vary", "memory.bandwidth_GBps=a..b"], "'a' is not a number"),
    (["--vary", "memory.bandwidth_GBps=1..2", "--vary", "memory.bandwidth_GBps=3..4"],
     "given twice"),
    ([*VARY, "--cost", "__import__('os').getcwd()"], "function call"),
    ([*VARY, "--cost", "power.tdp_W % 7"], "operator Mod"),
    ([*VARY, "--cost", "power.tdpW"], "did you mean 'power.tdp_W'"),
    ([*VARY, "--budget", "power.tdp_W=500"], "no design meets power.tdp_W <= 500; the "
                                             "closest is"),
    ([*VARY, "--budget", "power.tdp_W"], "expected FIELD=MAX"),
    ([*VARY, "--budget", "powr.tdp_W=9"], "did you mean 'power.tdp_W'"),
    ([*VARY, "--budget", "cost=-1"], "positive"),
    ([*VARY, "--vary", "power.tdp_W=1..2", "--vary", "memory.capacity_GB=1..2", "--points",
      "101"], "1,030,301 points"),
    ([*VARY, "--points", "1"], "at least 2"),
    ([], "nothing to explore"),
    ([*VARY, "--workloads", "/no/such/suite.yaml"], "not found"),
    ([*VARY, "--workloads", "x.yaml", "--model", "resnet50"], "not both"),
    ([*VARY, "--search-models", "resnet18", "--budget-ms", "1"], "two different runs"),
    (["--search-models", "resnet18"], "needs a latency budget"),
    (["--search-models", "resnet18", "--budget-ms", "0.001"], "no candidate meets"),
    (["--search-models", "resnett", "--budget-ms", "1"], "unknown model"),
    (["--search-models", "resnet18", "--budget-ms", "1", "--strategy", "int9"],
     "strategy"),
    ([*VARY, "--budget-ms", "1"], "belong to --search-models"),
    (["--search-models", "resnet18", "--budget-ms", "1", "--plot", "x.png"], "not a model"),
    ([*VARY, "--objective", "speed"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    code, _, err = _run(capsys, ["explore", "--hw", "h100", *argv])
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("perfmodel: error:"), err
    assert needle.lower() in lines[0].lower(), lines[0]
