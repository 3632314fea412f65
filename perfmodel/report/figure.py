"""What every figure shares: a headless pyplot, never overwriting a user's file unasked,
and one way to save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfmodel.errors import PerfModelError

__all__ = ["check_writable", "pyplot", "save"]

DPI = 120


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse to overwrite a user's file unless asked; the folder must exist."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise PerfModelError(f"{p} already exists", "pass --force to overwrite it")
    if not p.parent.exists():
        raise PerfModelError(f"folder {p.parent} does not exist", "create it first")
    return p


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on first use (import perfmodel stays
    fast and needs no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path) -> Path:
    """Lay out, write (format by extension) and close a figure."""
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    pyplot().close(fig)
    return out
