"""ParallelPlan, the one plan record: round trips, derived sizes, and one clear error per
impossible plan, whether the plan alone is wrong or it does not fit the batch, model or
system (check_plan)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from perfmodel.errors import PlanError, ShapeError, UnknownNameError
from perfmodel.graph.shape import ModelShape
from perfmodel.workload.plan import ParallelPlan, check_plan, plan_for_devices

# A small GQA transformer: 8 layers, 8 heads, 2 KV heads, 4 routed experts
SHAPE = ModelShape(architecture="decoder", vocab_size=100, hidden_size=64,
                   intermediate_size=128, num_hidden_layers=8, num_attention_heads=8,
                   num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
                   position_embedding="rope", norm="rmsnorm", norm_position="pre",
                   activation="silu", mlp="gated", num_local_experts=4,
                   num_experts_per_tok=2)


def test_round_trip_and_derived_sizes():
    plan = ParallelPlan(data_parallel=8, tensor_parallel=8, pipeline_parallel=16,
                        micro_batch=1, schedule="interleaved", virtual_stages=2,
                        zero_stage=1, recompute="selective", sequence_parallel=True)
    assert ParallelPlan.from_dict(plan.to_dict()) == plan
    assert plan.devices == 8 * 8 * 16 == 1024
    # 1,536 sequences over 8 replicas in micro-batches of 1: 192 per pipeline and step
    assert plan.micro_batches(1536) == 1536 // (8 * 1) == 192
    # no micro-batch given: one micro-batch of batch / dp per replica
    assert ParallelPlan(data_parallel=4).micro_batch_of(64) == 16
    assert ParallelPlan(data_parallel=4).micro_batches(64) == 1
    assert ParallelPlan(zero_stage=3).fsdp and not ParallelPlan(zero_stage=2).fsdp


def test_context_parallel_counts_devices():
    assert ParallelPlan(data_parallel=2, tensor_parallel=4, context_parallel=2).devices == 16


def test_plans_take_long_names_only():
    with pytest.raises(TypeError):
        ParallelPlan(8, 8)  # type: ignore[misc]  # keyword-only: no positional sizes


@pytest.mark.parametrize("changes, error", [
    ({"data_parallel": 0}, PlanError),
    ({"tensor_parallel": -2}, PlanError),
    ({"pipeline_parallel": True}, PlanError),                # a bool is not a size
    ({"micro_batch": 0}, PlanError),
    ({"zero_stage": 4}, PlanError),
    ({"recompute": "some"}, UnknownNameError),
    ({"schedule": "zigzag"}, UnknownNameError),
    ({"reduce_dtype": "fp33"}, UnknownNameError),
    ({"sequence_parallel": True}, PlanError),                # needs tp > 1
    ({"virtual_stages": 2}, PlanError),                      # v > 1 needs interleaved
    ({"expert_parallel": 3, "data_parallel": 4}, PlanError),  # 3 does not divide dp x cp = 4
])
def test_impossible_plans(changes, error):
    with pytest.raises(error):
        ParallelPlan(**changes)


def test_expert_parallel_carved_out_of_data_and_context_parallel():
    # Megatron-Core: world = tp pp cp dp must be a multiple of etp ep pp with etp = tp,
    # so ep divides dp x cp: 4 divides 2 x 2
    assert ParallelPlan(data_parallel=2, context_parallel=2, expert_parallel=4).devices == 4


@pytest.mark.parametrize("plan, batch, match", [
    (ParallelPlan(data_parallel=4), 10, "multiple of data-parallel"),      # 10 % (4 x 2)
    (ParallelPlan(data_parallel=4, micro_batch=3), 16, "multiple"),         # 16 % 12
    # interleaved: m = 6 / (1 x 1) = 6 micro-batches, not a multiple of p = 4
    (ParallelPlan(pipeline_parallel=4, micro_batch=1, schedule="interleaved",
                  virtual_stages=2), 6, "multiple of the stages"),
])
def test_batch_rules(plan, batch, match):
    with pytest.raises(PlanError, match=match):
        check_plan(plan, batch=batch)


@pytest.mark.parametrize("plan, match", [
    (ParallelPlan(tensor_parallel=3), "does not divide"),         # 8 heads
    (ParallelPlan(tensor_parallel=16), "does not divide"),        # 16 does not divide 8
    (ParallelPlan(pipeline_parallel=16), "exceed"),               # 16 stages, 8 layers
    (ParallelPlan(pipeline_parallel=2, schedule="interleaved", virtual_stages=3),
     "do not split"),                                             # 8 % (2 x 3)
    (ParallelPlan(data_parallel=8, expert_parallel=8), "routed experts"),  # 4 experts
])
def test_model_rules(plan, match):
    with pytest.raises(PlanError, match=match):
        check_plan(plan, shape=SHAPE, name="tiny")


def test_tensor_parallel_beyond_kv_heads_replicates_them():
    # tp 4 > 2 KV heads: each KV head is replicated on 2 ranks (the memory model's
    # kv / min(tp, kv)), which Megatron-LM allows when tp is a multiple of the KV heads
    check_plan(ParallelPlan(tensor_parallel=4), shape=SHAPE)


def test_tensor_parallel_must_split_the_kv_heads():
    # 12 heads in 6 KV groups: tp 4 divides the 12 query heads but not the 6 KV heads
    # (the ranks would hold 1.5 KV heads each)
    shape = replace(SHAPE, hidden_size=96, num_attention_heads=12, num_key_value_heads=6)
    with pytest.raises(PlanError, match="does not divide"):
        check_plan(ParallelPlan(tensor_parallel=4), shape=shape)
    check_plan(ParallelPlan(tensor_parallel=6), shape=shape)  # 6 / 6: one KV head per rank


def test_tensor_parallel_beyond_kv_heads_must_be_a_multiple_of_them():
    # tp 3 over 6 query heads in 2 KV groups divides the query heads, but 3 ranks cannot
    # share 2 KV heads evenly (rank 1 needs query heads 2 and 3, of KV groups 0 and 1).
    # Replication needs tp a multiple of the KV heads (vLLM LlamaAttention: "assert
    # tp_size % self.total_num_kv_heads == 0" when tp exceeds them); a check of
    # kv % min(tp, kv) (2 % 2 = 0) wrongly accepted it.
    shape = replace(SHAPE, hidden_size=48, num_attention_heads=6, num_key_value_heads=2)
    with pytest.raises(PlanError, match="does not divide"):
        check_plan(ParallelPlan(tensor_parallel=3), shape=shape)


def test_tensor_parallel_tiles_nodes():
    check_plan(ParallelPlan(tensor_parallel=16), devices_per_node=8)  # two whole nodes
    with pytest.raises(PlanError, match="unevenly"):
        check_plan(ParallelPlan(tensor_parallel=12), devices_per_node=8)


def test_plan_for_devices_fills_data_parallel_and_checks_the_product():
    plan = plan_for_devices(64, tensor_parallel=8, pipeline_parallel=2)
    assert plan.data_parallel == 64 // (8 * 2) == 4
    with pytest.raises(PlanError, match="is not --gpus 64"):
        plan_for_devices(64, data_parallel=3, tensor_parallel=8)
    with pytest.raises(PlanError, match="gpus"):
        plan_for_devices(0)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(UnknownNameError, match="tensor_parallel"):
        ParallelPlan.from_dict({"tensor_paralel": 2})
    with pytest.raises(PlanError):
        ParallelPlan.from_dict([1, 2])  # type: ignore[arg-type]


def test_sizes_are_plan_errors_not_shape_errors():
    # one error class per record: a plan's sizes are PlanErrors (a Job's are ShapeErrors)
    with pytest.raises(PlanError) as err:
        ParallelPlan(data_parallel=0)
    assert not isinstance(err.value, ShapeError)
    assert "data_parallel" in str(err.value) and err.value.hint == "pass --dp 1 or more"
