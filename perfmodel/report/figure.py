"""What every figure shares: a headless pyplot, never overwriting a user's file unasked,
and one way to save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfmodel.files import check_writable  # every figure is written through it

__all__ = ["check_writable", "pyplot", "save"]

DPI = 120


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
