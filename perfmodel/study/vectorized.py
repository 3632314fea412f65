"""One workload on one device under many spec overrides, priced at once (numpy broadcasting).

``roofline.predict`` prices a workload on a device: per op,

    t = max(flops / (peak x eff_c), bytes / (bandwidth x eff_m)) + launch overhead.

Most figures a what-if study varies enter that formula linearly and nowhere else: the main
memory's bandwidth divides every memory time, a peak divides the compute time of the ops
that run at it, the launch overhead is added per kernel, the TDP multiplies the energy and
the capacity only decides the fit. ``effect_of`` finds out, per device and per path, whether
a figure is one of those: it builds the spec with the figure doubled (``override_device``,
which re-checks the spec as a whole) and compares every derived figure with the original
spec's. When exactly the linear quantities changed, and by exactly the factor 2, the figure
is priced by rescaling the per-op times of one ``price`` call: an (overrides x ops) array per
workload and device, no Python loop per point. Anything else (units, clocks, an efficiency
fraction, a cache level under the hierarchical model) is priced exactly the slow way: one
``override_device`` and one ``price`` per distinct value. Either way a point equals
``predict(workload, override_device(device, changes))`` (tests/study/test_vectorized.py
checks a random sample of points).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perfmodel.analytic.memory import footprint
from perfmodel.analytic.op_table import OpTable
from perfmodel.analytic.roofline import group_time, items_per_pass, price
from perfmodel.errors import PerfModelError, SpecError
from perfmodel.hardware.overrides import numeric_fields, override_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.workload.plan import ParallelPlan
from perfmodel.workload.schema import Workload

__all__ = ["Effect", "Overrides", "effect_of", "price_overrides", "POINT_COLUMNS", "LINEAR_TARGETS"]

# what a linear figure scales: main-memory bandwidth, main-memory capacity, launch overhead,
# TDP, or one or more (unit, dtype) peaks; "none": nothing the roofline reads; "spec": other
LINEAR_TARGETS = ("bandwidth", "capacity", "launch", "tdp", "peak", "none")

# the per-point figures, equal to the same keys of predict(...).summary
POINT_COLUMNS = ("latency_s", "throughput_per_s", "throughput_unit", "flops", "bytes_moved",
                 "achieved_flops_per_s", "peak_flops_per_s", "utilization", "bound",
                 "compute_bound_s", "memory_bound_s", "overhead_bound_s", "overhead_s",
                 "energy_j", "memory_bytes", "capacity_bytes", "fits")

_BOUNDS = ("compute", "memory", "overhead")


@dataclass(frozen=True)
class Effect:
    """How the figure at ``path`` of a device's spec enters the roofline: ``target`` (one of
    LINEAR_TARGETS, or ``spec``: re-priced from the changed spec), the figure's value in
    the spec (``base``), and the peaks it scales (``keys``, for ``peak``)."""

    path: str
    base: float
    target: str
    keys: tuple[tuple[str, str], ...] = ()


def _same_but(device: DeviceSpec, probe: DeviceSpec) -> DeviceSpec:
    """``device`` with the linear quantities taken from ``probe`` (and its names and year,
    which the roofline does not read), to test whether they are all the override changed."""
    main = device.main_memory
    pm = probe.main_memory
    memory = tuple(dataclasses.replace(m, bandwidth_Bps=pm.bandwidth_Bps,
                                       capacity_bytes=pm.capacity_bytes)
                   if m is main else m for m in device.memory)
    eff = dataclasses.replace(device.efficiency,
                              launch_overhead_s=probe.efficiency.launch_overhead_s)
    return dataclasses.replace(device, name=probe.name, display_name=probe.display_name,
                               path=probe.path, peak_flops=probe.peak_flops, memory=memory,
                               efficiency=eff, tdp_w=probe.tdp_w, year=probe.year)


def _doubled(a: float | None, b: float | None) -> bool | None:
    """None: unchanged; True: b = 2 a; False: changed otherwise."""
    if a == b:
        return None
    return a is not None and b is not None and a > 0 and math.isclose(b, 2 * a, rel_tol=1e-12)


def effect_of(device: DeviceSpec, path: str, *, hierarchical: bool = False) -> Effect:
    """How the figure at ``path`` enters the roofline on ``device`` (see the module
    docstring); an unknown path raises override_device's error."""
    fields = numeric_fields(device)
    if path not in fields:
        override_device(device, {path: 1.0})  # raises the unknown-path error
    base = fields[path]
    try:
        probe = override_device(device, {path: 2 * base})
    except SpecError:  # a fraction that cannot double: priced from the changed spec
        return Effect(path, base, "spec")
    if _same_but(device, probe) != probe or dict(device.extras) != dict(probe.extras):
        return Effect(path, base, "spec")
    changed = {
        "bandwidth": _doubled(device.memory_bandwidth, probe.memory_bandwidth),
        "capacity": _doubled(device.memory_capacity, probe.memory_capacity),
        "launch": _doubled(device.efficiency.launch_overhead_s,
                           probe.efficiency.launch_overhead_s),
        "tdp": _doubled(device.tdp_w, probe.tdp_w)}
    keys = sorted(set(device.peak_flops) | set(probe.peak_flops))
    peaks = {k: _doubled(device.peak_flops.get(k), probe.peak_flops.get(k)) for k in keys}
    moved = {t: v for t, v in changed.items() if v is not None}
    scaled = tuple(k for k, v in peaks.items() if v is not None)
    if any(v is False for v in (*moved.values(), *peaks.values())) \
            or len(moved) + bool(scaled) > 1 or (hierarchical and "bandwidth" in moved):
        return Effect(path, base, "spec")
    if scaled:
        return Effect(path, base, "peak", scaled)
    return Effect(path, base, next(iter(moved), "none"))


