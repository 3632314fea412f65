"""Gradient sparsification: the seed's ResNet-50 97 MB -> 0.35 MB gradient exchange."""

from __future__ import annotations

import pytest

from perfmodel.compress.gradient import gradient_exchange, sparsify_gradients
from perfmodel.errors import ShapeError
from perfmodel.zoo.registry import load_model

MIB = 2**20


def test_resnet50_gradient_exchange_97_mb_to_0_35_mb():
    # Seed 004_182038fb51ab488a.txt line 178: "可以将ResNet-50模型训练的梯度交换参数量从97MB
    # 压缩为0.35MB" (Lin et al., Deep Gradient Compression, ICLR 2018: 97 MB -> 0.35 MB,
    # 277x), at the sparsity of line 161: "99.9%的梯度交换都是冗余的".
    # Dense: 25,557,032 fp32 gradients = 102,228,128 B = 97.5 MiB ("97 MB").
    # Sparse: 25,502,912 conv/fc weights x 0.001 x (4 B value + 2 B index) = 153,017 B, plus
    # the 54,120 biases and BN parameters sent dense, x 4 B = 216,480 B: 0.352 MiB.
    g = load_model("resnet50")
    dense = gradient_exchange(g)
    assert dense.dense_bytes == dense.sent_bytes == 25_557_032 * 4
    assert int(dense.dense_bytes / MIB) == 97
    ex = gradient_exchange(sparsify_gradients(g, 0.999))
    assert ex.sent_bytes == pytest.approx(25_502_912 * 0.001 * 6 + 54_120 * 4)
    assert round(ex.sent_bytes / MIB, 2) == 0.35
    assert ex.ratio == pytest.approx(277, abs=0.5)      # DGC's ResNet-50 ratio


def test_forward_graph_is_unchanged():
    g = load_model("resnet18")
    s = sparsify_gradients(g, 0.99)
    assert s.ops == g.ops and s.meta["gradient_compression"].sparsity == 0.99


def test_sparsity_must_be_a_fraction():
    with pytest.raises(ShapeError):
        sparsify_gradients(load_model("resnet18"), 1.0)
