"""Finding and reading the data files perfmodel ships (hw_specs/, workloads/), and the one
way perfmodel writes a user's file: never over an existing one unasked."""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from perfmodel.errors import PerfModelError, SpecError

__all__ = ["data_dir", "read_yaml", "check_writable", "write_yaml"]


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
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a UTF-8 text file (byte {exc.start}: "
                        f"{exc.object[exc.start:exc.start + 1]!r})",
                        "give a YAML file saved as UTF-8 text") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}",
                        "check the path and its permissions") from None
    try:
        return yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)}",
                        "fix the YAML syntax (indentation, colons, quotes)") from None


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def check_writable(path: str | Path, force: bool, suffixes: Iterable[str] | None = None
                   ) -> Path:
    """The path to write, refused before any work is done if writing it would go wrong.

    Parameters
    ----------
    path : str or Path
        The file to write.
    force : bool
        Overwrite an existing file (the CLI's ``--force``).
    suffixes : iterable of str, optional
        Accepted extensions, with the dot (``(".yaml", ".yml")``); any by default.

    Returns
    -------
    Path
        ``path`` as a Path.

    Raises
    ------
    PerfModelError
        The file exists and ``force`` is false, its folder does not exist, or its extension
        is not one of ``suffixes``.

    Examples
    --------
    >>> check_writable("calibrated.yaml", force=False, suffixes=(".yaml", ".yml")).name
    'calibrated.yaml'
    """
    p = Path(path)
    if p.is_dir():
        raise PerfModelError(f"{p} is a folder, not a file", "name a file to write")
    allowed = tuple(suffixes) if suffixes is not None else None
    if allowed is not None and p.suffix.lower() not in allowed:
        raise PerfModelError(f"{p} does not end in {' or '.join(allowed)}",
                             f"name the file to write with one of: {', '.join(allowed)}")
    if p.exists() and not force:
        raise PerfModelError(f"{p} already exists", "pass --force to overwrite it")
    if not p.parent.exists():
        raise PerfModelError(f"folder {p.parent} does not exist", "create it first")
    if not os.access(p.parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise PerfModelError(f"cannot write {p}: permission denied",
                             "choose a file in a folder you can write to")
    return p


def write_yaml(path: str | Path, data: Any, *, force: bool = False, header: str = "") -> Path:
    """Write ``data`` as YAML (keys in their order, lines up to 100 characters, UTF-8),
    each line of ``header`` first as a ``# `` comment; never over an existing file unless
    ``force`` (``check_writable``).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    PerfModelError
        As ``check_writable``: the file exists (without ``force``) or its folder does not.
    """
    p = check_writable(path, force)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    p.write_text(comment + yaml.safe_dump(data, sort_keys=False, width=100), encoding="utf-8")
    return p