@dataclass(frozen=True)
class _Priced:
    """One ``price`` call, split for rescaling: per-op compute time without the codebook
    lookups (``compute``), lookups, memory time, which ops do work and launch, the peak key
    each op runs at (index into ``keys``; -1: none)."""

    compute: np.ndarray
    lookup: np.ndarray
    memory: np.ndarray
    launches: np.ndarray
    fused: np.ndarray
    key: np.ndarray
    keys: tuple[tuple[str, str], ...]
    works: np.ndarray


def _split(ops: OpTable, cols: Mapping[str, np.ndarray]) -> _Priced:
    """One price() call's columns as _Priced: the peak key of each op found per (unit,
    dtype) group of the table (every op of a group runs at the same resolved peak)."""
    key = np.full(len(ops), -1, dtype=int)
    keys: list[tuple[str, str]] = []
    unit_used, dtype_used = cols["unit_used"], cols["dtype_used"]
    for idx in ops.groups.values():
        pair = (str(unit_used[idx[0]]), str(dtype_used[idx[0]]))
        if pair[0] == "none":
            continue
        if pair not in keys:
            keys.append(pair)
        key[idx] = keys.index(pair)
    works, fused = cols["works"], cols["fused"]
    return _Priced(cols["compute_s"] - cols["lookup_s"], cols["lookup_s"], cols["memory_s"],
                   works & ~fused, fused, key, tuple(keys), works)


@dataclass(frozen=True)
class Overrides:
    """Override settings as columns: ``values[path]`` holds one positive value per setting
    (``n`` settings; no paths: ``n`` settings of the spec as it is)."""

    n: int
    values: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, changes: Sequence[Mapping[str, float]]) -> Overrides:
        """From one mapping of path -> value per setting, each giving the same paths."""
        if not changes:
            raise PerfModelError("no settings to price", "pass at least one (possibly "
                                 "empty) mapping of overrides")
        paths = sorted(set(itertools.chain.from_iterable(changes)))
        for c in changes:
            if set(c) != set(paths):
                raise PerfModelError("every setting must give the same override paths",
                                     f"give each of {paths} in every setting")
            for path, v in c.items():
                if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                    raise SpecError(f"override {path}={v!r}: must be a positive number",
                                    "give a positive value")
        return cls(len(changes), {p: np.array([c[p] for c in changes], dtype=float)
                                  for p in paths})

    def take(self, idx: np.ndarray) -> Overrides:
        return Overrides(len(idx), {p: v[idx] for p, v in self.values.items()})


