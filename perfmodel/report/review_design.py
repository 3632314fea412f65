"""The review's design-space section: the candidate with its main-memory bandwidth and its
tensor peak each varied over half to twice its spec (perfmodel.study.explore), the Pareto
front of the suite's latency against a cost, and where each workload turns from memory- to
compute-bound along each figure."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.report.explore import pareto_figure
from perfmodel.report.review_charts import _svg

__all__ = ["design_section"]


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>\n{body}\n</tbody></table></div>")


def _g(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"


def design_section(d: Any) -> str:
    """HTML of ``d.design`` (an Exploration), or why there is none."""
    e = getattr(d, "design", None)
    if e is None:
        note = getattr(d, "design_note", "") or "no design-space study for this review"
        return f"<p>{_esc(note)}</p>"
    paths = list(e.vary)
    col = e.objective_column
    intro = (f"<p>{_esc(e.device)} with {' and '.join(f'<code>{_esc(p)}</code>' for p in paths)}"
             f" each varied from half to twice its spec ({len(e.points)} designs). Objective: "
             f"{_esc(e.assumptions[0])}. Cost: <code>{_esc(e.cost)}</code>, the sum of the "
             "varied figures relative to the spec (2 = the spec as it is): a neutral "
             "stand-in for silicon cost, not a power or price model; give your own with "
             "<code>perfmodel explore --cost</code>.</p>")
    fig = pareto_figure(e.points, objective_column=col, objective_label=f"{col} (1 = the "
                        "spec as it is; lower is faster)", cost_label="relative cost (2 = "
                        "the spec as it is)", title=f"{e.device}: design space")
    chart = (f'<figure class="chart">{_svg(fig, "front")}<figcaption>Every design (grey), '
             "the Pareto front (red): no other design is both cheaper and faster."
             "</figcaption></figure>")
    front = e.front
    rows = [[*(_g(float(r[p])) for p in paths), _g(float(r[col])), _g(float(r["cost"])),
             "yes" if bool(r["all_fit"]) else "no"] for _, r in front.iterrows()]
    table = _table([*paths, col, "cost", "every workload fits"], rows)
    cross = e.crossovers
    turns = []
    for _, r in cross.iterrows():
        where = (f"{_g(float(r['crossover']))} ({_esc(r['bound_at_lo'])} below, "
                 f"{_esc(r['bound_at_hi'])} above)" if pd.notna(r["crossover"])
                 else f"no turn in {_g(float(r['lo']))}–{_g(float(r['hi']))}: "
                      f"{_esc(r['bound_at_lo'])} throughout")
        turns.append([_esc(r["workload"]), f"<code>{_esc(r['path'])}</code>", where])
    notes = "".join(f"<li>{_esc(a)}</li>" for a in e.assumptions[1:])
    return (intro + chart + "<h3>Pareto front, cheapest first</h3>" + table
            + "<h3>Where each workload changes bound</h3>"
            + _table(["workload", "figure", "turns at"], turns) + f"<ul>{notes}</ul>")
