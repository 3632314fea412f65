"""Writing a spec: checked by loading it first (device or system by its keys), never over an
existing file unasked, and nothing written when it would not load."""

from __future__ import annotations

import pytest

from perfmodel.errors import PerfModelError, SpecError
from perfmodel.hardware.load import device_from_dict, load_device
from perfmodel.hardware.system import load_system, system_from_dict
from perfmodel.hardware.write import spec_loader, write_spec
from tests.conftest import tiny_device_dict
from tests.hardware.test_system import tiny_system_dict


def test_the_loader_is_chosen_by_the_keys():
    assert spec_loader(tiny_system_dict()) is system_from_dict
    assert spec_loader(tiny_device_dict()) is device_from_dict


def test_a_device_spec_is_written_with_its_header_and_loads(tmp_path):
    p = write_spec(tmp_path / "dev.yaml", tiny_device_dict(), header="made by a test")
    assert p.read_text().startswith("# made by a test\nname: ")
    assert load_device(p).name == tiny_device_dict()["name"]


def test_a_system_spec_is_written_and_loads(tmp_path):
    p = write_spec(tmp_path / "sys.yml", tiny_system_dict(name="mine"))
    s = load_system(p)
    assert s.name == "mine" and s.devices_per_node == 3


def test_an_invalid_spec_is_refused_and_nothing_is_written(tmp_path):
    bad = tiny_system_dict(devices_per_node={"value": -3, "source": "HAND"})
    with pytest.raises(SpecError, match="bad.yaml"):       # the error names the file
        write_spec(tmp_path / "bad.yaml", bad)
    assert not (tmp_path / "bad.yaml").exists()
    broken = tiny_device_dict()
    del broken["memory"]
    with pytest.raises(SpecError):
        write_spec(tmp_path / "dev.yaml", broken)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_without_force(tmp_path):
    p = tmp_path / "sys.yaml"
    p.write_text("# mine\n")
    with pytest.raises(PerfModelError, match="already exists"):
        write_spec(p, tiny_system_dict())
    assert p.read_text() == "# mine\n"
    write_spec(p, tiny_system_dict(), force=True)
    assert load_system(p).name == "tiny-ring"
