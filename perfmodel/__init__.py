"""perfmodel: predict how AI models run on hardware, and check the predictions.

    >>> import perfmodel as pm
    >>> wl = pm.build_workload(pm.load_model("resnet50"), batch=1, dtype="fp16")
    >>> pred = pm.predict(wl, pm.load_device("a100"))
    >>> round(pred.summary["params"])
    25557032

A run is three inputs: what (a model and a :class:`Job`), how (a :class:`ParallelPlan`) and
where (a device or a system):

    >>> graph = pm.load_model("llama-2-7b")
    >>> job = pm.Job(phase="decode", batch=8, seq=4096, dtype="fp16")
    >>> fp = pm.footprint(graph, pm.ParallelPlan(tensor_parallel=2), job)
    >>> round(float(fp["kv_cache"]) / 2**30, 3)      # 8 x 2 GiB of KV cache over 2 devices
    8.0

Every public name is imported on first use (PEP 562 ``__getattr__``), so ``import
perfmodel`` loads neither pandas nor networkx, simpy or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from perfmodel.errors import (
    MeasurementError,
    PerfModelError,
    PlanError,
    ShapeError,
    SpecError,
    UnknownNameError,
    UnsupportedOpError,
)

if TYPE_CHECKING:  # the names __getattr__ serves, for type checkers and editors
    from perfmodel import plot
    from perfmodel.analytic.capacity import memory_report
    from perfmodel.analytic.collectives import collective_time
    from perfmodel.analytic.memory import footprint
    from perfmodel.analytic.network import predict_collective
    from perfmodel.analytic.roofline import Prediction, predict, roofline
    from perfmodel.bench.nccl_tests import read_nccl_tests
    from perfmodel.catalog import device_table, model_table
    from perfmodel.explore_api import explore, model_search
    from perfmodel.graph import GraphBuilder, ModelGraph, ModelShape, Op, OpCost, OpKind, TensorSpec
    from perfmodel.hardware import DeviceSpec, list_devices, load_device
    from perfmodel.hardware.system import SystemSpec, list_systems, load_system
    from perfmodel.inference_api import infer, serve, serve_search
    from perfmodel.parallel.search import search_plans
    from perfmodel.parallel.step import predict_step
    from perfmodel.review_api import review
    from perfmodel.sim.collective_sweep import collective_sweep, compare_algorithms
    from perfmodel.study_api import sensitivity, sweep
    from perfmodel.validate.collectives import (
        check_collectives,
        compare_collectives,
        fit_collectives,
    )
    from perfmodel.workload import Job, ParallelPlan, Workload, build_workload
    from perfmodel.zoo.registry import load_model, models

__version__ = "0.1.0"

# public name -> the module that defines it, imported on first use
_LAZY: dict[str, str] = {
    **dict.fromkeys(("GraphBuilder", "ModelGraph", "ModelShape", "Op", "OpCost", "OpKind",
                     "TensorSpec"), "perfmodel.graph"),
    **dict.fromkeys(("DeviceSpec", "list_devices", "load_device"), "perfmodel.hardware"),
    **dict.fromkeys(("SystemSpec", "list_systems", "load_system"), "perfmodel.hardware.system"),
    **dict.fromkeys(("load_model", "models"), "perfmodel.zoo.registry"),
    **dict.fromkeys(("Job", "ParallelPlan", "Workload", "build_workload"), "perfmodel.workload"),
    **dict.fromkeys(("Prediction", "predict", "roofline"), "perfmodel.analytic.roofline"),
    "footprint": "perfmodel.analytic.memory",
    **dict.fromkeys(("device_table", "model_table"), "perfmodel.catalog"),
    "memory_report": "perfmodel.analytic.capacity",
    "collective_time": "perfmodel.analytic.collectives",
    "predict_collective": "perfmodel.analytic.network",
    **dict.fromkeys(("collective_sweep", "compare_algorithms"), "perfmodel.sim.collective_sweep"),
    "predict_step": "perfmodel.parallel.step",
    "infer": "perfmodel.inference_api", "serve": "perfmodel.inference_api",
    "serve_search": "perfmodel.inference_api", "sensitivity": "perfmodel.study_api",
    "sweep": "perfmodel.study_api",
    "review": "perfmodel.review_api",
    **dict.fromkeys(("explore", "model_search"), "perfmodel.explore_api"),
    "search_plans": "perfmodel.parallel.search",
    "read_nccl_tests": "perfmodel.bench.nccl_tests",
    **dict.fromkeys(("check_collectives", "compare_collectives", "fit_collectives"),
                    "perfmodel.validate.collectives"),
    "leave_one_device_out": "perfmodel.validate.holdout",
    "from_torch": "perfmodel.importers.torch_fx",
    "load_onnx": "perfmodel.importers.onnx_model",
    "load_architectures": "perfmodel.hardware.load",
}

__all__ = [
    "DeviceSpec", "GraphBuilder", "Job", "MeasurementError", "ModelGraph", "ModelShape", "Op",
    "OpCost", "OpKind", "ParallelPlan", "PerfModelError", "PlanError", "Prediction",
    "ShapeError", "SpecError", "SystemSpec", "TensorSpec", "UnknownNameError",
    "UnsupportedOpError", "Workload", "__version__", "build_workload", "check_collectives",
    "collective_sweep", "collective_time", "compare_algorithms", "compare_collectives",
    "device_table", "explore", "fit_collectives", "footprint", "from_torch", "infer",
    "leave_one_device_out",
    "list_devices", "load_onnx",
    "list_systems", "load_architectures", "load_device",
    "load_model", "load_system", "memory_report", "model_search", "model_table", "models",
    "predict",
    "predict_collective",
    "predict_step", "read_nccl_tests", "review", "roofline", "search_plans", "sensitivity",
    "plot", "serve", "serve_search", "sweep",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (PEP 562)."""
    if name == "plot":  # a module: pm.plot.sweep(...), matplotlib loaded on first chart
        return importlib.import_module("perfmodel.plot")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'perfmodel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
