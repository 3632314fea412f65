"""Memory footprint: hand-worked model states, ZeRO, KV cache, Korthikanti activations."""

from __future__ import annotations

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.analytic.bandwidth import decode_limits, growth_rates, memory_wall_table
from perfmodel.analytic.capacity import largest_fitting, memory_report, suggestions, verdict
from perfmodel.analytic.memory import (
    MemoryModel,
    MemoryPlan,
    check_plan,
    footprint,
    layer_activation_bytes,
    memory_model,
)
from perfmodel.errors import PlanError, ShapeError

GiB = 2**30

# A GPT-style toy: 1,000 params in one "layer", h = 64, a = 4 heads, plain 4h MLP.
TOY = MemoryModel(name="toy", params=1000.0, is_transformer=True, num_layers=1, hidden=64,
                  heads=4, kv_heads=4, head_dim=16, vocab=10, ffn=256, gated=False,
                  first_params=0.0, layer_params=1000.0, last_params=0.0)


def _train(**kw):
    base = dict(phase="train", batch=8, micro_batch=1, seq=4, dp=8, dtype="fp16",
                optimizer="adam", precision="mixed")
    base.update(kw)
    return MemoryPlan(**base)


def test_adam_mixed_precision_is_16_bytes_per_param():
    # ZeRO paper (Rajbhandari et al. 2020, sec. 3.1): 2 (fp16 weights) + 2 (fp16 grads)
    # + 12 (fp32 master, momentum, variance) = 16 bytes per parameter.
    f = footprint(TOY, _train(dp=1, batch=1))
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
    f = footprint(TOY, _train(zero=zero))
    assert (f["weights"], f["gradients"], f["optimizer"]) == (weights, grads, states)


def test_kv_cache_formula():
    # 2 x layers x kv_heads x head_dim x seq x batch x bytes: toy, seq 4, batch 3, fp16:
    # 2 * 1 * 4 * 16 * 4 * 3 * 2 = 3072.
    f = footprint(TOY, MemoryPlan(phase="decode", batch=3, seq=4))
    assert f["kv_cache"] == 3072


def test_llama2_7b_kv_cache_is_2_gib():
    # Llama-2-7B, batch 1, seq 4096, fp16: 2 x 32 x 32 x 128 x 4096 x 2 B = 2 GiB.
    mm = memory_model(pm.load_model("llama-2-7b"))
    f = footprint(mm, MemoryPlan(phase="decode", batch=1, seq=4096, dtype="fp16"))
    assert f["kv_cache"] == 2 * GiB


def test_gqa_shrinks_kv_cache():
    # Llama-2-70B has 8 KV heads of 64 (HF config): 80 layers x 8 x 128 x 2 x 2 B per token.
    mm = memory_model(pm.load_model("llama-2-70b"))
    f = footprint(mm, MemoryPlan(phase="decode", batch=1, seq=1, dtype="fp16"))
    assert f["kv_cache"] == 2 * 80 * 8 * 128 * 2


def test_7b_fp16_weights_about_13_5_gb():
    # "A 7B-parameter model in fp16 needs ~13.5 GB of weights": Llama-2-7B has
    # 6,738,415,616 parameters (HF model card) x 2 B = 13.48 GB.
    mm = memory_model(pm.load_model("llama-2-7b"))
    w = footprint(mm, MemoryPlan(phase="inference", seq=1))["weights"]
    assert w == 2 * 6_738_415_616
    assert w / 1e9 == pytest.approx(13.5, abs=0.05)


def test_llama2_70b_fp16_does_not_fit_one_80gb_device():
    mm = memory_model(pm.load_model("llama-2-70b"))
    v = verdict(mm, MemoryPlan(phase="decode", batch=1, seq=1, dtype="fp16"),
                pm.load_device("a100"))
    assert not v.fits and v.total_bytes > 2 * 68e9  # 68.98 G params x 2 B = 138 GB
    assert v.min_devices == 2


def test_korthikanti_activation_per_layer_no_recompute():
    # Korthikanti et al. 2023, sec. 4.1 and Table 2: sbh(34 + 5as/h) bytes per layer (t = 1).
    s, b, h, a = 4, 1, 64, 4
    assert layer_activation_bytes(TOY, s, b, 1, False, "none") == s * b * h * (34 + 5 * a * s / h)


def test_korthikanti_with_tensor_parallel_and_sequence_parallel():
    s, b, h, a, t = 4, 2, 64, 4, 4
    # Table 2: tensor parallel sbh(10 + 24/t + 5as/(ht)); + sequence parallel sbh/t (34 + 5as/h).
    assert layer_activation_bytes(TOY, s, b, t, False, "none") == pytest.approx(
        s * b * h * (10 + 24 / t + 5 * a * s / (h * t)))
    assert layer_activation_bytes(TOY, s, b, t, True, "none") == pytest.approx(
        s * b * h / t * (34 + 5 * a * s / h))


def test_korthikanti_selective_recompute_is_34sbh():
    # Table 2 (sec. 5): with selective recomputation and sequence parallelism, 34 sbh / t.
    s, b, h = 4, 1, 64
    assert layer_activation_bytes(TOY, s, b, 1, True, "selective") == 34 * s * b * h
    assert layer_activation_bytes(TOY, s, b, 2, True, "selective") == 34 * s * b * h / 2
    # Full recomputation keeps the layer input only: 2 sbh.
    assert layer_activation_bytes(TOY, s, b, 1, False, "full") == 2 * s * b * h


