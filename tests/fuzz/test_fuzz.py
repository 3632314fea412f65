"""Fuzzing with hypothesis: loaders and the CLI take random input and either work or raise
one PerfModelError (the CLI: exit 0, 2 or 3, never a traceback), each case in bounded time.

CI runs a fixed budget with a fixed seed (``derandomize=True``: the same examples every
run); ``benchmarks/bench_fuzz.py`` runs a longer, random search.
"""

from __future__ import annotations

import json
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perfmodel.cli.main import main
from perfmodel.errors import PerfModelError
from perfmodel.hardware.load import device_from_dict
from perfmodel.hardware.system import system_from_dict
from perfmodel.importers.hf_config import load_hf_config

# CI: 300 examples per property, the same ones every run; bench_fuzz.py sets these to run
# a longer random search
EXAMPLES = int(os.environ.get("PERFMODEL_FUZZ_EXAMPLES", "300"))
FIXED = os.environ.get("PERFMODEL_FUZZ_RANDOM") != "1"
CI = settings(max_examples=EXAMPLES, derandomize=FIXED, deadline=2000,
              suppress_health_check=[HealthCheck.too_slow,
                                     HealthCheck.function_scoped_fixture])

leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
values = st.recursive(leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=12), kids, max_size=4)),
    max_leaves=12)
KEYS = ["name", "compute", "memory", "tensor_TFLOPS", "fp16", "value", "source", "role",
        "main", "capacity_GB", "bandwidth_GBps", "architecture", "efficiency", "sources",
        "device", "devices_per_node", "scale_up", "topology", "switch", "scale_out",
        "nics_per_node", "nic_Gbps", "latency_us", "units", "boost_clock_MHz"]
spec_like = st.recursive(leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.sampled_from(KEYS), kids, max_size=5)),
    max_leaves=16)


@CI
@given(spec_like)
def test_device_loader_works_or_says_why(d):
    try:
        device_from_dict(d, "fuzz.yaml")
    except PerfModelError:
        pass


@CI
@given(spec_like)
def test_system_loader_works_or_says_why(d):
    try:
        system_from_dict(d, "fuzz.yaml")
    except PerfModelError:
        pass


HF_KEYS = ["model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
           "num_attention_heads", "num_key_value_heads", "vocab_size", "head_dim",
           "max_position_embeddings", "num_local_experts", "num_experts_per_tok",
           "sliding_window", "kv_lora_rank", "q_lora_rank", "text_config", "layer_types",
           "tie_word_embeddings", "hidden_act"]
hf_value = st.one_of(st.sampled_from(["llama", "mistral", "qwen2", "gpt2", "deepseek_v3",
                                      "gemma2", "t5", "bert", "silu", "gelu"]),
                     st.integers(-4, 70000), leaf)


@CI
@given(st.dictionaries(st.sampled_from(HF_KEYS), hf_value, max_size=12), st.binary(max_size=64))
def test_hf_config_loader_works_or_says_why(tmp_path_factory, cfg, junk):
    d = tmp_path_factory.mktemp("hf")
    (d / "config.json").write_text(json.dumps(cfg, default=str))
    (d / "junk.json").write_bytes(junk)
    for path in (d, d / "junk.json"):
        try:
            load_hf_config(path)
        except PerfModelError:
            pass


