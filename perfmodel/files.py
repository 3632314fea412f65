"""Finding and reading the data files perfmodel ships (hw_specs/, workloads/)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import yaml

from perfmodel.errors import SpecError

__all__ = ["data_dir", "read_yaml"]


def data_dir(kind: str) -> Path:
    """Where shipped data of ``kind`` (hw_specs, workloads) lives: inside the installed
    wheel (perfmodel/_data/<kind>) or, in a source checkout, at the repository root."""
    packaged = Path(str(importlib.resources.files("perfmodel"))) / "_data" / kind
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / kind


def read_yaml(path: Path) -> Any:
    """Parse a YAML file with safe_load; a missing or malformed file is a SpecError."""
    if not path.is_file():
        raise SpecError(f"file not found: {path}", "check the path, or name a shipped spec")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)}",
                        "fix the YAML syntax (indentation, colons, quotes)") from None


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
