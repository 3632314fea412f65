"""Hugging Face config.json import: equals our YAML configs; exact parameter counts per
family against the published figures; active parameters and KV-cache bytes per token worked
by hand; clear errors for bad input.

Fixtures in data/<model>/config.json are the models' config.json files (data/README.md says
where each comes from).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from perfmodel.errors import SpecError
from perfmodel.graph.shape import active_params
from perfmodel.importers import SUPPORTED_MODEL_TYPES, load_hf_config
from perfmodel.zoo.transformer import build_transformer, load_transformer_config, workloads_dir

DATA = Path(__file__).parent / "data"


def _ours(name):
    """(shape, metadata) of our bundled YAML config."""
    return load_transformer_config(workloads_dir() / f"{name}.yaml")


def test_llama_2_7b_import_equals_the_yaml_config():
    shape, meta = load_hf_config(DATA / "llama-2-7b" / "config.json")
    ours, _ = _ours("llama-2-7b")
    # The name is the last part of _name_or_path (meta-llama/Llama-2-7b-hf), not the folder.
    assert meta["name"] == "Llama-2-7b-hf" and meta["family"] == "llama"
    assert "config.json" in meta["source"] and "LlamaForCausalLM" in meta["source"]
    # The shape holds only the architecture, so provenance cannot make them differ.
    assert shape == ours
    assert build_transformer(shape, meta["name"], meta=meta).params == 6_738_415_616


@pytest.mark.parametrize(("folder", "ours"), [
    ("gpt2", "gpt2"), ("bert-base-uncased", "bert-base"), ("mixtral-8x7b", "mixtral-8x7b"),
    ("llama-3.1-8b", "llama-3.1-8b"), ("qwen3-8b", "qwen3-8b"), ("falcon-7b", "falcon-7b"),
    ("gpt-oss-20b", "gpt-oss-20b"), ("deepseek-v3", "deepseek-v3"),
])
def test_import_matches_our_config(folder, ours):
    # A folder works as well as the file inside it. Without _name_or_path the name is the
    # model_type (these fixtures have none), never the folder.
    shape, meta = load_hf_config(DATA / folder)
    our_shape, _ = _ours(ours)
    assert shape == our_shape
    raw = json.loads((DATA / folder / "config.json").read_text())
    assert meta["name"] == raw.get("_name_or_path", raw["model_type"]).split("/")[-1]


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
    assert (g.name, g.shape, g.params) == ("Llama-2-7b-hf", shape, 6_738_415_616)
    assert g.meta["family"] == "llama"
    assert load_model(shape, fused_attention=False).attention_kernels == "unfused"


def _write(tmp_path, **raw):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    return path


def test_unknown_model_type_names_the_supported_ones_and_the_yaml_way(tmp_path):
    with pytest.raises(SpecError) as err:
        load_hf_config(_write(tmp_path, model_type="rwkv"))
    assert "'rwkv' is not supported" in str(err.value)
    for model_type in SUPPORTED_MODEL_TYPES:
        assert model_type in err.value.hint
    assert "workloads/README.md" in err.value.hint


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SpecError, match="no Hugging Face config at .*nowhere"):
        load_hf_config(tmp_path / "nowhere")
    with pytest.raises(SpecError, match="a folder with no config.json"):
        load_hf_config(tmp_path)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"), (b"  \n", "the file is empty"),
    (b"\x00\x01safetensors", "a binary file"), (b'{"model_type": "\xff"}', "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_bad_files_are_one_clear_error_each(tmp_path, content, message):
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(SpecError, match=message):
        load_hf_config(tmp_path)


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


def test_unknown_fields_warn_once_in_one_line(tmp_path, caplog):
    # Keys that change no cost (token ids, rope, dropout) are silent; others are named in
    # one warning line, and the import still succeeds.
    raw = json.loads((DATA / "llama-2-7b" / "config.json").read_text())
    with caplog.at_level(logging.WARNING, logger="perfmodel.importers.hf_config"):
        load_hf_config(_write(tmp_path, **raw, zeta_gate=1, alpha_mode="x"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "alpha_mode, zeta_gate" in lines[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="perfmodel.importers.hf_config"):
        load_hf_config(DATA / "llama-2-7b")
    assert not caplog.records


# --- every family: parameters against the published figure --------------------------------

B = 1_000_000_000
# folder -> (published total, relative tolerance, where the figure comes from and why the
# tolerance). tol 0: the figure is exact (the Hugging Face safetensors total, bf16 bytes / 2,
# as the model page shows it, or a card's exact count).
PUBLISHED = {
    "llama-2-7b": (6_738_415_616, 0, "HF meta-llama/Llama-2-7b-hf safetensors total"),
    # Index total_size 16,060,522,496 bytes / 2 (bf16); the same index is quoted in the
    # transformers docs (models page, "total_size": 16060522496).
    "llama-3.1-8b": (8_030_261_248, 0, "HF meta-llama/Llama-3.1-8B safetensors total"),
    "llama-3.1-405b": (405_853_388_800, 0, "HF meta-llama/Llama-3.1-405B safetensors total"),
    # Index total_size 14,483,464,192 bytes / 2 (bf16), as quoted in several public copies.
    "mistral-7b-v0.1": (7_241_732_096, 0, "HF mistralai/Mistral-7B-v0.1 safetensors total"),
    "mixtral-8x7b": (46_702_792_704, 0, "HF mistralai/Mixtral-8x7B-v0.1 safetensors total"),
    # Index total_size 15,231,233,024 bytes / 2 (bf16), as quoted in public copies.
    "qwen2-7b": (7_615_616_512, 0, "HF Qwen/Qwen2-7B safetensors total"),
    # Qwen2-57B-A14B's card gives "57B" and the Hub "57.4B": rounded to 0.1B (0.1 %).
    "qwen2-57b-a14b": (57.4 * B, 0.001, "HF Qwen/Qwen2-57B-A14B: 57.4B, rounded"),
    "qwen3-8b": (8_190_735_360, 0, "HF Qwen/Qwen3-8B safetensors total"),
    "qwen3-30b-a3b": (30_532_122_624, 0, "HF Qwen/Qwen3-30B-A3B safetensors total"),
    "gemma-7b": (8_537_680_896, 0, "HF google/gemma-7b safetensors total"),
    "gemma-2-9b": (9_241_705_984, 0, "HF google/gemma-2-9b safetensors total"),
    # Index total_size 7,642,159,104 bytes / 2 (bf16), as quoted in public copies.
    "phi-3-mini-4k": (3_821_079_552, 0, "HF microsoft/Phi-3-mini-4k-instruct safetensors total"),
    "deepseek-v2-lite": (15_706_484_224, 0, "HF deepseek-ai/DeepSeek-V2-Lite safetensors total"),
    # The card's "671B" main model (the Hub's 685B adds the 14B MTP module, left out here):
    # rounded to 1B, ours is 0.004 % above.
    "deepseek-v3": (671 * B, 0.001, "DeepSeek-V3 card: 671B main model, rounded"),
    # OpenAI's gpt-oss card, Table 1: 20.91B, rounded to 10M (0.05 %).
    "gpt-oss-20b": (20.91 * B, 0.001, "gpt-oss model card Table 1: 20.91B, rounded"),
    "mpt-7b": (6_649_286_656, 0, "HF mosaicml/mpt-7b safetensors total"),
    "falcon-7b": (6_921_720_704, 0, "HF tiiuae/falcon-7b safetensors total"),
    # NVIDIA's Minitron-4B-Base card: 4.19B, rounded to 10M (0.1 %).
    "minitron-4b": (4.19 * B, 0.001, "nvidia/Minitron-4B-Base card: 4.19B, rounded"),
    # The next four from huggingface/safetensors@01b9ce07 temp.md (F32 element counts of the
    # Hub model.safetensors files). gpt2's file holds 137,022,720: the weights plus the 12
    # causal-mask buffers h.*.attn.bias (1 x 1 x 1024 x 1024 each), which are no parameters.
    "gpt2": (137_022_720 - 12 * 1024 * 1024, 0,
             "HF gpt2 safetensors 137,022,720 less 12 attn.bias mask buffers"),
    # bert-base-uncased's file holds 110,106,428 with the pretraining heads: MLM transform
    # 768 x 768 + 768, its LayerNorm 2 x 768, decoder bias 30,522 (decoder weight tied), NSP
    # 768 x 2 + 2. BertModel with pooler is the rest; the same table lists BertModel-only
    # checkpoints of this shape (cambridgeltl/SapBERT-from-PubMedBERT-fulltext) at 109,482,240.
    "bert-base-uncased": (110_106_428 - (768 * 768 + 768 + 2 * 768 + 30522 + 768 * 2 + 2), 0,
                          "HF bert-base-uncased safetensors less the pretraining heads"),
    # t5-base's file holds 222,903,936: it includes a stray decoder.block.0.layer.1
    # EncDecAttention.relative_attention_bias (32 buckets x 12 heads = 384) that transformers'
    # T5 models list in _keys_to_ignore_on_load_unexpected and never load.
    "t5-base": (222_903_936 - 32 * 12, 0,
                "HF t5-base safetensors 222,903,936 less the unused 32 x 12 bias"),
    "flan-t5-base": (247_577_856, 0, "HF google/flan-t5-base safetensors total"),
}


@pytest.mark.parametrize("folder", sorted(PUBLISHED))
def test_params_equal_the_published_count(folder):
    published, tol, _ = PUBLISHED[folder]
    shape, meta = load_hf_config(DATA / folder)
    params = build_transformer(shape, meta["name"], meta=meta).params
    if tol:
        assert params == pytest.approx(published, rel=tol)
    else:
        assert params == published


def _params(folder):
    shape, meta = load_hf_config(DATA / folder)
    g = build_transformer(shape, meta["name"], meta=meta)
    return shape, g


def test_vision_language_configs_give_their_text_tower():
    # Llama 4 Scout's card gives 109B total / 17B active, with its vision encoder; we build
    # the text tower: 48 MoE layers of attention (q, o 5120^2; k, v 5120 x 1024), 16 experts
    # and 1 shared expert of 3 x 5120 x 8192, a router 16 x 5120 and 2 norms; embedding and
    # head 2 x 202048 x 5120; final norm. The card's figures round to 1B (and add the vision
    # encoder), so the by-hand count is the check, the card within 1.5 %.
    shape, g = _params("llama-4-scout-17b-16e")
    expert = 3 * 5120 * 8192
    layer = 2 * 5120**2 + 2 * 5120 * 1024 + 17 * expert + 16 * 5120 + 2 * 5120
    assert g.params == 48 * layer + 2 * 202048 * 5120 + 5120 == 107_769_861_120
    assert g.params == pytest.approx(109 * B, rel=0.015)
    active = 48 * (layer - 15 * expert) + 2 * 202048 * 5120 + 5120
    assert active_params(g) == active == 17_172_894_720
    assert active == pytest.approx(17 * B, rel=0.015)
    assert "text_config only" in g.meta["source"]
    # Gemma 3 4B: 34 layers of q 2560 x 2048, k and v 2560 x 1024, o 2048 x 2560, q/k norms
    # 2 x 256, MLP 3 x 2560 x 10240, four norms; embedding 262208 x 2560 (tied); final norm.
    # The card's 4B (4.3B on the Hub) includes the SigLIP encoder, so only the hand count.
    shape, g = _params("gemma-3-4b")
    layer = 2 * 2560 * 2048 + 2 * 2560 * 1024 + 512 + 3 * 2560 * 10240 + 4 * 2560
    assert g.params == 34 * layer + 262208 * 2560 + 2560 == 3_880_263_168
    assert [shape.attention_type(i) for i in range(6)] == ["sliding_attention"] * 5 + [
        "full_attention"]


# folder -> (ours by hand, the card's active figure, tolerance and why)
ACTIVE = {
    # Mixtral: 46.7B minus 6 of 8 experts (3 x 4096 x 14336 each) in 32 layers; card 12.9B.
    "mixtral-8x7b": (46_702_792_704 - 32 * 6 * 3 * 4096 * 14336, 12.9 * B, 0.005),
    # Qwen3-30B-A3B: 30.5B minus 120 of 128 experts (3 x 2048 x 768) in 48 layers; card
    # "3.3B activated", rounded to 0.1B (2 %).
    "qwen3-30b-a3b": (30_532_122_624 - 48 * 120 * 3 * 2048 * 768, 3.3 * B, 0.02),
    # Qwen2-57B-A14B: minus 56 of 64 experts (3 x 3584 x 2560) in 28 layers; card "A14B".
    "qwen2-57b-a14b": (57_408_658_944 - 28 * 56 * 3 * 3584 * 2560, 14 * B, 0.02),
    # DeepSeek-V3: minus 248 of 256 experts (3 x 7168 x 2048) in 58 layers; card "37B".
    "deepseek-v3": (671_026_419_200 - 58 * 248 * 3 * 7168 * 2048, 37 * B, 0.02),
}


@pytest.mark.parametrize("folder", sorted(ACTIVE))
def test_active_params_per_token(folder):
    ours, card, tol = ACTIVE[folder]
    _, g = _params(folder)
    assert active_params(g) == ours
    assert ours == pytest.approx(card, rel=tol)


def test_gpt_oss_active_params_without_the_embedding_match_the_card():
    # gpt-oss-20b: attention 2880 -> 64 x 64 (q) and 8 x 64 (k, v) with biases, o back,
    # 64 sinks; 32 experts of gate_up (2880 x 5760 + 5760) and down (2880 x 2880 + 2880);
    # a router 32 x 2880 + 32; 2 norms. The card (Table 1) counts 3.61B active without the
    # embedding table, so ours (which counts the table, as Mixtral's card does) minus it.
    shape, g = _params("gpt-oss-20b")
    attn = (2880 * 4096 + 4096) + 2 * (2880 * 512 + 512) + (4096 * 2880 + 2880) + 64
    expert = 2880 * 5760 + 5760 + 2880 * 2880 + 2880
    layer = attn + 32 * expert + 32 * 2880 + 32 + 2 * 2880
    assert g.params == 24 * layer + 2 * 201088 * 2880 + 2880 == 20_914_757_184
    active = active_params(g) - 201088 * 2880
    assert active == 24 * (layer - 28 * expert) + 201088 * 2880 + 2880 == 3_608_307_264
    assert active == pytest.approx(3.61 * B, rel=0.001)


# folder -> fp16 KV-cache bytes one token adds (within every sliding window / chunk),
# worked by hand: GQA 2 (K, V) x layers x kv heads x head_dim x 2 bytes; MLA layers x
# (kv_lora_rank + qk_rope_head_dim) x 2 bytes.
KV_BYTES = {
    "llama-2-7b": 2 * 32 * 32 * 128 * 2,          # 524,288: MHA
    "llama-3.1-8b": 2 * 32 * 8 * 128 * 2,         # 131,072: GQA 8
    "llama-3.1-405b": 2 * 126 * 8 * 128 * 2,      # 516,096
    "llama-4-scout-17b-16e": 2 * 48 * 8 * 128 * 2,  # 196,608
    "mistral-7b-v0.1": 2 * 32 * 8 * 128 * 2,      # 131,072
    "mixtral-8x7b": 2 * 32 * 8 * 128 * 2,         # 131,072
    "qwen2-7b": 2 * 28 * 4 * 128 * 2,             # 57,344
    "qwen2-57b-a14b": 2 * 28 * 4 * 128 * 2,       # 57,344
    "qwen3-8b": 2 * 36 * 8 * 128 * 2,             # 147,456
    "qwen3-30b-a3b": 2 * 48 * 4 * 128 * 2,        # 98,304
    "gemma-7b": 2 * 28 * 16 * 256 * 2,            # 458,752: head_dim 256
    "gemma-2-9b": 2 * 42 * 8 * 256 * 2,           # 344,064
    "gemma-3-4b": 2 * 34 * 4 * 256 * 2,           # 139,264
    "phi-3-mini-4k": 2 * 32 * 32 * 96 * 2,        # 393,216
    "deepseek-v2-lite": 27 * (512 + 64) * 2,      # 31,104: MLA latent
    "deepseek-v3": 61 * (512 + 64) * 2,           # 70,272
    "gpt-oss-20b": 2 * 24 * 8 * 64 * 2,           # 49,152
    "mpt-7b": 2 * 32 * 32 * 128 * 2,              # 524,288
    "falcon-7b": 2 * 32 * 1 * 64 * 2,             # 8,192: multi-query
    "minitron-4b": 2 * 32 * 8 * 128 * 2,          # 131,072
    "gpt2": 2 * 12 * 12 * 64 * 2,                 # 36,864
    "bert-base-uncased": 0, "t5-base": 0, "flan-t5-base": 0,  # no decoder KV cache
}


@pytest.mark.parametrize("folder", sorted(KV_BYTES))
def test_kv_cache_bytes_per_token(folder):
    shape, _ = load_hf_config(DATA / folder)
    assert shape.kv_elements_per_token() * 2 == KV_BYTES[folder]


def test_every_fixture_has_a_published_count_and_a_kv_figure():
    folders = {p.name for p in DATA.iterdir() if p.is_dir()}
    assert folders == set(PUBLISHED) | {"llama-4-scout-17b-16e", "gemma-3-4b"} == set(KV_BYTES)
    readme = (DATA / "README.md").read_text()
    assert all(f"`{f}/`" in readme for f in folders)


def test_family_structure_read_from_the_configs():
    ds, _ = load_hf_config(DATA / "deepseek-v3")
    assert ds.is_mla and (ds.q_lora_rank, ds.kv_lora_rank) == (1536, 512)
    assert [ds.is_moe_layer(i) for i in (0, 2, 3, 60)] == [False, False, True, True]
    assert ds.num_nextn_predict_layers == 1 and ds.router_bias
    oss, _ = load_hf_config(DATA / "gpt-oss-20b")
    assert [oss.attention_span(i) for i in (0, 1)] == [128, None] and oss.attention_sinks
    scout, _ = load_hf_config(DATA / "llama-4-scout-17b-16e")
    assert [scout.uses_rope(i) for i in range(4)] == [True, True, True, False]
    assert [scout.attention_span(i) for i in range(4)] == [8192, 8192, 8192, None]
    g2, _ = load_hf_config(DATA / "gemma-2-9b")
    assert g2.post_norms and g2.scale_embeddings and g2.tie_word_embeddings
    assert [g2.attention_type(i) for i in (0, 1)] == ["sliding_attention", "full_attention"]
    q2, _ = load_hf_config(DATA / "qwen2-7b")  # use_sliding_window false: no window
    assert q2.sliding_window is None and q2.attention_bias and q2.attention_out_bias is False
    falcon, _ = load_hf_config(DATA / "falcon-7b")
    assert falcon.parallel_attention and falcon.num_key_value_heads == 1
    t5, meta = load_hf_config(DATA / "flan-t5-base")
    assert (t5.architecture, t5.mlp, t5.tie_word_embeddings) == ("encoder-decoder", "gated",
                                                                  False)
    assert meta["name"] == "flan-t5-base"
