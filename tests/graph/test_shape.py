"""ModelShape (the one record of a transformer's dimensions) and what ModelGraph derives from
a built model: parameters by pipeline stage, attention kernels, the networkx view, hashing.
Hand-worked counts are derived in the comments."""

from __future__ import annotations

import dataclasses

import pytest

from perfmodel.errors import SpecError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.graph.model_graph import ATTENTION_KERNELS, StageParams
from perfmodel.graph.shape import (
    CONTEXT_CAP,
    ModelShape,
    active_params,
    attended_pairs,
    shape_problems,
)
from perfmodel.zoo.transformer import MODELS, build_transformer

# A small decoder (the workloads/README.md example): 4 heads of 16, 2 KV heads, SwiGLU.
TINY = {"architecture": "decoder", "vocab_size": 1000, "hidden_size": 64,
        "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 512,
        "position_embedding": "rope", "norm": "rmsnorm", "norm_position": "pre",
        "activation": "silu", "mlp": "gated"}


def _data(**changes) -> dict:
    """TINY with ``changes`` applied; a change to None removes the key."""
    d = TINY | changes
    return {k: v for k, v in d.items() if v is not None}


# --- ModelShape -------------------------------------------------------------------------

def test_round_trip_fills_defaults_and_leaves_out_unset_optionals():
    s = ModelShape.from_dict(TINY)
    d = s.to_dict()
    assert ModelShape.from_dict(d) == s
    # head_dim filled in (64 / 4 = 16) and written back; sliding_window (None) left out;
    # defaulted optionals written with their defaults.
    assert d["head_dim"] == 16 and "sliding_window" not in d
    assert (d["num_shared_experts"], d["type_vocab_size"], d["tie_word_embeddings"]) == (0, 0,
                                                                                         False)
    assert ModelShape.from_dict(d | {"sliding_window": 128}).to_dict()["sliding_window"] == 128


