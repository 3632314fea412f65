"""Plan search beyond 3D: the framework's memory reserve, time to train and cost, expert and
context parallel sizes, the new schedules, HSDP shard groups, and GEMM recipes."""

from __future__ import annotations

import dataclasses

import pytest

from perfmodel.errors import PerfModelError, PlanError
from perfmodel.hardware.system import load_system
from perfmodel.parallel.search import (
    CP_MIN_SEQ,
    candidate_plans,
    context_split_ok,
    search_plans,
    time_to_train_h,
    training_cost,
)
from perfmodel.parallel.step import predict_step
from perfmodel.workload.job import Job
from perfmodel.workload.plan import SCHEDULES, ParallelPlan
from perfmodel.zoo.registry import load_model

JOB = Job(phase="train", batch=512, seq=4096, dtype="bf16")


@pytest.fixture(scope="module")
def llama70():
    return load_model("llama-2-70b")


@pytest.fixture(scope="module")
def mixtral():
    return load_model("mixtral-8x22b")


@pytest.fixture(scope="module")
def h100():
    return load_system("dgx-h100")


@pytest.fixture(scope="module")
def every_plan(llama70, h100):
    return search_plans(llama70, JOB, h100, 64, top=None, reserve_gb=0)


def _plan(row) -> ParallelPlan:
    return ParallelPlan(data_parallel=int(row.dp), tensor_parallel=int(row.tp),
                        pipeline_parallel=int(row.pp), expert_parallel=int(row.ep),
                        context_parallel=int(row.cp), context_kind=row.cp_kind,
                        micro_batch=int(row.micro_batch), schedule=row.schedule,
                        virtual_stages=int(row.v), zero_stage=int(row.zero),
                        shard_group=int(row.shard) or None, recompute=row.recompute,
                        sequence_parallel=bool(row.sp))


def test_the_reserve_rejects_plans_between_usable_and_capacity(llama70, h100, every_plan):
    # 80 GB H100s: with a 6 GB reserve, a plan using 74 < x <= 80 GB is kept without the
    # reserve and rejected with it; the table says what was usable
    df = every_plan.table
    band = df[(df["memory_GB"] > 74.0) & (df["memory_GB"] <= 80.0)]
    assert len(band) > 0  # the search's winners crowd the top of the device
    assert every_plan.reserve_bytes == 0
    assert (df["usable_GB"] == 80.0).all()
    reserved = search_plans(llama70, JOB, h100, 64, top=None, reserve_gb=6)
    r = reserved.table
    assert reserved.usable_bytes == 74e9 and (r["usable_GB"] == 74.0).all()
    assert (r["memory_GB"] <= 74.0).all()
    assert reserved.fitting == every_plan.fitting - len(band)
    assert "6 GB" in reserved.assumptions["reserve"]


def test_the_reserve_defaults_to_the_recipes(llama70, h100):
    class Recipe:  # the two fields the search reads of perfmodel.parallel.recipe.Recipe
        reserve_gb = 10.0
        framework = "nemo"

    found = search_plans(llama70, JOB, h100, 64, top=3, recipe=Recipe())
    assert found.reserve_bytes == 10e9 and "nemo" in found.assumptions["reserve"]
    # an explicit reserve wins over the recipe's
    assert search_plans(llama70, JOB, h100, 64, top=3, recipe=Recipe(),
                        reserve_gb=0).reserve_bytes == 0


@pytest.mark.parametrize("reserve", [-1.0, 80.0, 120.0, float("nan")])
def test_a_reserve_must_leave_memory(llama70, h100, reserve):
    with pytest.raises(PlanError, match="reserve"):
        search_plans(llama70, JOB, h100, 64, reserve_gb=reserve)


def test_time_to_train_and_cost_by_hand():
    assert time_to_train_h(3.6e12, 1e6) == pytest.approx(1000.0)  # 3.6e12 / 1e6 / 3600
    assert training_cost(1000.0, 64, 2.5) == pytest.approx(160_000.0)  # 1000 x 64 x 2.5


def test_hours_and_cost_columns(llama70, h100):
    found = search_plans(llama70, JOB, h100, 64, top=5, tokens=1e12, price_per_gpu_hour=2.5)
    df = found.table
    row = df.iloc[0]
    assert row.hours == pytest.approx(1e12 / row.tokens_per_s / 3600)
    assert row.cost == pytest.approx(row.hours * 64 * 2.5)
    assert df["cost"].is_monotonic_increasing and found.assumptions["ranking"].startswith(
        "by cost")
    plain = search_plans(llama70, JOB, h100, 64, top=5).table
    assert "hours" not in plain.columns and "cost" not in plain.columns
    # one device count and one global batch: step, hours and cost rank alike
    assert list(plain["step_s"]) == pytest.approx(list(df["step_s"]))


@pytest.mark.parametrize("kwargs, needle", [
    ({"price_per_gpu_hour": 2.0}, "tokens"),
    ({"tokens": -1.0}, "tokens"),
    ({"tokens": 1e12, "price_per_gpu_hour": 0.0}, "price"),
    ({"rank_by": "hours"}, "tokens"),
    ({"rank_by": "speed"}, "ranking"),
])
def test_money_inputs_are_checked(llama70, h100, kwargs, needle):
    with pytest.raises(PerfModelError, match=needle):
        search_plans(llama70, JOB, h100, 64, **kwargs)


