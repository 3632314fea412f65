"""The analytic 3D-parallel step: its parts add up, TP / PP / DP terms follow their formulas,
the DES agrees for uniform-ish stages, memory comes from analytic.memory."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.analytic.memory import footprint
from perfmodel.analytic.network import predict_collective
from perfmodel.errors import PlanError
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system
from perfmodel.parallel.step import BREAKDOWN, predict_step
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan, check_plan
from perfmodel.zoo.registry import load_model


@pytest.fixture(scope="module")
def env():
    return load_model("gpt3-175b"), load_system("dgx-a100"), load_device("a100-sxm4-80gb")


PLAN = ParallelPlan(data_parallel=8, tensor_parallel=8, pipeline_parallel=16, micro_batch=1,
                    schedule="interleaved", virtual_stages=2, zero_stage=1,
                    recompute="selective", sequence_parallel=True)


# a 2-layer mixture of 4 experts, top-2: small enough to price in milliseconds
TINY_MOE = ModelShape(architecture="decoder", vocab_size=100, hidden_size=64,
                      intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, head_dim=16, max_position_embeddings=128,
                      position_embedding="rope", norm="rmsnorm", norm_position="pre",
                      activation="silu", mlp="gated", num_local_experts=4,
                      num_experts_per_tok=2)


def job(batch: int) -> Job:
    """A GPT-3 training step of ``batch`` sequences of 2,048 tokens in bf16."""
    return Job(phase="train", batch=batch, seq=2048, dtype="bf16")


def test_breakdown_adds_up_and_metrics_consistent(env):
    g, s, d = env
    pred = predict_step(g, job(512), PLAN, s, d)
    assert sum(pred.breakdown[k] for k in BREAKDOWN) == pytest.approx(pred.step_s)
    assert pred.tokens_per_s == pytest.approx(512 * 2048 / pred.step_s)
    # MFU = 72 B s l h^2 (1 + s/6h + V/12hl) / (T N peak), Narayanan et al. 2021 eq. 3
    h, n_l, v, sq = 12288, 96, 50257, 2048
    flops = 72 * 512 * sq * n_l * h * h * (1 + sq / (6 * h) + v / (12 * h * n_l))
    assert pred.mfu == pytest.approx(flops / (pred.step_s * 1024 * 312e12))
    assert pred.hfu > pred.mfu  # selective recompute reruns the attention core
    # the bubble over the ideal m T_max: (p-1)/(v m) x T_mean / T_max (the first and last
    # stages carry the embedding and the LM head, so the mean stage is the faster one)
    bd = pred.breakdown
    ideal = bd["compute"] + bd["tp_comm"] + bd["pp_p2p"]
    assert pred.bubble_fraction == pytest.approx(bd["bubble"] / ideal)
    assert 0.9 * 15 / (2 * 64) < pred.bubble_fraction <= 15 / (2 * 64)  # (p-1)/(v m)


def test_tp_comm_forward_exposed_backward_hidden_under_wgrad(env):
    # Megatron-LM 2022 / Korthikanti et al. 2023 sec. 6.2: the 2 forward all-reduces of a
    # layer are exposed; the 2 backward ones run under the column-parallel linears'
    # weight-gradient GEMMs. GPT-3 at tp 8, b 1: the QKV wgrad GEMM (2 s h 3h / 8 FLOP at
    # 0.72 x 312 TFLOP/s, ~1.0 ms) outlasts one 48 MiB all-reduce, so only 2 per layer show;
    # full recomputation reruns the forward and its 2 all-reduces (4 per layer).
    g, s, d = env
    plan = ParallelPlan(tensor_parallel=8, micro_batch=1)
    pred = predict_step(g, job(2), plan, s, d)
    ar = predict_collective(s, "all_reduce", [2048 * 12288 * 2], 1, 8).table
    t_ar = float(ar["time_us"].iloc[0]) * 1e-6
    wgrad_qkv = 2 * 2048 * 12288 * 3 * 12288 / 8 / (0.72 * 312e12)
    assert t_ar < wgrad_qkv
    assert pred.breakdown["tp_comm"] == pytest.approx(2 * 96 * 2 * t_ar)  # m x l x 2
    full = predict_step(g, job(2), ParallelPlan(tensor_parallel=8, micro_batch=1,
                                                recompute="full"), s, d)
    assert full.breakdown["tp_comm"] == pytest.approx(2 * 96 * 4 * t_ar)
    assert pred.breakdown["bubble"] == 0.0 and pred.breakdown["pp_p2p"] == 0.0


def test_sequence_parallel_backward_exposes_the_gradient_all_gathers(env):
    # SP: forward 2 x (reduce-scatter + all-gather); backward the row-parallel output-
    # gradient all-gathers are synchronous (2 exposed), the column-parallel re-gather and
    # reduce-scatter hide under the input- and weight-gradient GEMMs
    g, s, d = env
    plan = ParallelPlan(tensor_parallel=8, micro_batch=1, sequence_parallel=True)
    pred = predict_step(g, job(2), plan, s, d)
    size = [2048 * 12288 * 2]
    rs = float(predict_collective(s, "reduce_scatter", size, 1, 8).table["time_us"].iloc[0])
    ag = float(predict_collective(s, "all_gather", size, 1, 8).table["time_us"].iloc[0])
    per_layer = (2 * (rs + ag) + 2 * ag) * 1e-6
    assert pred.breakdown["tp_comm"] == pytest.approx(2 * 96 * per_layer)


def test_interleaving_shrinks_the_bubble(env):
    g, s, d = env
    base = dict(data_parallel=8, tensor_parallel=8, pipeline_parallel=16, micro_batch=1,
                recompute="selective", sequence_parallel=True)
    one = predict_step(g, job(512), ParallelPlan(**base), s, d)
    two = predict_step(g, job(512), ParallelPlan(**base, schedule="interleaved",
                                                 virtual_stages=2), s, d)
    assert two.breakdown["bubble"] == pytest.approx(one.breakdown["bubble"] / 2, rel=0.05)
    assert two.breakdown["pp_p2p"] == pytest.approx(2 * one.breakdown["pp_p2p"])


def test_overlap_hides_dp_comm(env):
    g, s, d = env
    plan = ParallelPlan(data_parallel=8, tensor_parallel=8, pipeline_parallel=16,
                        micro_batch=1)
    on = predict_step(g, job(512), plan, s, d)
    off = predict_step(g, job(512), ParallelPlan(**{**plan.to_dict(),
                                                    "overlap_grad_reduce": False}), s, d)
    assert off.breakdown["dp_comm"] > on.breakdown["dp_comm"] > 0


def test_memory_is_the_memory_model(env):
    g, s, d = env
    plan = ParallelPlan(data_parallel=8, tensor_parallel=8, pipeline_parallel=16,
                        micro_batch=1, zero_stage=1, recompute="selective",
                        sequence_parallel=True)
    pred = predict_step(g, job(512), plan, s, d)
    # the one memory model, with the same three records: nothing translated by hand
    assert pred.memory["total"] == float(np.asarray(
        footprint(g, plan, job(512), device=d)["total"]))
    assert pred.fits
    assert pred.job == job(512) and pred.to_dict()["job"]["batch"] == 512


def test_sim_agrees_with_analytic(env):
    g, s, d = env
    a = predict_step(g, job(512), PLAN, s, d)
    sim = predict_step(g, job(512), PLAN, s, d, method="sim")
    assert sim.step_s == pytest.approx(a.step_s, rel=0.03)
    assert sim.simulation["events"] > 0


def test_impossible_plans_for_the_model(env):
    g, s, d = env
    with pytest.raises(PlanError):  # 96 heads / 7
        predict_step(g, job(1), ParallelPlan(tensor_parallel=7), s, d)
    with pytest.raises(PlanError):  # 96 layers / (16 x 4) chunks
        predict_step(g, job(16), ParallelPlan(pipeline_parallel=16, micro_batch=1,
                                              schedule="interleaved", virtual_stages=4), s, d)
    with pytest.raises(PlanError, match="unevenly"):  # tp 12 over nodes of 8
        predict_step(g, job(1), ParallelPlan(tensor_parallel=12), s, d)


def test_context_and_expert_parallelism_are_priced(env):
    g, s, d = env
    # 2 sequences on 2 devices: each holds one whole sequence (dp 2) or half of each (cp 2,
    # causal load balancing): the same tokens and attention pairs per device, so the same
    # compute; cp adds the KV ring, dp the gradient all-reduce of the same size
    by_dp = predict_step(g, job(2), ParallelPlan(data_parallel=2, micro_batch=1), s, d)
    by_cp = predict_step(g, job(2), ParallelPlan(context_parallel=2, micro_batch=1), s, d)
    assert by_cp.breakdown["compute"] == pytest.approx(by_dp.breakdown["compute"])
    assert by_cp.breakdown["cp_comm"] >= 0 and by_dp.breakdown["cp_comm"] == 0
    # one micro-batch in flight (pp 1) of s / 2 tokens per device instead of s
    assert by_cp.memory["activations"] == pytest.approx(by_dp.memory["activations"] / 2)
    with pytest.raises(PlanError, match="2 x 2 equal chunks"):
        predict_step(g, Job(phase="train", batch=2, seq=2050, dtype="bf16"),
                     ParallelPlan(context_parallel=2, micro_batch=1), s, d)
    moe = TINY_MOE
    tiny = load_model(moe, name="tiny-moe")
    plan = ParallelPlan(data_parallel=2, expert_parallel=2, micro_batch=1)
    check_plan(plan, batch=2, shape=moe)
    pred = predict_step(tiny, Job(phase="train", batch=2, seq=16, dtype="bf16"), plan, s, d)
    assert pred.breakdown["ep_comm"] > 0  # 2 all-to-alls forward, 2 backward, per layer
    dense = predict_step(tiny, Job(phase="train", batch=2, seq=16, dtype="bf16"),
                         ParallelPlan(data_parallel=2, micro_batch=1), s, d)
    assert dense.breakdown["ep_comm"] == 0
    # e = 2 keeps 2 of the 4 experts' weights, gradients and Adam states per device
    assert pred.memory["weights"] < dense.memory["weights"]
    with pytest.raises(PlanError, match="phase 'train'"):
        predict_step(g, Job(phase="inference", batch=1, seq=2048), ParallelPlan(), s, d)


def test_dualpipe_hides_the_all_to_alls_and_the_split_still_adds_up(env):
    _, s, d = env
    moe = TINY_MOE
    tiny = load_model(moe, name="tiny-moe")
    job = Job(phase="train", batch=8, seq=16, dtype="bf16")
    kw = dict(data_parallel=2, expert_parallel=2, pipeline_parallel=2, micro_batch=1)
    one = predict_step(tiny, job, ParallelPlan(**kw), s, d)
    dual = predict_step(tiny, job, ParallelPlan(schedule="dualpipe", **kw), s, d)
    for pred in (one, dual):
        assert sum(pred.breakdown[k] for k in BREAKDOWN) == pytest.approx(pred.step_s)
    # DeepSeek-V3 sec. 3.2.1: the other direction's compute hides dispatch and combine
    assert dual.breakdown["ep_comm"] < one.breakdown["ep_comm"]


def test_embedding_and_loss_as_pipeline_layers(env):
    # Megatron-Core account_for_embedding/loss_in_pipeline_split: 2 layers + 2 = 4 slots
    # over pp 2 x v 2 = 4 chunks of 1 (the first the embedding, the last the loss); the
    # 2 decoder layers alone do not split into 4 chunks
    _, s, d = env
    tiny = load_model(TINY_MOE, name="tiny-moe")
    job = Job(phase="train", batch=4, seq=16, dtype="bf16")
    kw = dict(pipeline_parallel=2, virtual_stages=2, schedule="interleaved", micro_batch=1)
    with pytest.raises(PlanError, match="exceed"):
        predict_step(tiny, job, ParallelPlan(**kw), s, d)
    pred = predict_step(tiny, job, ParallelPlan(embedding_as_layers=True, **kw), s, d)
    assert sum(pred.breakdown[k] for k in BREAKDOWN) == pytest.approx(pred.step_s)
