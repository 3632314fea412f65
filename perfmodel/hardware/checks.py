"""Checking spec mappings: collect every problem with its key path, then fail once.

Shared by the device, system and energy spec loaders (read -> check -> convert -> freeze).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from perfmodel.errors import SpecError, did_you_mean
from perfmodel.hardware.efficiency import EfficiencyCurve

__all__ = ["Checker", "begin_checks", "parse_curve"]


class Checker:
    """Collects problems with key paths instead of stopping at the first."""

    def __init__(self, sources: Mapping[str, Any]) -> None:
        self.problems: list[str] = []
        self.sources = sources
        self.provenance: dict[str, str] = {}

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def keys(self, path: str, d: Any, allowed: set[str]) -> bool:
        if not isinstance(d, Mapping):
            self.add(path, f"must be a mapping, got {type(d).__name__}")
            return False
        for k in d:
            if k not in allowed:
                self.add(f"{path}.{k}" if path else str(k),
                         f"unknown key ({did_you_mean(str(k), allowed)})")
        return True

    def leaf(self, path: str, d: Any, kind: type = float, positive: bool = True) -> Any:
        """A {value, source} figure; returns the value (None if invalid)."""
        if not isinstance(d, Mapping) or "value" not in d:
            self.add(path, "must be {value: ..., source: ...}")
            return None
        for k in d:
            if k not in ("value", "source"):
                self.add(f"{path}.{k}", "unknown key (a figure has only value and source)")
        src = d.get("source")
        if not isinstance(src, str) or not src.strip():
            self.add(f"{path}.source", "missing: every figure needs a source")
        elif " " not in src and "/" not in src and src not in self.sources and src.isupper():
            self.add(f"{path}.source", f"{src!r} is not defined under sources: "
                                       f"({did_you_mean(src, self.sources)})")
        else:
            self.provenance[path] = str(self.sources.get(src, src))
        v = d["value"]
        if kind is bool:
            if not isinstance(v, bool):
                self.add(f"{path}.value", f"must be true or false, got {v!r}")
                return None
            return v
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.add(f"{path}.value", f"must be a number, got {v!r}")
            return None
        if v < 0 or (positive and v == 0):
            self.add(f"{path}.value", f"must be {'positive' if positive else '>= 0'}, got {v}")
            return None
        return v


    def choice(self, path: str, d: Any, allowed: tuple[str, ...],
               lower: bool = False) -> str | None:
        """A named choice ``{value: hopper, source: ...}`` among ``allowed`` (compared in
        lower case if ``lower``); returns it, or None with the problem recorded."""
        raw = d.get("value") if isinstance(d, Mapping) else None
        self.leaf(path, {**d, "value": 1} if isinstance(d, Mapping) else d)  # the source
        v = str(raw).lower() if lower and raw is not None else raw
        if v not in allowed:
            self.add(f"{path}.value", f"must be one of {', '.join(allowed)}, got {raw!r} "
                     f"({did_you_mean(str(raw), allowed)})")
            return None
        return str(v)


def begin_checks(d: Any, path: str, what: str, doc: str, top_keys: set[str],
                 required: Iterable[str]) -> Checker:
    """A Checker for mapping ``d``, with unknown and missing top-level keys recorded.

    A non-mapping is one immediate SpecError (nothing else can be checked)."""
    if not isinstance(d, Mapping):
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise SpecError(f"{path}: {article} {what} spec must be a YAML mapping",
                        f"see {doc} for the format")
    sources = d.get("sources") or {}
    c = Checker(sources if isinstance(sources, Mapping) else {})
    c.keys("", d, top_keys)
    for k in required:
        if k not in d:
            c.add(k, "missing required key")
    return c


def parse_curve(c: Checker, path: str, d: Any) -> EfficiencyCurve | None:
    """A {value: [[size, efficiency], ...], source: ...} curve (docs/hw_spec_format.md)."""
    if not isinstance(d, Mapping) or "value" not in d:
        c.add(path, "must be {value: [[size, efficiency], ...], source: ...}")
        return None
    src = d.get("source")
    if not isinstance(src, str) or not src.strip():
        c.add(f"{path}.source", "missing: every figure needs a source")
    else:
        c.provenance[path] = str(c.sources.get(src, src))
    pts = d["value"]
    ok = isinstance(pts, list) and len(pts) > 0 and all(
        isinstance(p, list | tuple) and len(p) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in p) for p in pts)
    if not ok:
        c.add(f"{path}.value", "must be a non-empty list of [size, efficiency] number pairs")
        return None
    sizes = [p[0] for p in pts]
    if any(s <= 0 for s in sizes) or len(set(sizes)) != len(sizes):
        c.add(f"{path}.value", "sizes must be positive and distinct")
    if any(not 0 < p[1] <= 1 for p in pts):
        c.add(f"{path}.value", "efficiencies are fractions of peak: each must be in (0, 1]")
    return EfficiencyCurve.from_points(pts)
