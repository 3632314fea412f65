"""Spec loading: every shipped spec loads, aliases are unique, errors are complete."""

from __future__ import annotations

import pytest
import yaml

from perfmodel.errors import SpecError, UnknownNameError
from perfmodel.files import read_yaml
from perfmodel.hardware.load import (
    device_from_dict,
    device_to_dict,
    hw_specs_dir,
    list_devices,
    load_architectures,
    load_defaults,
    load_device,
)
from tests.conftest import tiny_device_dict

REQUIRED_BY_ISSUE = ["v100", "t4", "a10", "a100-40gb", "a100", "l4", "l40s", "h100",
                     "h100-pcie", "h200", "b200", "2080ti", "3090ti", "4090", "mi250x",
                     "mi300x", "tpu-v4", "tpu-v5e", "gaudi2", "jetson-orin"]


@pytest.mark.parametrize("name", list_devices())
def test_every_shipped_spec_loads_with_a_source_for_every_figure(name):
    d = load_device(name)
    assert d.memory_bandwidth > 0 and d.memory_capacity > 0
    assert d.peak_flops, "a device needs at least one compute figure"
    leaves = [p for p in d.provenance]
    assert all(d.provenance[p] for p in leaves), "every figure names its source"
    assert "efficiency.compute" in d.provenance  # filled from _defaults.yaml, with source


@pytest.mark.parametrize("alias", REQUIRED_BY_ISSUE)
def test_issue_device_list_is_shipped(alias):
    assert load_device(alias).name


def test_at_least_15_devices():
    assert len(list_devices()) >= 15


def test_aliases_unique_across_library():
    seen: dict[str, str] = {}
    for path in sorted(hw_specs_dir().glob("*.yaml")):
        if path.name.startswith("_"):
            continue
        d = read_yaml(path)
        for key in [d["name"], *d.get("aliases", [])]:
            assert key.lower() not in seen, f"{key} in {path.name} and {seen.get(key.lower())}"
            seen[key.lower()] = path.name


def test_a100_figures_match_datasheet():
    # shared/reference/hw_datasheets.csv, row "A100 SXM4 80GB": 312 TFLOPS fp16 dense,
    # 2039 GB/s, 80 GB, 400 W.
    d = load_device("a100")
    assert d.peak("tensor", "fp16") == 312e12
    assert d.memory_bandwidth == 2039e9
    assert d.memory_capacity == 80e9
    assert d.tdp_w == 400
    assert d.ridge_point("fp16") == pytest.approx(312e12 / 2039e9)


def test_round_trip_to_dict_from_dict():
    d = load_device("h100")
    again = device_from_dict(device_to_dict(d), d.path, architectures=load_architectures(),
                             defaults=load_defaults())
    assert again == d


def test_unknown_device_suggests_nearest():
    with pytest.raises(UnknownNameError, match="a100"):
        load_device("a1000")


def test_user_spec_file(tmp_path, tiny_device):
    path = tmp_path / "my_npu.yaml"
    path.write_text(yaml.safe_dump(tiny_device_dict()))
    d = load_device(str(path))
    assert d.peak("tensor", "fp16") == pytest.approx(100.0)
    assert d.memory_bandwidth == pytest.approx(10.0)


def test_all_problems_reported_at_once_with_key_paths():
    bad = tiny_device_dict()
    bad["memory"][0]["bandwith_GBps"] = bad["memory"][0].pop("bandwidth_GBps")  # typo
    bad["compute"]["tensor_TFLOPS"]["fp16"] = {"value": -1, "source": "HAND"}
    bad["power"]["tdp_W"] = {"value": 5}
    with pytest.raises(SpecError) as exc:
        device_from_dict(bad, "bad.yaml")
    msg = str(exc.value)
    assert "bad.yaml" in msg
    assert "memory[0].bandwith_GBps: unknown key (did you mean 'bandwidth_GBps'?)" in msg
    assert "compute.tensor_TFLOPS.fp16.value: must be positive" in msg
    assert "power.tdp_W.source: missing" in msg


def test_undefined_source_key_is_an_error():
    bad = tiny_device_dict()
    bad["power"]["tdp_W"] = {"value": 5, "source": "NOPE"}
    with pytest.raises(SpecError, match="'NOPE' is not defined under sources"):
        device_from_dict(bad)


def test_missing_file_and_malformed_yaml(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_device(str(tmp_path / "nope.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ncompute: [unclosed\n")
    with pytest.raises(SpecError, match="malformed YAML at line"):
        load_device(str(broken))


def test_no_main_memory_is_an_error():
    bad = tiny_device_dict()
    bad["memory"][0]["role"] = "cache"
    with pytest.raises(SpecError, match="exactly one level must have role: main"):
        device_from_dict(bad)


def test_unit_fallbacks_are_stated(tiny_device):
    # No vector fp16 figure: vector ops compute in fp32 at 10 FLOP/s, and say so.
    unit, dt, peak, note = tiny_device.resolve_unit("vector", "fp16")
    assert (unit, dt, peak) == ("vector", "fp32", pytest.approx(10.0))
    assert "fp32" in note
    # Device with no fp8 anywhere: an error naming the supported dtypes.
    with pytest.raises(Exception, match="fp16"):
        tiny_device.resolve_unit("tensor", "fp8")
