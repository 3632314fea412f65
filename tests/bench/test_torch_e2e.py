"""--backend torch: end-to-end latency of zoo models measured with torch.

The torch tests skip where torch (or torchvision / transformers) is not installed. The
strongest check is the parameter count: the torch module we time must have exactly the
parameters of perfmodel's graph of the same model, i.e. it is the same network.
"""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from perfmodel.bench.measurement import check_measurements, read_measurements
from perfmodel.bench.torch_e2e import hf_config_dict, require
from perfmodel.cli.main import main
from perfmodel.errors import PerfModelError, UnknownNameError
from perfmodel.graph.shape import ModelShape
from perfmodel.importers.hf_config import load_hf_config
from perfmodel.zoo.registry import load_model
from perfmodel.zoo.transformer import META_FIELDS, build_transformer, load_transformer_config

# Two-layer transformers small enough to build and time on a CPU in well under a second.
TINY = {
    "llama": {"name": "tiny-llama", "family": "llama", "architecture": "decoder",
              "source": "test", "vocab_size": 128, "hidden_size": 64,
              "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "max_position_embeddings": 256,
              "position_embedding": "rope", "norm": "rmsnorm", "norm_position": "pre",
              "activation": "silu", "mlp": "gated"},
    "gpt2": {"name": "tiny-gpt2", "family": "gpt2", "architecture": "decoder", "source": "test",
             "vocab_size": 128, "hidden_size": 64, "intermediate_size": 256,
             "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256,
             "position_embedding": "learned", "norm": "layernorm", "norm_position": "pre",
             "activation": "gelu", "mlp": "plain", "attention_bias": True, "mlp_bias": True,
             "tie_word_embeddings": True},
    "bert": {"name": "tiny-bert", "family": "bert", "architecture": "encoder", "source": "test",
             "vocab_size": 128, "hidden_size": 64, "intermediate_size": 256,
             "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 256,
             "position_embedding": "learned", "type_vocab_size": 2, "norm": "layernorm",
             "norm_position": "post", "activation": "gelu", "mlp": "plain",
             "attention_bias": True, "mlp_bias": True, "pooler": True},
}


def _tiny_yaml(tmp_path, family):
    path = tmp_path / f"{TINY[family]['name']}.yaml"
    path.write_text(yaml.safe_dump(TINY[family]))
    return path


# --- no torch needed -------------------------------------------------------------------

def _tiny_graph(tmp_path, family):
    shape, meta = load_transformer_config(_tiny_yaml(tmp_path, family))
    return build_transformer(shape, meta["name"], meta=meta)


def test_hf_config_of_llama_2_7b_inverts_the_importer():
    graph = load_model("llama-2-7b")
    hf = hf_config_dict(graph.shape, graph.meta["family"])
    # meta-llama/Llama-2-7b-hf config.json: 4096 hidden, 11008 FFN, 32 layers, 32 heads
    assert hf["model_type"] == "llama"
    assert (hf["hidden_size"], hf["intermediate_size"], hf["num_hidden_layers"],
            hf["num_attention_heads"], hf["num_key_value_heads"]) == (4096, 11008, 32, 32, 32)
    assert hf["hidden_act"] == "silu" and hf["tie_word_embeddings"] is False


def test_hf_config_round_trips_through_load_hf_config(tmp_path):
    import json

    for name in ("llama-2-7b", "mistral-7b", "mixtral-8x7b", "gpt2", "bert-base"):
        graph = load_model(name)
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(
            json.dumps({**hf_config_dict(graph.shape, graph.meta["family"]),
                        "_name_or_path": f"org/{name}"}))
        shape, meta = load_hf_config(tmp_path / name)
        back = build_transformer(shape, meta["name"])
        assert back.params == graph.params, name
        assert meta["name"] == name   # from _name_or_path's last part, not the folder


def test_hf_config_of_a_tiny_shape_round_trips(tmp_path):
    # A shape that is no zoo model: the importer reads back the very same record.
    import json

    for family in sorted(TINY):
        shape = ModelShape.from_dict(TINY[family], ignore=META_FIELDS)
        folder = tmp_path / family
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(hf_config_dict(shape, family)))
        assert load_hf_config(folder)[0] == shape, family


def test_hf_config_unknown_family():
    shape = load_model("llama-2-7b").shape
    with pytest.raises(UnknownNameError):
        hf_config_dict(shape, "t5")


def test_missing_extra_is_one_error_with_install_hint():
    with pytest.raises(PerfModelError) as exc:
        require("perfmodel_no_such_module")
    assert "pip install" in exc.value.one_line()


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch installed")
def test_cli_without_torch_exits_2(tmp_path, capsys):
    code = main(["bench", "--backend", "torch", "--models", "lenet5", "--out",
                 str(tmp_path / "e.csv")])
    assert code == 2 and "pip install" in capsys.readouterr().err


def test_cli_models_needs_torch_backend(tmp_path, capsys):
    code = main(["bench", "--backend", "cpu", "--models", "lenet5", "--out",
                 str(tmp_path / "e.csv")])
    assert code == 2 and "--backend torch" in capsys.readouterr().err


