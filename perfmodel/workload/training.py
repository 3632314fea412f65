"""Training rows: backward from forward, and the optimizer update.

Backward (standard practice, e.g. Narayanan et al. 2021, sec. 5.1: "the backward pass
is twice as expensive as the forward pass"): a MAC op computes the input gradient and the
weight gradient, each as many MACs as the forward, so 2 x forward MACs. It reads its saved
input, its weights and the output gradient, and writes the input gradient and the weight
gradient. Other ops do forward-sized work (1 x forward FLOPs) and move twice the forward
bytes (read saved input + output gradient, write input gradient).

Optimizer update, per parameter (mixed precision keeps fp32 master weights, Micikevicius et
al. 2018; Adam keeps two fp32 moments, Kingma & Ba 2015):
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OptimizerCost", "OPTIMIZERS"]


@dataclass(frozen=True)
class OptimizerCost:
    """FLOPs and bytes moved per parameter by one update step."""

    flops_per_param: float
    state_bytes_per_param: float  # fp32 state read and written back (master + moments)

    def bytes_per_param(self, grad_bytes: float, weight_bytes: float) -> float:
        """Read state + gradient, write state + the low-precision weight copy."""
        return 2 * self.state_bytes_per_param + grad_bytes + weight_bytes


# FLOPs per parameter: SGD w -= lr*g (2); momentum adds m = mu*m + g (2 more);
# Adam: m, v updates (5), bias corrections folded into lr, sqrt, add eps, divide,
# scale and subtract (5): 10; AdamW adds decoupled weight decay (2).
OPTIMIZERS: dict[str, OptimizerCost] = {
    "sgd": OptimizerCost(2, 4),
    "sgd_momentum": OptimizerCost(4, 8),
    "adam": OptimizerCost(10, 12),
    "adamw": OptimizerCost(12, 12),
}
