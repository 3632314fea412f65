"""perfmodel.inference.iteration: a serving iteration costs what infer's passes cost."""

from __future__ import annotations

import pytest

import perfmodel as pm
from perfmodel.inference.iteration import Iteration, IterationCost
from perfmodel.inference.run import infer, iteration_cost, prepare
from perfmodel.workload.plan import ParallelPlan


@pytest.mark.parametrize("batch,tp", [(1, 1), (16, 1), (64, 2)])
def test_a_decode_iteration_is_infers_decode_step(batch, tp):
    # the iteration model splits a pass into the kernels that scale with tokens, the LM
    # head (with the sequences that sample) and attention (with the KV read); put back
    # together at a batch of b sequences of KV T they are infer's decode step
    g = pm.load_model("llama-2-7b")
    dev = pm.load_device("h100")
    plan = ParallelPlan(tensor_parallel=tp)
    s, _ = prepare(g, dev, engine="vllm", plan=plan)
    cost = iteration_cost(s, max_tokens=65536, lengths=(1000,), context=1200, max_seqs=64)
    run = infer(g, dev, engine="vllm", batch=batch, input_len=1000, output_len=2, plan=plan)
    step = run.passes[run.passes["pass"] == "decode"].iloc[0]
    it = Iteration(decode_seqs=batch, decode_kv=batch * step["context"])
    assert cost.gpu(it) == pytest.approx(step["gpu_s"], rel=1e-6)
    pre = run.passes[run.passes["pass"] == "prefill"].iloc[0]
    assert pre["gpu_s"] == pytest.approx(cost.gpu(Iteration(
        prefill_tokens=batch * 1000, prefill_pairs=batch * IterationCost.chunk_pairs(
            1000, 1000), prefill_context=batch * 1000, prefill_chunks=batch,
        prefill_done=batch)), rel=1e-3)
