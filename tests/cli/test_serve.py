"""perfmodel serve: the table, JSON and CSV, the per-request file and the plot, from the
same simulation pm.serve runs."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from perfmodel.cli.main import main
from perfmodel.inference_api import serve

ARGS = ("serve", "llama-2-7b", "--hw", "h100", "--engine", "vllm", "--rate", "4",
        "--requests", "60", "--input-len", "256", "--output-len", "32", "--slo-ttft", "0.5",
        "--slo-tpot", "0.05")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_table_names_percentiles_throughput_and_goodput(capsys):
    code, out, err = run(capsys, *ARGS)
    assert code == 0, err
    for word in ("TTFT", "TPOT", "end-to-end", "queueing", "p99", "goodput", "KV cache",
                 "Assumptions:"):
        assert word in out


def test_json_is_pm_serve(capsys):
    code, out, _ = run(capsys, *ARGS, "--format", "json")
    assert code == 0
    s = json.loads(out)["summary"]
    api = serve("llama-2-7b", "h100", engine="vllm", rate=4, requests_n=60, input_len=256,
                output_len=32, slo_ttft=0.5, slo_tpot=0.05).summary
    assert s["ttft_p99_s"] == pytest.approx(api["ttft_p99_s"])
    assert s["goodput_requests_per_s"] == pytest.approx(api["goodput_requests_per_s"])


def test_csv_requests_file_and_plot(tmp_path, capsys):
    req = tmp_path / "req.csv"
    png = tmp_path / "timeline.png"
    code, out, err = run(capsys, *ARGS, "--format", "csv", "--requests-out", str(req),
                         "--plot", str(png))
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 1
    table = pd.read_csv(req)
    assert len(table) == 60 and {"ttft_s", "tpot_s", "e2e_s", "queue_s"} <= set(table)
    assert png.stat().st_size > 10_000 and f"wrote {png}" in err


def test_trace_replicas_and_router(tmp_path, capsys):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_len,output_len\n" + "".join(
        f"{i * 0.05},{128 + i},{16}\n" for i in range(40)))
    code, out, err = run(capsys, "serve", "llama-2-7b", "--hw", "h100", "--trace", str(trace),
                         "--replicas", "2", "--router", "least-loaded", "--format", "json")
    assert code == 0, err
    s = json.loads(out)["summary"]
    assert s["requests"] == 40 and s["replicas"] == 2 and s["gpus"] == 2


def test_disaggregated_and_search_from_the_command_line(capsys):
    code, out, err = run(capsys, "serve", "llama-2-7b", "--system", "dgx-h100",
                         "--disaggregate", "prefill=1x1,decode=1x1", "--rate", "4",
                         "--requests", "40", "--input-len", "256", "--output-len", "16",
                         "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["summary"]["gpus"] == 2 and d["summary"]["transfer_mean_s"] > 0
    code, out, err = run(capsys, "serve", "llama-2-7b", "--hw", "h100", "--rate", "20",
                         "--requests", "200", "--input-len", "256", "--output-len", "32",
                         "--slo-ttft", "0.5", "--slo-tpot", "0.05", "--search",
                         "--search-tp", "1,2", "--search-max-num-seqs", "64",
                         "--search-budgets", "2048", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["deployments"]
    assert len(rows) == 4 and rows[0]["meets"] and rows[0]["gpus"] >= 1
