"""perfmodel infer: the product owner's four command lines, the formats, --batch max, the
capacity verdict (exit 3), the engine listing, and unknown engines."""

from __future__ import annotations

import csv
import io
import json

import pytest

from perfmodel.cli.main import main

LLAMA70_DGX = ("infer", "llama-3-70b", "--system", "dgx-h100", "--tp", "8", "--engine", "vllm",
               "--batch", "64", "--input-len", "1024", "--output-len", "512")
MIXTRAL = ("infer", "mixtral-8x7b", "--hw", "mi300x", "--engine", "vllm", "--batch", "max",
           "--input-len", "2048", "--output-len", "128", "--dtype", "fp8")
LLAMA_CPP = ("infer", "llama-2-7b", "--hw", "h100", "--engine", "llama.cpp", "--gpus", "2",
             "--split", "layer", "--batch", "1", "--input-len", "512", "--output-len", "512")
RESNET_TF = ("infer", "resnet50", "--hw", "t4", "--engine", "tensorflow", "--batch", "1",
             "--dtype", "fp16")
OOM = ("infer", "llama-3-70b", "--hw", "h100", "--batch", "256", "--input-len", "1024",
       "--output-len", "128")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--format", "json")
    return code, json.loads(out), err


def test_llama3_70b_on_a_dgx_h100_with_vllm(capsys):
    code, out, err = run(capsys, *LLAMA70_DGX)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("llama-3-70b on 8 x h100"), lines[0]
    assert "dgx-h100" in lines[0] and "vLLM" in lines[0] and "tp 8" in lines[0]
    for key in ("TTFT", "TPOT", "end-to-end latency", "input tokens/s", "output tokens/s",
                "total tokens/s", "requests/s", "Memory per GPU:", "weights", "kv_cache",
                "FITS", "usable", "largest batch that fits:", "Time split", "compute",
                "communication", "host", "Assumptions:", "engine: vLLM", "fusion:",
                "precision:", "tensor parallel: 2 all-reduces", "memory:"):
        assert key in out, key
    assert "DOES NOT FIT" not in out
    # the order the product owner asked for: times, memory, time split, assumptions
    at = [out.index(k) for k in ("TTFT", "Memory per GPU:", "Time split", "Assumptions:")]
    assert at == sorted(at)


def test_mixtral_fp8_on_mi300x_at_the_largest_batch(capsys):
    code, out, err = run(capsys, *MIXTRAL)
    assert code == 0, err
    assert "mixtral-8x7b on 1 x mi300x" in out and "fp8 weights" in out
    code, d, err = as_json(capsys, *MIXTRAL)
    s = d["summary"]
    assert code == 0, err
    assert s["batch"] == s["max_batch"] > 1          # --batch max picks the largest that fits
    assert s["fits"] is True and s["waves"] == 1
    assert s["weight_dtype"] == "fp8"


def test_llama_cpp_layer_split_over_two_gpus(capsys):
    code, out, err = run(capsys, *LLAMA_CPP)
    assert code == 0, err
    assert "llama-2-7b on 2 x h100" in out and "llama.cpp" in out and "pp 2" in out
    assert "pipeline: stages run one after another" in out
    code, d, err = as_json(capsys, *LLAMA_CPP)
    assert (d["summary"]["tp"], d["summary"]["pp"], d["summary"]["gpus"]) == (1, 2, 2)


def test_llama_cpp_splits_by_layer_unless_told(capsys):
    # --split defaults to the engine profile's: llama.cpp layer, vLLM tensor
    argv = [a for a in LLAMA_CPP if a not in ("--split", "layer")]
    _, d, _ = as_json(capsys, *argv)
    assert (d["summary"]["tp"], d["summary"]["pp"]) == (1, 2)
    argv = [a if a != "llama.cpp" else "vllm" for a in argv]
    _, d, _ = as_json(capsys, *argv)
    assert (d["summary"]["tp"], d["summary"]["pp"]) == (2, 1)


def test_resnet50_on_t4_with_tensorflow(capsys):
    code, out, err = run(capsys, *RESNET_TF)
    assert code == 0, err
    assert "resnet50 on 1 x t4" in out and "TensorFlow" in out
    assert "latency (one batch)" in out and "samples/s" in out
    assert "TTFT" not in out and "prefill chunk" not in out   # one forward: no generation