# --- with torch ------------------------------------------------------------------------

def _check_rows(df, n):
    df = check_measurements(df)
    assert len(df) == n
    assert (df["backend"] == "torch").all() and (df["family"] == "inference").all()
    assert (df["time_s"] > 0).all()
    assert (df["time_p10_s"] <= df["time_s"]).all() and (df["time_s"] <= df["time_p90_s"]).all()
    assert df["framework"].str.startswith("torch ").all()
    return df


def test_lenet5_same_network_and_timed():
    pytest.importorskip("torch")
    from perfmodel.bench.torch_e2e import build_torch_model, count_params, run_torch
    graph = load_model("lenet5")
    # 61,706 parameters (LeCun et al. 1998 as reimplemented; zoo REFERENCE)
    assert count_params(build_torch_model("lenet5", graph)) == graph.params == 61_706
    df = _check_rows(run_torch([("lenet5", graph)], repeats=3, device="cpu"), 1)
    assert df["phase"][0] == "inference" and df["batch"][0] == 1 and df["dtype"][0] == "fp32"


def _usable(module):
    """Skip unless ``module`` imports (a torchvision built for another torch raises
    RuntimeError at import, which importorskip does not catch)."""
    try:
        return require(module)
    except PerfModelError as exc:
        pytest.skip(exc.one_line())


def test_resnet18_same_network():
    pytest.importorskip("torch")
    _usable("torchvision")
    from perfmodel.bench.torch_e2e import build_torch_model, count_params
    graph = load_model("resnet18")
    # torchvision ResNet18_Weights.IMAGENET1K_V1: 11,689,512 parameters
    assert count_params(build_torch_model("resnet18", graph)) == graph.params == 11_689_512


@pytest.mark.parametrize("family", sorted(TINY))
def test_tiny_transformer_same_network(tmp_path, family):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from perfmodel.bench.torch_e2e import build_torch_model, count_params
    graph = _tiny_graph(tmp_path, family)
    assert count_params(build_torch_model(graph.name, graph)) == graph.params


@pytest.mark.parametrize("name", ["bert-base", "gpt2", "llama-2-7b", "mistral-7b",
                                  "mixtral-8x7b"])
def test_zoo_transformer_same_network_on_meta_device(name):
    """Built on torch's meta device (no memory); the counts are the reference_params of
    workloads/NAME.yaml, e.g. 6,738,415,616 for Llama-2-7b (HF safetensors total)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from perfmodel.bench.torch_e2e import build_torch_model, count_params
    graph = load_model(name)
    model = build_torch_model(name, graph, device="meta")
    assert count_params(model) == graph.params == graph.meta["reference_params"]


def test_tiny_llama_prefill_and_decode_rows(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from perfmodel.bench.torch_e2e import run_torch
    path = str(_tiny_yaml(tmp_path, "llama"))
    df = _check_rows(run_torch([(path, load_model(path))], batch=2, seq=16, repeats=3,
                               device="cpu"), 2)
    assert list(df["phase"]) == ["prefill", "decode"]
    assert list(df["seq"]) == [16, 16] and list(df["batch"]) == [2, 2]


def test_cli_bench_torch_then_validate(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    llama = str(_tiny_yaml(tmp_path, "llama"))
    bert = str(_tiny_yaml(tmp_path, "bert"))
    csv = tmp_path / "e2e.csv"
    code = main(["bench", "--backend", "torch", "--models", f"lenet5,{llama},{bert}",
                 "--torch-device", "cpu", "--seq", "8", "--repeats", "3", "--out", str(csv)])
    out, err = capsys.readouterr()
    assert code == 0, err
    df = read_measurements(csv)
    assert list(df["phase"]) == ["inference", "prefill", "decode", "inference"]
    code = main(["validate", str(csv), "--hw", "h100", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    import json
    rows = json.loads(out)["rows"]
    assert len(rows) == 4 and all(r["error"] is not None and r["predicted_s"] > 0
                                  for r in rows)


@pytest.mark.gpu
def test_cuda_rows_carry_driver_and_cuda_version():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from perfmodel.bench.torch_e2e import run_torch
    df = _check_rows(run_torch([("lenet5", load_model("lenet5"))], repeats=5,
                               device="cuda"), 1)
    assert df["cuda_version"][0] and df["driver_version"][0] and df["dtype"][0] == "fp16"


def test_decode_times_one_token_against_a_cache_of_seq(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from perfmodel.bench.torch_e2e import _cases, build_torch_model
    path = str(_tiny_yaml(tmp_path, "llama"))
    graph = load_model(path)
    with torch.inference_mode():
        model = build_torch_model(path, graph)
        (_, _, _), (phase, decode, reset) = _cases(model, graph, 1, 12, "cpu", "fp32", torch)
        for _ in range(3):  # every timed step sees a KV cache of exactly seq = 12 tokens
            reset()
            out = decode()
            assert out.past_key_values.get_seq_length() == 13
    assert phase == "decode" and out.logits.shape[1] == 1