@dataclass(frozen=True)
class _Settings:
    """The quantities the fast paths scale, each of shape (1,) (not overridden) or (n,):
    main-memory bandwidth (B/s) and capacity (B), launch overhead (s), TDP (W; NaN: none
    published), the factor on each op's compute time ((1 or n) x ops), and each scaled
    peak's factor by (unit, dtype)."""

    bandwidth: np.ndarray
    capacity: np.ndarray
    launch: np.ndarray
    tdp: np.ndarray
    compute_factor: np.ndarray | None
    peak_scale: Mapping[tuple[str, str], np.ndarray]


def _settings(over: Overrides, effects: Mapping[str, Effect], device: DeviceSpec,
              p: _Priced) -> _Settings:
    """The fast paths' values of every setting, as the quantities they scale."""
    base = {"bandwidth": device.memory_bandwidth, "capacity": device.memory_capacity,
            "launch": device.efficiency.launch_overhead_s,
            "tdp": np.nan if device.tdp_w is None else float(device.tdp_w)}
    figures = {k: np.array([v], dtype=float) for k, v in base.items()}
    key_scale = None
    peak_scale: dict[tuple[str, str], np.ndarray] = {}
    for path, eff in effects.items():
        if eff.target in ("spec", "none"):
            continue
        ratio = over.values[path] / eff.base
        if eff.target == "peak":
            for k in eff.keys:
                peak_scale[k] = ratio
                if k in p.keys:
                    if key_scale is None:  # last column: ops with no peak (key -1)
                        key_scale = np.ones((over.n, len(p.keys) + 1))
                    key_scale[:, p.keys.index(k)] = ratio
        else:
            figures[eff.target] = ratio * base[eff.target]
    return _Settings(figures["bandwidth"], figures["capacity"], figures["launch"],
                     figures["tdp"], None if key_scale is None else 1.0 / key_scale[:, p.key],
                     peak_scale)


def _throughput(wl: Workload, latency: np.ndarray) -> tuple[np.ndarray, str]:
    """Items per second as predict reports them (roofline.items_per_pass), per setting."""
    items, unit = items_per_pass(wl)
    with np.errstate(divide="ignore"):
        return np.where(latency > 0, items / latency, 0.0), unit


def _rescaled(wl: Workload, ops: OpTable, device: DeviceSpec, over: Overrides,
              effects: Mapping[str, Effect], fusion: str, fallback: bool,
              memory_bytes: float | None) -> dict[str, Any]:
    """The POINT_COLUMNS of ``over`` (fast paths only) on ``device``: (settings x ops)
    arrays where a figure varies, one row where none does, broadcast at the end."""
    cols, _ = price(ops, device, dtype_fallback=fallback, fusion=fusion)
    p = _split(ops, cols)
    s = _settings(over, effects, device, p)
    n = over.n
    compute = (p.compute[None, :] if s.compute_factor is None
               else p.compute[None, :] * s.compute_factor) + p.lookup[None, :]
    memory = p.memory[None, :] * (device.memory_bandwidth / s.bandwidth)[:, None]
    overhead = p.launches[None, :] * s.launch[:, None]
    roof = np.maximum(compute, memory)
    time = group_time(roof, compute, memory, p.fused) + overhead
    latency = time.sum(axis=1)
    # bound per op: overhead, else memory, else compute (ops doing no work have no time)
    over_b = overhead > roof
    mem_b = (memory > compute) & ~over_b
    by_over = (time * over_b).sum(axis=1)
    by_mem = (time * mem_b).sum(axis=1)
    by_comp = (time * ~(over_b | mem_b | ~p.works[None, :])).sum(axis=1)
    by = np.broadcast_to(np.stack([by_comp, by_mem, by_over], axis=1), (n, 3))
    bound = (np.asarray(_BOUNDS, dtype=object)[by.argmax(axis=1)] if p.works.any()
             else np.full(n, "none", dtype=object))
    latency = np.broadcast_to(latency, (n,))
    flops = float(ops["flops"].sum())
    u, d, peak0, _ = device.resolve_unit("tensor", wl.job.dtype)
    peak = peak0 * s.peak_scale.get((u, d), np.ones(n))
    with np.errstate(divide="ignore", invalid="ignore"):
        achieved = np.where(latency > 0, flops / latency, 0.0)
    throughput, unit = _throughput(wl, latency)
    capacity = np.broadcast_to(s.capacity, (n,))
    return {"latency_s": latency, "throughput_per_s": throughput,
            "throughput_unit": np.full(n, unit, dtype=object),
            "flops": np.full(n, flops),
            "bytes_moved": np.full(n, float(cols["bytes_moved"].sum())),
            "achieved_flops_per_s": achieved, "peak_flops_per_s": peak,
            "utilization": np.where(peak > 0, achieved / peak, 0.0), "bound": bound,
            "compute_bound_s": by[:, 0], "memory_bound_s": by[:, 1],
            "overhead_bound_s": by[:, 2],
            "overhead_s": np.broadcast_to(overhead.sum(axis=1), (n,)),
            "energy_j": np.broadcast_to(s.tdp, (n,)) * latency,
            "memory_bytes": np.full(n, np.nan if memory_bytes is None else memory_bytes),
            "capacity_bytes": capacity,
            "fits": (np.full(n, None, dtype=object) if memory_bytes is None
                     else np.asarray(memory_bytes <= capacity, dtype=object))}


