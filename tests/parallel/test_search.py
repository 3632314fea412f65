"""Plan search: only plans that fit, ranked by step time, each one a valid plan."""

from __future__ import annotations

import pytest

from perfmodel.errors import PlanError
from perfmodel.hardware.system import load_system
from perfmodel.parallel.plan import ParallelPlan
from perfmodel.parallel.search import candidate_plans, search_plans
from perfmodel.parallel.step import predict_step
from perfmodel.zoo.registry import load_model


@pytest.fixture(scope="module")
def llama70():
    return load_model("llama-2-70b")


def test_ranked_and_fitting(llama70):
    system = load_system("dgx-h100")
    df = search_plans(llama70, system, 64, 512, 4096, top=None)
    assert df["fits"].all()
    assert (df["memory_GB"] <= 80.0).all()
    assert df["step_s"].is_monotonic_increasing
    assert df.attrs["fitting"] < df.attrs["candidates"]  # some plans were rejected
    assert (df["dp"] * df["tp"] * df["pp"] == 64).all()
    # the ranking's winner, re-predicted one by one, gives the same step
    best = df.iloc[0]
    plan = ParallelPlan(int(best.dp), int(best.tp), int(best.pp), int(best.micro_batch), 512,
                        4096, best.schedule, int(best.v), int(best.zero), best.recompute,
                        bool(best.sp))
    assert predict_step(llama70, plan, system).step_s == pytest.approx(best.step_s)


def test_candidates_respect_megatron_rules(llama70):
    plans = candidate_plans(llama70, 64, 512, 4096, 8)
    assert all(p.tensor_parallel <= 8 and 64 % p.tensor_parallel == 0 for p in plans)
    for p in plans:
        if p.schedule == "interleaved":
            assert p.micro_batches % p.pipeline_parallel == 0
            assert 80 % (p.pipeline_parallel * p.virtual) == 0
        if p.zero == 3:
            assert p.pipeline_parallel == 1


def test_nothing_fits(llama70):
    with pytest.raises(PlanError):
        search_plans(llama70, load_system("dgx-h100"), 1, 8, 4096)
