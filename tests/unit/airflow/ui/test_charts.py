"""The trend page's inline SVG charts (ui/charts.py, ui/trends.py) on tiny inputs, without a database."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from driftline.airflow.ui.charts import Band, Chart, Series, Threshold, band_polygons, polylines, svg, y_range
from driftline.airflow.ui.trends import intervals_of, performance_chart_data, trend_page
from driftline.config import DriftPolicy

HOSTILE = '<script>alert("x")</script>'
START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def chart(**overrides) -> Chart:
    values = dict(title="t", x_labels=["a", "b", "c"], width=200, height=100, margin=(0, 0, 0, 0))
    return Chart(**{**values, **overrides})


def test_y_range_holds_values_bands_and_thresholds_padded_and_keeps_fixed_ends():
    c = chart(series=[Series("s", [1.0, None, 3.0])], thresholds=[Threshold("t", 5.0)])
    low, high = y_range(c)
    assert low < 1.0 and high > 5.0
    assert y_range(chart(series=[Series("s", [0.2, 0.4, 0.3])], y_min=0.0))[0] == 0.0
    assert y_range(chart(series=[Series("s", [2.0, 2.0, 2.0])])) == (1.45, 2.55)  # flat: widened, not divided by zero
    assert y_range(chart()) == (-0.05, 1.05)  # nothing at all


def test_polyline_spans_the_slots_and_breaks_at_missing_values():
    c = chart(series=[Series("s", [0.0, 1.0, 0.5])], y_min=0.0, y_max=1.0)
    assert polylines(c, c.series[0], (0.0, 1.0)) == ["0.0,100.0 100.0,0.0 200.0,50.0"]
    gappy = Series("s", [0.0, None, 0.5])
    assert polylines(c, gappy, (0.0, 1.0)) == []  # two lone points: no line, only their dots


def test_band_polygon_runs_along_the_highs_and_back_along_the_lows():
    c = chart()
    band = Band("b", [0.0, 0.25, None], [0.5, 1.0, None])
    assert band_polygons(c, band, (0.0, 1.0)) == ["0.0,50.0 100.0,0.0 100.0,75.0 0.0,100.0"]
    lone = Band("b", [None, 0.25, None], [None, 0.75, None])
    assert band_polygons(c, lone, (0.0, 1.0)) == ["97.0,25.0 103.0,25.0 103.0,75.0 97.0,75.0"]


def test_svg_has_axes_a_point_per_value_the_threshold_and_escapes_every_text():
    c = Chart(
        HOSTILE,
        ["2026-11-01", HOSTILE, "2026-11-03"],
        series=[Series(HOSTILE, [0.1, None, 0.3])],
        bands=[Band(HOSTILE, [0.0, 0.1, 0.2], [0.2, 0.3, 0.4])],
        thresholds=[Threshold(HOSTILE, 0.25)],
    )
    out = svg(c)
    assert out.startswith("<svg") and out.endswith("</svg>")
    assert out.count('class="axis"') == 2
    assert out.count('class="point"') == 2  # the missing value has no point
    assert out.count('class="band"') == 1 and out.count('class="threshold"') == 1
    assert "<script" not in out and "&lt;script&gt;" in out
    assert not re.search(r'="[^"]*<', out)  # no unescaped markup inside an attribute


def test_trend_page_shares_one_x_axis_and_leaves_segments_out_without_their_view():
    days = [(START + timedelta(days=i), START + timedelta(days=i + 1)) for i in range(3)]
    drift = [
        {"interval_start": s, "interval_end": e, "drifted_share": 0.1 * i, "prediction_drift": 0.01}
        for i, (s, e) in enumerate(days[:2])
    ]
    performance = [
        {
            "interval_start": s,
            "interval_end": e,
            "metric": "auc",
            "estimate": 0.8,
            "band_low": 0.75,
            "band_high": 0.85,
            "realized": None,
        }
        for s, e in days
    ]
    policy = DriftPolicy(0.3, 0.1, 0.1, 2, 3, 24.0, estimated_metric_floor=0.7)
    assert intervals_of(drift, performance) == days
    page = trend_page({"drift": drift, "performance": performance, "segments": None}, policy)
    assert page["intervals"] == 3 and page["segments"] is None
    share, prediction = page["drift_charts"]
    assert share.count('class="point"') == 2 and share.count('class="threshold"') == 1
    [auc] = page["performance_charts"]
    assert auc.count('class="point"') == 3  # the estimates; nothing realized yet
    assert "trigger floor 0.7" in auc
    segments = [
        {**row, "segment_column": "channel", "segment_value": HOSTILE, "estimate_low": 0.7, "estimate_high": 0.9}
        for row in performance
    ]
    page = trend_page({"drift": drift, "performance": performance, "segments": segments}, policy)
    [[column, charts]] = [(s["column"], s["charts"]) for s in page["segments"]]
    assert column == "channel" and len(charts) == 1 and "&lt;script&gt;" in charts[0] and "<script" not in charts[0]


def test_the_estimate_chart_draws_each_interval_s_alert_band_and_leaves_a_gap_without_one():
    """The alert band stored with each estimate (performance_alerts: a new model version brings its
    own) is a band of its own per interval on the estimated-performance chart, edged with dashed lines."""
    days = [(START + timedelta(days=i), START + timedelta(days=i + 1)) for i in range(4)]
    performance = [
        {"interval_start": s, "interval_end": e, "metric": "auc", "estimate": 0.8, "band_low": 0.78, "band_high": 0.82}
        for s, e in days
    ]
    bands = {0: (0.7, 0.9), 1: (0.7, 0.9), 3: (0.6, 0.95)}  # day 2: estimated without a band
    alerts = [
        {"interval_start": s, "interval_end": e, "metric": "auc", "alert_low": lo, "alert_high": hi}
        for i, (s, e) in enumerate(days)
        for lo, hi in [bands.get(i, (None, None))]
    ] + [
        {
            "interval_start": days[0][0],
            "interval_end": days[0][1],
            "metric": "accuracy",
            "alert_low": 0.1,
            "alert_high": 0.2,
        }
    ]
    data = performance_chart_data("auc", performance, days, alerts=[a for a in alerts if a["metric"] == "auc"])
    estimate, alert = data.bands
    assert estimate.label == "95% band" and not estimate.edged
    assert alert.edged and list(alert.lows) == [0.7, 0.7, None, 0.6] and list(alert.highs) == [0.9, 0.9, None, 0.95]
    low, high = y_range(data)
    assert low < 0.6 and high > 0.95  # the band is inside the axis even where the estimate is far from it
    assert performance_chart_data("auc", performance, days).bands == [estimate]  # no alert rows: no alert band

    policy = DriftPolicy(0.3, 0.1, 0.1, 2, 3, 24.0)
    page = trend_page({"drift": [], "performance": performance, "segments": None, "alerts": alerts}, policy)
    [auc] = page["performance_charts"]
    assert auc.count('class="alert-band"') == 2  # days 0-1 and day 3 alone: the gap splits it
    assert auc.count('class="band-edge"') == 2  # low and high along days 0-1 (a lone day has no line)
    assert ">alert band<" in auc  # in the legend
    without = trend_page({"drift": [], "performance": performance, "segments": None}, policy)["performance_charts"][0]
    assert "alert-band" not in without and "band-edge" not in without
