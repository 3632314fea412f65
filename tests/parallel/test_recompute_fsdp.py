"""torchtitan's activation-checkpointing modes in the memory model, and the FSDP (ZeRO-3)
communication the step model leaves exposed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perfmodel.analytic.memory import layer_activation_bytes
from perfmodel.errors import UnknownNameError
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system
from perfmodel.parallel.step import _fsdp_edges, predict_step
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan
from perfmodel.zoo.registry import load_model

# a GPT layer: h 64, 4 heads, MLP 4h, plain (Korthikanti's 34 sbh without recompute)
GPT = ModelShape(architecture="decoder", vocab_size=10, hidden_size=64, intermediate_size=256,
                 num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                 head_dim=16, max_position_embeddings=64, position_embedding="learned",
                 norm="layernorm", norm_position="pre", activation="gelu", mlp="plain")


def test_selective_op_keeps_input_q_v_sdpa_up_and_down_outputs():
    # saved at 2 bytes: block input (h), Q (h), V (h), SDPA out (h), MLP up (4h), MLP
    # down (h): 2 x 9 = 18 sbh; with TP t = 4 the head / column split ones (Q, V, SDPA,
    # up: 14 sbh) are / t, the input and down output are not: 4 + 14 / 4
    s, b, h = 4, 1, 64
    assert layer_activation_bytes(GPT, s, b, 1, False, "selective_op") == 18 * s * b * h
    assert layer_activation_bytes(GPT, s, b, 4, False, "selective_op") == pytest.approx(
        (4 + 14 / 4) * s * b * h)
    assert layer_activation_bytes(GPT, s, b, 4, True, "selective_op") == pytest.approx(
        18 / 4 * s * b * h)


def test_selective_layer_is_half_none_half_full():
    # every 2nd block keeps only its input (2 sbh), the others everything: sbh (34 + 5as/h)
    s, b, h, a = 4, 1, 64, 4
    none = s * b * h * (34 + 5 * a * s / h)
    assert layer_activation_bytes(GPT, s, b, 1, False, "selective_layer") == pytest.approx(
        (none + 2 * s * b * h) / 2)


def test_fsdp_edges_hand_worked():
    # gathers cost 1 s per byte, reduce-scatters 10 s per byte: 2 micro-batches each gather
    # the root (embedding + head, pp 1) and the first block; the last backward leaves the
    # first block's and the root's reduce-scatters
    st = load_model("gpt2").stage_params
    edges = _fsdp_edges(st, 1, 1, "bf16", 2, lambda n: n, lambda n: 10 * n)
    root, block = 2 * (st.first + st.last), 2 * st.layer
    assert edges == pytest.approx(2 * (root + block) + 10 * (block + root))


def test_fp32_gradient_reduction_costs_more_exposed_time():
    # torchtitan reduces FSDP gradients in fp32 (mixed_precision_reduce default): twice the
    # reduce-scatter bytes of bf16; here the exposed edge grows, compute does not change
    g, sy, dv = load_model("llama-3-8b"), load_system("dgx-a100"), load_device(
        "a100-sxm4-80gb")
    plan = ParallelPlan(data_parallel=64, micro_batch=1, zero_stage=3,
                        recompute="selective_op")
    job = Job(phase="train", batch=64, seq=8192, dtype="bf16")
    bf16, fp32 = (predict_step(g, job, replace(plan, reduce_dtype=r), sy, dv)
                  for r in (None, "fp32"))
    assert fp32.breakdown["dp_comm"] > bf16.breakdown["dp_comm"] > 0
    assert fp32.breakdown["compute"] == bf16.breakdown["compute"]


def test_unknown_reduce_dtype():
    with pytest.raises(UnknownNameError):
        ParallelPlan(reduce_dtype="fp33")
