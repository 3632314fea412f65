"""Transformers from configs: exact parameter counts, KV cache, attention MACs per phase, MoE,
config validation and round trips. Hand-worked numbers are derived in the comments."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from perfmodel.errors import SpecError, UnknownNameError
from perfmodel.graph.costs import cost_of
from perfmodel.graph.shape import ModelShape
from perfmodel.zoo import transformer
from perfmodel.zoo.transformer import (
    CONFIG_NAMES,
    META_FIELDS,
    MODELS,
    REFERENCE,
    build_transformer,
    load_transformer_config,
    read_transformer_config,
    workloads_dir,
)

WIDTHS = {"act": 2, "weight": 2, "kv": 2, "index": 4}
DECODE = {"B": 1, "S": 1, "T": 4096, "L": 1}
PREFILL = {"B": 1, "S": 4096, "T": 4096, "L": 1}


def _config(name: str) -> ModelShape:
    return load_transformer_config(workloads_dir() / f"{name}.yaml")[0]


def _file(name: str) -> dict:
    """A bundled config file as parsed YAML: the shape keys plus name, family, source."""
    return yaml.safe_load((workloads_dir() / f"{name}.yaml").read_text())


def _macs(graph, dims, layer=None, kinds=None) -> float:
    return sum(cost_of(op.resolve(dims), WIDTHS).macs for op in graph.ops
               if (layer is None or op.layer == layer) and (kinds is None or op.kind in kinds))


# --- parameter counts -------------------------------------------------------------------

# Each REFERENCE entry (the config's reference_params / reference_params_source) is the
# Hugging Face safetensors total, re-checked by instantiating the transformers class
# (LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM, GPT2LMHeadModel, BertModel)
# on the meta device from the same YAML values.
# Rounded published figures (each file's reference_params_source says so), with the
# tolerance their rounding allows; llama-4-scout's card counts the vision encoder too, so it
# has none (tests/importers/test_hf_config.py checks its text tower by hand).
ROUNDED = {"gpt3-175b": 0.005, "deepseek-v3": 0.001, "gpt-oss-20b": 0.001,
           "gpt-oss-120b": 0.001}


@pytest.mark.parametrize("name", [n for n in CONFIG_NAMES
                                  if n not in ROUNDED and n != "llama-4-scout"])
def test_params_equal_reference(name):
    assert MODELS[name]().params == REFERENCE[name]["params"]


@pytest.mark.parametrize("name", sorted(set(ROUNDED) - {"gpt3-175b"}))
def test_params_within_the_rounding_of_the_published_figure(name):
    assert MODELS[name]().params == pytest.approx(REFERENCE[name]["params"], rel=ROUNDED[name])


def test_gpt3_params_within_half_percent_of_published():
    # Brown et al. 2020 Table 2.1 publishes "175.0B", a rounded figure, so exactness is not
    # possible. By hand: 96 layers * (12 d^2 + 13 d) with d = 12288, plus token (50257 d),
    # position (2048 d) embeddings and ln_f (2 d) = 174,604,259,328 (0.23 % below 175.0e9).
    d = 12288
    by_hand = 96 * (12 * d * d + 13 * d) + 50257 * d + 2048 * d + 2 * d
    params = MODELS["gpt3-175b"]().params
    assert params == by_hand == 174_604_259_328
    assert params == pytest.approx(REFERENCE["gpt3-175b"]["params"], rel=0.005)


def test_llama_2_7b_params_by_hand():
    # One layer: q,k,v,o 4 * 4096^2 + gate/up/down 3 * 4096 * 11008 + 2 RMSNorms 2 * 4096
    # = 67,108,864 + 135,266,304 + 8,192 = 202,383,360.
    # Model: 32 layers + embed and lm_head 2 * 32000 * 4096 + final norm 4096 = 6,738,415,616.
    g = MODELS["llama-2-7b"]()
    layer0 = sum(w.numel for op in g.ops if op.layer == "layers.0" for w in op.weights)
    assert layer0 == 202_383_360
    assert g.params == 32 * 202_383_360 + 2 * 32000 * 4096 + 4096 == 6_738_415_616


def test_tied_lm_head_counts_no_params_but_reads_its_weight():
    # GPT-2: lm_head shares wte (50257 x 768): 0 params, but its 50257*768*2 bytes are read.
    g = MODELS["gpt2"]()
    head = cost_of(g.op("lm_head").resolve(DECODE), WIDTHS)
    assert g.op("lm_head").tied
    assert head.params == 0
    assert head.weight_bytes == 50257 * 768 * 2


def test_every_workload_transformer_config_is_registered():
    on_disk = set()
    for path in workloads_dir().glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "architecture" in data and "hidden_size" in data:
            on_disk.add(path.stem)
    assert on_disk == set(CONFIG_NAMES)
    assert set(REFERENCE) == set(MODELS) == set(CONFIG_NAMES)


# --- KV cache, attention and phases -----------------------------------------------------

def test_kv_cache_writes_new_tokens_and_views_whole_cache():
    # Llama-2-70B: 8 KV heads of 128. The write copies S new tokens (role kv, inference only);
    # the attention reads a (B, 8, T, 128) view of the cache.
    g = MODELS["llama-2-70b"]()
    write, view = g.op("layers.0.self_attn.k_cache_write"), g.op("layers.0.self_attn.k_cache")
    assert write.kind == "copy" and write.attr("inference_only") is True
    assert write.outputs[0].shape == ("B", 8, "S", 128) and write.outputs[0].role == "kv"
    assert view.outputs[0].shape == ("B", 8, "T", 128) and view.outputs[0].role == "kv"
    attn = g.op("layers.0.self_attn.attention")
    assert [t.shape for t in attn.inputs] == [("B", 64, "S", 128), ("B", 8, "T", 128),
                                               ("B", 8, "T", 128)]
    assert attn.attr("causal") is True


def test_kv_cache_write_moves_only_new_tokens():
    # Decode: 1 token * 8 heads * 128 dims * 2 bytes = 2048 bytes in and out per K write.
    op = MODELS["llama-2-70b"]().op("layers.0.self_attn.k_cache_write").resolve(DECODE)
    cost = cost_of(op, WIDTHS)
    assert cost.input_bytes == cost.output_bytes == 8 * 128 * 2


def test_decode_and_prefill_attention_macs_from_one_graph():
    # Llama-2-7B layer 0, fused attention: 2 matmuls * H=32 * d=128 * pairs.
    # Decode (S=1, T=4096): pairs = T = 4096 -> 33,554,432 MACs.
    # Prefill (S=T=4096, causal): pairs = T(T+1)/2 = 8,390,656 -> 68,736,253,952 MACs.
    g = MODELS["llama-2-7b"]()
    kinds = {"attention"}
    assert _macs(g, DECODE, "layers.0", kinds) == 2 * 32 * 128 * 4096 == 33_554_432
    assert _macs(g, PREFILL, "layers.0", kinds) == 2 * 32 * 128 * (4096 * 4097 // 2)
    assert _macs(g, PREFILL, "layers.0", kinds) == 68_736_253_952


def test_unfused_attention_has_the_same_macs_as_fused():
    fused = MODELS["llama-2-7b"]()
    unfused = MODELS["llama-2-7b"](fused_attention=False)
    score_ctx = {"attn_score", "attn_context"}
    assert _macs(unfused, PREFILL, "layers.0", score_ctx) == _macs(fused, PREFILL, "layers.0",
                                                                    {"attention"})
    assert unfused.op("layers.0.self_attn.scores").outputs[0].shape == ("B", 32, "S", "T")


def test_decode_linear_macs_equal_matmul_weights():
    # At decode every linear weight is used once for the one new token (B=1, S=L=1):
    # MACs = params - token embedding (a gather, 32000*4096) - 65 RMSNorm weights of 4096
    #      = 6,738,415,616 - 131,072,000 - 266,240 = 6,607,077,376.
    g = MODELS["llama-2-7b"]()
    assert _macs(g, DECODE, kinds={"linear"}) == 6_607_077_376


def test_lm_head_only_computes_logits_for_l_tokens():
    g = MODELS["llama-2-7b"]()
    assert g.op("lm_head").inputs[0].shape == ("B", "L", 4096)
    # Training (L = S = 2048) vs inference (L = 1): 2048x the head's MACs.
    train = _macs(g, {"B": 1, "S": 2048, "T": 2048, "L": 2048}, kinds={"linear"})
    infer = _macs(g, {"B": 1, "S": 2048, "T": 2048, "L": 1}, kinds={"linear"})
    assert train - infer == 2047 * 32000 * 4096


def test_gqa_shrinks_the_kv_projections():
    # Llama-2-70B: K projection maps 8192 -> 8 KV heads * 128 = 1024 outputs, no bias.
    g = MODELS["llama-2-70b"]()
    k_proj = g.op("layers.0.self_attn.k_proj")
    assert [w.shape for w in k_proj.weights] == [(1024, 8192)]
    assert cost_of(k_proj.resolve(DECODE), WIDTHS).macs == 8192 * 1024
    assert g.op("layers.0.self_attn.q_proj").weights[0].shape == (8192, 8192)


def test_moe_expert_macs_are_top_k_over_e_of_dense():
    # Mixtral: each token's 2 routed copies run through w1 (4096 -> 14336). With 4096
    # tokens: 4096 * 2 * 4096 * 14336 MACs, vs 4096 * 8 * 4096 * 14336 for all 8 experts.
    g = MODELS["mixtral-8x7b"]()
    w1 = g.op("layers.0.block_sparse_moe.experts.w1")
    assert w1.inputs[0].shape == ("B", "S", 2, 4096)
    assert w1.weights[0].shape == (8, 14336, 4096)
    macs = cost_of(w1.resolve(PREFILL), WIDTHS).macs
    dense_all_experts = 4096 * 8 * 4096 * 14336
    assert macs == 4096 * 2 * 4096 * 14336
    assert macs / dense_all_experts == 2 / 8
    combine = g.op("layers.0.block_sparse_moe.combine")
    assert combine.inputs[0].shape == ("B", "S", 2, 4096)
    assert combine.outputs[0].shape == ("B", "S", 4096)
    # Router: 4096 -> 8 experts, no bias.
    assert [w.shape for w in g.op("layers.0.block_sparse_moe.gate").weights] == [(8, 4096)]


TINY_MOE = {"architecture": "decoder", "vocab_size": 100, "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "max_position_embeddings": 256, "position_embedding": "rope", "norm": "rmsnorm",
            "norm_position": "pre", "activation": "silu", "mlp": "gated",
            "num_local_experts": 4, "num_experts_per_tok": 2}


def test_shared_expert_adds_one_gated_mlp_per_layer():
    # num_shared_experts=1 adds one SwiGLU MLP of intermediate_size beside the routed
    # experts (DeepSeekMoE): gate and up 64 -> 128, down 128 -> 64, no bias
    # = 3 * 64 * 128 = 24,576 parameters per layer, 2 layers -> 49,152 more.
    routed = build_transformer(ModelShape.from_dict(TINY_MOE), "moe")
    shared = build_transformer(ModelShape.from_dict(TINY_MOE | {"num_shared_experts": 1}),
                               "moe-shared")
    assert shared.params - routed.params == 2 * 3 * 64 * 128 == 49_152
    assert shared.stage_params.layer - routed.stage_params.layer == 3 * 64 * 128
    pre = "layers.0.block_sparse_moe.shared_experts."
    assert [w.shape for w in shared.op(pre + "gate_proj").weights] == [(128, 64)]
    assert [w.shape for w in shared.op(pre + "down_proj").weights] == [(64, 128)]
    # Every token runs it (not k routed copies): prefill of 10 tokens through gate, up and
    # down = 10 * 3 * 64 * 128 = 245,760 MACs.
    dims = {"B": 1, "S": 10, "T": 10, "L": 1}
    assert shared.op(pre + "gate_proj").inputs[0].shape == ("B", "S", 64)
    assert _macs(shared, dims, "layers.0", {"linear"}) - _macs(
        routed, dims, "layers.0", {"linear"}) == 10 * 3 * 64 * 128 == 245_760
    assert not any("shared_experts" in op.name for op in routed.ops)


def test_bert_is_a_non_causal_post_norm_encoder_with_pooler():
    g = MODELS["bert-base"]()
    attn = g.op("layers.0.self_attn.attention")
    assert attn.attr("causal") is False
    assert attn.inputs[1].shape == ("B", 12, "S", 64) and attn.inputs[1].role == "act"
    names = {op.name for op in g.ops}
    assert "lm_head" not in names and not any("cache" in n for n in names)
    assert g.op("pooler.dense").outputs[0].shape == ("B", 768)
    assert g.op("pooler.activation").kind == "tanh"
    # Embeddings: word + token type + position summed in one add (2 adds per element).
    assert len(g.op("embeddings.add").inputs) == 3
    assert g.op("embeddings.layernorm").kind == "layernorm"
    assert g.meta["is_llm"] is False


def test_meta_describes_the_model():
    g = MODELS["llama-3-8b"]()
    assert g.meta["is_llm"] is True
    assert g.meta["default_seq"] == 4096  # max_position_embeddings 8192, capped at 4096
    s = g.shape
    assert (s.num_hidden_layers, s.num_attention_heads, s.num_key_value_heads,
            s.head_dim, s.hidden_size) == (32, 32, 8, 128, 4096)
    assert g.shape.to_dict()["vocab_size"] == 128256
    assert g.name == "llama-3-8b"
    assert g.meta["default_batch"] == 1 and g.meta["family"] == "llama"
    assert MODELS["gpt2"]().meta["default_seq"] == 1024


def test_no_kv_cache_attends_over_new_tokens_only():
    g = MODELS["mistral-7b"](kv_cache=False)
    assert not any("cache" in op.name for op in g.ops)
    assert g.op("layers.0.self_attn.attention").inputs[1].shape == ("B", 8, "S", 128)


# --- config files -----------------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_config_round_trips(name):
    # A file is shape + metadata: writing both back gives the same pair, and the shape
    # alone round-trips through ModelShape.
    c, meta = load_transformer_config(workloads_dir() / f"{name}.yaml")
    assert ModelShape.from_dict(c.to_dict()) == c
    assert read_transformer_config(c.to_dict() | meta) == (c, meta)
    assert meta["name"] == name


def test_file_metadata_is_split_from_the_shape():
    c, meta = read_transformer_config(_file("llama-2-7b"), where="llama-2-7b.yaml")
    assert set(meta) <= set(META_FIELDS) and {"name", "family", "source"} <= set(meta)
    assert meta["reference_params"] == 6_738_415_616
    assert not set(META_FIELDS) & set(c.to_dict())
    # ModelShape alone skips the metadata keys only when told to.
    assert ModelShape.from_dict(_file("llama-2-7b"), ignore=META_FIELDS) == c
    with pytest.raises(SpecError, match="name: unknown key"):
        ModelShape.from_dict(_file("llama-2-7b"))


def test_defaults_fill_kv_heads_and_head_dim():
    d = _config("gpt2").to_dict()
    d.pop("num_key_value_heads")
    d.pop("head_dim")
    c = ModelShape.from_dict(d)
    assert (c.num_key_value_heads, c.head_dim) == (12, 64)


def test_validation_lists_every_problem_at_once():
    d = _file("llama-2-7b")
    d["num_layers"] = 32          # unknown key, close to num_hidden_layers
    d["norm"] = "rms"             # not a choice
    d["hidden_size"] = -1         # not positive
    del d["mlp"]                  # required
    with pytest.raises(SpecError) as err:
        read_transformer_config(d, where="bad.yaml")
    msg = str(err.value)
    assert "bad.yaml" in msg and "4 problem(s)" in msg
    assert "num_layers: unknown key" in msg and "num_hidden_layers" in msg
    assert "norm: 'rms' is not one of layernorm, rmsnorm" in msg
    assert "hidden_size: must be an integer >= 1, got -1" in msg
    assert "mlp: missing (required)" in msg


def test_validation_lists_shape_and_metadata_problems_together():
    # One SpecError for both halves of a file: a missing name (metadata), a reference
    # count without its source (metadata) and a bad head count (shape value).
    d = _file("gpt2")
    del d["name"]
    del d["reference_params_source"]
    d["num_attention_heads"] = 0
    with pytest.raises(SpecError) as err:
        read_transformer_config(d, where="gpt2.yaml")
    msg = str(err.value)
    assert "3 problem(s)" in msg
    assert "name: missing (required)" in msg
    assert "reference_params_source: missing (required with reference_params)" in msg
    assert "num_attention_heads: must be an integer >= 1, got 0" in msg


def test_validation_checks_fields_against_each_other():
    d = _config("mixtral-8x7b").to_dict()
    d.update(num_key_value_heads=5, num_experts_per_tok=9)
    with pytest.raises(SpecError) as err:
        ModelShape.from_dict(d)
    assert "does not divide num_attention_heads 32" in str(err.value)
    assert "num_experts_per_tok: must be 1..8" in str(err.value)


def test_validation_rejects_booleans_as_integers_and_non_mappings():
    d = _config("gpt2").to_dict() | {"num_hidden_layers": True}
    with pytest.raises(SpecError, match="num_hidden_layers: must be an integer"):
        ModelShape.from_dict(d)
    with pytest.raises(SpecError, match="expected a mapping"):
        ModelShape.from_dict(["not", "a", "mapping"])
    with pytest.raises(SpecError, match="expected a mapping"):
        read_transformer_config(["not", "a", "mapping"])


def test_load_names_the_file_on_errors(tmp_path):
    with pytest.raises(SpecError, match="missing.yaml"):
        load_transformer_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="bad.yaml"):
        load_transformer_config(bad)
    partial = tmp_path / "partial.yaml"
    partial.write_text("name: x\n")
    with pytest.raises(SpecError, match="partial.yaml.*hidden_size: missing"):
        load_transformer_config(partial)


def test_build_from_an_edited_config():
    # A 2-layer Llama-2-7B: 2 * 202,383,360 + 2 * 32000 * 4096 + 4096 (see above).
    c = dataclasses.replace(_config("llama-2-7b"), num_hidden_layers=2)
    g = build_transformer(c, "llama-2-7b-2l")
    assert g.params == 2 * 202_383_360 + 2 * 32000 * 4096 + 4096
    assert g.name == "llama-2-7b-2l" and g.shape == c


def test_unknown_reference_name():
    with pytest.raises(KeyError):
        REFERENCE["llama-9"]
    with pytest.raises(UnknownNameError, match="did you mean"):
        transformer._named_config("llama-2-7")


def test_readme_example_config_builds():
    # workloads/README.md's minimal example: 2 layers of q (64*64), k and v (64*32 each,
    # 2 KV heads of 16), o (64*64), 3 MLP linears (3*64*256), 2 norms (2*64);
    # plus embed and head 2 * 1000*64 and the final norm 64.
    readme = (workloads_dir() / "README.md").read_text()
    example = readme.split("```yaml\n")[1].split("```")[0]
    c, meta = read_transformer_config(yaml.safe_load(example))
    per_layer = 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 256 + 2 * 64
    g = build_transformer(c, meta["name"], meta=meta)
    assert g.params == 2 * per_layer + 2 * 1000 * 64 + 64
    assert (g.name, g.meta["family"]) == ("tiny-llama", "llama")


# --- families beyond Llama: per-layer structure -------------------------------------------

def test_mla_caches_the_latent_and_attends_absorbed():
    # DeepSeek-V3 layer 3 (MoE): the cache holds kv_lora_rank + qk_rope_head_dim = 576 per
    # token in one "head"; q_nope (128) goes to latent space (512) through kv_b_proj's key
    # half (128 heads x 128 x 512 weights), and the value half maps back to v_head_dim 128.
    g = MODELS["deepseek-v3"]()
    view = g.op("layers.3.self_attn.latent_cache")
    assert view.outputs[0].shape == ("B", 1, "T", 576) and view.outputs[0].role == "kv"
    assert [w.shape for w in g.op("layers.3.self_attn.kv_b_proj.k_absorb").weights] == [
        (128, 128, 512)]
    attn = g.op("layers.3.self_attn.attention")
    assert [t.shape for t in attn.inputs] == [("B", 128, "S", 576), ("B", 1, "T", 576),
                                               ("B", 1, "T", 512)]
    # The same weights as the reference's kv_b_proj (512 -> 128 x (128 + 128)) without cache.
    plain = MODELS["deepseek-v3"](kv_cache=False)
    assert plain.params == MODELS["deepseek-v3"]().params
    assert [w.shape for w in plain.op("layers.3.self_attn.kv_b_proj").weights] == [
        (128 * 256, 512)]
    # First 3 layers dense (18432 wide), then MoE of 256 experts of 2048 plus one shared.
    assert g.op("layers.2.mlp.gate_proj").weights[0].shape == (18432, 7168)
    assert g.op("layers.3.block_sparse_moe.experts.w1").weights[0].shape == (256, 2048, 7168)
    assert g.op("layers.3.block_sparse_moe.shared_experts.gate_proj").weights[0].shape == (
        2048, 7168)


def test_sliding_and_chunked_layers_carry_their_span():
    # gpt-oss: even layers slide over 128 tokens, odd ones attend fully; sinks are 64
    # per-head weights of the attention op.
    g = MODELS["gpt-oss-20b"]()
    assert g.op("layers.0.self_attn.attention").attr("window") == 128
    assert g.op("layers.1.self_attn.attention").attr("window") is None
    assert [w.shape for w in g.op("layers.1.self_attn.attention").weights] == [(64,)]
    # Llama 4 Scout: 3 chunked RoPE layers, then a full NoPE layer.
    s = MODELS["llama-4-scout"]()
    assert s.op("layers.0.self_attn.attention").attr("chunk") == 8192
    names = {op.name for op in s.ops}
    assert "layers.0.self_attn.q_rope" in names and "layers.3.self_attn.q_rope" not in names


def test_falcon_runs_attention_and_mlp_in_parallel_off_one_norm():
    g = MODELS["falcon-7b"]()
    assert len(g.op("layers.0.residual").inputs) == 3  # x + attn + mlp
    assert not any(op.name == "layers.0.post_attention_layernorm" for op in g.ops)
    assert g.op("layers.0.self_attn.k_proj").weights[0].shape == (64, 4544)  # one KV head


def test_gemma2_has_four_norms_and_scaled_embeddings():
    g = MODELS["gemma-2-9b"]()
    norms = [op.name for op in g.ops if op.layer == "layers.0" and op.kind == "rmsnorm"]
    assert norms == ["layers.0.input_layernorm", "layers.0.post_attention_layernorm",
                     "layers.0.pre_feedforward_layernorm", "layers.0.post_feedforward_layernorm"]
    assert g.op("embeddings.scale").kind == "mul" and g.op("lm_head").tied


def test_t5_is_an_encoder_decoder_that_is_not_an_llm():
    # flan-t5-base as a shape: 12 encoder + 12 decoder blocks; decoder blocks cross-attend.
    from pathlib import Path

    from perfmodel.importers import load_hf_config
    data = Path(__file__).parents[1] / "importers" / "data"
    shape, meta = load_hf_config(data / "flan-t5-base")
    g = build_transformer(shape, meta["name"], meta=meta)
    assert g.meta["is_llm"] is False
    assert "layers.11.cross_attn.q" not in {op.name for op in g.ops}
    assert g.op("layers.12.cross_attn.k").inputs[0].shape == ("B", "S", 768)
    assert g.op("layers.0.relative_attention_bias").weights[0].shape == (32, 12)
    assert g.op("layers.12.self_attn.attention").attr("causal") is True


def test_new_keys_round_trip_through_yaml_files():
    for name in ("deepseek-v3", "gpt-oss-20b", "llama-4-scout", "gemma-2-9b", "falcon-7b"):
        c, meta = load_transformer_config(workloads_dir() / f"{name}.yaml")
        assert isinstance(c.to_dict().get("layer_types", []), list)
        assert read_transformer_config(c.to_dict() | meta) == (c, meta)
