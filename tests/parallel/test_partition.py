"""TP / recompute partitioning of the per-device workload, and Narayanan's model FLOP."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perfmodel.errors import PlanError
from perfmodel.parallel.partition import (
    layer_costs,
    model_flops,
    one_block,
    p2p_bytes,
    shape_of,
    stage_times,
    tp_comm_bytes,
)
from perfmodel.validate.training import megatron_gpt
from perfmodel.zoo.registry import load_model


@pytest.fixture(scope="module")
def gpt3():
    return load_model("gpt3-175b")


@pytest.fixture(scope="module")
def gpt3_unfused():
    # Megatron-LM 2022's kernels: the model built without fused attention
    return load_model("gpt3-175b", fused_attention=False)


def test_model_flops_hand_worked():
    # l = 1, h = 6, s = 6, V = 12, B = 1: 72 x 6 x 36 x (1 + 6/36 + 12/72) = 20736
    shape = megatron_gpt(hidden=6, layers=1, heads=1, seq=6)
    assert model_flops(replace(shape, vocab_size=12), 1, 6) == pytest.approx(20736.0)


def test_gpt3_shape_and_block_params(gpt3):
    s = shape_of(gpt3)
    # Brown et al. 2020, Table 2.1
    assert (s.num_hidden_layers, s.hidden_size, s.num_attention_heads) == (96, 12288, 96)
    # 12 h^2 + 13 h per layer (Narayanan et al. 2021, eq. 2 without the embedding)
    assert gpt3.stage_params.layer == pytest.approx(12 * 12288**2 + 13 * 12288)


def test_one_block_keeps_the_first_block_and_the_extras(gpt3):
    block = one_block(gpt3)
    layers = {op.layer.split(".")[1] for op in block.ops if op.layer.startswith("layers.")}
    assert layers == {"0"}
    # embeddings (token + position), first block, final norm and LM head: the same
    # parameters as the whole model with 95 blocks fewer
    assert block.params == gpt3.params - 95 * gpt3.stage_params.layer


def test_sequence_parallel_splits_every_row_by_tp(gpt3, tiny_device=None):
    from perfmodel.hardware.load import load_device
    dev = load_device("a100-sxm4-80gb")
    c = layer_costs(gpt3, 2048)
    one = stage_times(c, dev, 1, 1)
    sp8 = stage_times(c, dev, 8, 1, sequence_parallel=True)
    no_sp8 = stage_times(c, dev, 8, 1)
    assert sp8.layer_model_flops * 8 == pytest.approx(one.layer_model_flops)
    # without SP the layer norms and residual adds are replicated: more than 1/8 per device
    assert no_sp8.layer_model_flops * 8 > one.layer_model_flops
    # micro-batch 4 does 4x the FLOP
    assert stage_times(c, dev, 8, 4, True).layer_model_flops == pytest.approx(
        4 * sp8.layer_model_flops)


def test_full_recompute_adds_one_forward(gpt3):
    # Narayanan et al. 2021, sec. 5.1: 96 instead of 72 B s l h^2 with recomputation: 4/3
    from perfmodel.hardware.load import load_device
    t = stage_times(layer_costs(gpt3, 2048), load_device("a100-sxm4-80gb"), 8, 1, True, "full")
    assert t.layer_hw_flops / t.layer_model_flops == pytest.approx(4 / 3, rel=0.01)
    sel = stage_times(layer_costs(gpt3, 2048), load_device("a100-sxm4-80gb"), 8, 1, True,
                      "selective")
    assert 1 < sel.layer_hw_flops / sel.layer_model_flops < 1.05  # attention core only


def test_comm_sizes(gpt3):
    s = shape_of(gpt3)
    assert tp_comm_bytes(s, 2048, 1, "bf16") == 2048 * 12288 * 2  # s b h x 2 B
    assert p2p_bytes(s, 2048, 1, "bf16", 8, True) == 2048 * 12288 * 2 / 8


def test_non_transformer_rejected():
    with pytest.raises(PlanError):
        shape_of(load_model("resnet18"))
    with pytest.raises(PlanError):
        layer_costs(load_model("resnet18"), 224)


def _row(costs, name, phase):
    r = costs.rows
    return r[(r["name"] == name) & (r["phase"] == phase)].iloc[0]


def test_tp_region_ops_split_without_sequence_parallelism(gpt3):
    # GELU acts on the 4h/t columns of fc1 on each rank (Shoeybi et al. 2019, Fig. 3a):
    # 1/8 of the work at tp 8 with or without SP; the layer norm only with SP
    from perfmodel.analytic.roofline import roofline
    from perfmodel.hardware.load import load_device
    from perfmodel.parallel.partition import _scaled
    c = layer_costs(gpt3, 2048)
    dev = load_device("a100-sxm4-80gb")
    one = roofline(_scaled(c.rows, 1, 1, False), dev)
    tp8 = roofline(_scaled(c.rows, 1, 8, False), dev)
    gelu = (one["name"] == "layers.0.mlp.act_fn") & (one["phase"] == "forward")
    norm = (one["name"] == "layers.0.input_layernorm") & (one["phase"] == "forward")
    assert float(tp8.loc[gelu, "flops"].iloc[0]) * 8 == pytest.approx(
        float(one.loc[gelu, "flops"].iloc[0]))
    assert float(tp8.loc[norm, "flops"].iloc[0]) == pytest.approx(
        float(one.loc[norm, "flops"].iloc[0]))


def test_unfused_attention_rows_hand_worked(gpt3, gpt3_unfused):
    # Megatron-LM 2022 core attention, GPT-3 (a = 96, d = 128), s = 2048, b = 1, bf16:
    # baddbmm Q K^T over all s^2 pairs: a s^2 d MACs (not the causal s (s + 1) / 2)
    c = layer_costs(gpt3_unfused, 2048, attention_dropout=True)
    a, s, d = 96, 2048, 128
    assert _row(c, "layers.0.self_attn.scores", "forward")["macs"] == pytest.approx(a * s * s * d)
    assert _row(c, "layers.0.self_attn.context", "forward")["macs"] == pytest.approx(a * s * s * d)
    # dropout on the probabilities: reads P (2 B), writes P' (2 B) and a 1-byte mask
    drop = _row(c, "layers.0.self_attn.attention_dropout", "forward")
    assert drop["bytes"] == pytest.approx(5 * a * s * s)
    back = _row(c, "layers.0.self_attn.attention_dropout", "backward")
    assert back["bytes"] == pytest.approx(5 * a * s * s)  # dP' and mask in, dP out
    flash = layer_costs(gpt3, 2048, attention_dropout=True)  # in-kernel with flash: no row
    assert not (flash.rows["name"] == "layers.0.self_attn.attention_dropout").any()
    # FlashAttention: one causal-aware kernel over s (s + 1) / 2 pairs per head
    assert _row(flash, "layers.0.self_attn.attention", "forward")["macs"] == pytest.approx(
        2 * a * d * s * (s + 1) / 2)


def test_selective_recompute_reruns_the_unfused_core(gpt3_unfused):
    # recompute of Q K^T and P V: 4 b s^2 h / t FLOP (Korthikanti et al. 2023, app. A),
    # plus the softmax (5 / score) and dropout (1 / score) elementwise FLOP
    from perfmodel.hardware.load import load_device
    c = layer_costs(gpt3_unfused, 2048, attention_dropout=True)
    sel = stage_times(c, load_device("a100-sxm4-80gb"), 8, 1, True, "selective")
    s, h, a, t = 2048, 12288, 96, 8
    expected = (4 * s * s * h + 6 * a * s * s) / t
    assert sel.layer_hw_flops - sel.layer_model_flops == pytest.approx(expected, rel=1e-6)


def test_mixed_precision_optimizer_passes(gpt3):
    # Adam on fp32 master weights and moments: 2 x 12 B state + 2 B grad + 2 B weight
    # (workload.training), plus Megatron-LM's grad-norm read (4), master -> model copy
    # (4 + 2) and grad-buffer zeroing (4): 42 B per parameter
    c = layer_costs(gpt3, 2048)
    params = _row(c, "layers.0.mlp.fc1", "forward")["params"]
    assert _row(c, "layers.0.mlp.fc1", "optimizer")["bytes"] == pytest.approx(42 * params)


def test_column_linear_backward_windows(gpt3):
    # the GEMMs the backward collectives hide under: QKV and fc1 backward seconds, on an
    # A100 with one efficiency for every GEMM (so time follows MACs; the kernel model's
    # tile and wave quantization would move the ratio by a few percent)
    from perfmodel.hardware.load import load_device
    from perfmodel.validate.compare import with_efficiency
    from perfmodel.validate.holdout import _defaults_efficiency
    a100 = with_efficiency(load_device("a100-sxm4-80gb"), _defaults_efficiency())
    t = stage_times(layer_costs(gpt3, 2048), a100, 8, 1)
    assert len(t.column_b) == 2 and t.column_b[1] > t.column_b[0] > 0
    # fc1 (4 h^2 / t MACs per token, x 2 for dgrad + wgrad) vs QKV (3 h^2 / t): 4 / 3
    assert t.column_b[1] / t.column_b[0] == pytest.approx(4 / 3, rel=0.02)


def test_attention_kernels_are_the_graphs(gpt3, gpt3_unfused):
    assert gpt3.attention_kernels == "flash"
    assert gpt3_unfused.attention_kernels == "unfused"
    kinds = set(layer_costs(gpt3_unfused, 2048).rows["kind"])
    assert {"attn_score", "softmax", "attn_context"} <= kinds and "attention" not in kinds


def test_torchtitan_op_sac_reruns_every_second_mm_and_unsaved_ops():
    # torchtitan parallelisms/parallelize_llama.py (_apply_ac_to_transformer_block, op
    # SAC): save the outputs of aten.mm and SDPA, "except every second mm"; everything
    # else is recomputed. A Llama block in execution order:
    import numpy as np

    from perfmodel.parallel.partition import RECOMPUTED
    kind = np.array(["rmsnorm", "linear", "linear", "linear", "rope", "attention", "linear",
                     "add", "rmsnorm", "linear", "linear", "silu", "mul", "linear", "add"],
                    dtype=object)
    #          norm wq wk wv rope sdpa wo add norm w1 w3 silu mul w2 add
    expected = [1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1]
    fwd = np.ones(len(kind), bool)
    assert RECOMPUTED["selective_op"](fwd, kind).tolist() == expected
    # rows outside the layer forward are never rerun
    assert not RECOMPUTED["selective_op"](~fwd, kind).any()


def test_torchtitan_recompute_modes_on_llama3_8b():
    from perfmodel.hardware.load import load_device
    g = load_model("llama-3-8b")
    c, dev = layer_costs(g, 8192), load_device("a100-sxm4-80gb")
    none = stage_times(c, dev, 1, 1)
    layer = stage_times(c, dev, 1, 1, recompute="selective_layer")
    op = stage_times(c, dev, 1, 1, recompute="selective_op")
    # selective layer (every 2nd block fully checkpointed): half a forward more backward
    assert layer.layer_b - none.layer_b == pytest.approx(none.layer_f / 2)
    # selective op reruns the K, O and MLP-up GEMMs of the 2nd, 4th and 6th mm:
    # 2 s h (kv + h + ffn) FLOP with h 4096, kv 8 x 128 = 1024, ffn 14336 (Llama 3 8B
    # config.json), plus the norms, RoPE, SiLU, product and residual adds (< 1 %)
    s, h = 8192, 4096
    gemm = 2 * s * h * (1024 + h + 14336)
    # and, in every mode, the flash backward's in-kernel recompute of S and P: half the
    # causal forward's 2 x 2 h s (s + 1) / 2 matmul FLOP (FlashAttention's bwd = 2.5 x fwd,
    # Dao-AILab/flash-attention benchmarks/benchmark_flash_attention.py), with h = 32 x 128,
    # plus its softmax's ~5 FLOP per score (32 heads x s (s + 1) / 2 scores: +1 %)
    flash = 0.5 * 2 * h * s * (s + 1)
    assert none.layer_hw_flops - none.layer_model_flops == pytest.approx(flash, rel=0.011)
    flash = none.layer_hw_flops - none.layer_model_flops
    extra = op.layer_hw_flops - op.layer_model_flops
    assert gemm + flash <= extra < 1.01 * gemm + flash
    assert none.layer_b < op.layer_b < layer.layer_b
