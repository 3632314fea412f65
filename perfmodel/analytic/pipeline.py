"""Pipeline-parallel closed forms: bubbles, in-flight activations, layer assignment.

With p stages, m micro-batches, uniform forward time t_f and backward time t_b per stage
and micro-batch (Narayanan et al., "Efficient large-scale language model training on GPU
clusters using Megatron-LM", SC 2021, sec. 2.2):

* GPipe and 1F1B (PipeDream-flush): the pipeline fills and drains once, so the step takes
  (m + p - 1)(t_f + t_b); the bubble is (p - 1)(t_f + t_b), i.e. (p - 1)/m of the ideal
  m(t_f + t_b), or (p - 1)/(m + p - 1) of the step (Huang et al., GPipe, 2019).
* Interleaved 1F1B with v model chunks per device: the bubble shrinks to (p - 1)/(v m)
  of the ideal, at v times the point-to-point traffic.
* Activations in flight on the first stage: m micro-batches for GPipe, at most p for 1F1B
  (min(p, m)); interleaving multiplies the 1F1B figure by 1 + (p - 1)/(p v) (Korthikanti
  et al., "Reducing activation recomputation in large transformer models", 2023,
  sec. 4.2.3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.workload.job import LIMITS, check_positive
from perfmodel.workload.plan import SCHEDULES

__all__ = ["SCHEDULES", "bubble_fraction", "step_time", "in_flight", "layer_assignment",
           "check_pipeline"]



def check_pipeline(stages: int, micro_batches: int, schedule: str, virtual: int = 1) -> None:
    """One clear error per impossible pipeline."""
    if schedule not in SCHEDULES:
        raise UnknownNameError(f"unknown schedule {schedule!r}", did_you_mean(schedule, SCHEDULES))
    for name, v in (("stages", stages), ("micro-batches", micro_batches), ("virtual", virtual)):
        check_positive(name, v, PlanError, f"--{name}", LIMITS["parallel"])
    if schedule == "interleaved" and micro_batches % stages:
        raise PlanError(f"interleaved 1F1B needs micro-batches ({micro_batches}) to be a "
                        f"multiple of the stages ({stages})", "Megatron-LM requires m % p == 0")
    if schedule != "interleaved" and virtual != 1:
        raise PlanError(f"--virtual {virtual} applies to the interleaved schedule only",
                        "use --schedule interleaved or --virtual 1")


def bubble_fraction(stages: Any, micro_batches: Any, schedule: str = "1f1b",
                    virtual: Any = 1, relative_to: str = "ideal") -> Any:
    """Bubble time over the ideal time (``relative_to="ideal"``: (p-1)/m, or (p-1)/(v m)
    interleaved) or over the whole step (``"step"``: (p-1)/(m+p-1), interleaved
    (p-1)/(v m + p - 1)). Vectorized over numpy arrays."""
    p, m = np.asarray(stages, float), np.asarray(micro_batches, float)
    v = np.asarray(virtual if schedule == "interleaved" else 1, float)
    if relative_to == "ideal":
        return (p - 1) / (v * m)
    if relative_to == "step":
        return (p - 1) / (v * m + p - 1)
    raise UnknownNameError(f"unknown bubble reference {relative_to!r}", "use ideal or step")


def step_time(stages: Any, micro_batches: Any, t_forward: Any, t_backward: Any,
              schedule: str = "1f1b", virtual: Any = 1) -> Any:
    """Step time of a uniform pipeline: ideal m (t_f + t_b) plus the bubble.

    ``t_forward`` and ``t_backward`` are per stage and micro-batch for the whole stage (all
    its chunks together when interleaved).
    """
    ideal = np.asarray(micro_batches, float) * (np.asarray(t_forward) + np.asarray(t_backward))
    return ideal * (1 + bubble_fraction(stages, micro_batches, schedule, virtual))


def in_flight(stages: Any, micro_batches: Any, schedule: str = "1f1b", virtual: Any = 1) -> Any:
    """Micro-batches whose activations the first stage holds at its peak (in units of one
    micro-batch through the whole stage)."""
    p, m = np.asarray(stages), np.asarray(micro_batches)
    if schedule == "gpipe":
        return m
    if schedule == "1f1b":
        return np.minimum(p, m)
    v = np.asarray(virtual, float)
    return np.minimum(p * (1 + (p - 1) / (p * v)), m)


def layer_assignment(num_layers: int, stages: int, virtual: int = 1) -> list[list[int]]:
    """Layers held by each device. Megatron-LM's interleaved assignment: the model is cut
    into stages x virtual chunks of consecutive layers, and chunk c goes to device c mod p.
    The seed's example: 16 layers, 4 devices, v = 2 -> device 0 holds 0-1 and 8-9."""
    chunks = stages * virtual
    if num_layers % chunks:
        raise PlanError(f"{num_layers} layers do not split into {stages} stages x {virtual} "
                        "chunks", "choose stages x virtual dividing the layer count")
    size = num_layers // chunks
    devices: list[list[int]] = [[] for _ in range(stages)]
    for c in range(chunks):
        devices[c % stages].extend(range(c * size, (c + 1) * size))
    return devices
