"""``pm.sweep`` and ``pm.sensitivity``: what-if studies from names (the API edge, beside
``inference_api.py``: it builds models from the zoo).

    >>> import perfmodel as pm
    >>> df = pm.sweep(model="llama-2-7b", hw=["a100", "h100"], batch=[1, 64], seq=4096,
    ...               phase="decode", override={"memory.bandwidth_GBps": [2000, 4000]})
    >>> len(df), list(df["fits"].unique())     # 2 devices x 2 batches x 2 bandwidths
    (8, [True, False])

    >>> import perfmodel as pm
    >>> df = pm.sensitivity("llama-2-7b", "h100", phase="decode", batch=1, seq=2048)
    >>> df.iloc[0]["field"]          # a memory-bound decode follows its bandwidth
    'memory.bandwidth_GBps'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from perfmodel.analytic.roofline import predict
from perfmodel.errors import PerfModelError
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.study.grid import Grid, grid_from_yaml
from perfmodel.study.run import run_sweep
from perfmodel.study.sensitivity import sensitivity as sensitivity_run
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model

__all__ = ["sensitivity", "sweep"]


def sensitivity(model: Any, hw: str | Path | DeviceSpec, *, phase: str = "inference",
                batch: int = 1, seq: int | None = None, dtype: str | None = None,
                engine: str | None = None, input_len: int | None = None,
                output_len: int = 128, step: float = 0.1,
                fields: list[str] | None = None) -> pd.DataFrame:
    """Elasticity of the latency to each spec figure of ``hw`` (perfmodel.study.sensitivity):
    of one roofline pass (``phase``, ``batch``, ``seq``, ``dtype``), or, with ``engine``, of
    a whole inference run through it (``infer``: ``input_len`` + ``output_len`` tokens,
    end-to-end latency). Sorted by |elasticity|: the tornado's order."""
    device = hw if isinstance(hw, DeviceSpec) else load_device(hw)
    graph = load_model(model)
    dt = dtype or device.default_dtype
    if engine is not None:
        from perfmodel.inference.run import infer

        def metric(dev: DeviceSpec) -> float:
            return float(infer(graph, dev, engine=engine, batch=batch, input_len=input_len,
                               output_len=output_len, dtype=dt).summary["latency_s"])
    else:
        wl = build_workload(graph, batch=batch, seq=seq, dtype=dt, phase=phase)

        def metric(dev: DeviceSpec) -> float:
            return float(predict(wl, dev, dtype_fallback=True).summary["latency_s"])
    return sensitivity_run(metric, device, step=step, fields=fields)


def sweep(study: str | Path | Grid | None = None, *, model: Any = None, hw: Any = None,
          batch: Any = 1, seq: Any = None, dtype: Any = None, phase: Any = "inference",
          strategy: Any = None, override: dict[str, Any] | None = None,
          fusion: str = "none", system: Any = None, plan: Any = None, workers: int = 1,
          dask: Any = None,
          out: str | Path | None = None, force: bool = False,
          yes: bool = False) -> pd.DataFrame:
    """Roofline predictions over a grid, one tidy DataFrame (perfmodel.study.run: a row per
    point with its capacity verdict, prediction interval and any error).

    The grid is a study file (YAML, perfmodel.study.grid), a Grid, or the axes given here:
    ``model`` and ``hw`` (names, files, or ModelGraph / DeviceSpec records), ``batch``,
    ``seq``, ``dtype`` (None: each device's default), ``phase``, ``strategy``
    (compression, ``perfmodel compress`` syntax), ``override`` ({spec path: [values]}).
    ``workers``: a local process pool; ``dask``: a distributed.Client, a scheduler address
    or ``"local"``; ``out``: write a .csv or .parquet, resumable (see run_sweep); ``yes``:
    allow more than a million points. ``plan`` (``"tp=2,pp=4,dp=8"`` strings, mappings or
    ParallelPlans) with ``system`` (names or files): training steps of each plan on each
    system instead (perfmodel.study.plans; global ``batch``), one row per point."""
    if study is not None and model is not None:
        raise PerfModelError("give a study or the axes, not both",
                             "pm.sweep('study.yaml') or pm.sweep(model=..., hw=...)")
    if isinstance(study, Grid):
        grid = study
    elif study is not None:
        grid = grid_from_yaml(study)
    else:
        if model is None or (hw is None and plan is None):
            raise PerfModelError("a sweep needs models and devices (or systems and plans)",
                                 "pm.sweep(model=['resnet50'], hw=['a100', 'h100'])")
        grid = Grid.of(models=model, hw=hw, batch=batch, seq=seq, dtype=dtype, phase=phase,
                       strategy=strategy, override=override, fusion=fusion, system=system,
                       plan=plan)
    return run_sweep(grid, _model, _device, workers=workers, dask=dask, out=out,
                     force=force, yes=yes)


def _model(model: Any) -> ModelGraph:
    """A grid's model: a ModelGraph as it is, else a name or file through the zoo."""
    return model if isinstance(model, ModelGraph) else load_model(model)


def _device(hw: Any) -> DeviceSpec:
    """A grid's device: a DeviceSpec as it is, else a name or spec file."""
    return hw if isinstance(hw, DeviceSpec) else load_device(hw)
