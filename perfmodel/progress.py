"""Progress on long runs: a bar on stderr while a loop runs, where someone is watching.

``track(items, what, total)`` iterates ``items`` unchanged. It draws a transient progress bar
(the ``rich`` package, ``pip install ".[progress]"``) only when stderr is a terminal, rich is
installed and ``PERFMODEL_QUIET`` is not set (the CLI's ``--quiet`` sets it); otherwise it
is a plain loop, so scripts, tests and notebooks see nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["track", "showing"]

T = TypeVar("T")


def showing() -> bool:
    """Will ``track`` draw a bar (a terminal, rich installed, not quiet)?"""
    if os.environ.get("PERFMODEL_QUIET") or not sys.stderr.isatty():
        return False
    try:
        import rich.progress  # noqa: F401
    except ImportError:
        return False
    return True


def track(items: Iterable[T], what: str, total: int | None = None) -> Iterator[T]:
    """``items``, with a progress bar labelled ``what`` where ``showing()``."""
    if not showing():
        yield from items
        return
    from rich.console import Console
    from rich.progress import track as rich_track

    yield from rich_track(items, description=what, total=total, transient=True,
                          console=Console(stderr=True))
