"""Hugging Face config.json import: equals our YAML configs; clear errors for bad input.

Fixtures in data/ are the models' config.json files as published on the Hugging Face Hub
(meta-llama/Llama-2-7b-hf, openai-community/gpt2, google-bert/bert-base-uncased,
mistralai/Mixtral-8x7B-v0.1).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perfmodel.errors import SpecError
from perfmodel.importers import SUPPORTED_MODEL_TYPES, load_hf_config
from perfmodel.zoo.transformer import build_transformer, load_transformer_config, workloads_dir

DATA = Path(__file__).parent / "data"


def _ours(name):
    """(shape, metadata) of our bundled YAML config."""
    return load_transformer_config(workloads_dir() / f"{name}.yaml")


def test_llama_2_7b_import_equals_the_yaml_config():
    shape, meta = load_hf_config(DATA / "llama-2-7b" / "config.json")
    ours, _ = _ours("llama-2-7b")
    assert meta["name"] == "llama-2-7b" and meta["family"] == "llama"
    assert "config.json" in meta["source"] and "LlamaForCausalLM" in meta["source"]
    # The shape holds only the architecture, so provenance cannot make them differ.
    assert shape == ours
    assert build_transformer(shape, meta["name"], meta=meta).params == 6_738_415_616


@pytest.mark.parametrize(("folder", "ours"), [
    ("gpt2", "gpt2"), ("bert-base-uncased", "bert-base"), ("mixtral-8x7b", "mixtral-8x7b"),
])
def test_import_matches_our_config(folder, ours):
    # A folder works as well as the file inside it.
    shape, meta = load_hf_config(DATA / folder)
    our_shape, our_meta = _ours(ours)
    assert shape == our_shape
    assert meta["name"] == folder
    assert build_transformer(shape, meta["name"]).params == our_meta["reference_params"]


def test_gpt2_defaults_fill_what_config_json_leaves_out():
    # openai-community/gpt2 has no n_inner (-> 4 * n_embd) and no tie_word_embeddings
    # (GPT2Config's default: tied).
    c, meta = load_hf_config(DATA / "gpt2", name="my-gpt2")
    assert meta["name"] == "my-gpt2" and meta["family"] == "gpt2"
    assert c.intermediate_size == 4 * 768 and c.tie_word_embeddings is True


def test_imported_shape_builds_through_load_model():
    # load_model takes the imported ModelShape directly, with build_transformer's options.
    from perfmodel.zoo.registry import load_model

    shape, meta = load_hf_config(DATA / "llama-2-7b")
    g = load_model(shape, name=meta["name"], meta=meta)
    assert (g.name, g.shape, g.params) == ("llama-2-7b", shape, 6_738_415_616)
    assert g.meta["family"] == "llama"
    assert load_model(shape, fused_attention=False).attention_kernels == "unfused"


def _write(tmp_path, **raw):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_unknown_model_type_names_the_supported_ones(tmp_path):
    with pytest.raises(SpecError) as err:
        load_hf_config(_write(tmp_path, model_type="t5"))
    assert "'t5' is not supported" in str(err.value)
    for model_type in SUPPORTED_MODEL_TYPES:
        assert model_type in err.value.hint


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SpecError, match="no Hugging Face config at .*nowhere"):
        load_hf_config(tmp_path / "nowhere")


def test_missing_keys_are_all_listed(tmp_path):
    raw = json.loads((DATA / "llama-2-7b" / "config.json").read_text())
    del raw["hidden_size"], raw["vocab_size"]
    with pytest.raises(SpecError) as err:
        load_hf_config(_write(tmp_path, **raw))
    assert "2 problem(s)" in str(err.value)
    assert "hidden_size: missing" in str(err.value) and "vocab_size: missing" in str(err.value)


def test_bad_json_and_unsupported_activation(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_hf_config(bad)
    raw = json.loads((DATA / "llama-2-7b" / "config.json").read_text())
    with pytest.raises(SpecError, match="hidden_act: activation 'mish' is not supported"):
        load_hf_config(_write(tmp_path, **(raw | {"hidden_act": "mish"})))
