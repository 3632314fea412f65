"""NCCL's tuning tables as data, and its 2.30.7 all-reduce pick worked by hand from them."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.analytic.nccl import (
    BASE_LAT_US,
    HW_LAT_US,
    load_tuning,
    nccl_all_reduce_times,
    nccl_pick,
    nvlink_nccl_GBps,
)
from perfmodel.errors import UnknownNameError

H100_NCCL = 18 * 20.6   # NCCL's NVLink figure on H100: 18 links x SM90_NVLINK_BW (topo.h)


def test_every_table_cites_repo_path_commit_function():
    t = load_tuning()
    for which in ("legacy", "current"):
        src = getattr(t, which)["source"]
        assert src["repo"] == "NVIDIA/nccl" and src["path"] == "src/graph/tuning.cc"
        assert len(src["commit"]) == 40 and src["function"]
    assert t.legacy["source"]["commit"].startswith("01afd20a")     # NCCL 2.7.5
    assert t.current["source"]["commit"].startswith("73cf1122")    # NCCL 2.30.7


def test_legacy_tables_are_the_ones_the_a100_fits_used():
    # tuning.cc @ 01afd20a: baseLat Ring {3.6, 10, 8.4}, hwLat NVLINK Ring/LL .47,
    # NET Ring/Simple 9.6
    assert BASE_LAT_US["ring"] == (3.6, 10.0, 8.4)
    assert HW_LAT_US["nvlink"]["ring"][0] == 0.47 and HW_LAT_US["net"]["ring"][2] == 9.6


def test_nvlink_figure_as_nccl_counts_it():
    assert nvlink_nccl_GBps(450, "hopper") == pytest.approx(H100_NCCL)        # 370.8
    assert nvlink_nccl_GBps(900, "blackwell") == pytest.approx(18 * 40.1)     # 721.8
    with pytest.raises(UnknownNameError):
        nvlink_nccl_GBps(450, "hoper")


def test_h100_times_worked_from_the_table_values():
    t = nccl_all_reduce_times([0.0 + (1 << 30)], 1, 8, "hopper", H100_NCCL, nvls=True)
    v = float(1 << 30)
    # ring LL: baseLat 6.6 + 14 steps x hwLat NVLINK Ring/LL 0.6 = 15 us;
    #          bw min(llMaxBw Hopper-N1 141, 370.8 x .5) x nRanks/nsteps 8/14 = 80.571 GB/s
    assert t[("ring", "LL")][0] == pytest.approx(15.0 + v / (1000 * 141 * 8 / 14))
    # ring Simple: 8.4 + 14 x 3.4 = 56 us at 370.8 x 8/14 GB/s
    assert t[("ring", "Simple")][0] == pytest.approx(56.0 + v / (1000 * H100_NCCL * 8 / 14))
    # NVLS: hwLat NVLINK NVLS/Simple 25 us; 8 heads x min(46.35 x .85 x 7/8 x 2, 46.35) x 8/14
    assert t[("nvls", "Simple")][0] == pytest.approx(25.0 + v / (1000 * H100_NCCL * 8 / 14))
    assert ("nvls_tree", "Simple") not in t          # NVLS-tree is off on one node


def test_nvls_selection_rule_hand_worked_crossover():
    # ring LL 15 us at 80.571 GB/s vs NVLS 25 us at 211.886 GB/s: equal when
    # V = 10 us / (1/80.571 - 1/211.886) us per kB = 1.300 MB; below ring LL, above NVLS
    cross = 10.0 * 1000 / (1 / (141 * 8 / 14) - 1 / (H100_NCCL * 8 / 14))
    assert cross == pytest.approx(1.300e6, rel=1e-3)
    algo, proto = nccl_pick([cross * 0.95, cross * 1.05, 1 << 30], 1, 8, "hopper", H100_NCCL,
                            nvls=True)
    assert list(algo) == ["ring", "nvls", "nvls"] and list(proto) == ["LL", "Simple", "Simple"]


def test_without_nvls_nccl_walks_ring_ll_ll128_simple():
    # ring LL -> LL128 (14 + 14 x 1.9 = 40.6 us at min(.92 x 370.8, 16 x 36.7) x 8/14):
    #   25.6 us / (1/80.571 - 1/194.935) = 3.52 MB; LL128 -> Simple (56 us at 211.886):
    #   15.4 us / (1/194.935 - 1/211.886) = 37.5 MB
    algo, proto = nccl_pick([3.3e6, 3.7e6, 36e6, 39e6], 1, 8, "hopper", H100_NCCL)
    assert list(algo) == ["ring"] * 4
    assert list(proto) == ["LL", "LL128", "LL128", "Simple"]


def test_nvls_is_off_where_the_architecture_has_none():
    # nvlsEfficiency[Ampere] = 0: NCCL leaves NVLS out
    t = nccl_all_reduce_times([1e9], 1, 8, "ampere", 240.0, nvls=True)
    assert not any(a.startswith("nvls") for a, _ in t)
    with pytest.raises(UnknownNameError):
        nccl_pick([1e9], 1, 8, "ampere", 240.0, algorithms=("nvls",), nvls=True)


def test_nvls_tree_across_nodes_wins_at_large_sizes():
    # 2 nodes of 8 H100, 8 x 50 GB/s NICs: NVLS-tree bw = 8 x min(46.35 x .85 x 7/8 x 2,
    # 400 / 8 x 2, perChMaxNVLSTreeBw Hopper-N2 57.7) x 16/30 = 246.2 GB/s, latency
    # 25 + 2 x 1 x 20.9 = 66.8 us
    t = nccl_all_reduce_times([1e9], 2, 8, "hopper", H100_NCCL, 400.0, nvls=True)
    assert t[("nvls_tree", "Simple")][0] == pytest.approx(66.8 + 1e9 / (1000 * 8 * 57.7 * 16 / 30))
    algo, _ = nccl_pick(np.array([1e9]), 2, 8, "hopper", H100_NCCL, 400.0, nvls=True)
    assert algo[0] == "nvls_tree"
