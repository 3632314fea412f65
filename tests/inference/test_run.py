"""perfmodel.inference.run: hand-worked checks of a generation's cost, its parallel split and its
memory, on a device of round numbers (1 PFLOP/s fp16, 1 TB/s, efficiency 1, no floor) and an
engine with no host cost, so every second below is bytes / bandwidth or FLOP / peak."""

from __future__ import annotations

import math

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.analytic.capacity import Extras
from perfmodel.analytic.network import predict_collective
from perfmodel.errors import PlanError
from perfmodel.hardware.load import device_from_dict
from perfmodel.hardware.system import load_system
from perfmodel.inference.engine import engine_from_dict
from perfmodel.inference.run import Speculation, infer
from perfmodel.inference.shard import is_expert, shard
from perfmodel.inference.timing import queue_time
from perfmodel.workload.build import build_workload
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

BW = 1e12  # bytes/s


def _device(capacity_gb: float = 80.0):
    f = {"source": "HAND"}
    return device_from_dict({
        "name": "round", "display_name": "Round", "category": "datacenter-gpu",
        "sources": {"HAND": "round numbers for tests"},
        "compute": {"tensor_TFLOPS": {"fp16": {"value": 1000, **f}},
                    "vector_TFLOPS": {"fp16": {"value": 100, **f}, "fp32": {"value": 50, **f}}},
        "memory": [{"name": "hbm", "role": "main", "capacity_GB": {"value": capacity_gb, **f},
                    "bandwidth_GBps": {"value": BW / 1e9, **f}}],
        "efficiency": {"compute": {"value": 1.0, **f}, "memory": {"value": 1.0, **f},
                       "launch_overhead_us": {"value": 0, **f}},
    }, "round.yaml")


def _engine(**over):
    f = {"source": "HAND"}
    d = {"schema": 1, "name": "bare", "stack": "any", "kind": "eager",
         "fusion": {"value": "none", **f}, "attention": {"value": "flash", **f},
         "host_per_kernel_us": {"value": 0, **f}, "graph_per_kernel_us": {"value": 0, **f},
         "decode_graphs": {"value": False, **f}, "prefill_graphs": {"value": False, **f},
         "per_step_us": {"value": 0, **f}, "per_call_us": {"value": 0, **f},
         "chunked_prefill_tokens": {"value": 0, **f}, "memory_fraction": {"value": 1.0, **f},
         "memory_overhead_GB": {"value": 0, **f}, "tp_overlap": {"value": 0, **f},
         "split": {"value": "tensor", **f}, "sources": {"HAND": "test"}}
    d.update({k: {"value": v, **f} for k, v in over.items()})
    return engine_from_dict(d, "bare.yaml")


@pytest.fixture(scope="module")
def llama():
    return pm.load_model("llama-2-7b")


def test_decode_grows_by_the_kv_bytes_of_one_more_token(llama):
    # Llama-2-7B: 32 layers, 32 KV heads x 128. One more cached token per sequence adds
    # batch x layers x 2 (K, V) x 32 x 128 x 2 bytes = 4 x 32 x 2 x 4096 x 2 = 2,097,152
    # bytes of attention reads per step: 2.097152 us at 1 TB/s (attention is memory-bound
    # at decode: 2 FLOP per byte read, far under the 1,000 FLOP/byte ridge).
    r = infer(llama, _device(), engine=_engine(), batch=4, input_len=1000, output_len=11)
    dec = r.passes[r.passes["pass"] == "decode"]
    assert len(dec) == 10  # output_len - 1 steps: the prefill yields the first token
    assert list(dec["context"]) == list(range(1001, 1011))
    np.testing.assert_allclose(np.diff(dec["gpu_s"]), 2_097_152 / BW, rtol=1e-9)
    # the run is the sum of its steps, not n times the last one
    total = r.summary["ttft_s"] + dec["seconds"].sum()
    assert r.summary["latency_s"] == pytest.approx(total, rel=1e-12)
    assert r.summary["tpot_s"] == pytest.approx(dec["seconds"].mean(), rel=1e-12)
    assert dec["seconds"].sum() < 10 * dec["seconds"].iloc[-1]


