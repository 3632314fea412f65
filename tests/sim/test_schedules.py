"""Pipeline schedules as simpy processes: exact tiny timelines (hand-worked), the closed forms
reproduced for uniform stages, and where they break (uneven stages, slow links)."""

from __future__ import annotations

import math

import pytest

from perfmodel.analytic.pipeline import bubble_fraction, step_time
from perfmodel.errors import PlanError, ShapeError, UnknownNameError
from perfmodel.sim.schedules import schedule_order, simulate_pipeline

# 2 stages, 3 micro-batches, t_f = 1, t_b = 2, zero-latency links, worked by hand:
# GPipe: stage 0 runs F0 F1 F2 from t = 0; stage 1 each F one step later (F2 ends at 4);
# stage 1 then B0 B1 B2 (4-6, 6-8, 8-10); stage 0's B_i waits for stage 1's (ends 12).
GPIPE_2x3 = [
    ("d0", 0, 1, "F0"), ("d0", 1, 2, "F1"), ("d0", 2, 3, "F2"),
    ("d0", 6, 8, "B0"), ("d0", 8, 10, "B1"), ("d0", 10, 12, "B2"),
    ("d1", 1, 2, "F0"), ("d1", 2, 3, "F1"), ("d1", 3, 4, "F2"),
    ("d1", 4, 6, "B0"), ("d1", 6, 8, "B1"), ("d1", 8, 10, "B2"),
]
# 1F1B: stage 0 warms up with p - 0 - 1 = 1 forward, then F1, then B0 once stage 1's B0
# (2-4) is done; stage 1 (no warm-up) alternates F_i, B_i as inputs arrive.
ONE_F_ONE_B_2x3 = [
    ("d0", 0, 1, "F0"), ("d0", 1, 2, "F1"), ("d0", 4, 6, "B0"),
    ("d0", 6, 7, "F2"), ("d0", 7, 9, "B1"), ("d0", 10, 12, "B2"),
    ("d1", 1, 2, "F0"), ("d1", 2, 4, "B0"), ("d1", 4, 5, "F1"),
    ("d1", 5, 7, "B1"), ("d1", 7, 8, "F2"), ("d1", 8, 10, "B2"),
]


@pytest.mark.parametrize("schedule, expected", [("gpipe", GPIPE_2x3),
                                                ("1f1b", ONE_F_ONE_B_2x3)])
def test_tiny_timeline_exact(schedule, expected):
    run = simulate_pipeline(schedule, 2, 3, 1.0, 2.0)
    assert run.tuples() == [(d, float(s), float(e), lab) for d, s, e, lab in expected]
    # (m + p - 1)(t_f + t_b) = 4 x 3 = 12, bubble (p - 1)/m = 1/3
    assert run.step_s == 12.0
    assert run.bubble == pytest.approx(1 / 3)


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("p, m", [(2, 3), (4, 8), (4, 16), (8, 8), (3, 7)])
def test_des_reproduces_closed_form_for_uniform_stages(schedule, p, m):
    run = simulate_pipeline(schedule, p, m, 1.0, 2.0)
    assert run.bubble == pytest.approx((p - 1) / m, rel=1e-12)
    assert run.step_s == pytest.approx(float(step_time(p, m, 1.0, 2.0, schedule)))


@pytest.mark.parametrize("p, m, v", [(4, 8, 2), (4, 4, 2), (2, 6, 3), (8, 16, 4), (4, 12, 3)])
def test_interleaved_bubble_is_p_minus_1_over_v_m(p, m, v):
    # each chunk takes 1/v of the stage's time
    run = simulate_pipeline("interleaved", p, m, 1.0 / v, 2.0 / v, virtual=v)
    assert run.bubble == pytest.approx((p - 1) / (v * m), rel=1e-9)
    assert run.closed_form_bubble == pytest.approx(float(bubble_fraction(p, m, "interleaved",
                                                                         v)))


def test_interleaved_order_follows_megatron():
    # p = 2, m = 4, v = 2: device 0 warms up with (p - 0 - 1) x 2 + (v - 1) p = 4 forwards:
    # micro-batches 0, 1 on chunk 0, then 0, 1 on chunk 1.
    order = schedule_order("interleaved", 2, 4, 0, virtual=2)
    assert order[:4] == [("F", 0, 0), ("F", 1, 0), ("F", 0, 1), ("F", 1, 1)]
    assert order[4:6] == [("F", 2, 0), ("B", 0, 1)]  # steady state: backward of last chunk
    assert len(order) == 2 * 4 * 2