def test_pipeline_schedule_in_flight_micro_batches():
    # 1F1B keeps min(p, m) micro-batches in flight; GPipe all m. Toy: pp must be 1 (one
    # layer), so use a 4-layer toy with pp 2 and m = 8 micro-batches.
    mm = MemoryModel(**{**TOY.__dict__, "num_layers": 4, "params": 4000.0})
    one_f = footprint(mm, _train(pp=2, dp=1, batch=8))["activations"]
    gpipe = footprint(mm, _train(pp=2, dp=1, batch=8, schedule="gpipe"))["activations"]
    per_layer = layer_activation_bytes(mm, 4, 1, 1, False, "none")
    assert one_f == pytest.approx(2 * 2 * per_layer)   # 2 layers/stage x 2 in flight
    assert gpipe == pytest.approx(2 * 8 * per_layer)   # 2 layers/stage x 8 in flight


def test_vectorized_sweep_matches_scalar_calls():
    mm = memory_model(pm.load_model("llama-2-7b"))
    plan = MemoryPlan(phase="decode", batch=1, seq=1024)
    batches = np.array([1, 2, 8, 32])
    vec = footprint(mm, plan, batch=batches)["total"]
    for b, t in zip(batches, vec, strict=True):
        assert t == pytest.approx(float(footprint(mm, plan.with_(batch=int(b)))["total"]))


def test_largest_batch_that_fits_is_tight():
    mm = memory_model(pm.load_model("llama-2-7b"))
    plan = MemoryPlan(phase="decode", batch=1, seq=4096)
    cap = pm.load_device("a100").memory_capacity
    best = largest_fitting(mm, plan, cap, "batch")
    assert footprint(mm, plan.with_(batch=best))["total"] <= cap
    assert footprint(mm, plan.with_(batch=best + 1))["total"] > cap


def test_suggestions_priced_and_sorted():
    mm = memory_model(pm.load_model("llama-2-70b"))
    s = suggestions(mm, MemoryPlan(phase="decode", batch=1, seq=4096), pm.load_device("h100"))
    assert list(s["saves_bytes"]) == sorted(s["saves_bytes"], reverse=True)
    int4 = s.set_index("action").loc["weights to int4"]
    # int4 weights: 0.5 B instead of 2 B per parameter.
    assert int4["saves_bytes"] == pytest.approx(1.5 * 68_976_648_192, rel=1e-9)


def test_impossible_plans_are_plan_errors():
    mm = memory_model(pm.load_model("llama-2-7b"))
    with pytest.raises(PlanError, match="does not divide"):
        check_plan(mm, MemoryPlan(tp=3, seq=8))
    with pytest.raises(PlanError, match="exceeds"):
        check_plan(mm, MemoryPlan(pp=64, seq=8))
    with pytest.raises(ShapeError):
        check_plan(mm, MemoryPlan(batch=0, seq=8))
    with pytest.raises(PlanError, match="multiple"):
        check_plan(mm, MemoryPlan(phase="train", batch=10, micro_batch=3, seq=8))


def test_decode_limits_by_hand(tiny_device):
    # Tiny device: 10 B/s, 100 FLOP/s (efficiency 1). Toy decode, batch 1, seq 4, fp16:
    # weights 2000 B, KV 2*1*4*16*4*1*2 = 1024 B -> floor 302.4 s. Ridge R = 10 FLOP/B;
    # F = 2*1000 + 4*1*4*16*4 = 3024 FLOP/token < R*KV1 = 10240: never compute-bound.
    lim = decode_limits(TOY, MemoryPlan(phase="decode", batch=1, seq=4), tiny_device)
    assert lim["decode_floor_s"] == pytest.approx(302.4)
    assert lim["tokens_per_s_ceiling_per_device"] == pytest.approx(1 / 302.4)
    assert lim["compute_bound_batch"] is None
    # MQA toy (1 KV head), seq 1: KV1 = 2*1*1*16*1*2 = 64 B; F = 2000 + 4*1*4*16*1 = 2256;
    # b* = R W / (F - R KV1) = 10*2000 / (2256 - 640) = 12.38 sequences.
    mqa = MemoryModel(**{**TOY.__dict__, "kv_heads": 1})
    lim = decode_limits(mqa, MemoryPlan(phase="decode", batch=1, seq=1), tiny_device)
    assert lim["compute_bound_batch"] == pytest.approx(20000 / 1616)


def test_memory_wall_growth_compute_outpaces_bandwidth():
    # DOMAIN.md sec. 5: compute grows faster than memory bandwidth. Over the shipped NVIDIA
    # data-center specs the fitted growth of peak must exceed that of bandwidth.
    table = memory_wall_table([pm.load_device(n) for n in pm.list_devices()])
    g = growth_rates(table)
    assert g["peak_flops_per_s_per_year"] > g["bandwidth_Bps_per_year"] > 0


def test_report_round_trip_dict():
    mm = memory_model(pm.load_model("resnet50"))
    r = memory_report(mm, MemoryPlan(phase="train", batch=64), pm.load_device("orin"))
    d = r.to_dict()
    assert set(d["components"]) >= {"weights", "gradients", "optimizer", "activations"}
    assert d["verdict"]["fits"] is True
