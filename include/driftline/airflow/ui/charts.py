"""Line charts as inline SVG for the trend page: pure functions from plain numbers to markup.

The plugin's pages carry no scripts (PAGE_CSP), so charts are drawn on the server. The x axis is
categorical: one slot per interval, labelled with its start. Every piece of text is escaped here;
the result is safe to insert into a page as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from driftline.airflow.ui.numbers import metric

# Okabe-Ito colours: told apart with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


@dataclass(frozen=True)
class Series:
    """One line: a value (or None: no point, a gap in the line) per x slot."""

    label: str
    values: Sequence[float | None]
    color: str = PALETTE[0]
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded range per x slot (None where there is none), e.g. an estimate's 95% band.
    edged: its low and high edges drawn as dashed lines too (an alert band over an estimate's band)."""

    label: str
    lows: Sequence[float | None]
    highs: Sequence[float | None]
    color: str = PALETTE[0]
    edged: bool = False

    def edges(self) -> tuple[Series, Series]:
        """The low and high edges as lines (with a gap where the band has none)."""
        return (
            Series(f"{self.label} low", self.lows, self.color, dashed=True),
            Series(f"{self.label} high", self.highs, self.color, dashed=True),
        )


@dataclass(frozen=True)
class Threshold:
    """A horizontal line across the chart, e.g. a trigger threshold."""

    label: str
    value: float
    color: str = "#c53030"


@dataclass(frozen=True)
class Chart:
    """What one chart shows: x labels (one per slot), lines, bands and thresholds."""

    title: str
    x_labels: Sequence[str]
    series: Sequence[Series] = ()
    bands: Sequence[Band] = ()
    thresholds: Sequence[Threshold] = ()
    y_min: float | None = None  # None: from the data (and thresholds), padded
    y_max: float | None = None
    width: int = 640
    height: int = 240
    margin: tuple[int, int, int, int] = field(default=(28, 36, 44, 56))  # top, right, bottom, left


def y_range(chart: Chart) -> tuple[float, float]:
    """The y axis bounds: every value, band edge and threshold inside, padded 5%; fixed ends kept."""
    values = [v for s in chart.series for v in s.values if v is not None]
    values += [v for b in chart.bands for v in (*b.lows, *b.highs) if v is not None]
    values += [t.value for t in chart.thresholds]
    low = min(values, default=0.0) if chart.y_min is None else chart.y_min
    high = max(values, default=1.0) if chart.y_max is None else chart.y_max
    if high <= low:
        low, high = low - 0.5, high + 0.5
    pad = 0.05 * (high - low)
    return (low - pad if chart.y_min is None else low), (high + pad if chart.y_max is None else high)


def x_position(chart: Chart, slot: int) -> float:
    """The x pixel of a slot: slots spread evenly, one alone in the middle."""
    top, right, bottom, left = chart.margin
    inner = chart.width - left - right
    slots = len(chart.x_labels)
    return left + (inner / 2 if slots <= 1 else inner * slot / (slots - 1))


def y_position(chart: Chart, value: float, bounds: tuple[float, float]) -> float:
    top, right, bottom, left = chart.margin
    inner = chart.height - top - bottom
    low, high = bounds
    return top + inner * (1 - (value - low) / (high - low))


def _point(x: float, y: float) -> str:
    return f"{x:.1f},{y:.1f}"


def polylines(chart: Chart, series: Series, bounds: tuple[float, float]) -> list[str]:
    """The series' line as polylines' points attributes, broken where a value is missing."""
    runs: list[list[str]] = []
    current: list[str] = []
    for slot, value in enumerate(series.values):
        if value is None:
            if current:
                runs.append(current)
            current = []
            continue
        current.append(_point(x_position(chart, slot), y_position(chart, value, bounds)))
    if current:
        runs.append(current)
    return [" ".join(run) for run in runs if len(run) > 1]


def band_polygons(chart: Chart, band: Band, bounds: tuple[float, float]) -> list[str]:
    """The band as polygons' points attributes (along the highs, back along the lows), one per run of slots."""
    polygons: list[list[tuple[float, float, float]]] = []
    run: list[tuple[float, float, float]] = []
    for slot, (low, high) in enumerate(zip(band.lows, band.highs, strict=True)):
        if low is None or high is None:
            polygons.append(run)
            run = []
            continue
        run.append((x_position(chart, slot), y_position(chart, low, bounds), y_position(chart, high, bounds)))
    polygons.append(run)
    shapes = []
    for run in polygons:
        if len(run) == 1:  # a lone slot: a narrow bar rather than nothing
            x, low_y, high_y = run[0]
            run = [(x - 3, low_y, high_y), (x + 3, low_y, high_y)]
        if run:
            upper = [_point(x, high_y) for x, _, high_y in run]
            lower = [_point(x, low_y) for x, low_y, _ in reversed(run)]
            shapes.append(" ".join(upper + lower))
    return shapes


