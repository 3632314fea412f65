"""perfmodel.serving.search: the replica count found is the fewest that meets the SLOs, and a
round-robin deployment of K replicas is one replica serving every K-th request."""

from __future__ import annotations

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.inference.run import iteration_cost, prepare
from perfmodel.serving.requests import requests
from perfmodel.serving.run import kv_pool
from perfmodel.serving.search import Space, search
from perfmodel.serving.simulate import Scheduler, simulate


@pytest.fixture(scope="module")
def setup():
    g = pm.load_model("llama-2-7b")
    dev = pm.load_device("h100")
    s, _ = prepare(g, dev, engine="vllm")
    return g, dev, s, iteration_cost(s, lengths=(512,), context=640, max_seqs=256)


def test_round_robin_replicas_are_every_kth_request(setup):
    _, _, s, cost = setup
    blocks, _ = kv_pool(s, 16, 8192)
    reqs = requests(300, 40.0, 512, 128, seed=4)
    whole = simulate(reqs, cost, Scheduler(), blocks, replicas=3, router="round-robin")
    one = simulate(reqs.iloc[::3].reset_index(drop=True), cost, Scheduler(), blocks)
    mine = whole.requests[whole.requests["replica"] == 0].reset_index(drop=True)
    np.testing.assert_allclose(mine["ttft_s"], one.requests["ttft_s"], rtol=1e-12)
    np.testing.assert_allclose(mine["e2e_s"], one.requests["e2e_s"], rtol=1e-12)


def test_search_finds_the_fewest_replicas(setup):
    g, dev, s, cost = setup
    reqs = requests(600, 60.0, 512, 128, seed=5)
    space = Space(tps=(1,), max_num_seqs=(128,), budgets=(8192,), chunked=(True,),
                  max_replicas=16)
    df = search(g, dev, reqs, rate=60.0, slo_ttft=0.3, slo_tpot=0.03, space=space)
    best = df.iloc[0]
    assert best["meets"] and best["gpus"] == best["replicas"] >= 2
    k = int(best["replicas"])
    blocks, _ = kv_pool(s, 16, 8192)
    sc = Scheduler(max_num_seqs=128, max_batched_tokens=8192, chunked_prefill=True)
    fewer = simulate(reqs.iloc[::k - 1].reset_index(drop=True), cost, sc, blocks)
    ttft = np.percentile(fewer.requests["ttft_s"], 99)
    tpot = np.percentile(fewer.requests["tpot_s"].dropna(), 99)
    assert ttft > 0.3 or tpot > 0.03  # one replica fewer misses an SLO
    # GPU-hours per million output tokens: k GPUs / (60 req/s x 128 tokens x 3600 s) x 1e6
    assert best["gpu_hours_per_m_tokens"] == pytest.approx(k / (60 * 128 * 3600) * 1e6)


def test_a_tp_the_model_cannot_take_is_a_row_not_an_error(setup):
    g, dev, _, _ = setup
    reqs = requests(50, 5.0, 128, 16, seed=0)
    df = search(g, dev, reqs, rate=5.0, slo_ttft=1.0, slo_tpot=0.1,
                space=Space(tps=(3,), max_num_seqs=(64,), budgets=(2048,),
                            chunked=(False,), max_replicas=2))
    assert not df["meets"].any() and "not applicable" in df["note"].iloc[0]


def test_disaggregated_splits_join_the_ranking():
    from perfmodel.hardware.system import load_system
    g = pm.load_model("llama-2-7b")
    dev = pm.load_device("h100")
    reqs = requests(300, 20.0, 512, 64, seed=6)
    df = search(g, dev, reqs, rate=20.0, slo_ttft=0.5, slo_tpot=0.03,
                space=Space(tps=(1, 2), max_num_seqs=(128,), budgets=(8192,),
                            chunked=(False,), max_replicas=8, disaggregate=True),
                system=load_system("dgx-h100"))
    split = df[df["note"].str.startswith("disaggregated")]
    assert len(split) == 4 and split["meets"].all()
    for r in split.itertuples():  # "disaggregated: P x tp a prefill, D x tp b decode"
        words = r.note.replace(",", "").split()
        p, tp_p, d, tp_d = int(words[1]), int(words[4]), int(words[6]), int(words[9])
        assert r.gpus == p * tp_p + d * tp_d and r.replicas == p + d
