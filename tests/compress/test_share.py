"""Weight sharing: the seed's 16 weights in 4 clusters, and the look-up price."""

from __future__ import annotations

import pytest

from perfmodel.analytic.roofline import predict
from perfmodel.compress.share import share_weights
from perfmodel.errors import ShapeError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.workload.build import build_workload


def _sixteen_weights():
    b = GraphBuilder("w16", default_batch=1)
    b.linear(b.input("x", (4,)), 4, bias=False)   # a 4 x 4 weight matrix
    return b.build()


def test_16_weights_in_4_clusters():
    # Seed 000_b09e94c4aa0114f1.txt ("权重共享"): 16 weights clustered into 4, stored as
    # indices plus a table, "储存空间就降到原本的 1/4" (about a quarter). Exactly (Han et
    # al., Deep Compression, Fig. 3): 16 x 2-bit indices + 4 x 32-bit centroids = 160 bits
    # instead of 16 x 32 = 512 bits: 3.2x smaller (0.3125 of the original).
    g = _sixteen_weights()
    dense = build_workload(g, batch=1, dtype="fp32").table["storage_bytes"].sum()
    shared = build_workload(share_weights(g, 4), batch=1, dtype="fp32").table
    assert dense == 64 and shared["storage_bytes"].sum() == 20
    assert dense / shared["storage_bytes"].sum() == 3.2
    assert shared["lookups"].sum() == 16


def test_lookups_are_charged(tiny_device):
    # 16 gathers on the vector unit (tiny: fp32 at 10 op/s) = 1.6 s on top of the matmul's
    # 2 x 16 FLOP / 100 FLOP/s = 0.32 s of compute.
    wl = build_workload(share_weights(_sixteen_weights(), 4), batch=1, dtype="fp16")
    lin = predict(wl, tiny_device).ops.iloc[0]
    assert lin["compute_s"] == pytest.approx(0.32 + 1.6)


def test_one_cluster_is_not_sharing():
    with pytest.raises(ShapeError):
        share_weights(_sixteen_weights(), 1)