def test_in_flight_on_first_stage():
    # GPipe holds all m forwards before the first backward, 1F1B at most p
    p, m = 4, 8
    for schedule, expected in (("gpipe", m), ("1f1b", p)):
        order = schedule_order(schedule, p, m, 0)
        peak = live = 0
        for kind, _, _ in order:
            live += 1 if kind == "F" else -1
            peak = max(peak, live)
        assert peak == expected


def test_uneven_stages_break_the_closed_form():
    # stage 2 twice as slow sets the pace. By hand: 2 (F0 on d0, d1) + 48 (stage 2's
    # 8 x (2 + 4)) + 1 (stage 2 idles: after its F0 it has only F1, 2 s, to run while d3
    # does F0 + B0, 3 s) + 4 (the last B on d1, d0) = 55; the closed form of the mean
    # stage, (m + p - 1) x 3.75 = 41.25, misses it by a third
    run = simulate_pipeline("1f1b", 4, 8, [1, 1, 2, 1], [2, 2, 4, 2])
    assert run.step_s == pytest.approx(55.0)
    mean = float(step_time(4, 8, 1.25, 2.5))
    assert run.step_s > mean * 1.3


def test_slow_links_add_latency_per_hop():
    # a 0.1 s link latency delays each of the 2(p-1) hops on the critical path of fill and
    # drain: 1F1B step = (m + p - 1) x 3 + 2 (p - 1) x 0.1 here
    fast = simulate_pipeline("1f1b", 4, 8, 1.0, 2.0)
    slow = simulate_pipeline("1f1b", 4, 8, 1.0, 2.0, link_latency_s=0.1)
    assert fast.step_s == pytest.approx(33.0)
    assert slow.step_s > fast.step_s + 2 * 3 * 0.1 - 1e-9
    assert slow.bubble > slow.closed_form_bubble


def test_transfers_recorded_on_links():
    run = simulate_pipeline("gpipe", 2, 2, 1.0, 2.0, activation_bytes=1e9,
                            link_bandwidth_Bps=1e9)
    e = run.result.timeline.events
    sends = e[e["kind"] == "transfer"]
    assert len(sends) == 4  # 2 activations forward, 2 gradients back
    assert (sends["end"] - sends["start"]).tolist() == pytest.approx([1.0] * 4)
    # F0 on d1 waits for its 1 s transfer: starts at 2
    assert ("d1", 2.0, 3.0, "F0") in run.tuples()


def test_bad_input():
    with pytest.raises(UnknownNameError):
        simulate_pipeline("zigzag", 2, 2)
    with pytest.raises(PlanError):
        simulate_pipeline("interleaved", 4, 6, virtual=2)  # m % p != 0
    with pytest.raises(ShapeError):
        simulate_pipeline("1f1b", 2, 2, [1, 2, 3])
    with pytest.raises(ShapeError):
        simulate_pipeline("1f1b", 2, 2, -1.0)
    assert math.isfinite(simulate_pipeline("1f1b", 1, 1).step_s)


def test_a_gradient_is_used_only_after_it_has_arrived():
    # 1F1B, p = 2, m = 2, t_f = 1, t_b = 2; 1 B activations at 1 B/s (1 s hold), 0.5 s
    # latency. By hand: d0 F0 0-1, F1 1-2; sends 1-2 and 2-3 arrive at 2.5 and 3.5; d1 F0
    # 2.5-3.5, B0 3.5-5.5, F1 5.5-6.5, B1 6.5-8.5; gradient B0 is sent 5.5-6.5 and
    # arrives at 7 (d0 B0 7-9), gradient B1 is sent 8.5-9.5 and arrives at 10: d0 B1 10-12
    run = simulate_pipeline("1f1b", 2, 2, 1.0, 2.0, activation_bytes=1.0,
                            link_bandwidth_Bps=1.0, link_latency_s=0.5)
    assert [t for t in run.tuples() if t[0] == "d0"] == [
        ("d0", 0.0, 1.0, "F0"), ("d0", 1.0, 2.0, "F1"), ("d0", 7.0, 9.0, "B0"),
        ("d0", 10.0, 12.0, "B1")]
    assert run.step_s == 12.0
