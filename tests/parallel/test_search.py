"""Plan search: only plans that fit, ranked by step time, each one a valid plan."""

from __future__ import annotations

import pytest

from perfmodel.analytic.memory import footprint
from perfmodel.errors import PlanError
from perfmodel.hardware.system import load_system
from perfmodel.parallel.search import candidate_plans, search_plans
from perfmodel.parallel.step import predict_step
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan, check_plan
from perfmodel.zoo.registry import load_model

JOB = Job(phase="train", batch=512, seq=4096, dtype="bf16")


@pytest.fixture(scope="module")
def llama70():
    return load_model("llama-2-70b")


def test_ranked_and_fitting(llama70):
    system = load_system("dgx-h100")
    found = search_plans(llama70, JOB, system, 64, top=None)
    df = found.table
    assert df["fits"].all()
    assert (df["memory_GB"] <= 80.0).all()
    assert df["step_s"].is_monotonic_increasing
    assert len(df) <= found.fitting < found.candidates  # some plans were rejected
    assert found.capacity_bytes == 80e9
    assert (df["dp"] * df["tp"] * df["pp"] == 64).all()
    # the ranking's winner, re-predicted one by one, gives the same step and memory
    best = df.iloc[0]
    plan = ParallelPlan(data_parallel=int(best.dp), tensor_parallel=int(best.tp),
                        pipeline_parallel=int(best.pp), micro_batch=int(best.micro_batch),
                        schedule=best.schedule, virtual_stages=int(best.v),
                        zero_stage=int(best.zero), recompute=best.recompute,
                        sequence_parallel=bool(best.sp))
    pred = predict_step(llama70, JOB, plan, system)
    assert pred.step_s == pytest.approx(best.step_s)
    assert pred.memory["total"] / 1e9 == pytest.approx(best.memory_GB)


def test_search_memory_is_the_memory_model(llama70):
    # every ranked plan's memory is footprint()'s for that plan, vectorized or not
    system = load_system("dgx-h100")
    df = search_plans(llama70, JOB, system, 64, top=5).table
    for r in df.itertuples():
        plan = ParallelPlan(data_parallel=r.dp, tensor_parallel=r.tp, pipeline_parallel=r.pp,
                            micro_batch=r.micro_batch, schedule=r.schedule,
                            virtual_stages=r.v, zero_stage=r.zero, recompute=r.recompute,
                            sequence_parallel=r.sp)
        total = float(footprint(llama70, plan, JOB, device=system.device_spec())["total"])
        assert total / 1e9 == pytest.approx(r.memory_GB)


def test_include_unfit_keeps_every_plan_fitting_ones_first(llama70):
    found = search_plans(llama70, JOB, load_system("dgx-h100"), 64, top=None,
                         include_unfit=True)
    df = found.table
    assert found.fitting <= found.candidates and len(df) <= found.candidates
    assert int(df["fits"].sum()) == found.fitting  # every fitting plan is ranked
    assert df["fits"].is_monotonic_decreasing  # those that fit come first
    assert (df.loc[~df["fits"], "memory_GB"] > found.usable_bytes / 1e9).all()


def test_candidates_respect_megatron_rules(llama70):
    plans = candidate_plans(llama70, 64, 512, 8)
    assert all(p.tensor_parallel <= 8 and 64 % p.tensor_parallel == 0 for p in plans)
    for p in plans:
        check_plan(p, batch=512, shape=llama70.shape, devices_per_node=8)  # every one valid
        assert p.devices == 64
        if p.schedule == "interleaved":
            assert p.micro_batches(512) % p.pipeline_parallel == 0
            assert 80 % (p.pipeline_parallel * p.virtual_stages) == 0
        if p.zero_stage == 3:
            assert p.pipeline_parallel == 1


def test_nothing_fits(llama70):
    with pytest.raises(PlanError):
        search_plans(llama70, Job(phase="train", batch=8, seq=4096), load_system("dgx-h100"), 1)