def test_expert_parallel_sizes_divide_experts_and_dp_cp(mixtral, llama70):
    plans = candidate_plans(mixtral, 64, 256, 8, seq=4096)
    eps = {p.expert_parallel for p in plans}
    assert eps == {1, 2, 4, 8}  # Mixtral's 8 routed experts
    for p in plans:
        assert 8 % p.expert_parallel == 0
        assert (p.data_parallel * p.context_parallel) % p.expert_parallel == 0
        assert p.devices == 64
    assert {p.expert_parallel for p in candidate_plans(llama70, 64, 512, 8)} == {1}
    only = candidate_plans(mixtral, 64, 256, 8, seq=4096, expert_parallel=[4])
    assert {p.expert_parallel for p in only} == {4}


def test_context_parallel_from_long_sequences(llama70):
    assert {p.context_parallel for p in candidate_plans(llama70, 64, 64, 8, seq=4096)} == {1}
    plans = candidate_plans(llama70, 64, 64, 8, seq=CP_MIN_SEQ)
    cps = {p.context_parallel for p in plans}
    assert cps == {1, 2, 4}  # each rank keeps >= 2,048 of the 8,192 tokens
    for p in plans:
        assert p.devices == 64 and CP_MIN_SEQ % (2 * p.context_parallel) == 0
        if p.context_kind == "ulysses":  # 64 heads, 8 KV heads
            assert p.context_parallel > 1
            assert (8 // p.tensor_parallel) % p.context_parallel == 0
    # Ulysses needs the KV heads of a TP rank to split: 8 KV heads / tp 8 = 1 does not
    assert not any(p.context_kind == "ulysses" and p.tensor_parallel == 8 for p in plans)


def test_context_split_rule():
    shape = load_model("llama-2-70b").shape  # 64 heads, 8 KV heads
    assert context_split_ok(shape, 2, 4, "ulysses")       # 32 and 4 heads per TP rank
    assert not context_split_ok(shape, 4, 4, "ulysses")   # 2 KV heads per TP rank
    assert context_split_ok(shape, 8, 16, "ring")         # ring splits no heads


def test_schedules_and_shard_groups(llama70):
    plans = candidate_plans(llama70, 64, 512, 8)
    scheds = {p.schedule for p in plans}
    assert {"1f1b", "interleaved"} <= scheds
    if "zb-h1" in SCHEDULES:
        assert {"zb-h1", "dualpipe"} <= scheds
    for p in plans:
        m = p.micro_batches(512)
        if p.schedule == "dualpipe":
            assert p.pipeline_parallel % 2 == 0 and m >= 2 * p.pipeline_parallel
        if p.schedule != "1f1b":
            assert p.pipeline_parallel > 1
        if p.shard_group is not None:  # HSDP: ZeRO 3, a proper divisor of dp
            assert p.zero_stage == 3 and p.pipeline_parallel == 1
            assert p.data_parallel % p.shard_group == 0 and p.shard_group < p.data_parallel
    assert any(p.shard_group == 8 for p in plans)
    assert not any(p.shard_group for p in candidate_plans(llama70, 64, 512, 8,
                                                          shard_groups=False))
    assert {p.schedule for p in candidate_plans(llama70, 64, 512, 8, schedules=["1f1b"])} \
        == {"1f1b"}


def test_every_searched_row_is_what_predict_step_says(mixtral, h100):
    # the cached roofline times (ZeRO's optimizer sharding applied to them) and the
    # vectorized footprint give, row by row, the one-plan prediction, MoE plans included
    job = Job(phase="train", batch=128, seq=4096, dtype="bf16")
    df = search_plans(mixtral, job, h100, 64, top=None, expert_parallel=[1, 8],
                      schedules=["1f1b"]).table
    sample = df.groupby(["ep", "zero"]).head(1)
    assert len(sample) >= 2
    for row in sample.itertuples():
        pred = predict_step(mixtral, job, _plan(row), h100)
        assert pred.step_s == pytest.approx(row.step_s)
        assert pred.memory["total"] / 1e9 == pytest.approx(row.memory_GB)


def test_base_plan_fields_reach_every_candidate(llama70):
    base = ParallelPlan(overlap_grad_reduce=False, reduce_dtype="fp32")
    plans = candidate_plans(llama70, 16, 64, 8, base=base)
    assert all(not p.overlap_grad_reduce and p.reduce_dtype == "fp32" for p in plans)


def test_gemm_recipes(llama70, h100):
    names = {f.name for f in dataclasses.fields(Job)}
    if "gemm_recipe" not in names:
        with pytest.raises(PlanError, match="GEMM"):
            search_plans(llama70, JOB, h100, 64, gemm_recipes=["fp8-delayed"])
        return
    found = search_plans(llama70, JOB, h100, 64, top=None,
                         gemm_recipes=[None, "fp8-delayed"])
    assert set(found.table["gemm"]) == {"-", "fp8-delayed"}


def test_without_a_framework_the_least_framework_reserve_applies(llama70, h100):
    # recipes/_frameworks.yaml: llm-foundry, DeepSpeed and TF-XLA keep 2.0 GB (0.7 CUDA
    # context + 0.3 one NCCL communicator + 1.0 allocator slack), the least of them
    default = search_plans(llama70, JOB, h100, 64, top=3)
    assert default.reserve_bytes == pytest.approx(2.0e9)
    assert "the least any framework keeps" in default.assumptions["reserve"]
    assert (default.table["memory_GB"] <= 78.0).all()
