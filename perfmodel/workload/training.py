"""Training rows: backward from forward, and the optimizer update.

Backward (standard practice, e.g. Narayanan et al. 2021, sec. 5.1: "the backward pass
is twice as expensive as the forward pass"): a MAC op computes the input gradient and the
weight gradient, each as many MACs as the forward, so 2 x forward MACs. It reads its saved
input, its weights and the output gradient, and writes the input gradient and the weight
gradient. Other ops do forward-sized work (1 x forward FLOPs) and move twice the forward
bytes (read saved input + output gradient, write input gradient).

Optimizer update, per parameter (mixed precision keeps fp32 master weights, Micikevicius et
al. 2018; Adam keeps two fp32 moments, Kingma & Ba 2015):

LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning", Algorithm 2) keeps
Adam's two moments and scales each tensor's Adam-with-decay update u = m^/(sqrt(v^)+eps) +
lambda x by the trust ratio ||x|| / ||u||, so it needs two per-tensor norms before it can
write x. NVIDIA's FusedLAMB (apex ``apex/optimizers/fused_lamb.py`` step: the global
gradient L2 norm first, ``multi_tensor_l2norm`` over all gradients, for clipping; then
``csrc/multi_tensor_lamb.cu`` ``multi_tensor_lamb_cuda``; DeepLearningExamples' BERT runs
its copy, PyTorch/LanguageModeling/BERT/lamb_amp_opt/csrc/multi_tensor_lamb.cu, which also
writes the fp16 model copy) makes five passes over the parameters:

1. global gradient norm: reads g;
2. per-tensor norm of the fp32 weights x: reads x;
3. stage 1 (``LAMBStage1Functor``): reads g, x, m, v; writes m, v and the update u into
   g's buffer (the kernel's comment: "in-place modify grad to store update");
4. per-tensor norm of u: reads u (g's buffer);
5. stage 2 (``LAMBStage2Functor``): reads u and x, writes x (and the fp16 model copy).

So the gradient buffer is moved 5 times (4 reads, 1 write), the fp32 state 32 bytes (x read
3 times and written once, m and v read and written once: 8 bytes more than one read and one
write of the 12-byte state) and the low-precision weights written once. FLOPs, counted from
the kernels' lines (each multiply, add, divide and square root one): unscale g * inv_scale
and divide by the clipped global norm (2); m = beta1 m + beta3 g (3); v = beta2 v +
(1 - beta2) g^2 (4); bias corrections m / c1, v / c2 (2); sqrt, + eps, divide (3); + decay
x (2); three norms' square-and-add (6); x -= ratio u (2): 24. The per-tensor trust ratio is
one division per tensor, not per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OptimizerCost", "OPTIMIZERS"]


@dataclass(frozen=True)
class OptimizerCost:
    """FLOPs and bytes moved per parameter by one update step."""

    flops_per_param: float
    state_bytes_per_param: float  # fp32 state read and written back (master + moments)
    grad_passes: float = 1.0  # reads and writes of the gradient buffer
    extra_state_bytes_per_param: float = 0.0  # fp32 state moved beyond one read + one write

    def bytes_per_param(self, grad_bytes: float, weight_bytes: float) -> float:
        """Read state + gradient, write state + the low-precision weight copy (and, for a
        multi-pass update such as LAMB, the further passes over gradient and state)."""
        return (2 * self.state_bytes_per_param + self.extra_state_bytes_per_param
                + self.grad_passes * grad_bytes + weight_bytes)


# FLOPs per parameter: SGD w -= lr*g (2); momentum adds m = mu*m + g (2 more);
# Adam: m, v updates (5), bias corrections folded into lr, sqrt, add eps, divide,
# scale and subtract (5): 10; AdamW adds decoupled weight decay (2). LAMB: FusedLAMB's
# five passes (module docstring): 24 FLOPs, the gradient buffer moved 5 times, the 12-byte
# state read and written once plus two more reads of the fp32 weights (8 bytes).
OPTIMIZERS: dict[str, OptimizerCost] = {
    "sgd": OptimizerCost(2, 4),
    "sgd_momentum": OptimizerCost(4, 8),
    "adam": OptimizerCost(10, 12),
    "adamw": OptimizerCost(12, 12),
    "lamb": OptimizerCost(24, 12, grad_passes=5, extra_state_bytes_per_param=8),
}
