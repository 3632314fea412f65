"""--format table|json|csv for every command: one place that prints."""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "to_json", "frame_text", "emit_frame"]

FORMATS = ("table", "json", "csv")


def _clean(v: Any) -> Any:
    import numpy as np  # here, not at import: `perfmodel --help` needs no numpy

    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items() if not str(k).endswith(WALL_CLOCK)}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# keys holding how long perfmodel itself ran (the simulator's wall time): left out of JSON,
# which is a function of the inputs only (byte-identical run to run); tables print them
WALL_CLOCK = "wall_s"


def to_json(obj: Any) -> str:
    """Stable JSON: non-finite floats become null, numpy scalars plain numbers, perfmodel's
    own run times (keys ending in ``wall_s``) left out, so the same input gives the same
    bytes."""
    return json.dumps(_clean(obj), indent=2, sort_keys=False)


def frame_text(df: pd.DataFrame, formats: dict[str, Any] | None = None) -> str:
    """A DataFrame as an aligned text table, with per-column formatters."""
    shown = df.copy()
    for col, fmt in (formats or {}).items():
        if col in shown:
            shown[col] = shown[col].map(fmt)
    return shown.to_string(index=False)


def emit_frame(df: pd.DataFrame, fmt: str, formats: dict[str, Any] | None = None) -> str:
    import numpy as np

    if fmt == "json":
        return to_json(df.replace([np.inf, -np.inf], np.nan).astype(object)
                       .where(df.notna(), None).to_dict(orient="records"))
    if fmt == "csv":
        return df.to_csv(index=False).rstrip("\n")
    return frame_text(df, formats)


def announce(path: Any) -> Any:
    """Say on stderr which file a command wrote (stdout stays the table / JSON / CSV);
    returns the path."""
    sys.stderr.write(f"wrote {path}\n")
    return path


DOES_NOT_FIT = 3  # exit code of a run that cannot fit in memory (scripts notice it)


def add_allow_oom(p: Any) -> None:
    """The --allow-oom flag of commands whose run may not fit in memory."""
    p.add_argument("--allow-oom", action="store_true",
                   help=f"exit 0 even when the run does not fit in memory (default: exit "
                        f"{DOES_NOT_FIT}, after printing the prediction)")


def fit_warnings(args: Any, fits: bool, total_bytes: float, capacity_bytes: float,
                 what: str, where: str = "one device") -> list[str]:
    """A prediction's capacity verdict for the command: ``flag_oom`` (stderr, exit code),
    and its ``warnings`` (a run that cannot fit says so first, in JSON and as the table's
    first line)."""
    flag_oom(args, fits, what)
    return [] if fits else [
        f"DOES NOT FIT: {total_bytes / 1e9:.1f} GB needed of {capacity_bytes / 1e9:.0f} GB "
        f"per device; these numbers are for a run that cannot happen on {where}"]


def flag_oom(args: Any, fits: bool, what: str) -> None:
    """A run that does not fit: one warning on stderr, and exit code DOES_NOT_FIT unless
    --allow-oom (the prediction is still printed, marked DOES NOT FIT)."""
    if fits:
        return
    allowed = getattr(args, "allow_oom", False)
    sys.stderr.write(f"perfmodel: warning: {what} does not fit in memory ("
                     + ("--allow-oom: exit 0" if allowed else
                        f"exit {DOES_NOT_FIT}; pass --allow-oom to accept") + ")\n")
    if not allowed:
        args.exit_code = DOES_NOT_FIT
