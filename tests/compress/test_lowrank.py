"""Low-rank factorization: m x n -> m x r + r x n."""

from __future__ import annotations

import pytest

from perfmodel.compress.lowrank import factorize_low_rank
from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


def _mlp():
    b = GraphBuilder("mlp", default_batch=1)
    b.relu(b.linear(b.input("x", (64,)), 128, bias=False, name="fc"))
    return b.build()


def test_linear_m_by_n_becomes_m_by_r_plus_r_by_n():
    # out m = 128, in n = 64, ratio 0.25 of min(m, n) -> r = 16:
    # 128 x 64 = 8192 params -> 128 x 16 + 16 x 64 = 3072; MACs per sample the same.
    g = factorize_low_rank(_mlp(), 0.25)
    assert [op.weights[0].shape for op in g.ops if op.weights] == [(16, 64), (128, 16)]
    assert g.params == 128 * 16 + 16 * 64 == 3072
    assert build_workload(g, batch=1).table["macs"].sum() == 3072
    assert g.ops[-1].outputs[0].shape == _mlp().ops[-1].outputs[0].shape


def test_conv_factorizes_as_kxk_to_r_then_1x1():
    # layer1.0.conv2 of ResNet-18, 3x3 64 -> 64: m = 64, n = 64*3*3 = 576, r = 16:
    # 36864 -> 16 x 576 + 64 x 16 = 10240 params.
    g = factorize_low_rank(load_model("resnet18"), 0.25, )
    v, u = g.op("layer1.0.conv2.v"), g.op("layer1.0.conv2.u")
    assert v.weights[0].shape == (16, 64, 3, 3) and u.weights[0].shape == (64, 16, 1, 1)
    assert v.weights[0].numel + u.weights[0].numel == 10240
    assert u.outputs[0].shape == load_model("resnet18").op("layer1.0.conv2").outputs[0].shape


def test_rank_ratio_must_be_a_fraction():
    with pytest.raises(ShapeError):
        factorize_low_rank(_mlp(), 1.5)