def test_json_has_the_summary_memory_breakdown_and_passes(capsys):
    code, d, err = as_json(capsys, *LLAMA70_DGX)
    assert code == 0, err
    s = d["summary"]
    assert s["ttft_s"] > 0 and s["tpot_s"] > 0
    assert s["latency_s"] == pytest.approx(s["ttft_s"] + 511 * s["tpot_s"])
    assert d["warnings"] == []
    assert set(d["breakdown_s"]) == {"compute", "memory", "communication", "host"}
    assert sum(d["breakdown_s"].values()) == pytest.approx(s["total_s"])
    assert d["memory_bytes"]["total"] == s["memory_per_gpu_bytes"]
    assert d["assumptions"]["engine"]["engine"] == "vLLM"
    kinds = {p["pass"]: p["count"] for p in d["passes"]}
    assert kinds == {"prefill": 1, "decode": 511}


def test_csv_is_the_summary_row(capsys):
    code, out, err = run(capsys, *LLAMA70_DGX, "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1
    assert rows[0]["model"] == "llama-3-70b" and float(rows[0]["ttft_s"]) > 0


def test_a_run_that_does_not_fit_exits_3_unless_allowed(capsys):
    code, out, err = run(capsys, *OOM)
    assert code == 3
    assert out.splitlines()[0].startswith("DOES NOT FIT"), out[:200]
    assert "does not fit in memory" in err and "--allow-oom" in err
    code, out, err = run(capsys, *OOM, "--allow-oom")
    assert code == 0 and out.startswith("DOES NOT FIT")
    code, d, _ = as_json(capsys, *OOM)
    assert code == 3 and d["summary"]["fits"] is False
    assert d["warnings"][0].startswith("DOES NOT FIT")


def test_a_batch_past_capacity_runs_in_waves(capsys):
    code, out, err = run(capsys, "infer", "llama-2-7b", "--hw", "a100", "--batch", "4000",
                         "--input-len", "1024", "--output-len", "128")
    assert code == 0, err
    assert out.startswith("batch 4000 does not fit at once") and "waves" in out


def test_speculative_decoding_is_stated(capsys):
    code, out, err = run(capsys, "infer", "llama-2-13b", "--hw", "a100", "--engine", "vllm",
                         "--batch", "4", "--input-len", "512", "--output-len", "64",
                         "--draft", "llama-2-7b", "--draft-tokens", "3", "--acceptance", "0.8")
    assert code == 0, err
    assert "speculative: draft llama-2-7b proposes 3 tokens" in out


def test_list_engines_needs_no_model(capsys):
    code, out, err = run(capsys, "infer", "--list-engines")
    assert code == 0, err
    head = out.splitlines()[0].split()
    assert head[:4] == ["engine", "name", "stack", "kind"] and "fitted" in head
    names = {line.split()[0] for line in out.splitlines()[1:]}
    assert {"vllm", "pytorch", "llama-cpp"} <= names
    code, out, _ = run(capsys, "infer", "--list-engines", "--format", "csv")
    assert code == 0 and "vllm,vLLM,cuda" in out


def test_show_engine_lists_figures_with_sources(capsys):
    code, out, err = run(capsys, "infer", "--show-engine", "vLLM")
    assert code == 0, err
    assert out.startswith("vLLM (vllm)") and "memory_fraction" in out and "source:" in out
    code, out, _ = run(capsys, "infer", "--show-engine", "vllm", "--format", "json")
    assert json.loads(out)["split"] == "tensor"


def test_an_unknown_engine_is_one_line_with_a_suggestion(capsys):
    code, out, err = run(capsys, "infer", "llama-2-7b", "--hw", "h100", "--engine", "vlm")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "unknown engine 'vlm'" in lines[0]
    assert "did you mean" in lines[0] and "vllm" in lines[0]


def test_missing_model_or_device_is_one_line(capsys):
    code, _, err = run(capsys, "infer", "--hw", "h100")
    assert code == 2 and "MODEL" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "infer", "llama-2-7b")
    assert code == 2 and "--hw" in err and len(err.strip().splitlines()) == 1
