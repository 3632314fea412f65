"""Discrete-event simulation (simpy) of a cluster: links as resources, collectives as processes."""

from perfmodel.sim.collectives import SIM_ALGORITHMS, simulate_collective
from perfmodel.sim.engine import ClusterSim, SimResult, Timeline

__all__ = ["ClusterSim", "SIM_ALGORITHMS", "SimResult", "Timeline", "simulate_collective"]
