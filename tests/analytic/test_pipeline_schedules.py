"""Closed forms of the zero-bubble, DualPipe and PipeDream schedules, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.analytic.pipeline import (
    bubble_fraction,
    bubble_time,
    check_pipeline,
    in_flight,
    pipeline_time,
    step_time,
    weight_versions,
)
from perfmodel.errors import PlanError, UnknownNameError


def test_bubble_times_at_equal_f_b_w():
    # p = 4, t_f = t_b = t_w = 1 (whole stage)
    assert bubble_time("1f1b", 4, 8, 1, 1, 1) == 9.0        # (p-1)(1 + 1 + 1)
    assert bubble_time("gpipe", 4, 8, 1, 1, 1) == 9.0
    assert bubble_time("interleaved", 4, 8, 1, 1, 1, 3) == 3.0  # (p-1) x 3 / v
    assert bubble_time("zb-h1", 4, 8, 1, 1, 1) == 3.0       # (p-1)(1 + 1 - 1), Qi et al. sec. 2
    assert bubble_time("zb-v", 4, 8, 1, 1, 1) == 1.5        # (p-1) t_f / 2, the flush's fill
    assert bubble_time("dualpipe", 4, 8, 1, 1, 1) == 2.0    # (4/2 - 1)(1 + 2 - 1)
    assert bubble_time("pipedream", 4, 8, 1, 1, 1) == 0.0   # no flush


def test_dualpipe_maps_deepseek_notation():
    # DeepSeek-V3 Table 2 with their F = 1, B (whole backward) = 3, W = 1, F&B = F + B = 4:
    # (p/2 - 1)(F&B + B - 3W) = (8/2 - 1)(4 + 3 - 3) = 12. Ours: t_b = B - W = 2,
    # (p/2 - 1)(t_f + 2 t_b - t_w) = 3 x (1 + 4 - 1) = 12
    assert bubble_time("dualpipe", 8, 16, 1.0, 2.0, 1.0) == pytest.approx(12.0)
    # ZB1P in the same table, (p-1)(F + B - 2W) = 7 x (1 + 3 - 2) = 14 = ZB-H1 here
    assert bubble_time("zb-h1", 8, 16, 1.0, 2.0, 1.0) == pytest.approx(14.0)


def test_zb_h1_never_below_the_fill():
    # t_w = 2 > t_b = 1: (p-1)(t_f + t_b - t_w) = 0 < the last stage's fill (p-1) t_f = 3
    assert bubble_time("zb-h1", 4, 8, 1.0, 1.0, 2.0) == 3.0


def test_bubble_fraction_of_zero_bubble_schedules():
    # equal times by default: ZB-H1 (p-1)/(3m) (the sail-sg comparison table), p = 4, m = 8
    assert bubble_fraction(4, 8, "zb-h1") == pytest.approx(3 / 24)
    assert bubble_fraction(4, 8, "zb-h1", relative_to="step") == pytest.approx(3 / 27)
    # t_f = 1, t_b = 2, t_w = 0 (no split): ZB-H1's (p-1)(t_f + t_b) / (m (t_f + t_b)) = 3/8
    assert bubble_fraction(4, 8, "zb-h1", t_forward=1, t_backward=2, t_weight=0) == \
        pytest.approx(3 / 8)
    assert bubble_fraction(4, 8, "pipedream") == 0.0
    # the classic schedules ignore the times, as before
    assert bubble_fraction(4, 8, "1f1b", t_forward=5.0) == pytest.approx(3 / 8)


def test_step_time_with_weight_gradients():
    # p = 2, m = 4, t_f = t_b = t_w = 1: ideal 12; ZB-H1 + 1, 1F1B + 3
    assert step_time(2, 4, 1.0, 1.0, "zb-h1", t_weight=1.0) == pytest.approx(13.0)
    assert step_time(2, 4, 1.0, 1.0, "1f1b", t_weight=1.0) == pytest.approx(15.0)
    assert step_time(2, 3, 1.0, 2.0) == pytest.approx(12.0)  # the old signature


def test_pipeline_time_matches_the_step_model_for_classic_schedules():
    # the training-step model's m t_max + (p - 1)/v t_mean, bit for bit
    p, m, t_max, t_mean = 4, 8, 0.37, 0.29
    assert pipeline_time("1f1b", p, m, t_max, t_mean) == m * t_max + (p - 1) / 1 * t_mean
    assert pipeline_time("gpipe", p, m, t_max, t_mean) == m * t_max + (p - 1) / 1 * t_mean
    assert pipeline_time("interleaved", p, m, t_max, t_mean, virtual=2) == \
        m * t_max + (p - 1) / 2 * t_mean


def test_pipeline_time_zero_bubble():
    # t_mean = 3 split as t_f = 1 (forward share 1/3), t_w = 1, t_b = 1; t_max = 3.5:
    # ZB-H1 8 x 3.5 + 3 x (1 + 1 - 1) = 31; ZB-V 28 + 3 x 1/2 = 29.5; DualPipe 28 + 1 x 2 = 30
    assert pipeline_time("zb-h1", 4, 8, 3.5, 3.0, 1.0) == pytest.approx(31.0)
    assert pipeline_time("zb-v", 4, 8, 3.5, 3.0, 1.0) == pytest.approx(29.5)
    assert pipeline_time("dualpipe", 4, 8, 3.5, 3.0, 1.0) == pytest.approx(30.0)
    assert pipeline_time("pipedream", 4, 8, 3.5, 3.0) == pytest.approx(28.0)
    with pytest.raises(PlanError, match="exceed"):
        pipeline_time("zb-h1", 4, 8, 3.0, 3.0, 2.5)  # 1 + 2.5 > 3


def test_vectorized():
    got = bubble_time("zb-h1", np.array([2, 4, 8]), 16, 1.0, 1.0, 1.0)
    assert got == pytest.approx([1.0, 3.0, 7.0])
    assert weight_versions("pipedream", 4, np.arange(4)).tolist() == [4, 3, 2, 1]


def test_in_flight_of_new_schedules():
    assert in_flight(4, 8, "zb-h1") == 4       # 1F1B's p (Qi et al. sec. 2.1)
    assert in_flight(4, 2, "zb-h1") == 2       # never more than m
    assert in_flight(4, 8, "zb-v") == 4        # p on every device (Qi et al. sec. 6)
    assert in_flight(4, 8, "dualpipe") == 5    # PP + 1 (DeepSeek-V3 Table 2)
    assert in_flight(4, 8, "pipedream") == 4   # p - s on stage s: 4 on stage 0
    assert in_flight(4, 8, "pipedream", stage=3) == 1
    assert in_flight(4, 8, "1f1b", stage=2) == 2


def test_weight_versions_worked_by_hand():
    # PipeDream p = 4: stage 0 stashes 4 versions, stage 3 one (Narayanan et al. sec. 3.3)
    assert weight_versions("pipedream", 4) == 4
    assert weight_versions("pipedream", 4, stage=3) == 1
    assert weight_versions("dualpipe", 8) == 2  # 2x parameters (DeepSeek-V3 Table 2)
    for schedule in ("1f1b", "gpipe", "interleaved", "zb-h1", "zb-v"):
        assert weight_versions(schedule, 8) == 1
    with pytest.raises(UnknownNameError):
        weight_versions("zigzag", 4)


def test_pipeline_rules():
    check_pipeline(3, 1, "zb-h1")
    check_pipeline(5, 3, "pipedream")
    check_pipeline(4, 8, "dualpipe")
    with pytest.raises(PlanError, match="even number of stages") as info:
        check_pipeline(5, 10, "dualpipe")
    assert "--pp 6 or 4" in str(info.value)
    with pytest.raises(PlanError, match="at least 2 x stages = 8"):
        check_pipeline(4, 6, "dualpipe")
    with pytest.raises(PlanError, match="even number of micro-batches"):
        check_pipeline(4, 9, "dualpipe")
    with pytest.raises(PlanError, match="two chunks per device"):
        check_pipeline(4, 8, "zb-v", 2)
