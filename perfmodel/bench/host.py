"""CPU host backend: the same Measurement rows as the CUDA suite, measured through numpy.

Suites: ``gemm`` (numpy.matmul over square, tall-skinny and matrix-vector-like shapes, fp32
and fp64; BLAS does the work), ``membw`` (copy, add and a two-pass triad over array sizes
from cache-resident to DRAM, the last-level cache flushed before each repetition) and
``launch`` (the cost of one numpy call on a one-element array: Python-level overhead, the
host's analogue of a kernel launch). Practice as for the GPU: warm-up calls first, then the
median of many timed repetitions (time.perf_counter), random non-zero inputs, every result
checked against a float64 reference.

``host_spec`` writes a hw_spec mapping for this machine: what the OS tells (cores, memory,
caches, CPU model) and what the measurements show (peak = best GEMM rate per dtype, main
memory bandwidth = best STREAM rate on arrays larger than the last-level cache), every
figure's source saying it was detected or measured by perfmodel on that date.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.bench.measurement import add_derived, measurement_frame
from perfmodel.errors import MeasurementError, UnknownNameError, did_you_mean
from perfmodel.progress import track

__all__ = ["HostInfo", "detect_host", "run_host", "host_spec", "HOST_SUITES", "time_call"]

DTYPES = {"fp32": np.float32, "fp64": np.float64}
CHECK_TOL = {"fp32": 1e-4, "fp64": 1e-10}  # ||C - ref|| / ||ref||, sums of up to 4096 terms


@dataclass(frozen=True)
class HostInfo:
    """What the OS reports about this machine."""

    cpu_model: str
    vendor: str
    cores: int
    memory_bytes: float
    caches: tuple[tuple[int, str, float], ...]  # (level, type, bytes), per instance
    max_clock_MHz: float | None

    @property
    def last_level_cache_bytes(self) -> float:
        data = [c for c in self.caches if c[1] in ("Unified", "Data")]
        return max((c[2] for c in data if c[0] == max(x[0] for x in data)), default=32e6)


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    path = Path("/proc/cpuinfo")
    if path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    return info


def _size(text: str) -> float:
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return float(text.rstrip("KMG")) * scale


def _caches() -> tuple[tuple[int, str, float], ...]:
    out = []
    for d in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            out.append((int((d / "level").read_text()), (d / "type").read_text().strip(),
                        _size((d / "size").read_text())))
        except (OSError, ValueError):
            continue
    return tuple(out)


def detect_host() -> HostInfo:
    """CPU model, vendor, cores (os.cpu_count), memory (sysconf), caches (sysfs), max clock."""
    info = _cpuinfo()
    try:
        mem = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        mem = 0.0
    freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    mhz = float(freq.read_text()) / 1e3 if freq.is_file() else None
    return HostInfo(cpu_model=info.get("model name") or platform.processor() or "unknown CPU",
                    vendor=info.get("vendor_id", ""), cores=os.cpu_count() or 1,
                    memory_bytes=mem, caches=_caches(), max_clock_MHz=mhz)


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 2,
              before: Callable[[], Any] | None = None) -> tuple[float, float, float]:
    """(median, p10, p90) seconds of ``fn`` over ``repeats`` timed calls after ``warmup``;
    ``before`` runs untimed ahead of each call (e.g. a cache flush)."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return (float(np.median(times)), float(np.percentile(times, 10)),
            float(np.percentile(times, 90)))


def _rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(out.astype(np.float64) - ref) / np.linalg.norm(ref))


def gemm_shapes(quick: bool) -> list[tuple[int, int, int]]:
    """Square, tall-skinny and LLM-decode-like (m small) shapes."""
    square = [64, 128, 256, 512, 1024] + ([] if quick else [2048])
    k = 1024 if quick else 2048
    skinny = [(m, k, k) for m in (1, 8, 32, 128)] + [(4 * k, 64, k)]
    return [(s, s, s) for s in square] + skinny


def _gemm_rows(quick: bool, repeats: int, rng: np.random.Generator) -> list[dict]:
    rows = []
    for m, n, k in gemm_shapes(quick):
        for name, dt in DTYPES.items():
            a = rng.standard_normal((m, k)).astype(dt)  # never zero (probability 0)
            b = rng.standard_normal((k, n)).astype(dt)
            c = np.full((m, n), np.nan, dtype=dt)  # poisoned: the check sees unwritten rows
            med, p10, p90 = time_call(functools.partial(np.matmul, a, b, out=c), repeats)
            rows_checked = min(m, 64)
            err = _rel_err(c[:rows_checked], a[:rows_checked].astype(np.float64)
                           @ b.astype(np.float64))
            if not err <= CHECK_TOL[name]:
                raise RuntimeError(f"numpy GEMM {m}x{n}x{k} {name}: rel. error {err:g}")
            itemsize = np.dtype(dt).itemsize
            rows.append({"benchmark": "gemm_numpy", "family": "gemm", "dtype": name,
                         "m": m, "n": n, "k": k, "flops": 2.0 * m * n * k,
                         "bytes": float((m * k + k * n + m * n) * itemsize),
                         "time_s": med, "time_p10_s": p10, "time_p90_s": p90,
                         "repeats": repeats, "check_rel_err": err})
    return rows


