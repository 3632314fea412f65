"""LAMB's update cost per parameter, worked by hand from the algorithm and FusedLAMB's passes
(perfmodel.workload.training)."""

from __future__ import annotations

from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload
from perfmodel.workload.training import OPTIMIZERS


def _mlp():
    b = GraphBuilder("mlp", default_batch=1)
    x = b.input("x", (8,))
    x = b.relu(b.linear(x, 4))
    b.linear(x, 2)
    return b.build()


def test_lamb_flops_per_parameter_by_hand():
    # You et al. 2019, Algorithm 2, as FusedLAMB's kernels compute it per element:
    #   g = g * inv_scale / clip                        2  (AMP unscale, global-norm clip)
    #   m = beta1 * m + beta3 * g                       3
    #   v = beta2 * v + (1 - beta2) * g * g             4
    #   m / c1, v / c2 (bias corrections)               2
    #   sqrt(v^), + eps, m^ / (...)                     3
    #   u = ... + decay * x                             2
    #   ||g||^2 (global), ||x||^2, ||u||^2: square+add  6
    #   x = x - ratio * u                               2
    #                                                  --
    #                                                  24
    assert OPTIMIZERS["lamb"].flops_per_param == 2 + 3 + 4 + 2 + 3 + 2 + 6 + 2 == 24


def test_lamb_bytes_per_parameter_by_hand():
    # fp16 gradient and model weights, fp32 master x and moments m, v. Passes:
    #   global grad norm      read g                 2
    #   ||x|| per tensor      read x                 4
    #   stage 1               read g, x, m, v        2 + 12
    #                         write u (in g), m, v   2 + 8
    #   ||u|| per tensor      read u                 2
    #   stage 2               read u, x              2 + 4
    #                         write x, fp16 copy     4 + 2
    #                                               ----
    #                                                 44
    lamb = OPTIMIZERS["lamb"]
    assert lamb.bytes_per_param(2, 2) == 2 + 4 + 14 + 10 + 2 + 6 + 6 == 44
    # Adam's one fused pass over the same state: 2 x 12 + 2 + 2 = 28
    assert OPTIMIZERS["adam"].bytes_per_param(2, 2) == 28
    # fp32 gradients (TF32 / FP32 rows): five passes of 4 bytes, 32 of state, 4 of weights
    assert lamb.bytes_per_param(4, 4) == 5 * 4 + 32 + 4


def test_lamb_optimizer_rows_of_a_workload():
    # 36 + 10 parameters of the MLP, fp16 training: 24 FLOPs and 44 bytes each
    wl = build_workload(_mlp(), batch=2, phase="train", optimizer="lamb").table
    opt = wl[wl["phase"] == "optimizer"]
    assert opt["flops"].sum() == 24 * (36 + 10)
    assert opt["weight_bytes"].sum() == 44 * (36 + 10)
