"""nccl-tests output (``all_reduce_perf`` and friends, stdout) -> one DataFrame per run.

nccl-tests (github.com/NVIDIA/nccl-tests, ``src/common.cu``) prints a ``#`` header that lists
every rank (``#  Rank  3 Group  0 Pid 1234 on host-a device  3 [0x07] NVIDIA A100-SXM4-80GB``),
a two-line column header (``size count type redop root time algbw busbw #wrong time ...``,
out-of-place then in-place) and one row per message size. Older versions leave out ``redop``
and ``root`` or call ``#wrong`` ``error``; the column header says which, so rows are read by
it. ``size`` is the nccl-tests size: the whole output buffer for all-gather, the whole input
for reduce-scatter, the buffer on each rank for all-reduce (perfmodel's convention too).

The run's shape comes from the rank lines (ranks, and the distinct hosts as nodes); the
collective from ``# Collective test starting: all_reduce_perf`` (newer versions) or the
file name (``all_reduce_perf.txt``, ``all_gather_output.dat``).

>>> run = read_nccl_tests("all_reduce_perf.log")                 # doctest: +SKIP
>>> run.collective, run.nodes, run.per_node, len(run.rows)       # doctest: +SKIP
('all_reduce', 1, 8, 30)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from perfmodel.errors import MeasurementError

__all__ = ["NcclTestsRun", "read_nccl_tests", "parse_nccl_tests", "COLLECTIVE_NAMES"]

# nccl-tests binary stem -> perfmodel primitive
COLLECTIVE_NAMES = {
    "all_reduce": "all_reduce", "all_gather": "all_gather", "reduce_scatter": "reduce_scatter",
    "broadcast": "broadcast", "reduce": "reduce", "alltoall": "all_to_all",
    "all_to_all": "all_to_all", "sendrecv": "send_recv", "send_recv": "send_recv",
    "scatter": "scatter", "gather": "gather",
}
_RANK = re.compile(r"^#\s*Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+\d+"
                   r"\s+\[[^\]]*\]\s+(.*\S)\s*$")
_STARTING = re.compile(r"Collective test starting:\s*(\w+?)(?:_perf)?\b")
_NAME_IN_FILE = re.compile(r"(all_reduce|all_gather|reduce_scatter|alltoall|all_to_all|"
                           r"sendrecv|send_recv|broadcast|scatter|gather|reduce)")
_FIELDS = {"time": "time_us", "algbw": "algbw_GBps", "busbw": "busbw_GBps"}


@dataclass(frozen=True)
class NcclTestsRun:
    """One nccl-tests run: its rows (SI-free, as printed: bytes, us, GB/s) and its shape.

    ``rows`` columns: size_bytes, count, type, time_us_oop, algbw_GBps_oop, busbw_GBps_oop,
    time_us_ip, algbw_GBps_ip, busbw_GBps_ip (NaN where a half was not run) and time_us, the
    figure compared against: out-of-place where run, else in-place. ``collective`` is a
    perfmodel primitive or None (not stated); ``ranks`` / ``nodes`` / ``per_node`` are None
    where the file lists no rank lines; ``gpu`` is the device name the ranks report.
    """

    path: str
    collective: str | None
    ranks: int | None
    nodes: int | None
    per_node: int | None
    gpu: str
    rows: pd.DataFrame


def _collective(text: str, name: str) -> str | None:
    m = _STARTING.search(text)
    stem = m.group(1) if m else None
    if stem is None:
        found = _NAME_IN_FILE.search(Path(name).name.lower())
        stem = found.group(1) if found else None
    return COLLECTIVE_NAMES.get(stem) if stem else None


def _header(line: str) -> list[str] | None:
    """Column names of a '#  size  count  type ...' header line: the timed fields of the
    first (out-of-place) half suffixed _oop, of the second (in-place) half _ip."""
    toks = line.lstrip("#").split()
    if len(toks) < 6 or toks[:2] != ["size", "count"]:
        return None
    names, half = [], 0
    for t in toks:
        half += t == "time"
        if t in _FIELDS or t in ("#wrong", "error"):
            names.append(_FIELDS.get(t, "wrong") + ("_oop" if half == 1 else "_ip"))
        else:
            names.append(t)
    return names


def _number(tok: str) -> float:
    try:
        return float(tok)
    except ValueError:
        return float("nan")


def parse_nccl_tests(text: str, name: str = "<text>") -> NcclTestsRun:
    """Read nccl-tests stdout (see the module docstring); a MeasurementError if it has no
    result rows."""
    hosts: dict[int, str] = {}
    gpus: set[str] = set()
    columns: list[str] | None = None
    rows = []
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = _RANK.match(s)
            if m:
                hosts[int(m.group(1))] = m.group(2)
                gpus.add(m.group(3))
            elif columns is None:
                columns = _header(s)
            continue
        toks = s.split()
        if columns is None or len(toks) < 6 or not (toks[0].isdigit() and toks[1].isdigit()):
            continue  # NCCL INFO lines, warnings, anything else
        row = _row(toks, columns)
        if row is not None:
            rows.append(row)
    if not rows:
        raise MeasurementError(
            f"{name}: no nccl-tests result rows found",
            "pass the stdout of an nccl-tests binary (e.g. all_reduce_perf -b 8 -e 8G -f 2), "
            "with its '#  size count type ...' header")
    df = pd.DataFrame(rows)
    for c in ("time_us_oop", "algbw_GBps_oop", "busbw_GBps_oop", "time_us_ip",
              "algbw_GBps_ip", "busbw_GBps_ip"):
        if c not in df:
            df[c] = float("nan")
    df["time_us"] = df["time_us_oop"].where(df["time_us_oop"] > 0, df["time_us_ip"])
    df = df[df["time_us"] > 0].reset_index(drop=True)
    if df.empty:
        raise MeasurementError(f"{name}: every nccl-tests row has a zero or missing time",
                               "check that the run finished (look for '# Avg bus bandwidth')")
    ranks = len(hosts) or None
    per_host = pd.Series(list(hosts.values())).value_counts() if hosts else None
    nodes = int(per_host.size) if per_host is not None else None
    per_node = None
    if per_host is not None and per_host.nunique() == 1:
        per_node = int(per_host.iloc[0])
    return NcclTestsRun(name, _collective(text, name), ranks, nodes, per_node,
                        ", ".join(sorted(gpus)), df)


def _row(toks: list[str], columns: list[str]) -> dict[str, object] | None:
    """One result row by the column header; a row short of the header's length ran only the
    in-place half (nccl-tests -O 0 leaves the out-of-place columns blank)."""
    lead = [c for c in columns if not c.endswith(("_oop", "_ip"))]   # size count type ...
    ip = [c for c in columns if c.endswith("_ip")]
    if len(toks) >= len(columns):
        names = columns
    elif len(toks) >= len(lead) + len(ip):
        names = lead + ip
    else:
        return None
    out: dict[str, object] = {}
    for col, tok in zip(names, toks, strict=False):
        if col in ("type", "redop"):
            out[col] = tok
        elif col == "size":
            out["size_bytes"] = int(tok)
        elif col == "count":
            out["count"] = int(tok)
        elif col.startswith(("time_us", "algbw", "busbw")):
            out[col] = _number(tok)
    return out


def read_nccl_tests(path: str | Path) -> NcclTestsRun:
    """``parse_nccl_tests`` of a file; a missing file is a MeasurementError."""
    p = Path(path)
    if not p.is_file():
        raise MeasurementError(f"nccl-tests output not found: {p}",
                               "pass the file an nccl-tests binary's stdout was saved to")
    return parse_nccl_tests(p.read_text(encoding="utf-8", errors="replace"), str(p))