def test_shape_is_frozen():
    s = ModelShape.from_dict(TINY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.hidden_size = 128  # type: ignore[misc]


def test_defaults_for_kv_heads_and_head_dim():
    # Without num_key_value_heads: multi-head attention (kv heads = heads = 4);
    # without head_dim: hidden / heads = 64 / 4 = 16. A given head_dim wins (Gemma-style
    # heads wider than hidden / heads) and then hidden need not divide.
    s = ModelShape.from_dict({k: v for k, v in TINY.items() if k != "num_key_value_heads"})
    assert (s.num_key_value_heads, s.head_dim) == (4, 16)
    wide = ModelShape.from_dict(TINY | {"hidden_size": 66, "head_dim": 32})
    assert (wide.num_key_value_heads, wide.head_dim, wide.kv_dim) == (2, 32, 64)


def test_every_problem_is_listed_at_once():
    d = dict(TINY)
    d["num_layer"] = 2            # unknown key, close to num_hidden_layers
    d["norm"] = "batchnorm"       # not one of the choices
    d["hidden_size"] = "64"       # a string, not an integer
    d["attention_bias"] = 1       # an integer, not a bool
    del d["vocab_size"]           # required
    with pytest.raises(SpecError) as err:
        ModelShape.from_dict(d, where="tiny.yaml")
    msg = str(err.value)
    assert "tiny.yaml" in msg and "5 problem(s)" in msg
    assert "num_layer: unknown key" in msg and "num_hidden_layers" in msg
    assert "norm: 'batchnorm' is not one of layernorm, rmsnorm" in msg
    assert "hidden_size: must be an integer >= 1, got '64'" in msg
    assert "attention_bias: must be a bool, got 1" in msg
    assert "vocab_size: missing (required)" in msg


def test_ignored_keys_are_skipped():
    # A config file's metadata is read by its caller: ignore= skips it; without ignore
    # each metadata key is one unknown-key problem.
    meta = {"name": "tiny", "family": "llama"}
    assert ModelShape.from_dict(TINY | meta, ignore=meta) == ModelShape.from_dict(TINY)
    problems = shape_problems(TINY | meta)
    assert [p.split(" (")[0] for p in problems] == ["name: unknown key", "family: unknown key"]
    only_family = shape_problems(TINY | meta, ignore=("name",))
    assert [p.split(" (")[0] for p in only_family] == ["family: unknown key"]


@pytest.mark.parametrize(("changes", "problem"), [
    ({"num_key_value_heads": 3},
     "num_key_value_heads: 3 does not divide num_attention_heads 4"),
    ({"num_attention_heads": 3, "num_key_value_heads": None},
     "num_attention_heads: 3 does not divide hidden_size 64 (give head_dim)"),
    ({"num_local_experts": 4, "num_experts_per_tok": 5},
     "num_experts_per_tok: must be 1..4 with 4 experts, got 5"),
    ({"num_local_experts": 4},
     "num_experts_per_tok: must be 1..4 with 4 experts, got 0"),
    ({"num_experts_per_tok": 2},
     "num_experts_per_tok: set without num_local_experts"),
    ({"num_shared_experts": 1},
     "num_shared_experts: set without num_local_experts"),
])
def test_cross_field_checks(changes, problem):
    assert shape_problems(_data(**changes)) == [problem]
    with pytest.raises(SpecError, match="1 problem"):
        ModelShape.from_dict(_data(**changes))


def test_shared_experts_with_experts_are_accepted():
    s = ModelShape.from_dict(TINY | {"num_local_experts": 4, "num_experts_per_tok": 2,
                                     "num_shared_experts": 2})
    assert s.is_moe and s.num_shared_experts == 2


def test_cross_field_checks_wait_for_clean_values():
    # A value problem hides the cross-field checks (they would compare bad values): kv
    # heads 3 not dividing 4 is reported only once the norm is fixed.
    assert shape_problems(_data(num_key_value_heads=3, norm="rms")) == [
        "norm: 'rms' is not one of layernorm, rmsnorm (did you mean 'rmsnorm'?)"]
    assert shape_problems(_data(num_key_value_heads=3)) == [
        "num_key_value_heads: 3 does not divide num_attention_heads 4"]


def test_properties_gated_kv_dim_gpt_like():
    gpt2 = MODELS["gpt2"]().shape
    llama = MODELS["llama-2-70b"]().shape
    mixtral = MODELS["mixtral-8x7b"]().shape
    # GPT-2: 12 heads of 64 with multi-head attention and a plain MLP: gpt_like (Narayanan
    # et al. 2021 eq. 3's layer); kv_dim = 12 * 64 = 768.
    assert (gpt2.gpt_like, gpt2.gated, gpt2.is_moe, gpt2.kv_dim) == (True, False, False, 768)
    # Llama-2-70B: SwiGLU, 8 KV heads of 128: kv_dim = 8 * 128 = 1024.
    assert (llama.gpt_like, llama.gated, llama.kv_dim) == (False, True, 1024)
    assert (mixtral.gpt_like, mixtral.is_moe) == (False, True)
    # A plain MLP with grouped-query attention is not gpt_like either (eq. 3 assumes
    # as many K/V heads as query heads).
    gqa_plain = ModelShape.from_dict(TINY | {"mlp": "plain"})
    assert (gqa_plain.gated, gqa_plain.gpt_like) == (False, False)
    assert ModelShape.from_dict(TINY | {"mlp": "plain", "num_key_value_heads": 4}).gpt_like
    assert (gpt2.is_decoder, MODELS["bert-base"]().shape.is_decoder) == (True, False)


def test_default_seq_is_capped():
    # max_position_embeddings 512 -> 512; Llama-3-8B's 8192 -> the 4096 cap.
    assert ModelShape.from_dict(TINY).default_seq == 512
    assert MODELS["llama-3-8b"]().shape.default_seq == CONTEXT_CAP == 4096


# --- ModelGraph -------------------------------------------------------------------------

def test_stage_params_of_gpt2_by_hand():
    # GPT-2 (d = 768, 12 layers). first: wte 50257 d + wpe 1024 d = 39,383,808.
    # layer: q,k,v,o 4 d^2 + 4 d, fc1/fc2 8 d^2 + 5 d, 2 layernorms 4 d = 12 d^2 + 13 d
    # = 7,087,872. last: ln_f 2 d = 1,536 (lm_head is tied to wte: counted once, in first).
    # Sum: 39,383,808 + 12 * 7,087,872 + 1,536 = 124,439,808 = the HF total.
    d = 768
    g = MODELS["gpt2"]()
    assert g.stage_params == StageParams(50257 * d + 1024 * d, 12 * d * d + 13 * d, 2 * d)
    assert g.stage_params == (39_383_808, 7_087_872, 1_536)
    first, layer, last = g.stage_params
    assert first + 12 * layer + last == g.params == 124_439_808


def test_stage_params_of_llama_and_bert_by_hand():
    # Llama-2-7B: first = embed 32000 * 4096 = 131,072,000; layer = 202,383,360 (see
    # tests/zoo/test_transformer.py); last = final norm 4096 + untied lm_head 131,072,000.
    assert MODELS["llama-2-7b"]().stage_params == (131_072_000, 202_383_360, 131_076_096)
    # BERT-base: first = word 30522 d + position 512 d + type 2 d + embedding LN 2 d
    # = 23,837,184; layer 12 d^2 + 13 d = 7,087,872; last = pooler dense d^2 + d = 590,592.
    # 23,837,184 + 12 * 7,087,872 + 590,592 = 109,482,240 (BertModel's count).
    bert = MODELS["bert-base"]()
    assert bert.stage_params == (23_837_184, 7_087_872, 590_592)
    assert sum(bert.stage_params) + 11 * bert.stage_params.layer == bert.params == 109_482_240


def test_attention_kernels_flash_vs_unfused():
    assert ATTENTION_KERNELS == ("flash", "unfused")
    assert MODELS["llama-2-7b"]().attention_kernels == "flash"
    assert MODELS["llama-2-7b"](fused_attention=False).attention_kernels == "unfused"
    shape = ModelShape.from_dict(TINY)
    assert build_transformer(shape, "t", fused_attention=False).attention_kernels == "unfused"
    assert build_transformer(shape, "t").attention_kernels == "flash"
    # A graph with no attention at all is "unfused" (nothing is fused).
    b = GraphBuilder("mlp")
    b.linear(b.input("x", (4,)), 2)
    assert b.build().attention_kernels == "unfused"


def test_networkx_graph_is_lazy_and_matches_edges():
    g = MODELS["gpt2"]()
    assert "graph" not in vars(g)  # not built until asked for
    nxg = g.graph
    assert "graph" in vars(g) and g.graph is nxg
    assert list(nxg.nodes) == [op.name for op in g.ops]
    assert set(nxg.edges) == set(g.edges) and nxg.number_of_edges() == len(g.edges)
    assert len(set(g.edges)) == len(g.edges)  # the builder keeps each edge once
    assert nxg.nodes["lm_head"]["op"] is g.op("lm_head")
    # A residual block's edges, by hand: layers.0's attention residual reads the block
    # input and the o_proj output.
    assert ("layers.0.self_attn.o_proj", "layers.0.attn_residual") in g.edges


def test_two_builds_of_one_model_are_equal_and_hash_alike():
    a, b = MODELS["llama-2-7b"](), MODELS["llama-2-7b"]()
    assert a is not b and a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1  # graphs key the memory and step caches
    unfused = MODELS["llama-2-7b"](fused_attention=False)
    assert unfused != a
    shape = ModelShape.from_dict(TINY)
    assert hash(build_transformer(shape, "t")) == hash(build_transformer(shape, "t"))
    assert build_transformer(shape, "t") != build_transformer(shape, "u")  # names differ


def test_graph_carries_its_shape_and_meta_without_dimension_copies():
    shape = ModelShape.from_dict(TINY)
    g = build_transformer(shape, "tiny", meta={"family": "llama", "source": "README"})
    assert g.shape is shape
    assert (g.meta["family"], g.meta["default_seq"], g.meta["is_llm"]) == ("llama", 512, True)
    for gone in ("config", "num_layers", "hidden_size", "num_heads", "head_dim",
                 "vocab_size", "architecture"):
        assert gone not in g.meta
    b = GraphBuilder("cnn", family="cnn")
    b.linear(b.input("x", (4,)), 2)
    assert b.build().shape is None


# --- per-layer structure, windows, active parameters --------------------------------------

@pytest.mark.parametrize(("q", "t", "kw", "pairs"), [
    (4096, 4096, {}, 4096 * 4097 / 2),                     # causal prefill: T(T+1)/2
    (1, 4096, {}, 4096),                                   # decode: T
    (1, 4096, {"window": 128}, 128),                       # decode, sliding: the window
    (8, 8, {"window": 3}, 1 + 2 + 3 * 6),                  # 1, 2, then 3 keys each
    (8, 8, {"chunk": 4}, 2 * (1 + 2 + 3 + 4)),             # two chunks of 4
    (2, 10, {"chunk": 4}, 2 + 1),                          # positions 8, 9: 1st, 2nd of chunk
])
def test_attended_pairs(q, t, kw, pairs):
    assert attended_pairs(q, t, causal=True, **kw) == pairs


def test_kv_cache_groups_per_kind_of_layer():
    # 4 layers alternating sliding (window 8) and full: 2 groups of 2 layers, each token
    # 2 x 2 KV heads x 16 = 64 elements per layer.
    s = ModelShape.from_dict(_data(num_hidden_layers=4, sliding_window=8, layer_types=[
        "sliding_attention", "full_attention"] * 2))
    assert [tuple(g) for g in s.kv_cache_groups()] == [(2, 64, 8, 2), (2, 64, None, 2)]
    assert s.kv_elements_per_token() == 4 * 64
    # MLA: the latent (32 + 8), not split by heads.
    m = ModelShape.from_dict(_data(kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
                                   v_head_dim=16))
    assert [tuple(g) for g in m.kv_cache_groups()] == [(2, 40, None, None)]


def test_new_fields_are_checked_and_round_trip():
    assert any("2 entries for 3 layers" in p for p in shape_problems(
        _data(num_hidden_layers=3, layer_types=["full_attention"] * 2)))
    assert any("sliding_attention layers need sliding_window" in p for p in shape_problems(
        _data(layer_types=["sliding_attention"] * 2)))
    assert any("'dense_x' is not one of dense, sparse" in p for p in shape_problems(
        _data(num_local_experts=4, num_experts_per_tok=2, mlp_layer_types=["dense_x"] * 2)))
    assert any("v_head_dim: missing (required with kv_lora_rank)" in p for p in
               shape_problems(_data(kv_lora_rank=8, qk_nope_head_dim=4, qk_rope_head_dim=4)))
    s = ModelShape.from_dict(_data(num_local_experts=4, num_experts_per_tok=2,
                                   mlp_layer_types=["dense", "sparse"]))
    assert s.mlp_layer_types == ("dense", "sparse") and hash(s)
    assert s.to_dict()["mlp_layer_types"] == ["dense", "sparse"]
    assert ModelShape.from_dict(s.to_dict()) == s
    # The later fields at their default stay out of to_dict.
    assert "qk_norm" not in ModelShape.from_dict(TINY).to_dict()


def test_active_params_count_top_k_of_the_experts():
    # 2 layers, 4 experts of 3 x 64 x 128 (top-2), one dense first layer: the MoE layer runs
    # 2 of its 4 experts, so 2 x 3 x 64 x 128 = 49,152 fewer active than total.
    s = ModelShape.from_dict(_data(intermediate_size=128, num_local_experts=4,
                                   num_experts_per_tok=2, mlp_layer_types=["dense", "sparse"]))
    g = build_transformer(s)
    assert g.params - active_params(g) == 2 * 3 * 64 * 128 == 49_152
