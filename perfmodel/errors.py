"""The exception hierarchy: every error a user can cause is a PerfModelError.

Each carries a message naming the problem and a hint naming the fix; the CLI prints
``error: <message> (hint: <hint>)`` on one line and exits with code 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "PerfModelError",
    "SpecError",
    "ShapeError",
    "PlanError",
    "UnsupportedOpError",
    "MeasurementError",
    "UnknownNameError",
    "did_you_mean",
    "raise_problems",
]


class PerfModelError(Exception):
    """Base class: a problem with the user's input, with a hint how to fix it."""

    def __init__(self, message: str, hint: str = "", key_path: str = "") -> None:
        self.message = message
        self.hint = hint
        self.key_path = key_path
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = f"{self.key_path}: " if self.key_path else ""
        tail = f" (hint: {self.hint})" if self.hint else ""
        return " ".join(f"{where}{self.message}{tail}".split())  # one line, always


class SpecError(PerfModelError):
    """A hardware or model spec file is missing, malformed or incomplete."""


class ShapeError(PerfModelError):
    """Tensor shapes do not fit together, or a size is zero or negative."""


class PlanError(PerfModelError):
    """An impossible parallel plan or workload request (e.g. tp not dividing heads)."""


class UnsupportedOpError(PerfModelError):
    """An op kind with no cost rule, or a dtype the device cannot run."""


class MeasurementError(PerfModelError):
    """A measurement file does not follow the Measurement schema."""


class UnknownNameError(PerfModelError):
    """An unknown model, device, dtype or option name."""


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """A hint listing the nearest valid names (difflib), or all of them if few."""
    options = sorted(set(map(str, choices)))
    by_lower = {c.lower(): c for c in options}
    key = name.lower()
    # close spellings (a 0.65 ratio: 'adir' is not 'gaudi3') and names it begins ('rms')
    close = difflib.get_close_matches(key, list(by_lower), n=n, cutoff=0.65)
    close += [c for c in by_lower if len(key) >= 2 and c.startswith(key) and c not in close]
    close = close[:n]
    if close:
        return "did you mean " + " or ".join(repr(by_lower[c]) for c in close) + "?"
    shown = ", ".join(options[:12]) + (", ..." if len(options) > 12 else "")
    return f"choose one of: {shown}"


def check_choice(kind: str, name: str, choices: Iterable[str]) -> str:
    """``name`` if it is one of ``choices``, else one UnknownNameError with a did-you-mean.

    >>> check_choice("collective", "all_reduce", ("all_reduce", "all_gather"))
    'all_reduce'
    """
    options = tuple(choices)
    if name not in options:
        raise UnknownNameError(f"unknown {kind} {name!r}", did_you_mean(name, options))
    return name


def raise_problems(where: str, problems: list[str], hint: str, kind: str = "",
                   error: type[PerfModelError] = SpecError) -> None:
    """Raise one error listing every problem found in a file or table (none: return)."""
    if problems:
        what = f" in {kind}" if kind else ""
        raise error(f"{where}: {len(problems)} problem(s){what}: " + "; ".join(problems), hint)
