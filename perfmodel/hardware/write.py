"""Writing a spec a program made (a host measured, a device or system calibrated): checked by
loading it first, so every file perfmodel writes loads again.

A module of its own because it needs both loaders: ``hardware.system`` imports
``hardware.load``, so neither can hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from perfmodel.files import check_writable, write_yaml
from perfmodel.hardware.load import device_from_dict
from perfmodel.hardware.system import system_from_dict

__all__ = ["write_spec", "spec_loader"]

# The keys only a system file has (docs/system_spec_format.md); a device file has none.
SYSTEM_KEYS = frozenset({"device", "devices_per_node", "scale_up"})


def spec_loader(spec: Mapping[str, Any]) -> Callable[[Any, str], Any]:
    """``system_from_dict`` for a system mapping (one with a ``device``, ``devices_per_node``
    or ``scale_up`` key), else ``device_from_dict``.

    >>> spec_loader({"name": "x", "device": "a100"}).__name__
    'system_from_dict'
    """
    return system_from_dict if SYSTEM_KEYS & set(spec) else device_from_dict


def write_spec(path: str | Path, spec: Mapping[str, Any], *, force: bool = False,
               header: str = "") -> Path:
    """Check a device or system spec by loading it, then write it as YAML.

    Parameters
    ----------
    path : str or Path
        The file to write.
    spec : mapping
        The spec in file form (``device_to_dict`` / ``system_to_dict`` shape); which one it
        is, ``spec_loader`` tells by its keys.
    force : bool
        Overwrite an existing file.
    header : str
        Lines written first as ``# `` comments (where the file came from).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    SpecError
        The spec does not load (nothing is written).
    PerfModelError
        The file exists (without ``force``) or its folder does not (nothing is written).
    """
    p = check_writable(path, force, (".yaml", ".yml"))
    spec_loader(spec)(spec, str(p))  # the written file must load
    return write_yaml(p, dict(spec), force=force, header=header)
