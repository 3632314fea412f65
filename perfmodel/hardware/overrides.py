"""What-if devices: a spec with some of its numbers changed, by dotted path.

Paths name a figure of the spec file (docs/hw_spec_format.md): ``compute.tensor_TFLOPS.fp8``,
``compute.units``, ``power.tdp_W``, ``efficiency.launch_overhead_us``. A memory level is
``memory.<name>.<field>`` (``memory.hbm3.bandwidth_GBps``, ``memory.l2.capacity_MB``) or, for
the main memory, ``memory.<field>`` (``memory.bandwidth_GBps``). The changed spec is checked
again as a whole (device_from_dict), its changed figures sourced ``override``, and named
``<name>+<path>=<value>,...`` so tables tell the variants apart.

>>> from perfmodel.hardware.load import load_device
>>> fast = override_device(load_device("h100"), {"memory.bandwidth_GBps": 6700})
>>> fast.memory_bandwidth / load_device("h100").memory_bandwidth
2.0
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from perfmodel.errors import SpecError, UnknownNameError, did_you_mean
from perfmodel.hardware.load import device_from_dict, load_architectures, load_defaults
from perfmodel.hardware.spec import DeviceSpec

__all__ = ["override_device", "numeric_fields"]


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(path, {value, source} mapping) of every numeric figure under ``node``."""
    if isinstance(node, Mapping):
        if "value" in node and isinstance(node["value"], int | float) \
                and not isinstance(node["value"], bool):
            yield prefix, node
            return
        for k, v in node.items():
            if k in ("sources", "notes", "aliases"):
                continue
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))


def _paths(raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every numeric figure's path (both spellings of the main memory's)."""
    out = {}
    for k, v in raw.items():
        if k == "memory" and isinstance(v, list):
            for level in v:
                if not isinstance(level, Mapping):
                    continue
                for p, leaf in _leaves({x: y for x, y in level.items() if x not in
                                        ("name", "role")}, ""):
                    out[f"memory.{level.get('name')}.{p}"] = leaf
                    if level.get("role") == "main":
                        out[f"memory.{p}"] = leaf
            continue
        out.update(dict(_leaves(v, k)))
    return out


def numeric_fields(device: DeviceSpec) -> dict[str, float]:
    """Every numeric figure of the device's spec by path (main memory once, as
    ``memory.<field>``), with its value."""
    paths = _paths(device.raw)
    main = {p for p in paths if p.count(".") == 1 and p.startswith("memory.")}
    shadow = {p for p in paths if p.startswith("memory.") and p.count(".") == 2 and
              f"memory.{p.split('.')[2]}" in main and paths[p] is paths[
                  f"memory.{p.split('.')[2]}"]}
    return {p: float(leaf["value"]) for p, leaf in paths.items() if p not in shadow}


def override_device(device: DeviceSpec, changes: Mapping[str, float]) -> DeviceSpec:
    """The device with the figures at ``changes``' paths set to their values (see the module
    docstring); an unknown path or a non-positive value is one clear error."""
    if not changes:
        return device
    raw = copy.deepcopy(dict(device.raw))
    paths = _paths(raw)
    for path, value in changes.items():
        if path not in paths:
            raise UnknownNameError(f"no numeric figure {path!r} in {device.name}'s spec",
                                   did_you_mean(path, sorted(paths)))
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise SpecError(f"override {path}={value!r}: must be a positive number",
                            f"e.g. {path}={paths[path]['value']}")
        leaf = dict(paths[path])
        was = leaf["value"]
        target = paths[path]
        target["value"] = value  # type: ignore[index]
        target["source"] = f"override: {path}={value:g} (the spec: {was:g}, {leaf.get('source')})"  # type: ignore[index]
    tag = ",".join(f"{p}={v:g}" for p, v in changes.items())
    raw["name"] = f"{device.name}+{tag}"
    raw["display_name"] = f"{device.display_name} ({tag})"
    return device_from_dict(raw, f"{device.path}+{tag}", architectures=load_architectures(),
                            defaults=load_defaults())
