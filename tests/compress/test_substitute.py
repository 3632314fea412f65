"""Lightweight substitutions: the seeds' parameter identities, and RepVGG's deploy form."""

from __future__ import annotations

import networkx as nx
import pytest

from perfmodel.compress.substitute import (
    bottleneck,
    depthwise_separable,
    factorize,
    ghost,
    reparameterize,
)
from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


def _conv(ci, co, k=3, bias=False, hw=8):
    b = GraphBuilder("c", default_batch=1)
    b.conv2d(b.input("x", (ci, hw, hw)), co, k, padding=k // 2, bias=bias, name="conv")
    return b.build()


def _out(g):
    return g.ops[-1].outputs[0].shape


def test_depthwise_separable_4608_to_656():
    # DOMAIN.md section 2: 3x3, 16 -> 32: 3*3*16*32 = 4608 vs 3*3*16 + 16*32 = 656.
    g = _conv(16, 32)
    s = depthwise_separable(g)
    assert g.params == 4608 and s.params == 656
    assert _out(s) == _out(g)
    assert s.op("conv.dw").attr("depthwise") is True


def test_bottleneck_formula():
    # DOMAIN.md: (1+1)*M*K + (9+1)*K*N vs (9+1)*M*N, the seed's convention of one bias per
    # kernel; the weights alone are 1*M*K + 9*K*N vs 9*M*N. M = N = 256, K = 64.
    m = n = 256
    k = 64
    plain, sub = _conv(m, n), bottleneck(_conv(m, n), 0.25)
    assert (plain.params, sub.params) == (9 * m * n, m * k + 9 * k * n)
    seed = sum((op.weights[0].shape[2] * op.weights[0].shape[3] + 1)
               * op.weights[0].shape[0] * op.weights[0].shape[1] for op in sub.ops)
    assert seed == 2 * m * k + 10 * k * n
    # with torch's one bias per output channel: + K and + N
    assert bottleneck(_conv(m, n, bias=True), 0.25).params == m * k + k + 9 * k * n + n
    assert _out(sub) == _out(plain)


def test_factorized_kx1_1xk():
    # 3x3, 64 -> 64: 9*64*64 = 36864 vs 1x3 + 3x1: 3*64*64 * 2 = 24576 (2/k of it).
    g = _conv(64, 64)
    s = factorize(g)
    assert s.params == 2 * 3 * 64 * 64 and _out(s) == _out(g)


def test_ghost_module_ratio():
    # GhostNet (Han et al. CVPR 2020, eq. 4-5), c = 16 in, n = 32 out, k = d = 3, s = 2:
    # r = n*c*k*k / ((n/s)*c*k*k + (s-1)*(n/s)*d*d) = 4608 / (2304 + 144) = s*c/(s+c-1)
    # = 32/17 ~ 1.88; MACs shrink by the same ratio.
    g = _conv(16, 32)
    s = ghost(g, 2, 3)
    n, c, k, d, ratio = 32, 16, 3, 3, 2
    assert g.params / s.params == pytest.approx(
        n * c * k * k / ((n / ratio) * c * k * k + (ratio - 1) * (n / ratio) * d * d))
    assert g.params / s.params == pytest.approx(ratio * c / (ratio + c - 1))
    macs = [build_workload(x, batch=1).table["macs"].sum() for x in (g, s)]
    assert macs[0] / macs[1] == pytest.approx(32 / 17)
    assert _out(s) == _out(g)


def test_substitutions_never_grow_a_layer():
    # a 1x1 conv has nothing to separate; 3 -> 4 channels 3x3 factorized would grow
    assert depthwise_separable(_conv(16, 32, k=1)).params == 16 * 32
    assert factorize(_conv(3, 64)).params == 9 * 3 * 64


def test_repvgg_deploy_form_has_same_outputs_and_fewer_ops():
    # RepVGG-A0 (Ding et al. CVPR 2021): folding the 1x1 and identity branches and the
    # BNs gives the deploy model: same output shapes op for op, fewer ops, and exactly the
    # zoo's repvgg_a0_deploy (8,309,384 params; DingXiaoH/RepVGG create_RepVGG_A0(True)).
    train, deploy = load_model("repvgg_a0"), load_model("repvgg_a0_deploy")
    folded = reparameterize(train)
    assert folded.num_ops < train.num_ops
    assert folded.num_ops == deploy.num_ops == 47
    assert [op.outputs[0].shape for op in folded.ops] == [op.outputs[0].shape
                                                          for op in deploy.ops]
    assert _out(folded) == _out(train)
    assert folded.params == deploy.params == 8_309_384
    assert build_workload(folded).table["macs"].sum() == build_workload(deploy).table["macs"].sum()
    assert nx.is_isomorphic(folded.graph, deploy.graph)


def test_reparameterize_folds_batchnorm_into_conv_bias():
    # ResNet-50: 53 BatchNorms fold into the preceding convs (a bias of C each): params
    # 25,557,032 - 2 x 26,560 (BN) + 26,560 (biases).
    g = reparameterize(load_model("resnet50"))
    assert not any(op.kind == "batchnorm" for op in g.ops)
    assert g.params == 25_557_032 - 26_560
    assert build_workload(g).table["macs"].sum() == 4_089_184_256
