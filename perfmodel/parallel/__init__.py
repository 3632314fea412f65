"""3D-parallel training (data x tensor x pipeline): partitioning, step time, plan search.

The plan itself is the one :class:`~perfmodel.workload.plan.ParallelPlan`; the job (global
batch, sequence, dtype, optimizer) a :class:`~perfmodel.workload.job.Job`.
"""

from perfmodel.parallel.search import PlanSearch, search_plans
from perfmodel.parallel.step import StepPrediction, predict_step

__all__ = ["PlanSearch", "StepPrediction", "predict_step", "search_plans"]
