"""Discrete-event simulation (simpy) of a cluster: links as resources, collectives as processes.

The names below are imported on first use (PEP 562), so importing a module of this package
that does not simulate (``perfmodel.sim.collective_sweep`` with ``method="analytic"``) does
not load simpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfmodel.sim.collectives import SIM_ALGORITHMS, simulate_collective
    from perfmodel.sim.engine import ClusterSim, SimResult, Timeline

__all__ = ["ClusterSim", "SIM_ALGORITHMS", "SimResult", "Timeline", "simulate_collective"]
_LAZY = {**dict.fromkeys(("SIM_ALGORITHMS", "simulate_collective"), "perfmodel.sim.collectives"),
         **dict.fromkeys(("ClusterSim", "SimResult", "Timeline"), "perfmodel.sim.engine")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'perfmodel.sim' has no attribute {name!r}")