def stream_sizes(quick: bool) -> list[int]:
    """Array sizes in bytes (per array), x4 apart: 16 KB to 64 MB (quick) or 256 MB."""
    top = 64 * 2**20 if quick else 256 * 2**20
    return [int(s) for s in 2.0 ** np.arange(14, np.log2(top) + 1, 2)]


def _stream_rows(quick: bool, repeats: int, rng: np.random.Generator,
                 llc: float) -> list[dict]:
    flush = np.ones(int(2 * llc / 8) + 1)

    def evict() -> None:  # read + write twice the last-level cache: earlier data is gone
        np.add(flush, 1.0, out=flush)

    rows = []
    for size in stream_sizes(quick):
        n = size // 8
        b, c = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, n)
        a = np.full(n, np.nan)
        def triad(a: np.ndarray = a, b: np.ndarray = b, c: np.ndarray = c) -> None:
            # a = b + 3 c in two numpy passes: write a, then read a and b, write a: 5 arrays
            np.add(np.multiply(c, 3.0, out=a), b, out=a)

        kernels: dict[str, tuple[Callable[[], Any], int, np.ndarray]] = {
            "copy": (functools.partial(np.copyto, a, b), 2 * size, b),
            "add": (functools.partial(np.add, b, c, out=a), 3 * size, b + c),
            "triad": (triad, 5 * size, b + 3.0 * c),
        }
        for name, (fn, nbytes, expect) in kernels.items():
            a.fill(np.nan)
            med, p10, p90 = time_call(fn, repeats, before=evict)
            err = _rel_err(a, expect)
            if not err <= 1e-12:
                raise RuntimeError(f"numpy {name} of {size} B: rel. error {err:g}")
            rows.append({"benchmark": f"stream_{name}", "family": "membw", "dtype": "fp64",
                         "bytes": float(nbytes), "working_set_bytes": float(nbytes),
                         "flops": float({"copy": 0, "add": n, "triad": 2 * n}[name]) or None,
                         "time_s": med, "time_p10_s": p10, "time_p90_s": p90,
                         "repeats": repeats, "check_rel_err": err})
    return rows


def _launch_rows(repeats: int) -> list[dict]:
    x, y, z = np.full(1, 1.5), np.full(1, 2.0), np.empty(1)
    calls = 1000
    ops = {"add": (np.add, 3.5), "multiply": (np.multiply, 3.0), "maximum": (np.maximum, 2.0)}
    rows = []
    for name, (ufunc, expect) in ops.items():
        def many(ufunc: np.ufunc = ufunc) -> None:
            for _ in range(calls):
                ufunc(x, y, out=z)

        z.fill(np.nan)
        med, p10, p90 = time_call(many, repeats)
        if z[0] != expect:
            raise RuntimeError(f"numpy one-element {name} gave {z[0]}, not {expect}")
        rows.append({"benchmark": f"python_call_{name}", "family": "launch", "dtype": "fp64",
                     "bytes": 24.0, "time_s": med / calls, "time_p10_s": p10 / calls,
                     "time_p90_s": p90 / calls, "repeats": repeats, "check_rel_err": 0.0,
                     "method": f"median over {repeats} repetitions of {calls} back-to-back "
                               f"np.{name} calls on one-element arrays, per call"})
    return rows


HOST_SUITES: dict[str, Callable[..., list[dict]]] = {
    "gemm": lambda quick, repeats, rng, info: _gemm_rows(quick, repeats, rng),
    "membw": lambda quick, repeats, rng, info: _stream_rows(
        quick, repeats, rng, info.last_level_cache_bytes),
    "launch": lambda quick, repeats, rng, info: _launch_rows(repeats),
}


