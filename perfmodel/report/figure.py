"""What every figure shares: a headless pyplot, never overwriting a user's file unasked,
and one way to save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perfmodel.errors import PerfModelError
from perfmodel.files import check_writable  # every figure is written through it

__all__ = ["check_writable", "figure_path", "pyplot", "save", "FIGURE_SUFFIXES"]

DPI = 120
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")  # formats every figure is written in


def figure_path(path: str | Path, overwrite: bool) -> Path:
    """The figure file to write: ``.png`` appended when the name has no extension (before
    the check, so an existing ``out.png`` is never overwritten unasked), a folder or an
    extension other than FIGURE_SUFFIXES refused, and check_writable's rules.

    >>> figure_path("chart", overwrite=False).name
    'chart.png'
    """
    p = Path(path)
    if p.is_dir():
        raise PerfModelError(f"{p} is a folder, not a file",
                             "name the figure file, e.g. chart.png")
    if not p.suffix:
        p = p.with_suffix(".png")
    return check_writable(p, overwrite, FIGURE_SUFFIXES)


def pyplot() -> Any:
    """matplotlib.pyplot, imported on first use (import perfmodel stays fast), on the Agg
    backend (no display needed) unless it runs in a Jupyter kernel, whose inline backend
    shows the figures ``pm.plot`` returns."""
    import sys

    import matplotlib

    if "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path) -> Path:
    """Lay out, write (format by extension) and close a figure."""
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=DPI)
    except OSError as exc:
        raise PerfModelError(f"cannot write {out}: {exc.strerror or exc}",
                             "choose a file in a folder you can write to") from None
    finally:
        pyplot().close(fig)
    return out