# the CLI's argument space: a command, then flags with plausible and implausible values
NUMS = ["0", "-1", "1", "2", "8", "3", "1e3", "99999999999999999999", "2.5", "x", ""]
COMMANDS = {
    "roofline": (["resnet18", "gpt2", "llama-2-7b", "nosuch"],
                 ["--hw", "--batch", "--seq", "--dtype", "--phase", "--top", "--fusion"]),
    "memory": (["gpt2", "llama-2-7b", "resnet18"],
               ["--hw", "--batch", "--seq", "--tp", "--pp", "--dp", "--phase", "--dtype"]),
    "collective": (["all_reduce", "all_gather", "all_to_all", "nosuch"],
                   ["--system", "--bytes", "--gpus", "--nodes", "--algo", "--dtype"]),
    "pipeline": ([], ["--stages", "--micro-batches", "--schedule", "--virtual", "--t-forward"]),
    "parallel": (["gpt2", "llama-2-7b"],
                 ["--system", "--gpus", "--tp", "--pp", "--dp", "--seq", "--micro-batch",
                  "--zero", "--recompute", "--schedule"]),
    "infer": (["gpt2", "llama-2-7b", "resnet18", "mixtral-8x7b"],
              ["--hw", "--engine", "--batch", "--input-len", "--output-len", "--dtype",
               "--tp", "--pp", "--ep", "--dp", "--gpus", "--split", "--chunk-tokens",
               "--imbalance"]),
    "serve": (["gpt2", "llama-2-7b"],
              ["--hw", "--engine", "--rate", "--requests", "--input-len", "--output-len",
               "--tp", "--replicas", "--router", "--scheduler", "--max-num-seqs",
               "--block-size", "--prefix-hit", "--preemption"]),
}
WORDS = ["a100", "h100", "dgx-a100", "dgx-h100", "fp16", "int8", "fp7", "decode", "train",
         "ring", "tree", "nvls", "interleaved", "1f1b", "full", "selective", "epilogue",
         "256M", "8G", "12Q", "vllm", "llama.cpp", "max", "layer", "swap", "static",
         "least-kv", "lognormal:64,0.5", "fp8", "int4"]
flag_value = st.one_of(st.sampled_from(NUMS), st.sampled_from(WORDS),
                       st.text(string.printable, max_size=6))


@st.composite
def argv(draw):
    cmd = draw(st.sampled_from(sorted(COMMANDS)))
    positionals, flags = COMMANDS[cmd]
    out = [cmd] + ([draw(st.sampled_from(positionals))] if positionals else [])
    for flag in draw(st.lists(st.sampled_from(flags), max_size=4, unique=True)):
        out += [flag, draw(flag_value)]
    return out


@settings(max_examples=EXAMPLES, derandomize=FIXED, deadline=10000,
          suppress_health_check=[HealthCheck.too_slow])
@given(argv())
def test_cli_never_tracebacks(args):
    try:
        code = main(args)
    except SystemExit as exc:   # argparse's own usage errors
        code = exc.code
    assert code in (0, 2, 3), args


@pytest.mark.parametrize("payload", [b"\x00\xff" * 50, b"", "naïve: é".encode("latin-1")])
def test_cli_on_binary_files_is_one_error(tmp_path, capsys, payload):
    for name in ("m.json", "m.yaml", "hw.yaml"):
        (tmp_path / name).write_bytes(payload)
    for args in (["roofline", str(tmp_path / "m.json"), "--hw", "a100"],
                 ["roofline", str(tmp_path / "m.yaml"), "--hw", "a100"],
                 ["roofline", "resnet18", "--hw", str(tmp_path / "hw.yaml")]):
        assert main(args) == 2
        assert capsys.readouterr().err.count("\n") == 1


@CI
@given(st.binary(max_size=256))
def test_onnx_loader_works_or_says_why(tmp_path_factory, blob):
    pytest.importorskip("onnx")
    from perfmodel.importers.onnx_model import load_onnx
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    path.write_bytes(blob)
    try:
        load_onnx(path)
    except PerfModelError:
        pass


def _small_onnx() -> bytes:
    """A valid conv -> relu -> gemm model (what the mutation fuzz corrupts)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    fc = numpy_helper.from_array(np.ones((2, 4 * 8 * 8), np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                      ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])], [w, fc])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]) \
        .SerializeToString()


@CI
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       st.integers(0, 10**6))
def test_onnx_loader_on_corrupted_models(tmp_path_factory, flips, cut):
    pytest.importorskip("onnx")
    from perfmodel.importers.onnx_model import load_onnx
    blob = bytearray(_small_onnx())
    for pos, value in flips:
        blob[pos % len(blob)] = value
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    path.write_bytes(bytes(blob[: max(cut % (len(blob) + 1), 1)]) if cut % 3 == 0
                     else bytes(blob))
    try:
        load_onnx(path, batch=2)
    except PerfModelError:
        pass