def price_overrides(wl: Workload, device: DeviceSpec,
                    changes: Sequence[Mapping[str, float]] | Overrides,
                    *, ops: OpTable | None = None, fusion: str = "none",
                    dtype_fallback: bool = False,
                    effects: Mapping[str, Effect] | None = None,
                    footprints: dict[tuple[bool, bool], float | None] | None = None
                    ) -> dict[str, Any]:
    """POINT_COLUMNS (arrays, one entry per setting of ``changes``) of ``wl`` on ``device``
    with each setting's spec paths -> values applied, as
    ``predict(wl, override_device(device, c), fusion=, dtype_fallback=)`` reports them.

    ``changes``: one mapping per setting, or their Overrides columns. ``ops`` (the
    workload's OpTable), ``effects`` (path -> Effect on this device) and ``footprints``
    (the workload's memory by the device's sparse-format support, filled as found) may be
    passed in to share them between calls. Raises what predict raises (a dtype the device
    lacks) and override_device's error for an unknown path or a value that is not positive.
    """
    device.check_dtype(wl.job.dtype)
    over = changes if isinstance(changes, Overrides) else Overrides.of(changes)
    if effects is None:
        effects = {path: effect_of(device, path) for path in over.values}
    ops = OpTable.of(wl.table) if ops is None else ops
    slow = [path for path in over.values if effects[path].target == "spec"]
    if slow:
        table = np.stack([over.values[p] for p in slow], axis=1)
        distinct, inverse = np.unique(table, axis=0, return_inverse=True)
        groups = [(tuple(row), np.flatnonzero(inverse.ravel() == i))
                  for i, row in enumerate(distinct)]
    else:
        groups = [((), np.arange(over.n))]
    out: dict[str, Any] = {}
    memo = {} if footprints is None else footprints
    for values, idx in groups:
        variant = override_device(device, dict(zip(slow, values, strict=True)))
        flags = (bool(variant.sparse_2_4), bool(variant.extras.get("sparse_unstructured")))
        if flags not in memo:
            memo[flags] = None if wl.graph is None else float(
                footprint(wl.graph, ParallelPlan(), wl.job, device=variant)["total"])
        part = _rescaled(wl, ops, variant, over.take(idx), effects, fusion, dtype_fallback,
                         memo[flags])
        if len(groups) == 1:
            return part
        for k, v in part.items():
            if k not in out:
                out[k] = np.empty(over.n, dtype=v.dtype)
            out[k][idx] = v
    return out
