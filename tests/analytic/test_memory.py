"""Memory footprint: hand-worked model states, ZeRO, KV cache, Korthikanti activations."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.analytic.bandwidth import decode_limits, growth_rates, memory_wall_table
from perfmodel.analytic.capacity import largest_fitting, memory_report, suggestions, verdict
from perfmodel.analytic.memory import check_memory_plan, footprint, layer_activation_bytes
from perfmodel.errors import PlanError, ShapeError
from perfmodel.graph import GraphBuilder, ModelGraph, ModelShape, OpKind
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

GiB = 2**30

# A GPT-style toy shape: h = 64, a = 4 heads (head_dim 16), plain 4h MLP, vocabulary 10.
SHAPE = ModelShape(architecture="decoder", vocab_size=10, hidden_size=64,
                   intermediate_size=256, num_hidden_layers=1, num_attention_heads=4,
                   num_key_value_heads=4, head_dim=16, max_position_embeddings=64,
                   position_embedding="none", norm="layernorm", norm_position="pre",
                   activation="gelu", mlp="plain")


def toy(layers: int = 1, kv_heads: int = 4, attention: str = "unfused") -> ModelGraph:
    """A graph of SHAPE with ``layers`` blocks of exactly 1,000 parameters each and none
    elsewhere: its ops only carry the parameter counts the formulas read (one weighted add
    per block), the dimensions come from the shape record. ``attention`` says which
    kernels the graph computes attention with (a fused ``attention`` op, or none)."""
    shape = replace(SHAPE, num_hidden_layers=layers, num_key_value_heads=kv_heads)
    b = GraphBuilder("toy", shape=shape, default_seq=4, is_llm=True)
    x = b.input("x", ("S", 64))
    for i in range(layers):
        with b.scope(f"layers.{i}"):
            x = b.add_op(OpKind.ADD, [x], x.shape, weights=[(1000,)], name="w")
            if attention == "flash":
                x = b.add_op(OpKind.ATTENTION, [x, x, x], x.shape, name="attention")
    return b.build()


TOY = toy()


def _train(plan: ParallelPlan | None = None, **job):
    return (plan or ParallelPlan(data_parallel=8, micro_batch=1),
            Job(**{"phase": "train", "batch": 8, "seq": 4, "dtype": "fp16", **job}))


def test_adam_mixed_precision_is_16_bytes_per_param():
    # ZeRO paper (Rajbhandari et al. 2020, sec. 3.1): 2 (fp16 weights) + 2 (fp16 grads)
    # + 12 (fp32 master, momentum, variance) = 16 bytes per parameter.
    f = footprint(TOY, *_train(ParallelPlan(micro_batch=1), batch=1))
    assert f["weights"] == 2 * 1000 and f["gradients"] == 2 * 1000
    assert f["optimizer"] == 12 * 1000
    assert f["weights"] + f["gradients"] + f["optimizer"] == 16 * 1000


@pytest.mark.parametrize("zero, weights, grads, states", [
    # 1,000 params over dp = 8 (hand-worked): ZeRO-1 shards the 12 B of states,
    # ZeRO-2 also the 2 B of gradients, ZeRO-3 also the 2 B of weights.
    (0, 2000, 2000, 12000),
    (1, 2000, 2000, 1500),
    (2, 2000, 250, 1500),
    (3, 250, 250, 1500),
])
def test_zero_stages_per_device(zero, weights, grads, states):
    f = footprint(TOY, *_train(ParallelPlan(data_parallel=8, micro_batch=1, zero_stage=zero)))
    assert (f["weights"], f["gradients"], f["optimizer"]) == (weights, grads, states)


def test_kv_cache_formula():
    # 2 x layers x kv_heads x head_dim x seq x batch x bytes: toy, seq 4, batch 3, fp16:
    # 2 * 1 * 4 * 16 * 4 * 3 * 2 = 3072.
    f = footprint(TOY, ParallelPlan(), Job(phase="decode", batch=3, seq=4))
    assert f["kv_cache"] == 3072


def test_llama2_7b_kv_cache_is_2_gib():
    # Llama-2-7B, batch 1, seq 4096, fp16: 2 x 32 x 32 x 128 x 4096 x 2 B = 2 GiB.
    g = pm.load_model("llama-2-7b")
    f = footprint(g, ParallelPlan(), Job(phase="decode", batch=1, seq=4096, dtype="fp16"))
    assert f["kv_cache"] == 2 * GiB


def test_gqa_shrinks_kv_cache():
    # Llama-2-70B has 8 KV heads of 64 (HF config): 80 layers x 8 x 128 x 2 x 2 B per token.
    g = pm.load_model("llama-2-70b")
    f = footprint(g, ParallelPlan(), Job(phase="decode", batch=1, seq=1, dtype="fp16"))
    assert f["kv_cache"] == 2 * 80 * 8 * 128 * 2


def test_7b_fp16_weights_about_13_5_gb():
    # "A 7B-parameter model in fp16 needs ~13.5 GB of weights": Llama-2-7B has
    # 6,738,415,616 parameters (HF model card) x 2 B = 13.48 GB.
    g = pm.load_model("llama-2-7b")
    w = footprint(g, ParallelPlan(), Job(phase="inference", seq=1))["weights"]
    assert w == 2 * 6_738_415_616
    assert w / 1e9 == pytest.approx(13.5, abs=0.05)


def test_llama2_70b_fp16_does_not_fit_one_80gb_device():
    g = pm.load_model("llama-2-70b")
    v = verdict(g, ParallelPlan(), Job(phase="decode", batch=1, seq=1, dtype="fp16"),
                pm.load_device("a100"))
    assert not v.fits and v.total_bytes > 2 * 68e9  # 68.98 G params x 2 B = 138 GB
    assert v.min_devices == 2


def test_korthikanti_activation_per_layer_no_recompute():
    # Korthikanti et al. 2023, sec. 4.1 and Table 2: sbh(34 + 5as/h) bytes per layer (t = 1).
    s, b, h, a = 4, 1, 64, 4
    assert layer_activation_bytes(SHAPE, s, b, 1, False, "none") == \
        s * b * h * (34 + 5 * a * s / h)


def test_korthikanti_with_tensor_parallel_and_sequence_parallel():
    s, b, h, a, t = 4, 2, 64, 4, 4
    # Table 2: tensor parallel sbh(10 + 24/t + 5as/(ht)); + sequence parallel sbh/t (34 + 5as/h).
    assert layer_activation_bytes(SHAPE, s, b, t, False, "none") == pytest.approx(
        s * b * h * (10 + 24 / t + 5 * a * s / (h * t)))
    assert layer_activation_bytes(SHAPE, s, b, t, True, "none") == pytest.approx(
        s * b * h / t * (34 + 5 * a * s / h))


def test_korthikanti_selective_recompute_is_34sbh():
    # Table 2 (sec. 5): with selective recomputation and sequence parallelism, 34 sbh / t.
    s, b, h = 4, 1, 64
    assert layer_activation_bytes(SHAPE, s, b, 1, True, "selective") == 34 * s * b * h
    assert layer_activation_bytes(SHAPE, s, b, 2, True, "selective") == 34 * s * b * h / 2
    # Full recomputation keeps the layer input only: 2 sbh.
    assert layer_activation_bytes(SHAPE, s, b, 1, False, "full") == 2 * s * b * h


def test_flash_attention_keeps_no_scores():
    # A fused (FlashAttention) kernel never writes the a s x s scores, so without
    # recomputation a layer saves what selective recomputation saves: 34 sbh (t = 1),
    # 5as/h sbh = 5 x 4 x 4 / 64 x 256 = 320 bytes less than the unfused 34 sbh + 5as/h sbh.
    s, b, h = 4, 1, 64
    flash = layer_activation_bytes(SHAPE, s, b, 1, False, "none", attention="flash")
    assert flash == 34 * s * b * h
    assert layer_activation_bytes(SHAPE, s, b, 1, False, "none") - flash == 320


def test_pipeline_schedule_in_flight_micro_batches():
    # 1F1B keeps min(p, m) micro-batches in flight; GPipe all m. Toy: pp must be 1 (one
    # layer), so use a 4-layer toy with pp 2 and m = 8 micro-batches.
    four = toy(layers=4)
    one_f = footprint(four, *_train(ParallelPlan(pipeline_parallel=2, micro_batch=1)))
    gpipe = footprint(four, *_train(ParallelPlan(pipeline_parallel=2, micro_batch=1,
                                                 schedule="gpipe")))
    per_layer = layer_activation_bytes(four.shape, 4, 1, 1, False, "none")
    assert one_f["activations"] == pytest.approx(2 * 2 * per_layer)  # 2 layers x 2 in flight
    assert gpipe["activations"] == pytest.approx(2 * 8 * per_layer)  # 2 layers x 8 in flight


def test_interleaved_schedule_keeps_more_in_flight():
    # Korthikanti et al. 2023 sec. 4.2.3: interleaving keeps 1 + (p - 1)/(p v) times the
    # 1F1B activations: p = 2, v = 2, m = 8 -> 2 x (1 + 1/4) = 2.5 micro-batches in flight.
    four = toy(layers=4)
    base = dict(pipeline_parallel=2, micro_batch=1)
    one_f = footprint(four, *_train(ParallelPlan(**base)))["activations"]
    inter = footprint(four, *_train(ParallelPlan(**base, schedule="interleaved",
                                                 virtual_stages=2)))["activations"]
    assert inter == pytest.approx(one_f * 2.5 / 2)


def test_interleaved_in_flight_is_capped_at_m():
    # The first stage never holds more micro-batches than the step has: p = 2, v = 2,
    # m = 2 / (1 x 1) = 2 -> min(2 x (1 + 1/4), 2) = 2 in flight, as many as 1F1B's min(p, m)
    four = toy(layers=4)
    base = dict(pipeline_parallel=2, micro_batch=1)
    one_f = footprint(four, *_train(ParallelPlan(**base), batch=2))["activations"]
    inter = footprint(four, *_train(ParallelPlan(**base, schedule="interleaved",
                                                 virtual_stages=2), batch=2))["activations"]
    per_layer = layer_activation_bytes(four.shape, 4, 1, 1, False, "none")
    assert inter == one_f == pytest.approx(2 * 2 * per_layer)  # 2 layers x 2 in flight


def test_footprint_reads_the_graphs_attention_kernels():
    # Toy, seq 4, micro-batch 1 (m = 1 in flight), t = 1, fp16: sbh = 4 x 1 x 64 = 256.
    # Unfused: 256 x (34 + 5 x 4 x 4 / 64) = 9024; a fused attention op: 34 x 256 = 8704;
    # plus the fp32 logits of the last stage, 4 x s x b x V = 4 x 4 x 1 x 10 = 160.
    plan, job = _train()
    assert toy(attention="flash").attention_kernels == "flash"
    assert footprint(TOY, plan, job)["activations"] == 9024 + 160
    assert footprint(toy(attention="flash"), plan, job)["activations"] == 8704 + 160


def test_zoo_transformer_uses_its_attention_kernels():
    # The zoo builds fused attention (flash): recompute "none" keeps no s x s scores, so it
    # equals selective recomputation; a build without fused attention keeps the 5as/h term.
    # GPT-2 (12 layers, h 768, 12 heads), seq 1024, micro-batch 1, fp16: per layer
    # 5 a s / h x s b h = 5 x 12 x 1024 x 1024 = 62,914,560 bytes more, x 12 layers.
    job = Job(phase="train", batch=1, seq=1024, dtype="fp16")
    plan = ParallelPlan(micro_batch=1)
    flash = pm.load_model("gpt2")
    unfused = pm.load_model("gpt2", fused_attention=False)
    none = footprint(flash, plan, job)["activations"]
    selective = footprint(flash, replace(plan, recompute="selective"), job)["activations"]
    assert none == selective
    assert footprint(flash, plan, job)["total"] == footprint(
        flash, replace(plan, recompute="selective"), job)["total"]
    assert footprint(unfused, plan, job)["activations"] - none == pytest.approx(
        12 * 5 * 12 * 1024 * 1024)


def test_encoders_hold_no_kv_cache():
    # BERT attends over its input and keeps no cache between calls
    g = pm.load_model("bert-base")
    f = footprint(g, ParallelPlan(), Job(phase="inference", batch=8, seq=128))
    assert f["kv_cache"] == 0


def test_vectorized_sweep_matches_scalar_calls():
    g = pm.load_model("llama-2-7b")
    job = Job(phase="decode", batch=1, seq=1024)
    batches = np.array([1, 2, 8, 32])
    vec = footprint(g, ParallelPlan(), job, batch=batches)["total"]
    for b, t in zip(batches, vec, strict=True):
        one = footprint(g, ParallelPlan(), replace(job, batch=int(b)))["total"]
        assert t == pytest.approx(float(one))


def test_sweeps_name_their_fields():
    with pytest.raises(PlanError, match="cannot sweep"):
        footprint(TOY, ParallelPlan(), Job(), tp=np.array([1, 2]))


def test_largest_batch_that_fits_is_tight():
    g = pm.load_model("llama-2-7b")
    job = Job(phase="decode", batch=1, seq=4096)
    cap = pm.load_device("a100").memory_capacity
    best = largest_fitting(g, ParallelPlan(), job, cap, "batch")
    assert footprint(g, ParallelPlan(), replace(job, batch=best))["total"] <= cap
    assert footprint(g, ParallelPlan(), replace(job, batch=best + 1))["total"] > cap


def test_suggestions_priced_and_sorted():
    g = pm.load_model("llama-2-70b")
    s = suggestions(g, ParallelPlan(), Job(phase="decode", batch=1, seq=4096),
                    pm.load_device("h100"))
    assert list(s["saves_bytes"]) == sorted(s["saves_bytes"], reverse=True)
    int4 = s.set_index("action").loc["weights to int4"]
    # int4 weights: 0.5 B instead of 2 B per parameter.
    assert int4["saves_bytes"] == pytest.approx(1.5 * 68_976_648_192, rel=1e-9)


def test_impossible_plans_are_plan_errors():
    g = pm.load_model("llama-2-7b")
    job = Job(seq=8)
    with pytest.raises(PlanError, match="does not divide"):
        check_memory_plan(g, ParallelPlan(tensor_parallel=3), job)
    with pytest.raises(PlanError, match="exceed"):
        check_memory_plan(g, ParallelPlan(pipeline_parallel=64), job)
    with pytest.raises(ShapeError):
        Job(batch=0, seq=8)
    with pytest.raises(PlanError, match="multiple"):
        check_memory_plan(g, ParallelPlan(micro_batch=3), Job(phase="train", batch=10, seq=8))
    # a global batch smaller than dp: 4 sequences cannot feed 8 replicas
    with pytest.raises(PlanError, match="multiple"):
        check_memory_plan(g, ParallelPlan(data_parallel=8), Job(phase="train", batch=4))


def test_models_without_a_shape_shard_only_over_data():
    g = pm.load_model("resnet50")
    with pytest.raises(PlanError, match="transformers only"):
        check_memory_plan(g, ParallelPlan(tensor_parallel=2), Job())
    with pytest.raises(PlanError, match="transformers only"):
        check_memory_plan(g, ParallelPlan(recompute="full"), Job(phase="train"))


def test_decode_limits_by_hand(tiny_device):
    # Tiny device: 10 B/s, 100 FLOP/s (efficiency 1). Toy decode, batch 1, seq 4, fp16:
    # weights 2000 B, KV 2*1*4*16*4*1*2 = 1024 B -> floor 302.4 s. Ridge R = 10 FLOP/B;
    # F = 2*1000 + 4*1*4*16*4 = 3024 FLOP/token < R*KV1 = 10240: never compute-bound.
    lim = decode_limits(TOY, ParallelPlan(), Job(phase="decode", batch=1, seq=4), tiny_device)
    assert lim["decode_floor_s"] == pytest.approx(302.4)
    assert lim["tokens_per_s_ceiling_per_device"] == pytest.approx(1 / 302.4)
    assert lim["compute_bound_batch"] is None
    # MQA toy (1 KV head), seq 1: KV1 = 2*1*1*16*1*2 = 64 B; F = 2000 + 4*1*4*16*1 = 2256;
    # b* = R W / (F - R KV1) = 10*2000 / (2256 - 640) = 12.38 sequences.
    mqa = toy(kv_heads=1)
    lim = decode_limits(mqa, ParallelPlan(), Job(phase="decode", batch=1, seq=1), tiny_device)
    assert lim["compute_bound_batch"] == pytest.approx(20000 / 1616)


def test_memory_wall_growth_compute_outpaces_bandwidth():
    # DOMAIN.md sec. 5: compute grows faster than memory bandwidth. Over the shipped NVIDIA
    # data-center specs the fitted growth of peak must exceed that of bandwidth.
    table = memory_wall_table([pm.load_device(n) for n in pm.list_devices()])
    g = growth_rates(table)
    assert g["peak_flops_per_s_per_year"] > g["bandwidth_Bps_per_year"] > 0


def test_report_round_trip_dict():
    g = pm.load_model("resnet50")
    r = memory_report(g, ParallelPlan(), Job(phase="train", batch=64), pm.load_device("orin"))
    d = r.to_dict()
    assert set(d["components"]) >= {"weights", "gradients", "optimizer", "activations"}
    assert d["verdict"]["fits"] is True
    # the report states the records it priced, in their own words
    assert d["assumptions"]["plan"] == ParallelPlan().to_dict()
    assert d["assumptions"]["job"]["batch"] == 64


def test_kv_cache_per_family_windows_and_mla():
    # gpt-oss-20b at 8192 tokens: 12 sliding layers keep 128 tokens, 12 full layers 8192;
    # 2 x 8 KV heads x 64 = 1024 elements per layer-token, fp16:
    # (12 x 128 + 12 x 8192) x 1024 x 2 = 204,472,320 bytes.
    from perfmodel.zoo.registry import load_model
    job = Job(phase="decode", batch=1, seq=8192, dtype="fp16")
    assert footprint(load_model("gpt-oss-20b"), ParallelPlan(), job)["kv_cache"] == (
        (12 * 128 + 12 * 8192) * 1024 * 2) == 204_472_320
    # DeepSeek-V3: 61 layers x (512 + 64) latent x 8192 x 2 bytes = 575,668,224, the same on
    # every tensor-parallel rank (the latent is not split by heads).
    ds = load_model("deepseek-v3")
    assert footprint(ds, ParallelPlan(), job)["kv_cache"] == 61 * 576 * 8192 * 2
    tp8 = footprint(ds, ParallelPlan(tensor_parallel=8), job)["kv_cache"]
    assert tp8 == 61 * 576 * 8192 * 2 == 575_668_224
    # Llama 4 Scout at 32768: 36 chunked layers keep 8192 tokens, 12 NoPE layers all 32768;
    # 2 x 8 x 128 = 2048 elements: (36 x 8192 + 12 x 32768) x 2048 x 2 = 2,818,572,288.
    big = Job(phase="decode", batch=1, seq=32768, dtype="fp16")
    assert footprint(load_model("llama-4-scout"), ParallelPlan(), big)["kv_cache"] == (
        (36 * 8192 + 12 * 32768) * 2048 * 2) == 2_818_572_288