def test_engine_step_cost_adds_once_per_pass(llama):
    # 1 prefill + 7 decode passes, 300 us each
    base = infer(llama, _device(), engine=_engine(), batch=1, input_len=64, output_len=8)
    cost = infer(llama, _device(), engine=_engine(per_step_us=300), batch=1, input_len=64,
                 output_len=8)
    assert cost.summary["latency_s"] - base.summary["latency_s"] == pytest.approx(8 * 300e-6)


def test_tensor_parallel_halves_weights_and_adds_two_all_reduces_per_layer(llama):
    system = load_system("dgx-a100")
    one = infer(llama, _device(), engine=_engine(), batch=2, input_len=128, output_len=4)
    two = infer(llama, _device(), engine=_engine(), batch=2, input_len=128, output_len=4,
                plan=ParallelPlan(tensor_parallel=2), system=system)
    assert two.memory["weights"] == pytest.approx(one.memory["weights"] / 2, rel=1e-12)
    # a decode step's all-reduces: 2 per layer x 32 layers, each of batch x hidden x 2 bytes
    # = 2 x 4096 x 2 = 16,384 bytes, on the system's NVLink between 2 GPUs
    ar = predict_collective(system, "all_reduce", [2 * 4096 * 2], nodes=1, per_node=2)
    per_step = 2 * 32 * float(ar.table["time_us"].iloc[0]) * 1e-6
    dec = two.passes[two.passes["pass"] == "decode"]
    np.testing.assert_allclose(dec["communication_s"], per_step, rtol=1e-12)
    assert (one.passes["communication_s"] == 0).all()
    # the GEMM weights each rank reads are half
    wl = build_workload(llama, batch=2, seq=129, phase="decode").table
    lin = wl["kind"] == "linear"
    half = shard(wl, llama.shape, tp=2)
    assert half.loc[lin, "weight_bytes"].sum() == pytest.approx(
        wl.loc[lin, "weight_bytes"].sum() / 2, rel=1e-12)


def test_moe_reads_the_experts_a_batch_touches():
    # Mixtral 8x7B: 8 experts of 3 x 4096 x 14336 weights per layer (w1, w3, w2), top-2.
    # A decode step of 1 token touches 2 experts: 2/8 of the expert bytes; 256 tokens touch
    # 8 x (1 - (6/8)^256), all 8 to 1e-30.
    mix = pm.load_model("mixtral-8x7b")
    per_layer = 8 * 3 * 4096 * 14336 * 2  # bytes, fp16
    for batch, share in ((1, 2 / 8), (256, 1 - (6 / 8) ** 256)):
        wl = build_workload(mix, batch=batch, seq=100, phase="decode").table
        read = wl.loc[is_expert(wl["name"]), "weight_bytes"].sum()
        assert read == pytest.approx(32 * per_layer * share, rel=1e-9)


def test_expert_parallel_splits_expert_weights_over_ranks():
    mix = pm.load_model("mixtral-8x7b")
    job = Job(phase="decode", batch=8, seq=256, dtype="fp16")
    fp1 = Extras().footprint(mix, ParallelPlan(data_parallel=8), job)
    fp8 = Extras().footprint(mix, ParallelPlan(data_parallel=8, expert_parallel=8), job)
    experts = 32 * 8 * 3 * 4096 * 14336 * 2
    assert float(fp1["weights"] - fp8["weights"]) == pytest.approx(experts * 7 / 8, rel=1e-12)


def test_a_batch_past_capacity_runs_in_waves(llama):
    dev = _device(capacity_gb=20.0)
    r1 = infer(llama, dev, engine=_engine(), batch="max", input_len=512, output_len=4)
    most = r1.summary["batch"]
    assert most == r1.summary["max_batch"] and most > 1
    r = infer(llama, dev, engine=_engine(), batch=2 * most + 1, input_len=512, output_len=4)
    assert r.summary["waves"] == 3 and r.summary["wave_batch"] == most and r.fits
    assert any("3 waves" in w for w in r.warnings)
    last = infer(llama, dev, engine=_engine(), batch=1, input_len=512, output_len=4)
    assert r.summary["total_s"] == pytest.approx(
        2 * r1.summary["total_s"] + last.summary["total_s"], rel=1e-9)


