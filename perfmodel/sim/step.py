"""A training step by discrete-event simulation: one pipeline's schedule on the system's
links, with per-virtual-stage times from the analytic partition.

Only one data-parallel replica and one tensor-parallel rank per stage are simulated: the
others run the same timeline on disjoint links of the same kind (Megatron-LM's rank layout
puts each pipeline's tensor-parallel group inside a node and each stage's neighbours the same
number of ranks apart), so the one pipeline stands for all. Activations travel between the
stage devices over the topology (``ClusterSim.transfer``: contention, latency and bandwidth
of every link on the route), asynchronously to compute as in Megatron-LM. What follows the
pipeline flush (exposed data-parallel communication, optimizer step) is added as ``tail_s``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perfmodel.errors import PlanError
from perfmodel.hardware.system import SystemSpec
from perfmodel.hardware.topology import build_topology, device_id
from perfmodel.sim.schedules import PipelineRun, simulate_pipeline

__all__ = ["SimulatedStep", "simulate_step", "stage_devices"]


@dataclass(frozen=True)
class SimulatedStep:
    """The simulated pipeline and the step time (pipeline + tail)."""

    pipeline: PipelineRun
    tail_s: float

    @property
    def step_s(self) -> float:
        return self.pipeline.step_s + self.tail_s


def stage_devices(system: SystemSpec, stages: int, stride: int) -> tuple[int, list[str]]:
    """(nodes, device of each stage) with stage s at rank s x stride (ranks node-major)."""
    k = system.devices_per_node
    ranks = [s * stride for s in range(stages)]
    nodes = ranks[-1] // k + 1
    if stride >= k:  # one stage per node: keep the graph small, one node per stage
        return stages, [device_id(s, 0) for s in range(stages)]
    return nodes, [device_id(r // k, r % k) for r in ranks]


def simulate_step(system: SystemSpec, stages: int, micro_batches: int,
                  t_forward: Sequence[float], t_backward: Sequence[float], *,
                  schedule: str = "1f1b", virtual: int = 1, activation_bytes: float = 0.0,
                  stride: int = 1, tail_s: float = 0.0,
                  t_weight: Sequence[float] | float = 0.0) -> SimulatedStep:
    """Simulate one step's pipeline on ``system``: ``t_forward`` / ``t_backward`` per virtual
    stage (s, compute and tensor-parallel communication of one micro-batch; ``t_weight``
    > 0 splits the weight gradient off the backward for the zero-bubble schedules),
    activations of ``activation_bytes`` between stages ``stride`` ranks apart."""
    if stages < 1 or stride < 1:
        raise PlanError("stages and stride must be positive", "check the plan")
    nodes, devices = stage_devices(system, stages, stride)
    per_node = system.devices_per_node if nodes > 1 or stages > 1 else 1
    if stages == 1:
        nodes, per_node = 1, 1
    graph = build_topology(system, nodes=max(nodes, 1),
                           per_node=min(per_node, system.devices_per_node))
    if math.isnan(tail_s) or tail_s < 0:
        raise PlanError("the tail after the pipeline must be >= 0 s", "check the plan")
    run = simulate_pipeline(schedule, stages, micro_batches, list(t_forward), list(t_backward),
                            virtual=virtual, activation_bytes=activation_bytes, graph=graph,
                            devices=devices,
                            t_weight=list(t_weight) if isinstance(t_weight, Sequence)
                            else float(t_weight))
    return SimulatedStep(run, tail_s)
