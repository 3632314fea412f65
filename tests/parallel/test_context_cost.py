"""perfmodel.parallel.context: ring attention's exposed hops and Ulysses' all-to-alls,
worked by hand from the dgx-h100 system file."""

from __future__ import annotations

import math

import pytest

from perfmodel.errors import PlanError
from perfmodel.hardware.system import load_system
from perfmodel.parallel.context import (
    check_ulysses,
    ring_attention,
    ring_hop_time,
    ulysses,
    ulysses_bytes,
)

# one hop across nodes on dgx-h100: launch 17.2 us + one network step 14 us, and 49 MB
# over one 400 Gb/s NIC at 0.98 = 49 GB/s: 1 ms. Hop = 1031.2 us.
KV = 49e6
HOP = 31.2e-6 + 1e-3
HOP2 = 31.2e-6 + 2e-3      # K, V and dK, dV: twice the bytes


@pytest.fixture(scope="module")
def dgx():
    return load_system("dgx-h100")


def test_ring_exposed_when_attention_is_shorter_than_a_hop(dgx):
    # cp 4, stride 8 (tp 8): every ring neighbour is in another node; 3 hops each 1031.2
    # us under 400 us of attention: 3 x 631.2 = 1893.6 us exposed
    cost = ring_attention(dgx, 4, 8, KV, 400e-6)
    assert cost.hops == 3
    assert cost.hop_s == pytest.approx(HOP)
    assert cost.total_hop_s == pytest.approx(3 * HOP)
    assert cost.exposed_s == pytest.approx(3 * (HOP - 400e-6))
    assert cost.binding == "scale_out"


def test_ring_hidden_when_attention_is_longer(dgx):
    cost = ring_attention(dgx, 4, 8, KV, 2e-3)
    assert cost.exposed_s == 0.0
    assert cost.total_hop_s == pytest.approx(3 * HOP)


def test_ring_backward_sends_gradients_too(dgx):
    # step 0 K, V; steps 1, 2 K, V + dK, dV; step 3 dK, dV. Under 1.5 ms of backward
    # attention a step: 2 x 0 + 2 x (2031.2 - 1500) us = 1062.4 us exposed
    cost = ring_attention(dgx, 4, 8, KV, 1.5e-3, backward=True)
    assert cost.hops == 4
    assert cost.total_hop_s == pytest.approx(2 * HOP + 2 * HOP2)
    assert cost.exposed_s == pytest.approx(2 * (HOP2 - 1.5e-3))
    two = ring_attention(dgx, 2, 8, KV, 0.0, backward=True)   # cp 2: K, V then dK, dV
    assert two.exposed_s == pytest.approx(2 * HOP)


def test_ring_inside_one_node_runs_on_nvlink(dgx):
    # cp 8, stride 1: one node. 3 GiB at 450 GB/s x 0.795 (the ring curve's end, reached
    # at 3 GiB x 300/450 = 2 GiB) + launch 17.2 us + one NVLink step 0.6 us
    nbytes = 3 * 2**30
    t, level = ring_hop_time(dgx, 8, 1, nbytes)
    assert level == "scale_up"
    assert t == pytest.approx(17.8e-6 + nbytes / (450e9 * 0.795))
    # cp 16 spans two nodes: the network hop binds
    assert ring_hop_time(dgx, 16, 1, KV) == (pytest.approx(HOP), "scale_out")


def test_ring_of_one_is_free(dgx):
    assert ring_attention(dgx, 1, 1, KV, 1e-3).exposed_s == 0.0


def test_ulysses_bytes_by_hand():
    # 4096 tokens a rank, hidden 4096 (32 heads x 128), 8 KV heads x 128 = 1024, bf16:
    # Q and O 4096 x 4096 x 2 = 32 MiB, K and V 4096 x 1024 x 2 = 8 MiB each
    q, kv = ulysses_bytes(4096, 4096, 1024, 2)
    assert (q, kv) == (32 * 2**20, 8 * 2**20)


def test_ulysses_seconds_by_hand(dgx):
    # cp 8 on one node: each all-to-all sends 7/8 of its buffer over NVLink (450 GB/s) at
    # the ring curve read at buffer/8 x 300/450, plus launch 17.2 us + 7 steps x 0.6 us
    def a2a(v: float, lo: float, hi: float, knot: float) -> float:
        x = v / 8 * 300 / 450
        eff = lo + (hi - lo) * math.log10(x / knot) / math.log10(4)
        return 21.4e-6 + 7 / 8 * v / (450e9 * eff)
    q = a2a(32 * 2**20, 0.434, 0.555, 2097152)      # 2.8 MB: between the 2 and 8 MiB knots
    kv = a2a(8 * 2**20, 0.459, 0.434, 524288)       # 0.7 MB: between 512 KiB and 2 MiB
    assert ulysses(dgx, 8, 1, 4096, 4096, 1024, 2) == pytest.approx(2 * q + 2 * kv)
    assert ulysses(dgx, 1, 1, 4096, 4096, 1024, 2) == 0.0


def test_check_ulysses():
    check_ulysses(32, 8, 8)
    with pytest.raises(PlanError, match="does not divide") as err:
        check_ulysses(32, 2, 4)
    assert "e.g. 2" in err.value.hint and "ring" in err.value.hint
    with pytest.raises(PlanError):
        check_ulysses(12, 12, 8)