def test_memory_agrees_with_the_memory_model_to_the_byte(llama):
    eng = _engine(memory_overhead_GB=1.5, memory_fraction=0.9)
    r = infer(llama, _device(), engine=eng, batch=16, input_len=1000, output_len=200)
    fp = Extras(overhead_bytes=1.5e9).footprint(
        llama, ParallelPlan(), Job(phase="decode", batch=16, seq=1200, dtype="fp16"))
    assert r.memory["total"] == float(fp["total"])
    assert r.summary["usable_bytes"] == pytest.approx(0.9 * 80e9)


def test_what_cannot_fit_says_so(llama):
    r = infer(llama, _device(capacity_gb=10.0), engine=_engine(), batch=1, input_len=64,
              output_len=2)
    assert not r.fits and r.warnings[0].startswith("DOES NOT FIT")
    with pytest.raises(PlanError, match="does not fit"):
        infer(llama, _device(capacity_gb=10.0), engine=_engine(), batch="max", input_len=64)


def test_speculative_rounds_follow_leviathan():
    # k = 3 drafted tokens at acceptance 0.5: (1 - 0.5^4) / (1 - 0.5) = 1.875 per round
    spec = Speculation(pm.load_model("llama-2-7b"), tokens=3, acceptance=0.5)
    assert spec.tokens_per_round == pytest.approx(1.875)
    target = pm.load_model("llama-2-70b")
    r = infer(target, _device(capacity_gb=400), engine=_engine(), batch=1, input_len=32,
              output_len=31, speculation=spec)
    rounds = math.ceil(30 / 1.875)  # 16 verify passes, 3 draft steps each
    kinds = r.passes["pass"].value_counts()
    assert kinds["verify"] == rounds and kinds["draft"] == 3 * rounds


def test_launch_queue_is_the_slower_of_host_and_gpu():
    g = np.array([5.0, 5.0, 1.0, 1.0, 1.0])
    assert float(queue_time(g, 0.0)) == 13.0          # GPU-bound: the sum
    assert float(queue_time(g, 10.0)) == 51.0         # host-bound: 5 launches + last kernel
    assert float(queue_time(g, 2.0)) == 15.0          # first launch + the GPU's 13


def test_fp8_on_a_device_without_fp8_falls_back_to_weight_only(llama):
    a100 = pm.load_device("a100")
    r = infer(llama, a100, engine="vllm", batch=1, input_len=64, output_len=2, dtype="fp8")
    assert r.summary["weight_dtype"] == "fp8" and r.summary["gemm_dtype"] != "fp8"
    assert "weight-only" in r.assumptions["precision"]
    h100 = pm.load_device("h100")
    r = infer(llama, h100, engine="vllm", batch=1, input_len=64, output_len=2, dtype="fp8")
    assert r.summary["gemm_dtype"] == "fp8"


@pytest.mark.parametrize("name", ["llama-2-7b", "deepseek-v3", "gemma-2-9b"])
def test_pricing_one_block_of_each_kind_equals_pricing_every_block(name):
    # infer prices each distinct block once and repeats its rows; the kernels must be
    # those of the whole graph priced op by op (dense-first / MoE / sliding-window mixes)
    from perfmodel.analytic.roofline import roofline
    from perfmodel.inference.run import _distinct_layers, _price, _Setup
    from perfmodel.inference.timing import kernels_of
    graph = pm.load_model(name)
    reduced, _, _ = _distinct_layers(graph)
    assert len(reduced.ops) < len(graph.ops) / 5
    dev = pm.load_device("h100")
    s = _Setup(graph, dev, None, _engine(fusion="epilogue"), ParallelPlan(), "bf16", "bf16",
               "bf16", None, 1.0)
    got = _price(s, graph, "decode", 4, 300)
    wl = build_workload(graph, batch=4, seq=300, phase="decode", dtype="bf16")
    want = kernels_of(roofline(wl.table, dev, dtype_fallback=True, fusion="epilogue"))
    np.testing.assert_allclose(got.gpu, want.gpu, rtol=1e-12)


