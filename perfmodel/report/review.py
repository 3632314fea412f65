"""The design-review report: one self-contained HTML file comparing a candidate chip with
baselines over a workload suite (``perfmodel review``; ``perfmodel.review_api.review``
builds the data, a ``ReviewData``).

The page is a list of sections (``SECTIONS``), each a function taking the frozen
``ReviewData`` and returning an HTML fragment; ``render_review(data, sections=...)`` takes
another list. Figures are matplotlib SVG written inline (their ids prefixed per figure, so
one page holds several), styles inline, and one inline script that counts the figures that
rendered (``data-figures`` on ``<body>``, for the browser test): nothing is fetched. Every
string a user gave (device, model and workload names, paths, citations) goes through
``html.escape`` (the charts, perfmodel.report.review_charts, take care of theirs).

A run that does not fit in the device's memory has no latency, throughput or energy in the
tables the report reads (NaN) and is shown as "does not fit", never as a number.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from string import Template
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from perfmodel.errors import PerfModelError
from perfmodel.report import review_charts as charts
from perfmodel.report.explore import pareto_figure
from perfmodel.report.figure import pyplot
from perfmodel.units import format_si

__all__ = ["ReviewData", "Section", "SECTIONS", "render_review", "latency_bands", "OK",
           "DOES_NOT_FIT", "UNSUPPORTED", "BAND_LEVEL"]

OK, DOES_NOT_FIT, UNSUPPORTED = "ok", "does not fit", "unsupported"  # a run's status
BAND_LEVEL = 0.8   # the uncertainty band's coverage
SENSITIVITY_TOP = 10


@dataclass(frozen=True, eq=False)
class ReviewData:
    """Everything the report shows, as tables (``perfmodel.review_api.review`` builds it).

    devices: one row per device, the candidate first (device, display_name, role, spec,
    default_dtype, memory_bandwidth_Bps, compute_efficiency, memory_efficiency,
    capacity_bytes, tdp_w). specs: device, figure, value, source_key, source. suite: name,
    model, phase, batch, seq, dtype. predictions: one row per device and workload (status
    OK, DOES_NOT_FIT or UNSUPPORTED, note, latency_s, throughput_per_s, throughput_unit,
    energy_j, energy_per_item_j, bound, compute/memory/overhead_bound_s, memory_bytes,
    capacity_bytes, fits, flops, bytes_moved, intensity, achieved_flops_per_s,
    peak_flops_per_s, fallbacks, unsupported_ops); the time columns are NaN where the run
    does not fit. summary: one row per workload (candidate_status, candidate_latency_s,
    best_baseline, best_baseline_latency_s, speedup = best baseline's latency / the
    candidate's). assumptions: one row per device. sensitivity: perfmodel.study.sensitivity's
    table for the candidate on ``sensitivity_workload`` (empty where none runs).
    """

    title: str
    candidate: str
    devices: pd.DataFrame
    specs: pd.DataFrame
    suite: pd.DataFrame
    predictions: pd.DataFrame
    summary: pd.DataFrame
    assumptions: pd.DataFrame
    sensitivity: pd.DataFrame
    sensitivity_workload: str = ""
    design: Any = None        # perfmodel.study.explore.Exploration of the candidate, or None
    design_note: str = ""     # why there is no design-space study
    suite_path: str = ""
    command: str = ""
    version: str = ""


class Section(NamedTuple):
    """One part of the page: its anchor, heading and builder (data -> HTML fragment)."""

    id: str
    title: str
    build: Callable[[ReviewData], str]


def esc(value: Any) -> str:
    """A user's string, safe in HTML text and attributes."""
    return html.escape(str(value), quote=True)


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge {kind}">{esc(text)}</span>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """An HTML table from cells that are already HTML (headers are escaped here)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


def _num(v: Any, unit: str = "") -> str:
    return "–" if v is None or pd.isna(v) else esc(format_si(float(v), unit))


def _roles(d: ReviewData) -> list[str]:
    return list(d.devices["device"])


def _heads(d: ReviewData) -> list[str]:
    """Column heads of the per-device tables, the candidate marked."""
    return [f"{n} (candidate)" if n == d.candidate else n for n in _roles(d)]


def _cell(d: ReviewData, device: str, workload: str) -> pd.Series:
    p = d.predictions
    return p[(p["device"] == device) & (p["workload"] == workload)].iloc[0]


def _not_run(row: pd.Series, detail: bool = False) -> str | None:
    """The badge of a run that does not happen on its device (with why: ``detail``), or
    None."""
    if row["status"] == DOES_NOT_FIT:
        return _badge("does not fit", "nofit") + (
            f' <span class="note">{esc(row["note"])}</span>' if detail else "")
    if row["status"] == UNSUPPORTED:
        return _badge("unsupported", "nofit") + f' <span class="note">{esc(row["note"])}</span>'
    return None


def _rate(v: Any, unit: str) -> str:
    if v is None or pd.isna(v):
        return "–"
    return esc(f"{v:,.0f} {unit}" if v >= 100 else f"{v:.3g} {unit}")


def _figure(svg: str, caption: str) -> str:
    return f'<figure class="chart">{svg}<figcaption>{caption}</figcaption></figure>'


# --- uncertainty -----------------------------------------------------------------------

def latency_bands(predictions: pd.DataFrame, level: float = BAND_LEVEL
                  ) -> tuple[pd.DataFrame | None, str]:
    """(lo_s, hi_s per prediction row, or None; a sentence saying where they come from).

    The bands are perfmodel.validate.intervals.latency_band's (the roofline's measured
    error, per phase); where that module is not there, or gives no band, there are none,
    and the report says so: no band is made up here."""
    try:
        from perfmodel.validate.intervals import latency_band
    except ImportError:
        return None, ("no intervals available: this perfmodel has no "
                      "perfmodel.validate.intervals, so the latencies are point predictions")
    ran = predictions[predictions["latency_s"].notna()]
    out = pd.DataFrame({"lo_s": np.nan, "hi_s": np.nan}, index=predictions.index)
    missing: dict[str, list[str]] = {}  # why -> the phases it holds for
    for phase, grp in ran.groupby("phase"):
        try:
            lo, hi = latency_band(grp["latency_s"].to_numpy(float), kind="roofline",
                                  phase=str(phase), level=level)
        except (PerfModelError, ValueError) as exc:
            missing.setdefault(str(exc), []).append(str(phase))
            continue
        out.loc[grp.index, "lo_s"] = np.asarray(lo, float)
        out.loc[grp.index, "hi_s"] = np.asarray(hi, float)
    why = "; ".join(f"{', '.join(phases)}: {msg}" for msg, phases in missing.items())
    if out["lo_s"].notna().sum() == 0:
        return None, "no intervals available" + (f" ({why})" if why else "")
    tail = f"; none for {why}" if why else ""
    return out, (f"{level:.0%} intervals from perfmodel.validate.intervals.latency_band "
                 f"(the roofline's error against measurements, per phase){tail}")


# --- sections --------------------------------------------------------------------------

def summary_section(d: ReviewData) -> str:
    dev = d.devices.set_index("device")
    cand = dev.loc[d.candidate]
    base = [f"{esc(n)} ({esc(dev.loc[n, 'display_name'])})" for n in _roles(d)[1:]]
    s = d.summary
    both = s["speedup"].dropna()
    runs = int((s["candidate_status"] == OK).sum())
    lines = [
        f"<p>Candidate <b>{esc(cand['display_name'])}</b> ({esc(d.candidate)}) against "
        f"{', '.join(base) or 'no baseline'}, over {len(s)} workloads "
        f"(suite: <code>{esc(d.suite_path)}</code>). Runs on one device each, predicted by "
        f"the roofline model; speedup = the fastest baseline's latency / the candidate's.</p>",
        f"<p>The candidate runs {runs} of {len(s)} workloads"
        + (f"; geometric-mean speedup over the {len(both)} that it and a baseline both run: "
           f"<b>{np.exp(np.log(both).mean()):.2f}×</b>" if len(both) else "") + ".</p>"]
    cand_runs = d.predictions[d.predictions["device"] == d.candidate]
    lines += [f'<p class="alert">{_badge(r.status, "nofit")} <b>{esc(r.workload)}</b> cannot '
              f"run on the candidate: {esc(r.note)}.</p>"
              for r in cand_runs.itertuples() if r.status != OK]
    rows = []
    for r in s.itertuples():
        c = _cell(d, d.candidate, r.workload)
        shown = _not_run(c, detail=True) or _num(r.candidate_latency_s, "s")
        best = (f"{esc(r.best_baseline)}: {_num(r.best_baseline_latency_s, 's')}"
                if isinstance(r.best_baseline, str) and r.best_baseline else
                _badge("no baseline runs it", "warn"))
        speed = (f"<b>{r.speedup:.2f}×</b> {'faster' if r.speedup >= 1 else 'slower'}"
                 if pd.notna(r.speedup) else "–")
        rows.append([esc(r.workload), shown, best, speed])
    return "\n".join(lines) + _table(["workload", f"{d.candidate} latency",
                                      "best baseline", "speedup"], rows, "summary")


SPEC_ORDER = ("compute.tensor", "compute.vector", "compute.", "memory.capacity",
              "memory.bandwidth", "memory.", "power.", "efficiency.", "interconnect.")


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def spec_section(d: ReviewData) -> str:
    devices = _roles(d)
    seen = list(dict.fromkeys(d.specs["figure"]))
    figures = sorted(seen, key=lambda f: (next((i for i, g in enumerate(SPEC_ORDER)
                                                if f.startswith(g)), len(SPEC_ORDER)),
                                          seen.index(f)))
    by = {(r.device, r.figure): r for r in d.specs.itertuples()}
    rows = []
    for f in figures:
        cells = []
        for dev in devices:
            r = by.get((dev, f))
            cells.append("–" if r is None else esc(_value(r.value))
                         + (f' <sup class="src">{esc(r.source_key)}</sup>' if r.source_key
                            else ' <sup class="src">no source</sup>'))
        rows.append([f"<code>{esc(f)}</code>", *cells])
    table = _table(["figure", *_heads(d)], rows, "specs")
    cited = d.specs[d.specs["source_key"] != ""]
    notes = "".join(
        f"<li><b>{esc(key)}</b> ({esc(', '.join(dict.fromkeys(grp['device'])))}): "
        f"{esc(source)}</li>" for (key, source), grp in cited.groupby(
            ["source_key", "source"], sort=False))
    return ("<p>Every figure of each spec, with its source key (<code>perfmodel hw show "
            "NAME</code>); TFLOP/s are dense, integer rates TOPS.</p>" + table
            + f'<h3>Sources</h3><ul class="sources">{notes}</ul>')


def roofline_section(d: ReviewData) -> str:
    p = d.predictions[d.predictions["status"] == OK]
    cap = ("Each device's roof at the dtype the suite runs (peak × its compute efficiency, "
           "bandwidth × its memory efficiency); each point is a workload's achieved FLOP/s "
           "at its intensity, colour by device, marker by workload.")
    if len(p) < len(d.predictions):
        missing = sorted(set(d.predictions["workload"]) - set(p["workload"]))
        cap += (" Runs that do not fit or are unsupported have no point"
                + (f" ({esc(', '.join(missing))} on no device)" if missing else "") + ".")
    return _figure(charts.roofline_chart(d.predictions, d.devices, list(d.suite["name"]),
                                         d.candidate), cap)


def performance_section(d: ReviewData) -> str:
    bands, band_note = latency_bands(d.predictions)
    devices, workloads = _roles(d), list(d.suite["name"])
    parts = [f'<p class="note">Uncertainty: {esc(band_note)}.</p>']
    for col, label, unit in charts.PERF_METRICS:
        rows = [[esc(w), *(_perf_cell(_cell(d, dev, w), col, unit, bands) for dev in devices)]
                for w in workloads]
        parts.append(f"<h3>{esc(label)}</h3>" + _table(["workload", *_heads(d)], rows))
    parts.append(_figure(charts.performance_chart(d.predictions, devices, workloads, bands),
                         "Per workload, one bar per device (log scale where values span "
                         "more than 20×); ✗: the run does not fit in memory or is "
                         "unsupported, so it has no value. Error bars: the latency "
                         "intervals above, where there are any."))
    return "\n".join(parts)


def _perf_cell(r: pd.Series, col: str, unit: str, bands: pd.DataFrame | None) -> str:
    """One run's latency (with its band), throughput or energy (with energy per item)."""
    text = _not_run(r)
    if text is not None:
        return text
    text = _num(r[col], unit) if unit else _rate(r[col], r["throughput_unit"])
    if col == "latency_s" and bands is not None and pd.notna(bands.loc[r.name, "lo_s"]):
        lo, hi = bands.loc[r.name, "lo_s"], bands.loc[r.name, "hi_s"]
        text += f' <span class="band">({_num(lo, "s")} – {_num(hi, "s")})</span>'
    if col == "energy_j" and pd.notna(r["energy_per_item_j"]):
        text += f' <span class="note">{_num(r["energy_per_item_j"], "J")}/item</span>'
    return text


def memory_section(d: ReviewData) -> str:
    devices, workloads = _roles(d), list(d.suite["name"])
    rows = []
    for w in workloads:
        cells = []
        for dev in devices:
            r = _cell(d, dev, w)
            need = f"{_num(r['memory_bytes'], 'B')} of {_num(r['capacity_bytes'], 'B')}"
            if r["fits"] is False or r["fits"] == False:  # noqa: E712 (numpy bools too)
                cells.append(_badge("does not fit", "nofit") + f" {need}")
            elif pd.isna(r["memory_bytes"]):
                cells.append(_badge("unknown", "warn") + " memory not modelled")
            else:
                cells.append(_badge("fits", "fit") + f" {need}")
        rows.append([esc(w), *cells])
    nofit = d.predictions[d.predictions["status"] == DOES_NOT_FIT]
    head = ("<p>Memory one run needs on one device (weights, KV cache, activations: the one "
            "memory model) against the device's capacity.</p>")
    if len(nofit):
        head += ('<p class="alert">' + "<br>".join(
            f"<b>{esc(r.workload)}</b> does not fit on <b>{esc(r.device)}</b>: "
            f"{esc(r.note)}. No latency is given for it." for r in nofit.itertuples())
                 + "</p>")
    return head + _table(["workload", *_heads(d)], rows, "memory") + _figure(
        charts.memory_chart(d.predictions, devices, workloads), "Memory needed as a share "
        "of capacity; bars past the 100 % line (red, hatched) do not fit.")


def bound_section(d: ReviewData) -> str:
    rows = []
    for w in d.suite["name"]:
        cells = []
        for dev in _roles(d):
            r = _cell(d, dev, w)
            total = sum(float(r[c]) for c, _, _ in charts.BOUNDS)
            cells.append(_not_run(r) or (
                f"<b>{esc(r['bound'])}</b> " + " / ".join(
                    f"{lbl.split('-')[0]} {100 * float(r[c]) / total:.0f}%"
                    for c, lbl, _ in charts.BOUNDS) if total > 0 else "–"))
        rows.append([esc(w), *cells])
    p = d.predictions[d.predictions["status"] == OK]
    order = {w: i for i, w in enumerate(d.suite["name"])}
    p = p.assign(_w=p["workload"].map(order)).sort_values("_w", kind="stable")
    skipped = len(d.predictions) - len(p)
    cap = ("Each op is compute-, memory- or overhead-bound by its larger time (launch "
           "overhead larger than both: overhead); the bars split each run's time by that."
           + (f" {skipped} run(s) that do not fit or are unsupported are left out."
              if skipped else ""))
    return ("<p>The bound that takes most of each run's time, and the run's time split by "
            "the bound of each op.</p>" + _table(["workload", *_heads(d)], rows)
            + _figure(charts.bound_chart(p), cap))


def sensitivity_section(d: ReviewData) -> str:
    t = d.sensitivity
    if t.empty:
        return "<p>No sensitivity: no workload of the suite runs on the candidate.</p>"
    moving = t[t["elasticity"].abs() > 1e-6]
    shown = (moving if len(moving) else t).head(SENSITIVITY_TOP)
    svg = charts.tornado_chart(shown, f"{d.candidate} on {d.sensitivity_workload}: "
                                      "latency sensitivity")
    rows = [[f"<code>{esc(r.field)}</code>", esc(f"{r.value:g}"), f"{r.elasticity:+.3f}",
             _num(r.latency_down_s, "s"), _num(r.latency_up_s, "s")]
            for r in shown.itertuples()]
    rest = len(t) - len(moving)
    return (f"<p>Elasticity of the candidate's latency on <b>{esc(d.sensitivity_workload)}"
            f"</b> ({_num(t['latency_s'].iloc[0], 's')}) to each figure of its spec: "
            "d ln(latency) / d ln(figure), each figure scaled by 0.9 and 1.1 "
            "(perfmodel sensitivity). -1: the latency is inversely proportional to it; "
            f"0: it does not matter. Top {len(shown)} shown"
            + (f"; {rest} other figure(s) do not move it" if rest else "") + ".</p>"
            + _figure(svg, "Tornado: latency change when each figure is lowered (blue) "
                           "and raised (orange) by 10 %.")
            + _table(["figure", "value", "elasticity", "latency at 0.9×",
                      "latency at 1.1×"], rows))


GENERAL_ASSUMPTIONS = (
    "One device per run: no tensor, pipeline or data parallelism, no offload.",
    "A run needing more memory than the device has does not fit: it gets no latency, "
    "throughput or energy, and no speedup is computed with it.",
    "Latency: the roofline model, each op max(compute time, memory time) plus launch "
    "overhead, ops one after another.",
    "Decode prices one step (one token per sequence) against a KV cache of the workload's "
    "seq; throughput counts tokens per second for prefill and decode, samples otherwise.",
    "Energy: TDP × latency (the device at TDP the whole time: an upper bound).",
    "dtype: the workload's, else each device's default (fp16, else bf16, else fp32).",
)

FIGURES_USED = (("compute_efficiency", "compute efficiency", "compute_efficiency_source"),
                ("memory_efficiency", "memory efficiency", "memory_efficiency_source"),
                ("launch_overhead_s", "launch overhead per op", "launch_overhead_source"))


def assumptions_section(d: ReviewData) -> str:
    a = d.assumptions.set_index("device")
    shared = [f"{label}: {a[key].dropna().iloc[0]}" for key, label in (
        ("method", "method"), ("memory_model", "memory model"), ("fusion", "fusion"))
        if key in a and a[key].dropna().nunique() == 1]
    general = "".join(f"<li>{esc(x)}</li>" for x in [*GENERAL_ASSUMPTIONS, *shared])
    rows, cited = [], []
    for dev in _roles(d):
        if dev not in a.index or a.loc[dev, "method"] is None:
            rows.append([esc(dev), *["–"] * len(FIGURES_USED)])
            continue
        r = a.loc[dev]
        rows.append([esc(dev), *(_num(r[k], "s") if k.endswith("_s") else esc(f"{r[k]:.3g}")
                                 for k, _, _ in FIGURES_USED)])
        cited += [f"<li><b>{esc(dev)}</b>, {esc(label)}: {esc(r[src] or 'no source')}</li>"
                  for _, label, src in FIGURES_USED] + [
            f"<li><b>{esc(dev)}</b>, energy: {esc(r['energy'])}</li>"]
    return (f"<ul>{general}</ul><h3>Efficiency in force, per device</h3>"
            + _table(["device", *(lbl for _, lbl, _ in FIGURES_USED)], rows)
            + f'<ul class="sources">{"".join(cited)}</ul>'
            + "<h3>Per run</h3>" + _run_notes(d))


def _run_notes(d: ReviewData) -> str:
    """Dtype fallbacks, unpriced ops and unsupported runs, each note once with the runs it
    applies to."""
    runs: dict[str, dict[str, list[str]]] = {}
    for r in d.predictions.itertuples():
        notes = [f"fallback: {f}" for f in str(r.fallbacks or "").split("; ") if f]
        notes += [f"ops with no cost rule, not priced: {r.unsupported_ops}"] \
            if isinstance(r.unsupported_ops, str) and r.unsupported_ops else []
        notes += [str(r.note)] if r.status == UNSUPPORTED else []
        for n in notes:
            runs.setdefault(n, {}).setdefault(r.device, []).append(r.workload)
    if not runs:
        return "<p>No dtype fallbacks and no unpriced ops in any run.</p>"
    every = len(d.suite)
    items = []
    for note, where in runs.items():
        on = "; ".join(f"{esc(dev)} ("
                       + ("every workload" if len(ws) == every else esc(", ".join(ws))) + ")"
                       for dev, ws in where.items())
        items.append(f"<li>{esc(note)} — on {on}</li>")
    return f"<ul>{''.join(items)}</ul>"


# --- design space ----------------------------------------------------------------------

def _g(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"


def design_section(d: ReviewData) -> str:
    """The candidate with its main-memory bandwidth and its tensor peak each varied over
    half to twice its spec (``d.design``, perfmodel.study.explore): the Pareto front of the
    suite's latency against a cost, and where each workload turns from memory- to
    compute-bound along each figure; or why there is no such study."""
    e = d.design
    if e is None:
        return f"<p>{esc(d.design_note or 'no design-space study for this review')}</p>"
    paths = list(e.vary)
    col = e.objective_column
    intro = (f"<p>{esc(e.device)} with {' and '.join(f'<code>{esc(p)}</code>' for p in paths)}"
             f" each varied from half to twice its spec ({len(e.points)} designs). Objective: "
             f"{esc(e.assumptions[0])}. Cost: <code>{esc(e.cost)}</code>, the sum of the "
             "varied figures relative to the spec (2 = the spec as it is): a neutral "
             "stand-in for silicon cost, not a power or price model; give your own with "
             "<code>perfmodel explore --cost</code>.</p>")
    fig = pareto_figure(e.points, objective_column=col, objective_label=f"{col} (1 = the "
                        "spec as it is; lower is faster)", cost_label="relative cost (2 = "
                        "the spec as it is)", title=f"{e.device}: design space")
    chart = _figure(charts._svg(fig, "front"), "Every design (grey), the Pareto front (red): "
                    "no other design is both cheaper and faster.")
    rows = [[*(_g(float(r[p])) for p in paths), _g(float(r[col])), _g(float(r["cost"])),
             "yes" if bool(r["all_fit"]) else "no"] for _, r in e.front.iterrows()]
    turns = []
    for _, r in e.crossovers.iterrows():
        where = (f"{_g(float(r['crossover']))} ({esc(r['bound_at_lo'])} below, "
                 f"{esc(r['bound_at_hi'])} above)" if pd.notna(r["crossover"])
                 else f"no turn in {_g(float(r['lo']))}–{_g(float(r['hi']))}: "
                      f"{esc(r['bound_at_lo'])} throughout")
        turns.append([esc(r["workload"]), f"<code>{esc(r['path'])}</code>", where])
    notes = "".join(f"<li>{esc(a)}</li>" for a in e.assumptions[1:])
    return (intro + chart + "<h3>Pareto front, cheapest first</h3>"
            + _table([*paths, col, "cost", "every workload fits"], rows)
            + "<h3>Where each workload changes bound</h3>"
            + _table(["workload", "figure", "turns at"], turns) + f"<ul>{notes}</ul>")


# The page, in order. Another section plugs in by adding a Section here.
SECTIONS: list[Section] = [
    Section("summary", "Summary", summary_section),
    Section("specs", "Specifications", spec_section),
    Section("roofline", "Roofline", roofline_section),
    Section("performance", "Latency, throughput and energy", performance_section),
    Section("memory", "Memory fit", memory_section),
    Section("bound", "Compute- vs memory-bound time", bound_section),
    Section("sensitivity", "Sensitivity of the candidate", sensitivity_section),
    Section("design", "Design space of the candidate", design_section),
    Section("assumptions", "Assumptions", assumptions_section),
]


PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 margin:0 auto;max-width:1180px;padding:0 24px 40px;color:#1a1a1a}
h1{margin:24px 0 4px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
nav a{margin-right:12px}table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td{font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600}
.badge.nofit{background:#b00020;color:#fff}.badge.fit{background:#e3f4e3;color:#185c18}
.badge.warn{background:#fff0c2;color:#6b5000}
.alert{border-left:4px solid #b00020;background:#fdecee;padding:8px 12px}
.note,.band,sup.src{color:#555;font-size:12px}td{overflow-wrap:anywhere}figure.chart{margin:12px 0}
figure.chart svg{max-width:100%;height:auto}figcaption{color:#444;font-size:13px}
ul.sources{font-size:12px;color:#333}.scroll{overflow-x:auto}footer{margin-top:40px;color:#555;font-size:12px}
</style></head>
<body>
<h1>$title</h1>
<nav>$nav</nav>
$body
<footer>perfmodel $version · <code>$command</code></footer>
<script>
(function () {
  var figs = document.querySelectorAll("figure.chart"), n = 0;
  for (var i = 0; i < figs.length; i++) {
    var svg = figs[i].querySelector("svg"), box = svg && svg.getBBox();
    if (box && box.width > 0 && box.height > 0) { n++; }
  }
  document.body.dataset.figures = String(n);
  document.body.dataset.figuresExpected = String(figs.length);
})();
</script>
</body></html>
""")


def render_review(data: ReviewData, sections: Sequence[Section] | None = None) -> str:
    """The whole page as a string (``SECTIONS`` unless ``sections`` is given)."""
    import matplotlib

    chosen = SECTIONS if sections is None else list(sections)
    pyplot()
    # text stays text (smaller, selectable, escaped by matplotlib); hashes do not vary
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "perfmodel-review"}):
        body = "\n".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>\n'
                         f"{s.build(data)}\n</section>" for s in chosen)
    nav = " ".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in chosen)
    return PAGE.substitute(title=esc(data.title), nav=nav, body=body,
                           version=esc(data.version), command=esc(data.command))
