"""Run the CUDA microbenchmarks and parse what they print into Measurement rows.

Each program prints a CSV header and one row per case (perfmodel/bench/cuda/common.cuh);
lines starting with '#' are remarks. The runner adds what the program cannot know about
its context: the device name, driver version and clocks (nvidia-smi, read before the run),
the CUDA version it was built with, the backend and a timestamp.
"""

from __future__ import annotations

import datetime as _dt
import io
import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from perfmodel.bench.build import DEFAULT_ARCHS, SUITES, build, find_nvcc
from perfmodel.bench.measurement import add_derived, measurement_frame
from perfmodel.errors import MeasurementError, PerfModelError, UnknownNameError, did_you_mean

__all__ = ["gpu_info", "parse_output", "run_cuda", "detect_archs"]

log = logging.getLogger(__name__)
SMI_FIELDS = ("name", "driver_version", "clocks.sm", "clocks.mem", "compute_cap")


def gpu_info() -> dict[str, str]:
    """First GPU's name, driver, SM/memory clocks (MHz) and compute capability via
    nvidia-smi; empty when nvidia-smi is missing or sees no GPU."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return {}
    res = subprocess.run([smi, f"--query-gpu={','.join(SMI_FIELDS)}",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True,
                         check=False)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        return {}
    values = [v.strip() for v in lines[0].split(",")]
    return dict(zip(SMI_FIELDS, values, strict=False))


def detect_archs(info: Mapping[str, str]) -> tuple[str, ...]:
    """sm_XY of the visible GPU (compute_cap X.Y), else the defaults (sm_80, sm_90)."""
    cap = info.get("compute_cap", "")
    m = re.fullmatch(r"(\d+)\.(\d+)", cap)
    return (f"sm_{m.group(1)}{m.group(2)}",) if m else DEFAULT_ARCHS


def _cuda_version() -> str:
    out = subprocess.run([str(find_nvcc()), "--version"], capture_output=True, text=True,
                         check=False).stdout
    m = re.search(r"release ([\d.]+)", out)
    return m.group(1) if m else ""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_output(text: str, context: Mapping[str, object] | None = None) -> pd.DataFrame:
    """A program's stdout -> Measurement rows (backend cuda), with ``context`` columns."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("benchmark,")), None)
    if start is None:
        return measurement_frame([])
    df = pd.read_csv(io.StringIO("\n".join(lines[start:])), dtype={"method": str})
    for col, value in (context or {}).items():
        df[col] = value
    df["backend"] = "cuda"
    return add_derived(measurement_frame(df))


def _run(binary: Path, args: list[str], timeout: float | None) -> str:
    try:
        res = subprocess.run([str(binary), *args], capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PerfModelError(f"{binary.name} ran past {timeout:g} s",
                             "run fewer suites, or pass --quick") from None
    if res.returncode == 3:
        fails = [ln for ln in res.stderr.splitlines() if ln.startswith("CHECK FAILED")]
        raise MeasurementError(f"{binary.name}: result check failed: {'; '.join(fails[:3])}",
                               "a wrong result makes its timing meaningless: report it")
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise PerfModelError(f"{binary.name} exited with code {res.returncode}: {tail[0]}",
                             "is an NVIDIA GPU visible? (nvidia-smi)")
    return res.stdout


def run_cuda(suites: Iterable[str], *, build_dir: Path | None = None,
             archs: Sequence[str] | None = None, quick: bool = False,
             repeats: int | None = None, timeout: float | None = 1800) -> pd.DataFrame:
    """Build (if needed) and run the CUDA suites on the visible GPU; Measurement rows."""
    suites = list(suites)
    for s in suites:
        if s not in SUITES:
            raise UnknownNameError(f"unknown CUDA suite {s!r}", did_you_mean(s, SUITES))
    info = gpu_info()
    if not info:
        raise PerfModelError("no NVIDIA GPU visible (nvidia-smi missing or found none)",
                             "run on a machine with a GPU, or use --backend cpu")
    programs = [p for s in suites for p in SUITES[s]]
    binaries = build(archs or detect_archs(info), build_dir, programs)
    args = (["--quick"] if quick else []) + (["--repeats", str(repeats)] if repeats else [])
    context = {"device": info.get("name", ""), "driver_version": info.get("driver_version", ""),
               "sm_clock_MHz": _number(info.get("clocks.sm", "")),
               "mem_clock_MHz": _number(info.get("clocks.mem", "")),
               "cuda_version": _cuda_version(), "framework": f"CUDA {_cuda_version()}",
               "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    frames = []
    for name in programs:
        log.info("running %s", name)
        frames.append(parse_output(_run(binaries[name], args, timeout), context))
    return measurement_frame(pd.concat(frames, ignore_index=True))
