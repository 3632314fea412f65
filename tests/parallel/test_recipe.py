"""Training recipes: every shipped one loads and builds a valid plan on its reference GPUs."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from perfmodel import load_model
from perfmodel.errors import PlanError, SpecError, UnknownNameError
from perfmodel.parallel.recipe import GEMM_RECIPES, Recipe, list_recipes, load_recipe
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan, check_plan

REFS = list(list_recipes()["recipe"])


def test_the_asked_for_recipes_ship():
    for ref in ("nemo:llama3-70b-fp8", "nemo:llama3-8b", "nemo:llama31-405b",
                "nemo:mixtral-8x7b", "nemo:deepseek-v3", "megatron-lm:gpt3-175b",
                "torchtitan:llama3-8b", "torchtitan:llama3-70b", "torchtitan:llama3-405b",
                "llm-foundry:mpt-7b", "maxtext:llama2-70b", "tensorflow-xla:bert-large"):
        assert ref in REFS
    assert any(r.startswith("deepspeed:") for r in REFS)


@pytest.mark.parametrize("ref", REFS)
def test_recipe_builds_a_checked_plan_on_its_reference_gpus(ref):
    r = load_recipe(ref)
    assert r.ref == ref and r.sources and r.gemm_recipe in GEMM_RECIPES
    plan, job = r.plan(r.reference_gpus), r.job(r.reference_gpus)
    assert plan.devices == r.reference_gpus and job.phase == "train"
    shape = load_model(r.model).shape
    check_plan(plan, batch=job.batch, shape=shape, name=r.model)


def test_nemo_405b_splits_the_embedding_and_loss_as_pipeline_layers():
    # NeMo's Llama 3.1 405B counts the embedding and the loss as pipeline layers: 126 + 2 =
    # 128 over pp 8 x vp 2 = 16 chunks of 8; without that accounting 126 do not split
    r = load_recipe("nemo:llama31-405b")
    plan, job = r.plan(512), r.job(512)
    shape = load_model(r.model).shape
    assert plan.embedding_as_layers
    check_plan(plan, batch=job.batch, shape=shape, name=r.model)
    with pytest.raises(PlanError, match="layers do not split"):
        check_plan(replace(plan, embedding_as_layers=False), batch=job.batch, shape=shape,
                   name=r.model)


def test_nemo_llama3_70b_as_the_recipe_file_says():
    # nemo/collections/llm/recipes/llama3_70b.py: tp 4, pp 4, vp 5, cp 2, 4 nodes x 8 GPUs
    r = load_recipe("NeMo:Llama3-70B")  # case-insensitive
    p = r.plan(32)
    assert (p.data_parallel, p.tensor_parallel, p.pipeline_parallel, p.context_parallel,
            p.virtual_stages, p.schedule) == (1, 4, 4, 2, 5, "interleaved")
    assert p.zero_stage == 1 and p.overlap_grad_reduce  # NeMo's distributed optimizer
    assert r.job(64).batch == 512  # a fixed global batch
    assert r.mfu_convention == "megatron" and r.reserve_gb == pytest.approx(2.9)


def test_per_device_batch_scales_with_the_gpus():
    r = load_recipe("torchtitan:llama3-70b")  # local batch 8 x 32 FSDP ranks on 256
    assert r.job(256).batch == 256 and r.job(512).batch == 512
    assert r.plan(512).data_parallel == 64
    with pytest.raises(PlanError, match="whole batch"):
        dataclasses.replace(r, global_batch=3, reference_gpus=8).batch(4)


def test_gpus_not_a_multiple_of_the_model_split_is_a_plan_error():
    with pytest.raises(PlanError, match="multiple of 32") as e:
        load_recipe("nemo:llama3-70b").plan(48)
    assert "32" in e.value.hint


def test_unknown_recipe_suggests_the_nearest():
    with pytest.raises(UnknownNameError) as e:
        load_recipe("nemo:lama3-70b")
    assert "nemo:llama3-70b" in e.value.hint


def test_gemm_recipe_goes_on_the_job_only_if_the_job_has_it():
    r = load_recipe("nemo:llama3-70b-fp8")
    assert r.gemm_recipe == "fp8-delayed"
    has = "gemm_recipe" in {f.name for f in dataclasses.fields(Job)}
    assert (getattr(r.job(64), "gemm_recipe", None) == "fp8-delayed") == has


def test_plan_keys_the_plan_lacks_stay_on_the_recipe():
    r = load_recipe("nemo:mixtral-8x7b")
    assert r.plan_fields["moe_capacity_factor"] == 1.0
    plan = r.plan(64)
    known = {f.name for f in dataclasses.fields(ParallelPlan)}
    if "moe_capacity_factor" in known:
        assert plan.moe_capacity_factor == 1.0


USER = """\
schema: 1
framework: torchtitan
name: tiny
model: llama-3-8b
sources: {ME: "my own run"}
plan:
  tensor_parallel: {value: 2, source: ME}
job:
  global_batch: {value: 8, source: ME}
  seq: {value: 2048, source: ME}
  dtype: {value: bf16, source: ME}
  batch_scales: {value: false, source: ME}
reference:
  gpus: {value: 8, source: ME}
reserve_gb: {value: 5, source: ME}
"""


def test_a_user_yaml_path_loads(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(USER)
    r = load_recipe(str(f))
    assert isinstance(r, Recipe) and r.reserve_gb == 5.0 and r.mfu_convention == "palm"
    p = r.plan(8)
    assert (p.data_parallel, p.tensor_parallel, p.zero_stage) == (4, 2, 3)  # FSDP default


def test_malformed_recipe_is_one_spec_error_naming_each_key(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(USER.replace("tensor_parallel: {value: 2", "tensor_paralel: {value: 2")
                 .replace("gpus: {value: 8, source: ME}", "gpus: {value: 8}")
                 .replace("dtype: {value: bf16", "dtype: {value: 16"))
    with pytest.raises(SpecError) as e:
        load_recipe(str(f))
    msg = str(e.value)
    assert "plan.tensor_paralel" in msg and "tensor_parallel" in msg
    assert "reference.gpus.source" in msg and "job.dtype.value" in msg
    assert "recipe_format.md" in e.value.hint


def test_unknown_framework_and_gemm_recipe(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(USER.replace("framework: torchtitan", "framework: torchtitn")
                 .replace("batch_scales:", "gemm_recipe: {value: fp8-delay, source: ME}\n"
                                           "  batch_scales:"))
    with pytest.raises(SpecError, match="torchtitan") as e:
        load_recipe(str(f))
    assert "job.gemm_recipe.value" in str(e.value)


def test_list_recipes_is_one_row_per_recipe():
    df = list_recipes()
    assert len(df) == len(set(df["recipe"])) >= 14
    assert {"recipe", "model", "gpus", "mfu_convention", "reserve_gb"} <= set(df.columns)
