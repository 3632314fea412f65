"""perfmodel: predict how AI models run on hardware, and check the predictions.

    >>> import perfmodel as pm
    >>> wl = pm.build_workload(pm.load_model("resnet50"), batch=1, dtype="fp16")
    >>> pred = pm.predict(wl, pm.load_device("a100"))
    >>> round(pred.summary["params"])
    25557032
"""

import importlib
from typing import Any

from perfmodel.analytic.collectives import collective_time
from perfmodel.analytic.network import predict_collective
from perfmodel.analytic.roofline import Prediction, predict, roofline
from perfmodel.bench.nccl_tests import read_nccl_tests
from perfmodel.errors import (
    MeasurementError,
    PerfModelError,
    PlanError,
    ShapeError,
    SpecError,
    UnknownNameError,
    UnsupportedOpError,
)
from perfmodel.graph import GraphBuilder, ModelGraph, Op, OpCost, OpKind, TensorSpec
from perfmodel.hardware import DeviceSpec, list_devices, load_device
from perfmodel.hardware.system import SystemSpec, list_systems, load_system
from perfmodel.validate.collectives import check_collectives, compare_collectives, fit_collectives
from perfmodel.workload import build_workload
from perfmodel.zoo.registry import load_model, models

__version__ = "0.1.0"

__all__ = [
    "DeviceSpec", "GraphBuilder", "MeasurementError", "ModelGraph", "Op", "OpCost", "OpKind",
    "PerfModelError", "PlanError", "Prediction", "ShapeError", "SpecError", "TensorSpec",
    "UnknownNameError", "UnsupportedOpError", "__version__", "build_workload", "list_devices",
    "load_device", "load_model", "models", "predict", "roofline",
]
__all__ += ["SystemSpec", "collective_time", "list_systems", "load_system",
            "predict_collective", "read_nccl_tests", "compare_collectives",
            "fit_collectives"]  # collectives (issue 5)
__all__ += ["collective_sweep", "compare_algorithms", "check_collectives"]  # thin CLI


def __getattr__(name: str) -> Any:
    """The simulator's functions, imported on first use: perfmodel.sim loads simpy, and
    ``import perfmodel`` stays without it (PEP 562)."""
    if name in ("collective_sweep", "compare_algorithms"):
        return getattr(importlib.import_module("perfmodel.sim.collective_sweep"), name)
    raise AttributeError(f"module 'perfmodel' has no attribute {name!r}")
