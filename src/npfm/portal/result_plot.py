"""The plot a benchmark result came from: its value beside its siblings.

A result's siblings are the results of the same report (results JSON) with the same
task and metric: the other modes, runs, training sizes and seeds of that study. The page
draws them as a forest plot (one row each: the value as a dot, the 95% interval as a
bar), the result itself highlighted, as an SVG made on the server (the page carries no
script).
"""

from __future__ import annotations

import html
import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from npfm.catalog.models import BenchmarkResult
from npfm.portal.provenance import result_settings

#: Most sibling rows drawn (a study's cells of one task and metric are far fewer).
MAX_ROWS = 60
ROW_PX, LABEL_PX, PLOT_PX, PAD = 18, 300, 320, 30


def siblings(session: Session, result: BenchmarkResult) -> list[BenchmarkResult]:
    """Results of the same report, task and metric (the result itself included), ordered
    by name; only the result where it names no report."""
    if not result.report_path:
        return [result]
    rows = list(session.scalars(select(BenchmarkResult).where(
        BenchmarkResult.report_path == result.report_path,
        BenchmarkResult.task == result.task, BenchmarkResult.metric == result.metric)
        .order_by(BenchmarkResult.name, BenchmarkResult.id).limit(MAX_ROWS)))
    return rows if any(r.id == result.id for r in rows) else [result, *rows[:MAX_ROWS - 1]]


def row_label(result: BenchmarkResult) -> str:
    """``mode · run · n=N · seed S`` of a result (its name where it has no config)."""
    config = (result.details or {}).get("config") if isinstance(result.details, dict) else None
    if not isinstance(config, dict) or not config:
        return result.name
    return " · ".join(result_settings(result, with_run=True)) or result.name


def _finite(*values: Any) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def forest_svg(rows: list[BenchmarkResult], current_id: int) -> str | None:
    """Forest plot of ``rows`` (value and interval per row), ``current_id`` in red; None
    when no row has a finite value."""
    numbers = [x for r in rows for x in _finite(r.value, r.lo, r.hi)]
    if not numbers:
        return None
    lo, hi = min(numbers), max(numbers)
    span = (hi - lo) or max(abs(hi), 1.0) * 0.1
    lo, hi = lo - 0.05 * span, hi + 0.05 * span

    def x(v: float) -> float:
        return LABEL_PX + (v - lo) / (hi - lo) * PLOT_PX

    height = PAD * 2 + ROW_PX * len(rows)
    parts = [f'<svg id="result-plot" xmlns="http://www.w3.org/2000/svg" '
             f'width="{LABEL_PX + PLOT_PX + PAD}" height="{height}" role="img" '
             f'aria-label="{html.escape(rows[0].task)} {html.escape(rows[0].metric)}">']
    for i, r in enumerate(rows):
        y = PAD + ROW_PX * i + ROW_PX / 2
        me = r.id == current_id
        colour = "#c0392b" if me else "#1f77b4"
        weight = ' font-weight="bold"' if me else ""
        parts.append(f'<text x="{LABEL_PX - 8}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-size="11"{weight}>{html.escape(row_label(r))}</text>')
        if (bar := _finite(r.lo, r.hi)) and len(bar) == 2:
            parts.append(f'<line class="interval" x1="{x(bar[0]):.1f}" y1="{y:.1f}" '
                         f'x2="{x(bar[1]):.1f}" y2="{y:.1f}" stroke="{colour}"/>')
        if _finite(r.value):
            parts.append(f'<circle class="{"current" if me else "value"}" '
                         f'cx="{x(float(r.value)):.1f}" cy="{y:.1f}" r="3.5" '
                         f'fill="{colour}"/>')
    axis_y = height - PAD + 4
    parts.append(f'<line x1="{LABEL_PX}" y1="{axis_y}" x2="{LABEL_PX + PLOT_PX}" '
                 f'y2="{axis_y}" stroke="#888"/>'
                 f'<text x="{LABEL_PX}" y="{axis_y + 14}" font-size="11">{lo:.3g}</text>'
                 f'<text x="{LABEL_PX + PLOT_PX}" y="{axis_y + 14}" font-size="11" '
                 f'text-anchor="end">{hi:.3g}</text></svg>')
    return "".join(parts)
