"""3D-parallel training (data x tensor x pipeline): plans, partitioning, step time, search."""

from perfmodel.parallel.plan import ParallelPlan
from perfmodel.parallel.search import search_plans
from perfmodel.parallel.step import StepPrediction, predict_step

__all__ = ["ParallelPlan", "StepPrediction", "predict_step", "search_plans"]
