"""Zero-bubble, DualPipe and PipeDream schedules in the simulator: exact tiny timelines worked
by hand, and the closed forms of perfmodel.analytic.pipeline reproduced (or bounded)."""

from __future__ import annotations

import pytest

from perfmodel.analytic.pipeline import bubble_time
from perfmodel.errors import PlanError
from perfmodel.sim.schedules import schedule_order, simulate_pipeline

# ZB-H1, p = 2, m = 4, t_f = t_b = t_w = 1, zero-cost links, worked by hand. Stage 0 (warm-up
# 1 forward) runs W_k right after B_k; stage 1 holds back s = 1 weight gradient: its W_k
# follows B_(k+1), and W3 closes. Stage 1's B_i ends at 3, 5, 8, 11; stage 0's B_i starts then
# (or when free: B1 waits for F2, 5-6). Both end at 13 = 3m + (p-1)(t_f + t_b - t_w).
ZB_H1_2x4 = [
    ("d0", 0, 1, "F0"), ("d0", 1, 2, "F1"), ("d0", 3, 4, "B0"), ("d0", 4, 5, "W0"),
    ("d0", 5, 6, "F2"), ("d0", 6, 7, "B1"), ("d0", 7, 8, "W1"), ("d0", 8, 9, "F3"),
    ("d0", 9, 10, "B2"), ("d0", 10, 11, "W2"), ("d0", 11, 12, "B3"), ("d0", 12, 13, "W3"),
    ("d1", 1, 2, "F0"), ("d1", 2, 3, "B0"), ("d1", 3, 4, "F1"), ("d1", 4, 5, "B1"),
    ("d1", 5, 6, "W0"), ("d1", 6, 7, "F2"), ("d1", 7, 8, "B2"), ("d1", 8, 9, "W1"),
    ("d1", 9, 10, "F3"), ("d1", 10, 11, "B3"), ("d1", 11, 12, "W2"), ("d1", 12, 13, "W3"),
]


def test_zb_h1_tiny_timeline_exact():
    run = simulate_pipeline("zb-h1", 2, 4, 1.0, 1.0, t_weight=1.0)
    assert run.tuples() == [(d, float(s), float(e), lab) for d, s, e, lab in ZB_H1_2x4]
    assert run.step_s == 13.0  # 3 m + (p-1)(1 + 1 - 1)
    assert run.bubble == pytest.approx(1 / 12)


def test_1f1b_with_split_weight_runs_b_then_w_and_sends_after_both():
    # 1F1B, p = 2, m = 4, t_f = t_b = t_w = 1: W right after its B, the gradient leaves after
    # both, as an undivided backward of 2: (m + p - 1) x 3 = 15, bubble (p-1) x 3 = 3
    run = simulate_pipeline("1f1b", 2, 4, 1.0, 1.0, t_weight=1.0)
    assert run.step_s == 15.0
    d1 = [t for t in run.tuples() if t[0] == "d1"]
    assert d1[:3] == [("d1", 1.0, 2.0, "F0"), ("d1", 2.0, 3.0, "B0"), ("d1", 3.0, 4.0, "W0")]
    assert ("d0", 4.0, 5.0, "B0") in run.tuples()  # the gradient left d1 at 4, not 3
    fused = simulate_pipeline("1f1b", 2, 4, 1.0, 2.0)
    assert fused.step_s == run.step_s


@pytest.mark.parametrize("f, b, w", [(1.0, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 1.0, 0.5),
                                     (2.0, 1.0, 1.0), (1.0, 2.0, 0.5)])
@pytest.mark.parametrize("p, m", [(2, 4), (4, 8), (4, 16), (8, 16), (3, 7), (8, 8)])
def test_zb_h1_and_1f1b_bubbles_match_closed_forms(p, m, f, b, w):
    # uniform stages, zero-cost links, m >= p: ZB-H1 (p-1)(t_f + t_b - t_w) (Qi et al. 2024
    # sec. 2) and 1F1B (p-1)(t_f + t_b + t_w), both exactly
    zb = simulate_pipeline("zb-h1", p, m, f, b, t_weight=w)
    one = simulate_pipeline("1f1b", p, m, f, b, t_weight=w)
    assert zb.step_s - zb.ideal_s == pytest.approx((p - 1) * (f + b - w))
    assert one.step_s - one.ideal_s == pytest.approx((p - 1) * (f + b + w))
    assert zb.step_s - zb.ideal_s == pytest.approx(float(bubble_time("zb-h1", p, m, f, b, w)))


@pytest.mark.parametrize("p, m", [(4, 8), (8, 16), (3, 7)])
def test_zb_h1_bubble_never_below_the_fill(p, m):
    # t_w = 2 > t_b = 1: (p-1)(t_f + t_b - t_w) = 0, but the last stage starts (p-1) t_f late
    run = simulate_pipeline("zb-h1", p, m, 1.0, 1.0, t_weight=2.0)
    assert run.step_s - run.ideal_s == pytest.approx((p - 1) * 1.0)
    assert float(bubble_time("zb-h1", p, m, 1.0, 1.0, 2.0)) == pytest.approx((p - 1) * 1.0)


def test_zb_h1_with_fewer_micro_batches_than_stages_is_bounded_below():
    # m < p: the closed form (p-1) = 3 is a lower bound; by simulation 4
    run = simulate_pipeline("zb-h1", 4, 3, 1.0, 1.0, t_weight=1.0)
    assert run.step_s - run.ideal_s >= float(bubble_time("zb-h1", 4, 3, 1.0, 1.0, 1.0))