def _tick(value: float, span: float = 1.0) -> str:
    """A tick label with as many decimals as the axis span needs (0.1 rather than 0.0999)."""
    decimals = max(0, 2 - math.floor(math.log10(span))) if span > 0 else 3
    return f"{value:.{decimals}f}"


TITLE_FONT_PX = 13
TITLE_X = 6
# A bold sans-serif letter averages ~0.6 em and capitals ~0.7 em: 0.8 em per character keeps a title
# of capitals inside the chart too (only a run of W/M would be wider).
TITLE_CHAR_PX = 0.8 * TITLE_FONT_PX


def fitted_title(chart: Chart) -> str:
    """The title cut to the chart's width, ending in "…" when cut (the whole title is the hover text)."""
    room = max(1, int((chart.width - 2 * TITLE_X) // TITLE_CHAR_PX))
    title = " ".join(chart.title.split())
    return title if len(title) <= room else title[: room - 1].rstrip() + "…"


def svg(chart: Chart) -> str:
    """The chart as one <svg> element: axes with ticks, bands, thresholds, lines with a point per value, legend."""
    bounds = y_range(chart)
    top, right, bottom, left = chart.margin
    x0, x1 = left, chart.width - right
    y_top, y_bottom = top, chart.height - bottom
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{chart.width}" height="{chart.height}" '
        f'viewBox="0 0 {chart.width} {chart.height}" role="img" aria-label="{escape(chart.title)}">',
        f"<title>{escape(chart.title)}</title>",
        # The visible title fits the chart (cut with an ellipsis); the whole one shows on hover.
        f'<text class="chart-title" x="{TITLE_X}" y="16" font-size="{TITLE_FONT_PX}" font-weight="600">'
        f"<title>{escape(chart.title)}</title>{escape(fitted_title(chart))}</text>",
        f'<line class="axis" x1="{x0}" y1="{y_bottom}" x2="{x1}" y2="{y_bottom}" stroke="#4a5568"/>',
        f'<line class="axis" x1="{x0}" y1="{y_top}" x2="{x0}" y2="{y_bottom}" stroke="#4a5568"/>',
    ]
    low, high = bounds
    for i in range(5):
        value = low + (high - low) * i / 4
        y = y_position(chart, value, bounds)
        out.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#edf2f7"/>')
        out.append(
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_tick(value, high - low)}</text>'
        )
    # At most about 8 x labels, so dates never overlap.
    step = max(1, -(-len(chart.x_labels) // 8))
    for slot, label in enumerate(chart.x_labels):
        if slot % step == 0 or slot == len(chart.x_labels) - 1:
            x = x_position(chart, slot)
            out.append(
                f'<text class="x-label" x="{x:.1f}" y="{y_bottom + 16}" font-size="10" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    for band in chart.bands:
        kind, fill_opacity = ("alert-band", "0.08") if band.edged else ("band", "0.18")
        for points in band_polygons(chart, band, bounds):
            out.append(
                f'<polygon class="{kind}" points="{points}" fill="{escape(band.color)}" fill-opacity="{fill_opacity}" '
                f'stroke="none"><title>{escape(band.label)}</title></polygon>'
            )
        for edge in band.edges() if band.edged else ():
            for points in polylines(chart, edge, bounds):
                out.append(
                    f'<polyline class="band-edge" points="{points}" fill="none" stroke="{escape(band.color)}" '
                    f'stroke-width="1" stroke-dasharray="6 4"><title>{escape(edge.label)}</title></polyline>'
                )
    for threshold in chart.thresholds:
        y = y_position(chart, threshold.value, bounds)
        out.append(
            f'<line class="threshold" x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="{escape(threshold.color)}" '
            f'stroke-dasharray="6 4"><title>{escape(threshold.label)} {metric(threshold.value)}</title></line>'
        )
        out.append(
            f'<text x="{x1}" y="{y - 3:.1f}" font-size="10" text-anchor="end" fill="{escape(threshold.color)}">'
            f"{escape(threshold.label)} {metric(threshold.value)}</text>"
        )
    for series in chart.series:
        dash = ' stroke-dasharray="4 3"' if series.dashed else ""
        color = escape(series.color)
        for points in polylines(chart, series, bounds):
            out.append(
                f'<polyline class="line" points="{points}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
            )
        for slot, value in enumerate(series.values):
            if value is None:
                continue
            x, y = x_position(chart, slot), y_position(chart, value, bounds)
            label = f"{series.label} {chart.x_labels[slot]}: {metric(value)}"
            out.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{escape(label)}</title></circle>'
            )
    legend = [*((s.label, s.color, 1.0) for s in chart.series), *((b.label, b.color, 0.3) for b in chart.bands)]
    x = left
    for label, color, opacity in legend:
        out.append(
            f'<rect x="{x}" y="{chart.height - 14}" width="10" height="10" fill="{escape(color)}" fill-opacity="{opacity}"/>'
        )
        out.append(f'<text x="{x + 14}" y="{chart.height - 5}" font-size="10">{escape(label)}</text>')
        x += 24 + 6 * len(label)
    out.append("</svg>")
    return "".join(out)
