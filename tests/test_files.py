"""The one way perfmodel writes a user's file: never over an existing one unasked."""

from __future__ import annotations

import pytest
import yaml

from perfmodel.errors import PerfModelError
from perfmodel.files import check_writable, write_yaml


def test_check_writable_accepts_a_new_file(tmp_path):
    assert check_writable(str(tmp_path / "new.yaml"), force=False) == tmp_path / "new.yaml"


def test_check_writable_refuses_an_existing_file_without_force(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("keep me")
    with pytest.raises(PerfModelError, match="already exists") as exc:
        check_writable(p, force=False)
    assert exc.value.hint == "pass --force to overwrite it"
    assert check_writable(p, force=True) == p


def test_check_writable_refuses_a_missing_folder(tmp_path):
    with pytest.raises(PerfModelError, match="does not exist"):
        check_writable(tmp_path / "no" / "such" / "x.yaml", force=True)


def test_check_writable_refuses_another_extension_naming_the_allowed_ones(tmp_path):
    with pytest.raises(PerfModelError, match="x.txt does not end in .yaml or .yml") as exc:
        check_writable(tmp_path / "x.txt", force=False, suffixes=(".yaml", ".yml"))
    assert ".yaml, .yml" in exc.value.hint
    assert check_writable(tmp_path / "x.YML", False, (".yaml", ".yml")).name == "x.YML"


def test_write_yaml_writes_the_header_as_comments_then_keys_in_order(tmp_path):
    p = write_yaml(tmp_path / "out.yaml", {"zeta": 1, "alpha": [1, 2], "name": "µ-device"},
                   header="µ-cluster, made by a test\nsecond line")
    # the header is UTF-8 text; safe_dump escapes non-ASCII values (its default)
    assert p.read_text(encoding="utf-8") == (
        '# µ-cluster, made by a test\n# second line\nzeta: 1\nalpha:\n- 1\n- 2\n'
        'name: "\\xB5-device"\n')
    assert yaml.safe_load(p.read_text(encoding="utf-8"))["name"] == "µ-device"


def test_write_yaml_without_a_header_is_plain_yaml(tmp_path):
    assert write_yaml(tmp_path / "a.yaml", {"a": 1}).read_text() == "a: 1\n"


def test_write_yaml_refuses_to_overwrite_and_leaves_the_file_untouched(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("precious: true\n")
    with pytest.raises(PerfModelError, match="already exists"):
        write_yaml(p, {"precious": False})
    assert p.read_text() == "precious: true\n"
    write_yaml(p, {"precious": False}, force=True)
    assert p.read_text() == "precious: false\n"
