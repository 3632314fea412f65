"""The --strategy mini-language: names, arguments, options, composition, errors."""

from __future__ import annotations

import pytest

from perfmodel.compress.registry import STRATEGIES, apply_strategy, parse_strategy
from perfmodel.errors import PlanError, UnknownNameError
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


@pytest.mark.parametrize("text", [
    "fp16", "int8", "w4a16", "w8a8", "fp8", "int4", "binary", "prune:0.5:structured",
    "prune:0.9:unstructured", "prune:0.9:unstructured:bitmap", "prune:0.9:unstructured:idx16",
    "prune:2:4", "prune:0.25:layers", "share:16", "lowrank:0.25", "dwsep", "bottleneck:0.25",
    "factorize", "ghost", "ghost:3:5", "reparam", "mixed:sensitive", "gradsparse:0.999",
    "int8:skip=ends", "lowrank:0.5:layers=layer4.*", "fp16+prune:2:4",
])
def test_documented_strategies_parse_and_apply(text):
    g = apply_strategy(load_model("resnet18"), text)
    assert build_workload(g, batch=1).table["macs"].sum() > 0


def test_every_registered_name_has_usage_and_summary():
    for name, d in STRATEGIES.items():
        assert d.usage.startswith(name.split(":")[0]) and d.summary


def test_composition_applies_left_to_right():
    g = apply_strategy(load_model("resnet18"), "fp16+prune:2:4")
    op = g.op("layer1.0.conv1")
    assert op.attr("weight_dtype") == "fp16" and op.attr("sparse_pattern") == "2:4"


def test_options_select_layers():
    g = apply_strategy(load_model("resnet18"), "int8:layers=layer4.*")
    assert g.op("layer4.0.conv1").attr("weight_dtype") == "int8"
    assert "weight_dtype" not in g.op("layer3.0.conv1").attrs


def test_distill_needs_a_model_resolver():
    s = parse_strategy("distill:mobilenet_v2", resolve_model=load_model)
    assert s(load_model("vgg16")).params == 3_504_872
    with pytest.raises(PlanError):
        parse_strategy("distill:mobilenet_v2")


@pytest.mark.parametrize("text, error, needle", [
    ("int9", UnknownNameError, "int8"),
    ("prune:0.5:structred", UnknownNameError, "structured"),
    ("prune:half", PlanError, "usage"),
    ("share:4:8", PlanError, "at most"),
    ("int8:skip=middle", UnknownNameError, "skip"),
    ("int8:only=fc", PlanError, "option"),
    ("", PlanError, "empty"),
    ("mixed:nosuchpreset", UnknownNameError, "preset"),
])
def test_bad_strategies_are_one_clear_error(text, error, needle):
    with pytest.raises(error, match=needle):
        parse_strategy(text)
