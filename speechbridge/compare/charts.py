"""Small inline SVG charts for the comparison report: a scatter, distributions and confidence intervals.

Each function returns one ``<svg>`` element as text, with no script and no external resource; hovering a point shows
its ``<title>``. Callers pick colours (:func:`color`), so a profile keeps its colour from chart to chart.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from html import escape
from typing import Final

import attrs

__all__ = ["PALETTE", "Group", "Interval", "Point", "Series", "color", "distributions", "intervals", "scatter"]

PALETTE: Final = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
WIDTH: Final = 720
LEFT: Final = 170
RIGHT: Final = 24
TOP: Final = 16
ROW_HEIGHT: Final = 34
AXIS_HEIGHT: Final = 44
FONT: Final = 'font-family="system-ui, sans-serif" font-size="12"'
LABEL_CHARS: Final = 26


@attrs.frozen
class Point:
    """One value pair, with the text shown on hover."""

    x: float
    y: float
    label: str = ""


@attrs.frozen
class Series:
    """The points of one profile; ``centre`` is drawn large and labelled (e.g. the median run)."""

    name: str
    points: Sequence[Point]
    centre: Point | None = None
    color: str = PALETTE[0]


@attrs.frozen
class Group:
    """The values of one row of a distribution chart."""

    name: str
    values: Sequence[float]
    color: str = PALETTE[0]


@attrs.frozen
class Interval:
    """An estimate and its confidence interval, on one row; a significant one is drawn in colour, others grey."""

    label: str
    estimate: float
    low: float
    high: float
    significant: bool
    note: str = ""


def color(index: int) -> str:
    """The ``index``-th colour of :data:`PALETTE`, cycling."""
    return PALETTE[index % len(PALETTE)]


def _row_label(text: str, y: float) -> str:
    """A row's name, right-aligned left of the plot; a long one is cut short and shown whole on hover."""
    short = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"
    return f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end"><title>{escape(text)}</title>{escape(short)}</text>'


class _Axis:
    """A linear scale from data values (and 0) to pixels, with round tick values."""

    def __init__(self, values: Sequence[float], start: float, end: float) -> None:
        low, high = min(0.0, *values), max(0.0, *values)
        if high - low < 1e-12:
            high = 1.0
        self.ticks = _ticks(low, high)
        self.low, self.high = self.ticks[0], self.ticks[-1]
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9) * step
    steps = math.ceil((high - first) / step - 1e-9)
    return [round(first + index * step, 10) for index in range(steps + 1)]


def _number(value: float) -> str:
    return f"{value:.3g}"


def _svg(height: float, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" '
        f'height="{height:.0f}" role="img" aria-label="{escape(title)}" {FONT}>\n' + "\n".join(body) + "\n</svg>"
    )


def _x_axis(axis: _Axis, top: float, bottom: float, label: str) -> list[str]:
    parts = []
    for tick in axis.ticks:
        x = axis(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16:.1f}" text-anchor="middle">{_number(tick)}</text>')
    centre = (axis.start + axis.end) / 2
    parts.append(f'<text x="{centre:.1f}" y="{bottom + 34:.1f}" text-anchor="middle">{escape(label)}</text>')
    return parts


