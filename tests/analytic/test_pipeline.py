"""Pipeline closed forms, worked by hand (DOMAIN.md sec. 4)."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.analytic.pipeline import (
    bubble_fraction,
    check_pipeline,
    in_flight,
    layer_assignment,
    step_time,
)
from perfmodel.errors import PlanError, UnknownNameError


def test_gpipe_and_1f1b_bubble_p_minus_1_over_m():
    # p = 4, m = 8: bubble (p-1)/m = 3/8 of ideal; (p-1)/(m+p-1) = 3/11 of the step.
    for schedule in ("gpipe", "1f1b"):
        assert bubble_fraction(4, 8, schedule) == pytest.approx(3 / 8)
        assert bubble_fraction(4, 8, schedule, relative_to="step") == pytest.approx(3 / 11)


def test_interleaved_bubble_shrinks_by_v():
    # p = 4, m = 8, v = 2: (p-1)/(v m) = 3/16.
    assert bubble_fraction(4, 8, "interleaved", 2) == pytest.approx(3 / 16)


def test_step_time_uniform_pipeline():
    # p = 2, m = 3, t_f = 1, t_b = 2: (m + p - 1)(t_f + t_b) = 4 * 3 = 12.
    assert step_time(2, 3, 1.0, 2.0) == pytest.approx(12.0)


def test_vectorized_over_arrays():
    got = bubble_fraction(np.array([2, 4, 8]), np.array([8, 8, 8]))
    assert got == pytest.approx([1 / 8, 3 / 8, 7 / 8])


def test_activations_in_flight():
    assert in_flight(4, 8, "gpipe") == 8     # all m
    assert in_flight(4, 8, "1f1b") == 4      # at most p
    assert in_flight(4, 2, "1f1b") == 2      # never more than m
    # interleaved, p = 4, v = 2: 4 * (1 + 3/8) = 5.5 (Korthikanti et al. sec. 4.2.3)
    assert in_flight(4, 8, "interleaved", 2) == pytest.approx(5.5)


def test_seed_interleaved_layer_assignment():
    # Seed (DOMAIN.md sec. 4): 16 layers, 4 devices, v = 2 -> device 1 holds 0-1 and 8-9.
    devices = layer_assignment(16, 4, 2)
    assert devices[0] == [0, 1, 8, 9]
    assert devices[3] == [6, 7, 14, 15]
    assert layer_assignment(16, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11],
                                        [12, 13, 14, 15]]


def test_impossible_pipelines():
    with pytest.raises(PlanError, match="do not split"):
        layer_assignment(10, 4, 1)
    with pytest.raises(PlanError, match="multiple of the stages"):
        check_pipeline(4, 6, "interleaved", 2)
    with pytest.raises(PlanError, match="positive"):
        check_pipeline(0, 6, "1f1b")
    with pytest.raises(UnknownNameError):
        check_pipeline(2, 4, "zigzag")