def test_layer_split_runs_stages_in_turn_plus_one_send_per_boundary(llama):
    # llama.cpp's --split-mode layer on 2 GPUs: a decode step is the same kernels as on one
    # GPU (the stages run one after the other) plus one send of batch x hidden x 2 bytes
    system = load_system("dgx-a100")
    one = infer(llama, _device(), engine=_engine(), batch=2, input_len=64, output_len=4)
    two = infer(llama, _device(), engine=_engine(), batch=2, input_len=64, output_len=4,
                plan=ParallelPlan(pipeline_parallel=2), system=system)
    send = predict_collective(system, "send_recv", [2 * 4096 * 2], nodes=1, per_node=2)
    hop = float(send.table["time_us"].iloc[0]) * 1e-6
    d1 = one.passes[one.passes["pass"] == "decode"]["seconds"].to_numpy()
    d2 = two.passes[two.passes["pass"] == "decode"]["seconds"].to_numpy()
    np.testing.assert_allclose(d2 - d1, hop, rtol=1e-9)
    assert two.memory["weights"] < 0.55 * one.memory["weights"]


def test_expert_parallel_adds_dispatch_and_combine_per_moe_layer():
    # Mixtral on 2 replicas with ep 2: each of 32 MoE layers a decode step sends its tokens'
    # top-2 copies out and back: 2 all-to-alls of batch x 2 x 4096 x 2 bytes per rank
    mix = pm.load_model("mixtral-8x7b")
    system = load_system("dgx-a100")
    r = infer(mix, _device(capacity_gb=200), engine=_engine(), batch=8, input_len=64,
              output_len=3, plan=ParallelPlan(data_parallel=2, expert_parallel=2),
              system=system)
    a2a = predict_collective(system, "all_to_all", [4 * 2 * 4096 * 2], nodes=1, per_node=2)
    per_step = 32 * 2 * float(a2a.table["time_us"].iloc[0]) * 1e-6
    dec = r.passes[r.passes["pass"] == "decode"]
    np.testing.assert_allclose(dec["communication_s"], per_step, rtol=1e-12)


def test_a_pass_without_host_time_is_the_sum_of_its_kernels():
    # the summing shortcut (host 0: only context-dependent kernels re-evaluated) equals the
    # launch-queue evaluation of every kernel at a vanishing host time
    from perfmodel.inference.timing import AffinePass, Kernels
    rng = np.random.default_rng(1)
    k0 = Kernels(rng.random(50), rng.random(50), np.full(50, 0.01), np.zeros(50))
    grow = np.zeros(50)
    grow[::7] = 0.3
    k1 = Kernels(k0.compute + grow, k0.memory + 2 * grow, k0.floor, k0.comm)
    ap = AffinePass(k0, k1, 100.0, 200.0)
    lengths = np.arange(100, 201, 5)
    fast = ap.run(lengths, 0.0)
    slow = ap.run(lengths, 1e-15)
    for f, s in zip(fast, slow, strict=True):
        np.testing.assert_allclose(f, s, rtol=1e-9)


@pytest.mark.parametrize("name,dp", [("llama-2-7b", 1), ("mixtral-8x7b", 4), ("resnet50", 1),
                                     ("bert-base", 3)])
def test_largest_batch_closed_form_matches_the_search(name, dp):
    # at inference the footprint is linear in sequences per replica: the closed form and
    # analytic.capacity.largest_fitting's search agree
    from perfmodel.analytic.capacity import largest_fitting
    from perfmodel.inference.run import _largest_batch
    g = pm.load_model(name)
    llm = bool(g.meta.get("is_llm"))
    job = Job(phase="decode" if llm else "inference", batch=1, seq=1500 if llm else None,
              dtype="fp16").with_seq(g.default_seq)
    plan = ParallelPlan(data_parallel=dp)
    extras = Extras(overhead_bytes=1e9)
    for usable in (30e9, 150e9):
        assert _largest_batch(g, plan, job, usable, extras) == largest_fitting(
            g, plan, job, usable, "batch", extras)
