"""Workloads: ModelGraph + a Job (what is run) -> the Workload table; the ParallelPlan (how
it is split over devices)."""

from perfmodel.workload.build import build_workload, phase_dims, unit_of
from perfmodel.workload.job import PHASES, PRECISIONS, Job
from perfmodel.workload.plan import ParallelPlan, check_plan, plan_for_devices
from perfmodel.workload.schema import COLUMNS, Workload

__all__ = ["COLUMNS", "PHASES", "PRECISIONS", "Job", "ParallelPlan", "Workload",
           "build_workload", "check_plan", "phase_dims", "plan_for_devices", "unit_of"]
