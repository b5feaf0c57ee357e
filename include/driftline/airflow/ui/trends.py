"""The trend page's charts from its rows (queries.trend_rows): pure, no database, no Airflow.

Every chart of a page shares one x axis, the union of the intervals any of its rows name, so a
missing value is a gap at the right date rather than a shifted line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from driftline.airflow.ui.charts import PALETTE, Band, Chart, Series, Threshold, svg
from driftline.airflow.ui.report_files import as_utc
from driftline.config import DriftPolicy

Interval = tuple[datetime, datetime]


def intervals_of(*row_lists: Iterable[dict[str, Any]]) -> list[Interval]:
    """Every interval the rows name, in time order."""
    return sorted({(row["interval_start"], row["interval_end"]) for rows in row_lists for row in rows})


def interval_label(interval: Interval) -> str:
    return f"{as_utc(interval[0]):%m-%d %H:%M}" if as_utc(interval[0]).hour else f"{as_utc(interval[0]):%Y-%m-%d}"


def _column(rows: list[dict[str, Any]], slots: list[Interval], name: str) -> list[float | None]:
    by_interval = {(row["interval_start"], row["interval_end"]): row.get(name) for row in rows}
    return [None if by_interval.get(slot) is None else float(by_interval[slot]) for slot in slots]


def drift_charts(rows: list[dict[str, Any]], slots: list[Interval], policy: DriftPolicy | None) -> list[str]:
    """Drifted share and prediction drift per interval, each with its [drift.trigger] threshold."""
    labels = [interval_label(slot) for slot in slots]
    share_threshold = [] if policy is None else [Threshold("trigger drifted_share", policy.drifted_share)]
    drift_threshold = [] if policy is None else [Threshold("trigger prediction_drift", policy.prediction_drift)]
    return [
        svg(
            Chart(
                "Share of counted drifted features",
                labels,
                series=[Series("drifted share", _column(rows, slots, "drifted_share"))],
                thresholds=share_threshold,
                y_min=0.0,
            )
        ),
        svg(
            Chart(
                "Prediction drift",
                labels,
                series=[Series("prediction drift", _column(rows, slots, "prediction_drift"), color=PALETTE[1])],
                thresholds=drift_threshold,
                y_min=0.0,
            )
        ),
    ]


ALERT_COLOR = "#c53030"  # the trigger's colour (charts.Threshold): crossing it is what alerts


def performance_chart_data(
    title: str,
    rows: list[dict[str, Any]],
    slots: list[Interval],
    thresholds: Sequence[Threshold] = (),
    low: str = "band_low",
    high: str = "band_high",
    size: tuple[int, int] = (640, 240),
    alerts: Sequence[dict[str, Any]] = (),
) -> Chart:
    """Estimate with its band and the realized value (where labelled) of one metric per interval, as
    chart data (svg() draws it); alerts: that metric's performance_alerts rows, drawn as the alert band. The alert band (alert_low, alert_high: the holdout's chunk mean
    +- estimated_metric_std standard deviations, stored with each estimate) is per interval, since a
    new model version brings its own; an interval estimated without one has a gap."""
    bands = [Band("95% band", _column(rows, slots, low), _column(rows, slots, high), color=PALETTE[0])]
    if any(row.get("alert_low") is not None for row in alerts):
        lows, highs = _column(list(alerts), slots, "alert_low"), _column(list(alerts), slots, "alert_high")
        bands.append(Band("alert band", lows, highs, color=ALERT_COLOR, edged=True))
    return Chart(
        title,
        [interval_label(slot) for slot in slots],
        series=[
            Series("estimate", _column(rows, slots, "estimate"), color=PALETTE[0], dashed=True),
            Series("realized", _column(rows, slots, "realized"), color=PALETTE[1]),
        ],
        bands=bands,
        thresholds=list(thresholds),
        width=size[0],
        height=size[1],
    )


def shown_metrics(rows: list[dict[str, Any]], policy: DriftPolicy | None) -> list[str]:
    """The metrics to chart: the trigger's estimated metric first, then accuracy; only those with rows."""
    present = {row["metric"] for row in rows}
    wanted = ([] if policy is None else [policy.estimated_metric]) + ["auc", "accuracy"]
    return [m for i, m in enumerate(wanted) if m in present and m not in wanted[:i]]


def performance_charts(
    rows: list[dict[str, Any]],
    slots: list[Interval],
    policy: DriftPolicy | None,
    alerts: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Estimated vs realized performance over time, one chart per shown metric, the floor drawn on
    the trigger's, the alert band (performance_alerts rows) on each metric that has one."""
    charts = []
    for metric in shown_metrics(rows, policy):
        thresholds = []
        if policy is not None and metric == policy.estimated_metric and policy.estimated_metric_floor is not None:
            thresholds.append(Threshold("trigger floor", policy.estimated_metric_floor))
        metric_rows = [row for row in rows if row["metric"] == metric]
        metric_alerts = [row for row in alerts or [] if row["metric"] == metric]
        charts.append(
            svg(
                performance_chart_data(
                    f"Estimated vs realized {metric}", metric_rows, slots, thresholds, alerts=metric_alerts
                )
            )
        )
    return charts


def segment_charts(rows: list[dict[str, Any]], slots: list[Interval], metric: str) -> list[dict[str, Any]]:
    """Small multiples: per segment column, one small chart per segment value of `metric`
    (estimate with band, realized), on the page's shared x axis."""
    # Keyed by (segment_other, value): the remainder bucket never merges with a real value "other".
    columns: dict[str, dict[tuple[bool, str], list[dict[str, Any]]]] = {}
    for row in rows:
        if row["metric"] == metric:
            key = (bool(row.get("segment_other")), str(row["segment_value"]))
            columns.setdefault(row["segment_column"], {}).setdefault(key, []).append(row)
    return [
        {
            "column": column,
            "charts": [
                svg(
                    performance_chart_data(
                        f"{column}: other values" if value[0] else f"{column} = {value[1]}",
                        values[value],
                        slots,
                        low="estimate_low",
                        high="estimate_high",
                        size=(320, 170),
                    )
                )
                for value in sorted(values)
            ],
        }
        for column, values in sorted(columns.items())
    ]


def trend_page(found: dict[str, list[dict[str, Any]] | None], policy: DriftPolicy | None) -> dict[str, Any]:
    """The trend page's context: its intervals, and the charts as SVG markup (escaped inside);
    found["segments"] is None when the schema has no segment_performance view (section left out),
    found["alerts"] (performance_alerts rows) None or absent when it has no alert bands."""
    segments = found.get("segments")
    drift, performance = found["drift"] or [], found["performance"] or []
    slots = intervals_of(drift, performance, segments or [])
    metrics = shown_metrics(performance, policy)
    segment_metric = metrics[0] if metrics else (policy.estimated_metric if policy else "auc")
    return {
        "intervals": len(slots),
        "drift_charts": drift_charts(drift, slots, policy) if drift else [],
        "performance_charts": performance_charts(performance, slots, policy, found.get("alerts")),
        "segment_metric": segment_metric,
        "segments": None if segments is None else segment_charts(segments, slots, segment_metric),
    }
