"""The shipped engine profiles (engines/*.yaml): they load, their names are unique, published
rows map to the right engine, every figure is sourced, and bad fields are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from perfmodel.errors import SpecError
from perfmodel.inference.engine import (
    engine_for_framework,
    engine_from_dict,
    engines_dir,
    list_engines,
    load_engine,
)

FILES = sorted(p for p in Path(engines_dir()).glob("*.yaml") if not p.name.startswith("_"))
REQUIRED = {"pytorch", "torch-compile", "tensorrt", "tensorrt-llm", "vllm", "vllm-rocm",
            "sglang", "llama-cpp", "deepspeed-mii", "tensorflow", "tensorflow-xla", "mxnet",
            "paddle", "paddle-trt", "onnxruntime", "habana"}


def _raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_every_required_profile_is_shipped():
    assert REQUIRED <= set(list_engines())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_profile_loads_and_names_its_file(path):
    prof = load_engine(path.stem)
    assert prof.name == path.stem == _raw(path)["name"]
    assert prof.split in ("tensor", "layer")
    assert 0 < prof.memory_fraction <= 1


def test_aliases_unique_lower_case_and_resolve():
    seen: dict[str, str] = {stem: stem for stem in (p.stem for p in FILES)}
    for path in FILES:
        for alias in _raw(path).get("aliases") or []:
            assert alias == alias.lower(), f"{path.name}: alias {alias!r} not lower case"
            assert alias not in seen, f"{alias!r} in {path.name} and {seen[alias]}"
            seen[alias] = path.stem
            assert load_engine(alias).name == path.stem
            assert load_engine(alias.upper()).name == path.stem


@pytest.mark.parametrize("alias,name", [
    ("trt-llm", "tensorrt-llm"), ("TensorRT-LLM", "tensorrt-llm"), ("llama.cpp", "llama-cpp"),
    ("deepspeed", "deepspeed-mii"), ("TF2", "tensorflow"), ("xla", "tensorflow-xla"),
    ("ORT", "onnxruntime"), ("eager", "pytorch"), ("Inductor", "torch-compile"),
    ("gaudi", "habana"), ("paddle-tensorrt", "paddle-trt"), ("vLLM", "vllm")])
def test_typed_names(alias, name):
    assert load_engine(alias).name == name


@pytest.mark.parametrize("text,name", [
    ("TensorFlow 1.x NGC [Mixed Precision Inference Latency + XLA]", "tensorflow-xla"),
    ("TensorFlow 1.x NGC [TF32 Inference Latency + XLA]", "tensorflow-xla"),
    ("TensorFlow 1.x NGC [FP32 Inference Latency]", "tensorflow"),
    ("TensorFlow2 NGC [BERT-Base FP16]", "tensorflow"),
    ("Paddle-TRT (PaddlePaddle NGC) [INT8 Inference Latency]", "paddle-trt"),
    ("PaddlePaddle NGC [TF32 Inference Latency]", "paddle"),
    ("vLLM", "vllm"), ("TensorRT-LLM", "tensorrt-llm"), ("llama.cpp", "llama-cpp"),
    ("Deepspeed-MII", "deepspeed-mii"), ("MXNet NGC", "mxnet"),
    ("MXNet NGC [Inference performance: NVIDIA T4]", "mxnet"),
    ("PyTorch (pytorch-21.03 NGC container) [FP32 Inference Latency]", "pytorch"),
])
def test_framework_texts_map_to_engines(text, name):
    prof = engine_for_framework(text)
    assert prof is not None and prof.name == name


def test_every_reference_framework_text_is_claimed():
    import csv
    root = Path(__file__).resolve().parents[2]
    with open(root / "measurements" / "reference" / "inference.csv", newline="") as f:
        texts = {row["framework"] for row in csv.DictReader(f) if row.get("framework")}
    assert all(engine_for_framework(t) is not None for t in texts)


FIGURES = ("fusion", "attention", "host_per_kernel_us", "graph_per_kernel_us", "decode_graphs",
           "prefill_graphs", "per_step_us", "per_call_us", "chunked_prefill_tokens",
           "memory_fraction", "memory_overhead_GB", "tp_overlap", "split")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_figure_has_a_source(path):
    prof = load_engine(path.stem)
    for key in (*FIGURES, *(f"quantization.{f}" for f in prof.quantization)):
        assert str(prof.provenance.get(key, "")).strip(), f"{path.stem}: {key} has no source"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_fit_sources_say_fitted(path):
    fit = (_raw(path).get("sources") or {}).get("FIT")
    if fit is not None:
        assert str(fit).startswith("fitted:")


def _vllm_dict() -> dict:
    return _raw(Path(engines_dir()) / "vllm.yaml")


@pytest.mark.parametrize("key,bad", [
    ("memory_fraction", {"value": 1.5, "source": "x y"}),
    ("fusion", {"value": "magic", "source": "x y"}),
    ("split", {"value": "diagonal", "source": "x y"}),
    ("tp_overlap", {"value": 2.0, "source": "x y"}),
    ("decode_graphs", {"value": "yes", "source": "x y"}),
    ("host_per_kernel_us", {"value": 5}),
    ("warp_speed", {"value": 9, "source": "x y"}),
])
def test_bad_field_raises_spec_error_naming_key(key, bad):
    d = _vllm_dict()
    d[key] = bad
    with pytest.raises(SpecError, match=key):
        engine_from_dict(d, "bad.yaml")


def test_bad_quantization_path_names_key():
    d = _vllm_dict()
    d["quantization"] = {**d["quantization"], "int4": {"value": "int2", "source": "x y"}}
    with pytest.raises(SpecError, match="quantization.int4"):
        engine_from_dict(d, "bad.yaml")


def test_user_file_with_inherits(tmp_path):
    f = tmp_path / "my_engine.yaml"
    f.write_text("schema: 1\nname: my-vllm\ninherits: vllm\n"
                 "memory_fraction: {value: 0.8, source: my choice}\n")
    prof = load_engine(str(f))
    assert prof.memory_fraction == 0.8
    assert prof.decode_graphs is True
