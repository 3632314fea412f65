"""``pm.sensitivity``: a prediction's elasticity to every figure of a device's spec, from
names (the API edge, beside ``inference_api.py``: it builds models from the zoo).

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
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.sweep.sensitivity import sensitivity as sensitivity_run
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model

__all__ = ["sensitivity"]


def sensitivity(model: Any, hw: str | Path | DeviceSpec, *, phase: str = "inference",
                batch: int = 1, seq: int | None = None, dtype: str | None = None,
                engine: str | None = None, input_len: int | None = None,
                output_len: int = 128, step: float = 0.1,
                fields: list[str] | None = None) -> pd.DataFrame:
    """Elasticity of the latency to each spec figure of ``hw`` (perfmodel.sweep.sensitivity):
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
