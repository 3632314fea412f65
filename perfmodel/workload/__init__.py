"""Workload descriptors: ModelGraph + batch/seq/dtype/phase -> a tidy DataFrame."""

from perfmodel.workload.build import build_workload, phase_dims, unit_of
from perfmodel.workload.schema import COLUMNS, PHASES

__all__ = ["COLUMNS", "PHASES", "build_workload", "phase_dims", "unit_of"]