@pytest.mark.parametrize("p, m", [(2, 4), (4, 4), (4, 8), (4, 16), (3, 6), (8, 8)])
def test_zb_v_equal_times_bubble_is_the_fill(p, m):
    # chunk times 0.5 each (a stage of t_f = t_b = t_w = 1 cut in two): the papers' zero bubble
    # plus the flush's fill (p-1) t_f / 2
    run = simulate_pipeline("zb-v", p, m, 0.5, 0.5, t_weight=0.5)
    assert run.ideal_s == pytest.approx(3.0 * m)  # 2 chunks x m x (0.5 x 3)
    assert run.step_s - run.ideal_s == pytest.approx((p - 1) * 0.5)
    assert run.bubble == pytest.approx(run.closed_form_bubble)


@pytest.mark.parametrize("f, b, w", [(1.0, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 1.0, 0.5),
                                     (2.0, 1.0, 1.0)])
@pytest.mark.parametrize("p, m", [(2, 4), (4, 8), (8, 16), (3, 6), (4, 3)])
def test_zb_v_closed_form_is_a_lower_bound(p, m, f, b, w):
    # every device does the same work and the last starts (p-1) t_f / 2 late; the greedy order
    # may leave more (e.g. p = 8, m = 16 at equal times: 4.5 against 3.5)
    run = simulate_pipeline("zb-v", p, m, f / 2, b / 2, t_weight=w / 2)
    assert run.step_s - run.ideal_s >= float(bubble_time("zb-v", p, m, f, b, w)) - 1e-9


def test_zb_v_keeps_p_micro_batches_of_activations():
    # ZB-V's peak is 1F1B's, p micro-batches through the stage = 2p chunk activations (Qi et
    # al. 2024 sec. 6), on every device; an activation is freed by its W
    p, m = 4, 8
    for s in range(p):
        live = peak = 0
        for kind, _, _ in schedule_order("zb-v", p, m, s):
            live += {"F": 1, "B": 0, "W": -1}[kind]
            peak = max(peak, live)
        assert peak <= 2 * p
        assert live == 0


def test_zb_v_chunks_form_a_v():
    # device s holds virtual stages s and 2p-1-s: d0 runs the first and the last chunk
    run = simulate_pipeline("zb-v", 2, 2, 0.5, 0.5, t_weight=0.5)
    d0 = [lab for d, _, _, lab in run.tuples() if d == "d0"]
    assert d0[0] == "F0.0"
    # micro-batch 0 crosses d0 (F0.0), d1 (F0.0, F0.1) and comes back to d0 (F0.1) at 1.5
    assert ("d0", 1.5, 2.0, "F0.1") in run.tuples()


@pytest.mark.parametrize("f, b, w", [(1.0, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 1.0, 0.5),
                                     (2.0, 1.0, 1.0), (1.0, 1.0, 0.0)])
@pytest.mark.parametrize("p, m", [(4, 8), (4, 16), (6, 12), (8, 16), (8, 32)])
def test_dualpipe_closed_form_is_an_upper_bound(p, m, f, b, w):
    # DeepSeek-V3 Table 2, (p/2-1)(F&B + B - 3W) = (p/2-1)(t_f + 2 t_b - t_w) here, counts each
    # F&B pair as one unit; the simulation sends a pair's forward output as soon as it is done
    # and links cost nothing, so it does no worse (e.g. p = 4, equal times: 1 against 2)
    run = simulate_pipeline("dualpipe", p, m, f, b, t_weight=w)
    assert run.ideal_s == pytest.approx(m * (f + b + w))  # m/2 each way through 2 stages
    assert 0 < run.step_s - run.ideal_s <= float(bubble_time("dualpipe", p, m, f, b, w)) + 1e-9


def test_dualpipe_two_stages_have_no_bubble():
    # p = 2: (p/2 - 1) = 0, and by simulation the two devices never idle
    run = simulate_pipeline("dualpipe", 2, 4, 1.0, 1.0, t_weight=1.0)
    assert run.step_s == 12.0  # m (t_f + t_b + t_w)
    assert run.bubble == 0.0 == run.closed_form_bubble


def test_dualpipe_order_follows_the_repository():
    # p = 4, m = 8, device 0 (half rank 0): step 1 runs (2 - 0 - 1) x 2 = 2 forwards of its
    # own direction, step 2 one pair F0 F1, step 3 one B1 W F1 (zero bubble)
    order = schedule_order("dualpipe", 4, 8, 0)
    assert order[:7] == [("F", 0, 0), ("F", 1, 0), ("F", 2, 0), ("F", 0, 1),
                         ("B", 0, 1), ("W", 0, 1), ("F", 1, 1)]
    # every micro-batch of both directions: m/2 = 4 each, F, B and W once
    ops = {(k if k != "BW" else "B", i, c) for k, i, c in order} | {
        ("W", i, c) for k, i, c in order if k == "BW"}
    assert len(ops) == 3 * 8


def test_pipedream_steady_step_has_no_bubble():
    # no flush: the fill is paid once; the last of 3 steps takes m (t_f + t_b) = 8 x 3 = 24
    run = simulate_pipeline("pipedream", 4, 8, 1.0, 2.0)
    assert run.step_s == pytest.approx(24.0)
    assert run.bubble == 0.0 == run.closed_form_bubble
    assert run.result.time_s == pytest.approx(3 * 24.0 + 3 * 3.0)  # + the fill and drain once


def test_dualpipe_needs_even_stages():
    with pytest.raises(PlanError, match="even number of stages") as info:
        simulate_pipeline("dualpipe", 3, 6)
    assert "--pp 4 or 2" in str(info.value)
    with pytest.raises(PlanError, match="at least 2 x stages"):
        simulate_pipeline("dualpipe", 4, 6)
