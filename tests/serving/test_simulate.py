"""perfmodel.serving: the serving simulation against closed forms and against infer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import perfmodel as pm
from perfmodel.errors import MeasurementError, PlanError, ShapeError
from perfmodel.inference.iteration import Iteration, IterationCost
from perfmodel.inference.run import infer, prepare
from perfmodel.serving.requests import arrivals, lengths, read_trace, requests
from perfmodel.serving.run import kv_pool, serve
from perfmodel.serving.simulate import Scheduler, simulate, summary


class FixedCost(IterationCost):
    """Every iteration takes ``s`` seconds (a deterministic server)."""

    def __init__(self, s: float) -> None:  # noqa: D107 - a test double
        object.__setattr__(self, "s", s)
        object.__setattr__(self, "causal", True)

    def time(self, it: Iteration) -> float:
        return self.s


def test_md1_mean_wait_matches_pollaczek_khinchine():
    # One server, one request at a time, deterministic service D = 4 iterations x 0.05 s
    # (a prefill, then 3 decode steps), Poisson arrivals at rate 3/s: rho = 0.6 and the
    # M/D/1 mean wait is rho D / (2 (1 - rho)) = 0.6 x 0.2 / 0.8 = 0.15 s (Kleinrock,
    # Queueing Systems vol. 1, eq. 5.7 with C_s^2 = 0).
    reqs = requests(40_000, 3.0, 16, 4, seed=7)
    sim = simulate(reqs, FixedCost(0.05), Scheduler(max_num_seqs=1), kv_blocks=64)
    wait = sim.requests["queue_s"].mean()
    assert wait == pytest.approx(0.15, rel=0.05)
    np.testing.assert_allclose(sim.requests["e2e_s"] - sim.requests["queue_s"], 0.2,
                               rtol=1e-9)


@pytest.fixture(scope="module")
def llama():
    return pm.load_model("llama-2-7b")


def test_a_lone_request_sees_what_infer_predicts(llama):
    # rate -> 0: every request finds the replica idle, so serve's TTFT and TPOT are
    # infer's single-request figures
    h100 = pm.load_device("h100")
    one = infer(llama, h100, engine="vllm", batch=1, input_len=512, output_len=64)
    reqs = requests(5, 0.001, 512, 64, seed=1)
    res = serve(llama, h100, reqs, engine="vllm")
    r = res.requests
    np.testing.assert_allclose(r["ttft_s"], one.summary["ttft_s"], rtol=1e-9)
    np.testing.assert_allclose(r["tpot_s"], one.summary["tpot_s"], rtol=1e-6)  # rounding
    assert (r["queue_s"] == 0).all()


def test_throughput_saturates_at_the_batch_the_kv_cache_holds(llama):
    # far past capacity, every decode step runs as many sequences as the KV pool holds:
    # they are at every stage of their 256 tokens, so on average each holds its 1,024-token
    # prompt and half its output: pool tokens / (1024 + 128) sequences
    h100 = pm.load_device("h100")
    setup, _ = prepare(llama, h100, engine="vllm")
    blocks, _ = kv_pool(setup, 16, 8192)
    fits = blocks * 16 / (1024 + 128)
    res = serve(llama, h100, requests(3000, 1000.0, 1024, 256, seed=2), engine="vllm",
                scheduler=Scheduler(max_num_seqs=4096))
    it = res.iterations
    steady = it[(it["prefill_tokens"] == 0)].iloc[len(it) // 4: len(it) // 2]
    assert steady["decode_seqs"].median() == pytest.approx(fits, rel=0.1)
    assert res.warnings and res.warnings[0].startswith("OVERLOADED")


def test_static_batching_holds_a_batch_until_its_longest_request_ends():
    # two requests arrive together, 2 and 5 tokens out, at 1 s an iteration: one prefill,
    # then 4 decode steps for the batch; the short one finishes at its own step, but the
    # next batch starts only after step 5
    reqs = pd.DataFrame({"request_id": [0, 1, 2], "arrival_s": [0.0, 0.0, 0.1],
                         "input_len": [8, 8, 8], "output_len": [2, 5, 1]})
    sim = simulate(reqs, FixedCost(1.0), Scheduler(policy="static", max_num_seqs=2),
                   kv_blocks=16)
    r = sim.requests.set_index("request_id")
    assert list(r["e2e_s"]) == [2.0, 5.0, 5.9]


def test_preemption_by_recompute_when_blocks_run_out():
    # 3 sequences of 4 + 8 tokens with blocks of 4 tokens and a pool of 7 blocks: all
    # three are admitted (1 block each), but growing to 3 blocks each needs 9
    reqs = pd.DataFrame({"request_id": [0, 1, 2], "arrival_s": [0.0, 0.0, 0.0],
                         "input_len": [4, 4, 4], "output_len": [8, 8, 8]})
    sim = simulate(reqs, FixedCost(0.01), Scheduler(block_size=4), kv_blocks=7)
    assert sim.requests["preemptions"].sum() >= 1
    assert sim.requests["finish_s"].notna().all()
    assert sim.iterations["kv_blocks"].max() <= 7


def test_chunked_prefill_keeps_decoding_while_a_long_prompt_streams_in(llama):
    # Sarathi-Serve: with a 512-token budget a 4,096-token prompt takes 8+ iterations, and
    # the sequence already decoding emits a token in every one of them
    reqs = pd.DataFrame({"request_id": [0, 1], "arrival_s": [0.0, 0.05],
                         "input_len": [64, 4096], "output_len": [200, 4]})
    sim = simulate(reqs, FixedCost(0.01), Scheduler(chunked_prefill=True,
                                                    max_batched_tokens=512), kv_blocks=4096)
    it = sim.iterations
    mixed = it[(it["prefill_tokens"] > 0) & (it["decode_seqs"] > 0)]
    assert len(mixed) >= 8 and (mixed["prefill_tokens"] <= 511).all()


def test_routers_spread_the_load():
    reqs = requests(200, 50.0, 32, 16, seed=3)
    for router in ("round-robin", "least-loaded", "least-kv"):
        sim = simulate(reqs, FixedCost(0.01), Scheduler(), kv_blocks=1024, replicas=4,
                       router=router)
        counts = sim.requests["replica"].value_counts()
        assert len(counts) == 4 and counts.min() >= 30


def test_same_seed_same_table(llama):
    a = requests(100, 5.0, "lognormal:512,0.5", "uniform:16,64", seed=11)
    b = requests(100, 5.0, "lognormal:512,0.5", "uniform:16,64", seed=11)
    pd.testing.assert_frame_equal(a, b)
    assert a["input_len"].mean() == pytest.approx(512, rel=0.1)
    rng = np.random.default_rng(0)
    gaps = np.diff(arrivals(2.0, 20_000, rng, "gamma:2"))
    assert gaps.mean() == pytest.approx(0.5, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("spec", ["0", "-3", "abc", "lognormal:1", "zipf:1,2",
                                  "uniform:9,1"])
def test_bad_length_specs_are_one_clear_error(spec):
    with pytest.raises(ShapeError):
        lengths(spec, 4, np.random.default_rng(0))


def test_trace_is_read_and_checked(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("arrival_s,input_len,output_len\n0.5,100,10\n0.1,200,20\n")
    t = read_trace(p)
    assert list(t["arrival_s"]) == [0.1, 0.5] and list(t["input_len"]) == [200, 100]
    bad = tmp_path / "b.csv"
    bad.write_text("arrival_s,input_len,output_len\n0.5,0,10\n")
    with pytest.raises(MeasurementError, match="zero"):
        read_trace(bad)
    with pytest.raises(MeasurementError, match="missing column"):
        (tmp_path / "c.csv").write_text("a,b\n1,2\n")
        read_trace(tmp_path / "c.csv")


def test_a_request_longer_than_the_pool_is_refused():
    reqs = requests(2, 1.0, 100, 100, seed=0)
    with pytest.raises(PlanError, match="KV pool"):
        simulate(reqs, FixedCost(0.01), Scheduler(block_size=16), kv_blocks=4)


def test_summary_goodput_counts_requests_within_both_slos():
    reqs = requests(50, 1.0, 8, 3, seed=0)
    sim = simulate(reqs, FixedCost(0.1), Scheduler(), kv_blocks=64)
    s = summary(sim, slo_ttft=0.15, slo_tpot=0.2)
    ok = ((sim.requests["ttft_s"] <= 0.15) & (sim.requests["tpot_s"] <= 0.2)).sum()
    assert s["goodput_requests_per_s"] == pytest.approx(ok / s["duration_s"])
    assert math.isclose(s["slo_attained"], ok / 50)


def test_disaggregated_lone_request_is_prefill_then_transfer_then_decode(llama):
    # prefill on one pool (its TTFT is infer's on that pool), the KV cache sent to the
    # decode pool, then out - 1 decode steps there: end-to-end is the three in turn
    from perfmodel.hardware.system import load_system
    from perfmodel.serving.run import parse_pools, serve_disaggregated
    h100 = pm.load_device("h100")
    pools = parse_pools("prefill=1x2,decode=1x1")
    reqs = requests(1, 1.0, 512, 33, seed=0)
    res = serve_disaggregated(llama, h100, reqs, pools, system=load_system("dgx-h100"))
    r = res.requests.iloc[0]
    pre = infer(llama, h100, engine="vllm", batch=1, input_len=512, output_len=2,
                plan=pm.ParallelPlan(tensor_parallel=2))
    assert r["ttft_s"] == pytest.approx(pre.summary["ttft_s"], rel=1e-9)
    dec = infer(llama, h100, engine="vllm", batch=1, input_len=512, output_len=33)
    steps = dec.passes[dec.passes["pass"] == "decode"]["seconds"].sum()
    assert r["transfer_s"] > 0
    assert r["e2e_s"] == pytest.approx(r["ttft_s"] + r["transfer_s"] + steps, rel=1e-6)
    with pytest.raises(PlanError, match="prefill=NxTP"):
        parse_pools("prefill=2")


def test_swap_preemption_keeps_progress_and_pays_the_copies():
    # the recompute case above, by swap: the victim keeps its generated tokens (no second
    # prefill) and each copy out and back stalls its iteration by tokens x seconds a token
    reqs = pd.DataFrame({"request_id": [0, 1, 2], "arrival_s": [0.0, 0.0, 0.0],
                         "input_len": [4, 4, 4], "output_len": [8, 8, 8]})
    rec = simulate(reqs, FixedCost(0.01), Scheduler(block_size=4), kv_blocks=7)
    swp = simulate(reqs, FixedCost(0.01), Scheduler(block_size=4, preemption="swap"),
                   kv_blocks=7, swap_s_per_token=0.001)
    assert swp.requests["preemptions"].sum() >= 1
    assert (swp.iterations["prefill_tokens"] > 0).sum() == 1  # only the first prefill
    assert (rec.iterations["prefill_tokens"] > 0).sum() > 1   # recompute prefills again
    stalled = swp.iterations["seconds"] > 0.01 + 1e-12
    assert stalled.any() and (swp.iterations.loc[stalled, "seconds"] - 0.01).min() >= 0.004


def test_pcie_link_from_the_spec():
    # H100 SXM: PCIe Gen5 x16 = 16 x 32 GT/s x 128/130 / 8 = 63.0 GB/s a direction
    from perfmodel.serving.run import pcie_bytes_per_s
    assert pcie_bytes_per_s(pm.load_device("h100")) == pytest.approx(16 * 32e9 * 128 / 130 / 8)