def run_host(suites: Iterable[str] = ("gemm", "membw", "launch"), *, quick: bool = False,
             repeats: int | None = None, seed: int = 0,
             info: HostInfo | None = None) -> pd.DataFrame:
    """Run the CPU suites; returns checked Measurement rows (backend cpu)."""
    info = info or detect_host()
    repeats = repeats or (11 if quick else 21)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    suites = list(suites)
    for suite in suites:
        if suite not in HOST_SUITES:
            raise UnknownNameError(f"unknown CPU suite {suite!r}",
                                   did_you_mean(suite, HOST_SUITES))
    for suite in track(suites, "CPU suites", len(suites)):
        rows += HOST_SUITES[suite](quick, repeats, rng, info)
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    default_method = f"time.perf_counter per call; median of {repeats} after 2 warm-up calls"
    for r in rows:
        r.update(backend="cpu", device=info.cpu_model, num_devices=1, timestamp=stamp,
                 framework=f"numpy {np.__version__}", sm_clock_MHz=info.max_clock_MHz)
        r.setdefault("method", default_method + (
            "; last-level cache flushed before each" if r["family"] == "membw" else ""))
    return add_derived(measurement_frame(rows))


def _best(df: pd.DataFrame, family: str, column: str, mask: pd.Series | None = None) -> float:
    sel = df["family"] == family
    if mask is not None:
        sel &= mask
    vals = df.loc[sel, column].dropna()
    return float(vals.max()) if len(vals) else 0.0


def host_spec(measurements: pd.DataFrame, info: HostInfo | None = None,
              date: str | None = None) -> dict[str, Any]:
    """A hw_spec mapping for this host from what it detects and what ``measurements`` (CPU
    backend rows) show; the launch overhead is the launch rows' median (none if not
    measured). Compute and memory efficiency are left to the defaults until
    ``perfmodel calibrate``."""
    missing = [f for f in ("gemm", "membw") if not (measurements["family"] == f).any()]
    if missing:
        raise MeasurementError(f"a host spec needs {' and '.join(missing)} measurements",
                               "run the gemm and membw suites (the default) with --spec-out")
    info = info or detect_host()
    date = date or _dt.date.today().isoformat()
    llc = info.last_level_cache_bytes
    big = measurements["working_set_bytes"] > llc
    bw = _best(measurements, "membw", "achieved_GBps", big) or \
        _best(measurements, "membw", "achieved_GBps")
    measured = (f"measured by `perfmodel bench --backend cpu` on {date} (numpy "
                f"{np.__version__}): ")
    launch = measurements.loc[measurements["family"] == "launch", "time_s"].astype(float)
    # the per-call cost: the launch rows' median if measured; else none is assumed (the
    # A100's 3.3 us kernel launch of _defaults.yaml says nothing about a numpy call)
    overhead = {"value": round(float(launch.median()) * 1e6, 4) if len(launch) else 0.0,
                "source": "MEASURED-LAUNCH" if len(launch) else
                "not measured (run the launch suite): none assumed"}
    peaks = {dt: {"value": round(_best(measurements, "gemm", "achieved_TFLOPS",
                                       measurements["dtype"] == dt), 6), "source": "MEASURED-GEMM"}
             for dt in DTYPES if _best(measurements, "gemm", "achieved_TFLOPS",
                                       measurements["dtype"] == dt) > 0}
    return {
        "schema": 1, "name": "host-cpu",
        "display_name": f"{info.cpu_model} ({info.cores} cores, this host)",
        "vendor": info.vendor or "unknown", "category": "cpu",
        "sources": {
            "DETECTED": f"detected by perfmodel on {date}: os.cpu_count(), /proc/cpuinfo, "
                        "sysconf(SC_PHYS_PAGES), /sys/devices/system/cpu/cpu0/cache",
            "MEASURED-GEMM": measured + "best numpy.matmul rate of the gemm suite for the "
                                        "dtype (BLAS on all cores)",
            "MEASURED-STREAM": measured + f"best STREAM rate on arrays over the {llc / 2**20:g} "
                                          "MiB last-level cache (cache flushed per repetition)",
            "MEASURED-LAUNCH": measured + "median time of one numpy call on a one-element "
                                          "array (the launch suite)"},
        "compute": {"vector_TFLOPS": peaks,
                    "units": {"value": info.cores, "source": "DETECTED"}},
        "memory": [
            {"name": "dram", "role": "main",
             "capacity_GB": {"value": round(info.memory_bytes / 1e9, 3) or 1.0,
                             "source": "DETECTED"},
             "bandwidth_GBps": {"value": round(bw, 3), "source": "MEASURED-STREAM"}},
            {"name": "llc", "role": "cache",
             "capacity_MB": {"value": round(llc / 2**20, 6), "source": "DETECTED"}}],
        "efficiency": {"launch_overhead_us": overhead},
        "notes": "Written by perfmodel from this host's detection and measurements; peaks are "
                 "the best measured rates, not a vendor figure, and the per-call overhead is "
                 "the measured one. Compute and memory efficiency come from "
                 "hw_specs/_defaults.yaml until `perfmodel calibrate` fits them.",
    }
