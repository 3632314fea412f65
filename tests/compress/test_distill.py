"""Distillation: the deployed cost is the student's."""

from __future__ import annotations

import pytest

from perfmodel.compress.distill import distill
from perfmodel.errors import PlanError
from perfmodel.zoo.registry import load_model


def test_student_replaces_teacher():
    s = distill(load_model("vgg16"), load_model("mobilenet_v2"))
    assert s.params == 3_504_872          # torchvision MobileNet_V2 (zoo reference)
    assert s.meta["teacher"] == "vgg16"


def test_student_must_take_the_teachers_input():
    with pytest.raises(PlanError, match="takes"):
        distill(load_model("resnet50"), load_model("lenet5"))
