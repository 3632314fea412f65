"""Design-space exploration of a hypothetical chip, and the hardware-aware model search.

``explore`` varies spec figures (dotted paths, perfmodel.hardware.overrides) over ranges and
prices a workload suite at every design at once (``price_overrides``: one (designs x ops)
array per workload, no loop per design). The objective is a ratio to the device as
specified, so workloads of every scale weigh the same: ``latency_ratio``, the geometric mean
over the workloads of each one's latency at the design over its latency on the unmodified
device (lower is better), or ``throughput_ratio`` likewise (higher is better). The cost is
an arithmetic expression over spec paths (``parse_cost``), by default ``power.tdp_W``:
perfmodel has no power model, so the TDP does not change when compute or bandwidth do
unless it is varied too. ``crossover``: where a workload turns memory/compute-bound.
``model_search``: which candidate graph meets a latency budget with the least loss of size.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.analytic.op_table import OpTable
from perfmodel.analytic.roofline import predict
from perfmodel.errors import PerfModelError, UnknownNameError, check_choice, did_you_mean
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.hardware.overrides import numeric_fields
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.study.grid import LARGE_GRID
from perfmodel.study.vectorized import Effect, Overrides, effect_of, price_overrides
from perfmodel.workload.build import build_workload
from perfmodel.workload.schema import Workload

__all__ = ["Exploration", "CostExpr", "OBJECTIVES", "SCALES", "design_points", "parse_cost",
           "default_cost", "explore", "exploration", "pareto_mask", "crossover",
           "crossovers", "assumptions_of", "best_design", "model_search", "best_candidate"]

# objective -> its column and whether higher is better
OBJECTIVES = {"latency": ("latency_ratio", False), "throughput": ("throughput_ratio", True)}
SCALES = ("log", "linear")
MAX_COST_CHARS = 400
_CELLS = 4_000_000  # designs x ops priced by one price_overrides call (bounds its memory)
_SCAN = 49  # designs a crossover scans its range at, then refines by 15 per round
_BOUNDS = frozenset({"memory", "compute"})
_CROSSOVER_COLUMNS = ("workload", "path", "lo", "hi", "crossover", "bound_at_lo", "bound_at_hi")
_OPERATORS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
              ast.Div: np.divide, ast.Pow: np.power}
_UNARY = {ast.USub: np.negative, ast.UAdd: np.positive}
COST_HINT = ("a cost is numbers, spec paths (e.g. power.tdp_W), + - * / ** and "
             "parentheses: '2 * compute.tensor_TFLOPS.fp8 + 0.5 * memory.bandwidth_GBps'")


def _number(v: Any) -> bool:
    """A finite real number (not a bool; an int too large for a float is not)."""
    if not isinstance(v, int | float | np.integer | np.floating) or isinstance(v, bool):
        return False
    return bool(abs(float(v)) < 1e308) if not isinstance(v, int) else abs(v) < 10**308


def _check_path(device: DeviceSpec, fields: Mapping[str, float], path: str, what: str) -> None:
    if path not in fields:
        raise UnknownNameError(f"{what}: no numeric figure {path!r} in {device.name}'s spec",
                               did_you_mean(str(path), sorted(fields)))


def _axis(path: str, spec: Any, n: int, scale: str) -> np.ndarray:
    """One axis's values: a (lo, hi) tuple spans the range with ``n`` points, a list gives
    the values, a number fixes the figure."""
    if isinstance(spec, tuple) and len(spec) == 2:
        lo, hi = spec
        if not (_number(lo) and _number(hi)) or lo <= 0 or hi <= 0:
            ends = "..".join(f"{v:g}" if _number(v) else repr(v) for v in (lo, hi))
            raise PerfModelError(f"vary {path}={ends}: the range must be two positive "
                                 "numbers", f"e.g. {path}=1000..8000")
        if lo >= hi:
            raise PerfModelError(f"vary {path}={lo:g}..{hi:g}: the low end must be less "
                                 "than the high end", f"e.g. {path}={hi:g}..{lo * 2:g}")
        fn = np.geomspace if scale == "log" else np.linspace
        return np.asarray(fn(float(lo), float(hi), n), dtype=float)
    values = [spec] if _number(spec) else spec
    if isinstance(values, str | Mapping) or not isinstance(values, Sequence | np.ndarray) \
            or len(values) == 0:
        raise PerfModelError(f"vary {path}: give a (low, high) range or a list of values, "
                             f"got {spec!r}", f"e.g. {path}=1000..8000 or {path}=1000,2000")
    for v in values:
        if not _number(v) or v <= 0:
            raise PerfModelError(f"vary {path}: {v!r} is not a positive number",
                                 f"e.g. {path}=1000,2000,4000")
    return np.unique(np.asarray(values, dtype=float))


def design_points(device: DeviceSpec, vary: Mapping[str, Any], points_per_axis: int = 8,
                  scale: str = "log", *, yes: bool = False) -> pd.DataFrame:
    """The grid of designs, one column per varied path: ``vary[path]`` a ``(lo, hi)`` range
    (``points_per_axis`` values, log- or ``linear``-spaced), a list of values, or a number.
    One error for an unknown path, a bad range, or over LARGE_GRID designs without ``yes``.

    >>> from perfmodel.hardware.load import load_device
    >>> d = design_points(load_device("h100"), {"memory.bandwidth_GBps": (1000, 8000),
    ...                                         "power.tdp_W": [350, 700]}, 4)
    >>> len(d), d["memory.bandwidth_GBps"].unique().tolist()
    (8, [1000.0, 2000.0, 4000.0, 8000.0])
    """
    check_choice("scale", scale, SCALES)
    if not isinstance(vary, Mapping) or not vary:
        raise PerfModelError("nothing to vary: give at least one spec figure and its range",
                             "e.g. vary={'memory.bandwidth_GBps': (2000, 16000)}")
    if not isinstance(points_per_axis, int) or points_per_axis < 2:  # (True < 2)
        raise PerfModelError(f"points per axis must be a whole number of at least 2, got "
                             f"{points_per_axis!r}", "e.g. --points 8")
    fields = numeric_fields(device)
    axes = {}
    for path, spec in vary.items():
        _check_path(device, fields, str(path), "vary")
        axes[str(path)] = _axis(str(path), spec, points_per_axis, scale)
    size = math.prod(len(v) for v in axes.values())
    if size > LARGE_GRID and not yes:
        raise PerfModelError(f"the design space has {size:,} points (more than "
                             f"{LARGE_GRID:,})", "use fewer --points or axes, or confirm "
                             "with --yes (yes=True in Python)")
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return pd.DataFrame({p: m.ravel() for p, m in zip(axes, mesh, strict=True)})


@dataclass(frozen=True)
class CostExpr:
    """A checked cost expression (``parse_cost``): its text, the spec paths it reads."""

    text: str
    paths: tuple[str, ...]
    tree: ast.Expression = field(repr=False, compare=False)

    def evaluate(self, values: Mapping[str, Any], n: int = 1) -> np.ndarray:
        """The cost of ``n`` designs: ``values[path]`` a number or an array of ``n``."""
        with np.errstate(all="ignore"):
            out = _eval(self.tree.body, values)
        return np.broadcast_to(np.asarray(out, dtype=float), (n,)).copy()


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.BinOp):
        return _OPERATORS[type(node.op)](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.Constant):
        return np.float64(node.value)  # type: ignore[arg-type]  # 9**9**9 overflows, never hangs
    return np.asarray(values[_dotted(node) or ""], dtype=float)


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` of a Name / Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


_WHAT = {ast.Call: "a function call", ast.Subscript: "indexing", ast.Compare: "a comparison",
         ast.BoolOp: "and / or", ast.Lambda: "a lambda"}


def _refuse(text: str, node: ast.AST, what: str) -> PerfModelError:
    seg = ast.get_source_segment(text, node) or what
    return PerfModelError(f"cost {text!r}: {what} ({seg!r}) is not allowed", COST_HINT)


def _paths_of(text: str, node: ast.AST) -> list[str]:
    """The spec paths ``node`` reads; anything but arithmetic refused, naming it."""
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _OPERATORS:
            raise _refuse(text, node, f"the operator {type(node.op).__name__}")
        return _paths_of(text, node.left) + _paths_of(text, node.right)
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise _refuse(text, node, f"the operator {type(node.op).__name__}")
        return _paths_of(text, node.operand)
    if isinstance(node, ast.Constant):
        if not _number(node.value):
            raise _refuse(text, node, "a constant that is not a finite number")
        return []
    path = _dotted(node)
    if path is not None:
        return [path]
    raise _refuse(text, node, _WHAT.get(type(node), type(node).__name__))


def parse_cost(text: str, device: DeviceSpec) -> CostExpr:
    """A cost expression checked against ``device``'s spec: numbers, spec paths, + - * / **
    and parentheses; anything else, or a path the spec lacks (did-you-mean), is one error.

    >>> from perfmodel.hardware.load import load_device
    >>> c = parse_cost("2 * power.tdp_W + memory.capacity_GB / 10", load_device("h100"))
    >>> c.paths, float(c.evaluate({"power.tdp_W": 700, "memory.capacity_GB": 80})[0])
    (('power.tdp_W', 'memory.capacity_GB'), 1408.0)
    """
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_COST_CHARS:
        raise PerfModelError(f"the cost expression is empty or over {MAX_COST_CHARS} "
                             "characters", COST_HINT)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        why = getattr(exc, "msg", None) or type(exc).__name__
        raise PerfModelError(f"cost {text!r} is not an arithmetic expression ({why})",
                             COST_HINT) from None
    paths = list(dict.fromkeys(_paths_of(text.strip(), tree.body)))
    fields = numeric_fields(device)
    for p in paths:
        _check_path(device, fields, p, f"cost {text!r}")
    return CostExpr(text.strip(), tuple(paths), tree)


def default_cost(device: DeviceSpec) -> str:
    """``power.tdp_W`` where the spec gives it; else one error asking for a cost."""
    if "power.tdp_W" in numeric_fields(device):
        return "power.tdp_W"
    raise PerfModelError(f"{device.name}'s spec gives no power.tdp_W, the default cost of a "
                         "design", "give a cost expression, e.g. --cost "
                         "'memory.capacity_GB + compute.tensor_TFLOPS.fp16 / 10'")


def pareto_mask(cost: Any, objective: Any, *, maximize: bool = False,
                eligible: Any = None) -> np.ndarray:
    """Which points are non-dominated: no other eligible point costs no more and is no
    worse, and strictly better in one of the two. Ties (equal cost and objective) are all
    kept; NaN is never on the front. O(n log n).

    >>> pareto_mask([1, 2, 3, 3], [5, 3, 4, 1]).tolist()
    [True, True, False, True]
    """
    c = np.asarray(cost, dtype=float)
    o = -np.asarray(objective, dtype=float) if maximize else np.asarray(objective, dtype=float)
    ok = np.isfinite(c) & np.isfinite(o)
    if eligible is not None:
        ok &= np.asarray(eligible, dtype=bool)
    out = np.zeros(len(c), dtype=bool)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return out
    order = idx[np.lexsort((o[idx], c[idx]))]  # by cost, then objective
    cs, os_ = c[order], o[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1]])
    group_min = np.minimum.reduceat(os_, starts)
    sizes = np.diff(np.r_[starts, len(cs)])
    best_before = np.r_[np.inf, np.minimum.accumulate(group_min)[:-1]]  # cheaper groups
    keep = (os_ == np.repeat(group_min, sizes)) & (os_ < np.repeat(best_before, sizes))
    out[order[keep]] = True
    return out


def _named(workloads: Mapping[str, Workload] | Sequence[Workload]) -> dict[str, Workload]:
    names = [str(k) for k in workloads] if isinstance(workloads, Mapping) else \
        [f"{wl.model}-{wl.job.phase}-b{wl.job.batch}" for wl in workloads]
    if len(set(names)) < len(names):  # a list running one model twice
        names = [f"{n}-{i}" for i, n in enumerate(names)]
    named = dict(zip(names, workloads.values() if isinstance(workloads, Mapping)
                     else workloads, strict=True))
    if not named:
        raise PerfModelError("no workloads to price", "give at least one workload")
    return named


def _limits(budget: Mapping[str, Any] | None, device: DeviceSpec,
            fields: Mapping[str, float]) -> dict[str, float]:
    """Each budget (``cost`` or a spec path) and its maximum, checked."""
    out = {}
    for key, v in (budget or {}).items():
        if key != "cost":
            _check_path(device, fields, str(key), "budget")
        if not _number(v) or v <= 0:
            raise PerfModelError(f"budget {key}={v!r}: the maximum must be a positive "
                                 "number", f"e.g. {key}=700")
        out[str(key)] = float(v)
    return out


def _price_all(wl: Workload, device: DeviceSpec, over: Overrides,
               effects: Mapping[str, Effect], fusion: str) -> dict[str, np.ndarray]:
    """price_overrides over every design, in chunks of at most _CELLS designs x ops."""
    ops = OpTable.of(wl.table)
    step = max(1, _CELLS // max(len(ops), 1))
    footprints: dict[tuple[bool, bool], float | None] = {}
    parts = [price_overrides(wl, device, over.take(np.arange(i, min(i + step, over.n))),
                             ops=ops, fusion=fusion, dtype_fallback=True, effects=effects,
                             footprints=footprints) for i in range(0, over.n, step)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _in_workload(name: str, exc: PerfModelError) -> PerfModelError:  # the same, located
    return type(exc)(f"workload {name!r}: {exc.message}", exc.hint, exc.key_path)


def _base(named: Mapping[str, Workload], device: DeviceSpec, fusion: str) -> pd.DataFrame:
    """Each workload on the device as specified (the objective's denominators)."""
    rows = []
    for name, wl in named.items():
        try:
            s = price_overrides(wl, device, [{}], fusion=fusion, dtype_fallback=True)
        except PerfModelError as exc:
            raise _in_workload(name, exc) from None
        rows.append({"workload": name, "model": wl.model, "phase": wl.job.phase,
                     "batch": wl.job.batch, "seq": wl.job.seq, "dtype": wl.job.dtype,
                     **{k: s[k][0] for k in ("latency_s", "throughput_per_s",
                                             "throughput_unit", "bound", "fits")}})
    return pd.DataFrame(rows)


def explore(workloads: Mapping[str, Workload] | Sequence[Workload], device: DeviceSpec,
            vary: Mapping[str, Any], *, objective: str = "latency", cost: str | None = None,
            budget: Mapping[str, float] | None = None, points_per_axis: int = 8,
            scale: str = "log", fusion: str = "none", require_fit: bool = False,
            yes: bool = False) -> pd.DataFrame:
    """One row per design of ``vary`` (``design_points``): the varied figures, the objective,
    ``cost``, each budgeted figure, ``feasible`` (within every ``budget``, {``cost`` or spec
    path: max}; with ``require_fit`` every workload fits too), ``pareto``, ``all_fit`` (a
    design where one does not fit stays, flagged), and per workload ``<name>:latency_s``,
    ``:throughput_per_s``, ``:bound``, ``:fits``, each equal to ``predict(wl,
    override_device(device, design), dtype_fallback=True)``'s."""
    column, maximize = OBJECTIVES[check_choice("objective", objective, tuple(OBJECTIVES))]
    named = _named(workloads)
    points = design_points(device, vary, points_per_axis, scale, yes=yes)
    fields = numeric_fields(device)
    expr = parse_cost(cost if cost is not None else default_cost(device), device)
    limits = _limits(budget, device, fields)
    n = len(points)
    figures = {p: points[p].to_numpy() if p in points else fields[p] for p in fields}
    over = Overrides(n, {p: points[p].to_numpy() for p in points})
    effects = {p: effect_of(device, p) for p in points}
    per: dict[str, Any] = {}
    logs, all_fit = np.zeros(n), np.ones(n, dtype=bool)
    key = "throughput_per_s" if maximize else "latency_s"
    for (name, wl), ref in zip(named.items(), _base(named, device, fusion)[key], strict=True):
        try:
            v = _price_all(wl, device, over, effects, fusion)
        except PerfModelError as exc:
            raise _in_workload(name, exc) from None
        with np.errstate(divide="ignore", invalid="ignore"):
            logs += np.log(v[key] / ref)
        all_fit &= np.array([f is not False for f in v["fits"]])
        for k in ("latency_s", "throughput_per_s", "bound", "fits"):
            per[f"{name}:{k}"] = v[k]
    out = points.copy()
    out[column] = np.exp(logs / len(named))
    out["cost"] = expr.evaluate(figures, n)
    feasible = np.ones(n, dtype=bool) if not require_fit else all_fit.copy()
    for key, limit in limits.items():
        value = out["cost"].to_numpy() if key == "cost" else np.broadcast_to(
            np.asarray(figures[key], dtype=float), (n,))
        if key not in out:
            out[key] = value
        feasible &= value <= limit
    out["feasible"] = feasible
    out["pareto"] = pareto_mask(out["cost"], out[column], maximize=maximize,
                                eligible=feasible)
    out["all_fit"] = all_fit
    return pd.concat([out, pd.DataFrame(per, index=out.index)], axis=1)


def _bounds(wl: Workload, device: DeviceSpec, path: str, xs: Any,
            shared: dict[str, Any], fusion: str) -> list[str]:
    """The summary bound of ``wl`` at each value of ``path`` (``shared``: the workload's
    OpTable, the path's effect and the footprints, found once)."""
    changes = [{path: float(x)} for x in xs]
    return [str(b) for b in price_overrides(wl, device, changes, fusion=fusion,
                                            dtype_fallback=True, **shared)["bound"]]


def _turn(labels: Sequence[str]) -> int | None:
    """The first i where labels[i], labels[i + 1] are memory and compute, either way."""
    return next((i for i in range(len(labels) - 1)
                 if {labels[i], labels[i + 1]} == _BOUNDS), None)


def _transition(wl: Workload, device: DeviceSpec, path: str, lo: float, hi: float,
                fusion: str, rtol: float) -> tuple[float | None, str, str]:
    """(where the bound turns between memory and compute in [lo, hi], the bound at lo, at
    hi): a log scan, then the bracket refined 16-fold per round."""
    shared = {"ops": OpTable.of(wl.table), "effects": {path: effect_of(device, path)},
              "footprints": {}}
    xs = np.geomspace(lo, hi, _SCAN)
    labels = _bounds(wl, device, path, xs, shared, fusion)
    i = _turn(labels)
    if i is None:
        return None, labels[0], labels[-1]
    a, b, la, lb = xs[i], xs[i + 1], labels[i], labels[i + 1]
    while b / a - 1 > rtol:
        inner = np.geomspace(a, b, 17)[1:-1]
        seq, labs = [a, *inner, b], [la, *_bounds(wl, device, path, inner, shared, fusion), lb]
        j = _turn(labs)
        if j is None:  # the turn passes through another bound at this scale: stop here
            break
        a, b, la, lb = seq[j], seq[j + 1], labs[j], labs[j + 1]
    return float(math.sqrt(a * b)), labels[0], labels[-1]


def _range(device: DeviceSpec, path: str, within: tuple[float, float] | None
           ) -> tuple[float, float]:
    base = effect_of(device, path).base  # an unknown path: one error with a did-you-mean
    lo, hi = within if within is not None else (base / 1000, base * 1000)
    if not (_number(lo) and _number(hi)) or not 0 < lo < hi:
        raise PerfModelError(f"crossover range {lo!r}..{hi!r} of {path}: two positive "
                             "numbers, low first", f"e.g. ({base / 10:g}, {base * 10:g})")
    return float(lo), float(hi)


def crossover(workload: Workload, device: DeviceSpec, path: str, *,
              within: tuple[float, float] | None = None, fusion: str = "none",
              rtol: float = 1e-9) -> float | None:
    """The value of the figure at ``path`` where the workload's summary bound first turns
    between memory- and compute-bound (through an overhead-bound stretch is no turn), to
    relative ``rtol``; None if not within ``within`` (default: the spec's value / 1000 to
    x 1000). Raising a bandwidth turns a run compute-bound, raising a peak memory-bound."""
    lo, hi = _range(device, path, within)
    return _transition(workload, device, path, lo, hi, fusion, rtol)[0]


def crossovers(workloads: Mapping[str, Workload] | Sequence[Workload], device: DeviceSpec,
               ranges: Mapping[str, tuple[float, float]], *, fusion: str = "none",
               rtol: float = 1e-6) -> pd.DataFrame:
    """``crossover`` of each workload along each path in its range (NaN: no turn), with
    the bound at each end."""
    rows = []
    for name, wl in _named(workloads).items():
        for path, rng in ranges.items():
            lo, hi = _range(device, path, rng)
            try:
                value, at_lo, at_hi = _transition(wl, device, path, lo, hi, fusion, rtol)
            except PerfModelError as exc:
                raise _in_workload(name, exc) from None
            rows.append({"workload": name, "path": path, "lo": lo, "hi": hi,
                         "crossover": np.nan if value is None else value,
                         "bound_at_lo": at_lo, "bound_at_hi": at_hi})
    return pd.DataFrame(rows, columns=list(_CROSSOVER_COLUMNS))


def assumptions_of(points: pd.DataFrame, device: DeviceSpec, vary: Sequence[str],
                   names: Sequence[str], objective: str, cost: str,
                   dtypes: Sequence[str], require_fit: bool = False) -> list[str]:
    """What an exploration held fixed and what its numbers mean, one sentence each."""
    column, maximize = OBJECTIVES[objective]
    what = "throughput" if maximize else "latency"
    fixed = len(numeric_fields(device)) - len(vary)
    notes = [f"{column}: the geometric mean over the {len(names)} workload(s) of each one's "
             f"{what} at the design over its {what} on {device.name} as specified "
             f"({'higher' if maximize else 'lower'} is better; 1 = unchanged)",
             f"held fixed: the other {fixed} figures of {device.name}'s spec; efficiencies "
             "as the spec and its kernel model give them (roofline per op, ops in sequence)"]
    read = set(parse_cost(cost, device).paths)
    if not read & set(vary):
        notes.append(f"the cost ({cost}) reads no varied figure: one value at every design, "
                     "so the front is the best design alone")
    if "power.tdp_W" in read and "power.tdp_W" not in vary:
        notes.append("power.tdp_W is the spec's at every design: perfmodel has no power "
                     "model, and the TDP does not change when compute or bandwidth do unless "
                     "you vary it too (power.tdp_W=LO..HI)")
    for path in vary:
        if points[path].nunique() > 1 and not _moves(points, path, vary, names):
            notes.append(f"{path} changes no workload's time (they run "
                         f"{', '.join(sorted(set(dtypes)))}): vary the peak of a dtype they "
                         "run, or run them in another dtype")
    notes.append("a design where a workload does not fit in memory is kept and flagged "
                 "(all_fit, <workload>:fits); its latency is the roofline's as if it fit"
                 + ("; with require_fit it is not feasible" if require_fit else ""))
    return notes


def _moves(points: pd.DataFrame, path: str, vary: Sequence[str], names: Sequence[str]
           ) -> bool:
    """Whether changing ``path`` alone (the other varied figures held) changes any
    workload's latency anywhere on the grid."""
    cols = [f"{n}:latency_s" for n in names]
    others = [p for p in vary if p != path]
    seen = points.groupby(others)[cols].nunique() if others else points[cols].nunique()
    return bool((seen.to_numpy() > 1).any())


def best_design(points: pd.DataFrame, objective: str, budget: Mapping[str, float],
                vary: Sequence[str]) -> pd.Series:
    """The feasible design with the best objective (ties: the cheaper); no feasible design
    is one error naming the budgets and the closest design."""
    column, maximize = OBJECTIVES[objective]
    ok = points[points["feasible"]]
    within = np.all([points[k].to_numpy() <= v for k, v in budget.items()], axis=0)
    if ok.empty and np.any(within):
        raise PerfModelError("no design fits every workload in memory",
                             "vary memory.capacity_GB too, or drop require_fit")
    if ok.empty:  # the closest: the smallest worst relative excess over the budgets
        excess = np.stack([points[k].to_numpy() / v - 1 for k, v in budget.items()])
        row = points.iloc[int(np.nanargmin(excess.max(axis=0)))]
        raise PerfModelError(
            "no design meets " + " and ".join(f"{k} <= {v:g}" for k, v in budget.items())
            + "; the closest is " + ", ".join(f"{p}={row[p]:.4g}" for p in vary) + " ("
            + ", ".join(f"{k} = {row[k]:.4g}" for k, v in budget.items() if row[k] > v)
            + ")", "raise the budget or widen the ranges varied")
    order = ok.sort_values([column, "cost"], ascending=[not maximize, True], kind="stable")
    return order.iloc[0]


@dataclass(frozen=True)
class Exploration:
    """Every design (``points``: ``explore``), each workload on the device as specified
    (``base``), its memory/compute ``crossovers`` along each range, the assumptions."""

    device: str
    vary: tuple[str, ...]
    objective: str
    cost: str
    budget: Mapping[str, float]
    points: pd.DataFrame = field(repr=False)
    base: pd.DataFrame = field(repr=False)
    crossovers: pd.DataFrame = field(repr=False)
    assumptions: tuple[str, ...] = ()

    @property
    def objective_column(self) -> str:
        return OBJECTIVES[self.objective][0]

    @property
    def front(self) -> pd.DataFrame:
        """The Pareto front, cheapest first."""
        return self.points[self.points["pareto"]].sort_values(
            ["cost", self.objective_column], kind="stable")

    def best(self) -> pd.Series:
        """The best feasible design (``best_design``); an error when none is feasible."""
        return best_design(self.points, self.objective, self.budget, self.vary)


def exploration(workloads: Mapping[str, Workload] | Sequence[Workload], device: DeviceSpec,
                vary: Mapping[str, Any], *, objective: str = "latency",
                cost: str | None = None, budget: Mapping[str, float] | None = None,
                points_per_axis: int = 8, scale: str = "log", fusion: str = "none",
                require_fit: bool = False, yes: bool = False) -> Exploration:
    """``explore``, with the base predictions, crossovers and assumptions."""
    named = _named(workloads)
    cost = cost if cost is not None else default_cost(device)
    points = explore(named, device, vary, objective=objective, cost=cost, budget=budget,
                     points_per_axis=points_per_axis, scale=scale, fusion=fusion,
                     require_fit=require_fit, yes=yes)
    paths = [str(p) for p in vary]
    ranges = {p: (float(points[p].min()), float(points[p].max())) for p in paths
              if points[p].min() < points[p].max()}
    notes = assumptions_of(points, device, paths, list(named), objective, cost,
                           [wl.job.dtype for wl in named.values()], require_fit)
    return Exploration(device.name, tuple(paths), objective, cost, dict(budget or {}), points,
                       _base(named, device, fusion),
                       crossovers(named, device, ranges, fusion=fusion), tuple(notes))


def model_search(candidates: Sequence[tuple[str, ModelGraph, float]], device: DeviceSpec,
                 budget_s: float, *, phase: str = "inference", batch: int = 1,
                 seq: int | None = None, dtype: str | None = None,
                 fusion: str = "none") -> pd.DataFrame:
    """Each candidate (label, graph, size: any measure where more is better) priced on
    ``device``, largest first: size_loss (1 - size / the largest's), latency_s, throughput,
    bound, fits, meets_budget (fits, within ``budget_s``), chosen (meets it with the least
    loss of size; ties: the faster)."""
    if not _number(budget_s) or budget_s <= 0:
        raise PerfModelError(f"latency budget {budget_s!r} s: must be a positive number",
                             "e.g. --budget-ms 2")
    if not candidates:
        raise PerfModelError("no candidate models to search", "name at least one model")
    rows = []
    dt = dtype or device.default_dtype
    for label, graph, size in candidates:
        try:
            wl = build_workload(graph, batch=batch, seq=seq, dtype=dt, phase=phase)
            s = predict(wl, device, dtype_fallback=True, fusion=fusion).summary
        except PerfModelError as exc:
            raise type(exc)(f"candidate {label!r}: {exc.message}", exc.hint) from None
        rows.append({"candidate": label, "size": float(size), "latency_s": s["latency_s"],
                     "throughput_per_s": s["throughput_per_s"],
                     "throughput_unit": s["throughput_unit"], "bound": s["bound"],
                     "fits": s["fits"]})
    df = pd.DataFrame(rows)
    df.insert(2, "size_loss", 1.0 - df["size"] / df["size"].max())
    df["meets_budget"] = (df["latency_s"] <= budget_s) & (df["fits"] != False)  # noqa: E712
    df = df.sort_values(["size", "latency_s"], ascending=[False, True], kind="stable")
    df["chosen"] = False
    if df["meets_budget"].any():
        df.loc[df.index[df["meets_budget"].to_numpy()][0], "chosen"] = True
    return df.reset_index(drop=True)


def best_candidate(table: pd.DataFrame, budget_s: float, device: str) -> pd.Series:
    """The chosen row of a ``model_search`` table; none meeting the budget is one error
    naming the fastest candidate."""
    if table["chosen"].any():
        return table[table["chosen"]].iloc[0]
    fastest = table.sort_values("latency_s").iloc[0]
    raise PerfModelError(
        f"no candidate meets the {budget_s * 1e3:.4g} ms budget on {device}; the closest is "
        f"{fastest['candidate']} at {fastest['latency_s'] * 1e3:.4g} ms"
        + ("" if fastest["fits"] is not False else " (and it does not fit in memory)"),
        "raise the budget, or add smaller variants or stronger compression "
        "(e.g. int8, prune:0.5:structured)")
