"""ParallelPlan: round-trip through dicts, and one clear error per impossible plan."""

from __future__ import annotations

import pytest

from perfmodel.errors import PlanError, UnknownNameError
from perfmodel.parallel.plan import ParallelPlan


def test_round_trip_and_derived_sizes():
    plan = ParallelPlan(data_parallel=8, tensor_parallel=8, pipeline_parallel=16,
                        micro_batch=1, global_batch=1536, schedule="interleaved", virtual=2,
                        zero=1, recompute="selective", sequence_parallel=True)
    assert ParallelPlan.from_dict(plan.to_dict()) == plan
    assert plan.devices == 1024
    assert plan.micro_batches == 1536 // (8 * 1)


@pytest.mark.parametrize("changes, error", [
    ({"data_parallel": 0}, PlanError),
    ({"tensor_parallel": -2}, PlanError),
    ({"global_batch": 10, "data_parallel": 4}, PlanError),   # 10 % (4 x 1)
    ({"zero": 4}, PlanError),
    ({"recompute": "some"}, UnknownNameError),
    ({"schedule": "zigzag"}, UnknownNameError),
    ({"sequence_parallel": True}, PlanError),                # needs tp > 1
    ({"schedule": "interleaved", "virtual": 2, "pipeline_parallel": 4, "global_batch": 6},
     PlanError),                                             # m % p != 0
    ({"virtual": 2}, PlanError),                             # v > 1 needs interleaved
])
def test_impossible_plans(changes, error):
    with pytest.raises(error):
        ParallelPlan(**changes)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(UnknownNameError):
        ParallelPlan.from_dict({"tensor_paralel": 2})
    with pytest.raises(PlanError):
        ParallelPlan.from_dict([1, 2])  # type: ignore[arg-type]