def scatter(series: Sequence[Series], x_label: str, y_label: str, *, height: int = 360) -> str:
    """Every point of every series, the centres large and named, and a legend."""
    xs = [p.x for s in series for p in [*s.points, *([s.centre] if s.centre else [])]]
    ys = [p.y for s in series for p in [*s.points, *([s.centre] if s.centre else [])]]
    plot_left, bottom = 64, height - AXIS_HEIGHT
    x_axis = _Axis(xs, plot_left, WIDTH - RIGHT - 150)
    y_axis = _Axis(ys, bottom, TOP)
    body = _x_axis(x_axis, TOP, bottom, x_label)
    for tick in y_axis.ticks:
        y = y_axis(tick)
        body.append(f'<line x1="{plot_left}" y1="{y:.1f}" x2="{x_axis.end:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        body.append(f'<text x="{plot_left - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>')
    middle = (TOP + bottom) / 2
    body.append(
        f'<text transform="translate(14 {middle:.1f}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    for index, each in enumerate(series):
        fill = each.color
        for point in each.points:
            body.append(
                f'<circle cx="{x_axis(point.x):.1f}" cy="{y_axis(point.y):.1f}" r="3.5" fill="{fill}" '
                f'fill-opacity="0.35"><title>{escape(point.label)}</title></circle>'
            )
        if each.centre is not None:
            body.append(
                f'<circle cx="{x_axis(each.centre.x):.1f}" cy="{y_axis(each.centre.y):.1f}" r="7" fill="{fill}" '
                f'stroke="#000"><title>{escape(each.centre.label)}</title></circle>'
            )
        legend_y = TOP + 8 + index * 20
        body.append(f'<circle cx="{x_axis.end + 20:.1f}" cy="{legend_y}" r="6" fill="{fill}"/>')
        body.append(f'<text x="{x_axis.end + 32:.1f}" y="{legend_y + 4}">{escape(each.name)}</text>')
    return _svg(height, body, f"{y_label} against {x_label}")


def distributions(groups: Sequence[Group], label: str) -> str:
    """One row per group: every value as a dot, a box from P25 to P75, the median, and whiskers from P5 to P95."""
    axis = _Axis([value for group in groups for value in group.values], LEFT, WIDTH - RIGHT)
    bottom = TOP + ROW_HEIGHT * len(groups)
    body = _x_axis(axis, TOP, bottom, label)
    for index, group in enumerate(groups):
        centre, fill, values = TOP + ROW_HEIGHT * (index + 0.5), group.color, group.values
        body.append(_row_label(f"{group.name} (n={len(values)})", centre))
        if len(values) >= 2:
            cuts = statistics.quantiles(values, n=20, method="inclusive")
            p5, p25, p50, p75, p95 = (axis(cuts[i]) for i in (0, 4, 9, 14, 18))
            body.append(f'<line x1="{p5:.1f}" y1="{centre:.1f}" x2="{p95:.1f}" y2="{centre:.1f}" stroke="{fill}"/>')
            body.append(
                f'<rect x="{p25:.1f}" y="{centre - 9:.1f}" width="{max(p75 - p25, 1):.1f}" height="18" '
                f'fill="{fill}" fill-opacity="0.15" stroke="{fill}"/>'
            )
            body.append(
                f'<line x1="{p50:.1f}" y1="{centre - 9:.1f}" x2="{p50:.1f}" y2="{centre + 9:.1f}" '
                f'stroke="{fill}" stroke-width="3"/>'
            )
        for number, value in enumerate(values):
            jitter = ((number * 7) % 11 - 5) * 1.2
            body.append(
                f'<circle cx="{axis(value):.1f}" cy="{centre + jitter:.1f}" r="2.5" fill="{fill}" '
                f'fill-opacity="0.6"><title>{_number(value)}</title></circle>'
            )
    return _svg(bottom + AXIS_HEIGHT, body, f"distribution of {label}")


def intervals(rows: Sequence[Interval], label: str) -> str:
    """One row per estimate: a dot and its interval, against a line at zero."""
    axis = _Axis([value for row in rows for value in (row.low, row.high, row.estimate)], LEFT, WIDTH - RIGHT)
    bottom = TOP + ROW_HEIGHT * len(rows)
    body = _x_axis(axis, TOP, bottom, label)
    zero = axis(0.0)
    body.append(f'<line x1="{zero:.1f}" y1="{TOP}" x2="{zero:.1f}" y2="{bottom:.1f}" stroke="#000"/>')
    for index, row in enumerate(rows):
        centre = TOP + ROW_HEIGHT * (index + 0.5)
        stroke = color(1) if row.significant else "#999"
        tip = f"{row.label}: {_number(row.estimate)} [{_number(row.low)}, {_number(row.high)}] {row.note}".strip()
        body.append(_row_label(row.label, centre))
        body.append(
            f'<g><title>{escape(tip)}</title><line x1="{axis(row.low):.1f}" y1="{centre:.1f}" '
            f'x2="{axis(row.high):.1f}" y2="{centre:.1f}" stroke="{stroke}" stroke-width="3"/>'
            f'<circle cx="{axis(row.estimate):.1f}" cy="{centre:.1f}" r="5" fill="{stroke}"/></g>'
        )
    return _svg(bottom + AXIS_HEIGHT, body, f"confidence intervals of {label}")
