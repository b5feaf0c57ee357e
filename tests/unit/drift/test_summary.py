"""The summary that heads a drift report: decision, thresholds, per-feature table; everything escaped."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from driftline.config import DriftPolicy
from driftline.drift.summary import END, START, put_summary, summary_html, why

POLICY = DriftPolicy(
    drifted_share=0.3, prediction_drift=0.1, effect_size_floor=0.1, breaches=2, window=3, cooldown_hours=24
)
HOSTILE = '<script>alert("x")</script>'


def feature(name, method, statistic, drifted, effect, counted):
    return {
        "column_name": name,
        "column_type": "numeric",
        "method": method,
        "statistic": statistic,
        "threshold": 0.05,
        "drifted": drifted,
        "effect_size": effect,
        "counted": counted,
    }


SUMMARY = {
    "interval_start": datetime(2026, 11, 4, tzinfo=timezone.utc),
    "interval_end": datetime(2026, 11, 5, tzinfo=timezone.utc),
    "model_version": 3,
    "training_window": {"start": "2026-10-01", "end": "2026-10-20"},
    "reference_rows": 5000,
    "current_rows": 4000,
    "rows_scored": 9000,
    "features": 3,
    "drifted_features": 2,
    "counted_features": 1,
    "drifted_share": 1 / 3,
    "prediction_method": "wasserstein",
    "prediction_drift": 0.04,
    "breach": True,
    "trigger": False,
    "reason": f"breach not persistent {HOSTILE}",
    "feature_results": [
        feature("amount", "ks", 1e-40, True, 0.8, True),
        feature("hour", "ks", 0.001, True, 0.02, False),
        feature(HOSTILE, "ks", 0.7, False, 0.01, False),
    ],
}


def test_summary_states_the_decision_thresholds_and_each_feature_with_why():
    block = summary_html("demo", SUMMARY, POLICY)
    assert block.startswith(START) and block.endswith(END)
    assert "<script>" not in block and "&lt;script&gt;" in block
    assert "no retrain; breach: yes. breach not persistent" in block
    assert "2026-11-04 00:00 to 2026-11-05 00:00 UTC" in block and "v3" in block
    assert "training window of model v3: 2026-10-01 to 2026-10-20; 5000 rows sampled" in block
    assert "4000 rows sampled of 9000 scored" in block and "1 of 3" in block
    assert "drifted share &gt;= 0.3" in block and "2 of the last 3" in block
    assert "<tr><td>amount</td><td>numeric</td><td>ks</td><td>p-value</td>" in block
    assert "wasserstein distance 0.04" in block


def test_why_a_feature_counts_or_not():
    assert why(SUMMARY["feature_results"][0], 0.1).endswith(">= floor 0.1")
    assert why(SUMMARY["feature_results"][1], 0.1).endswith("< floor 0.1: not counted")
    assert why(SUMMARY["feature_results"][2], 0.1).startswith("not flagged (ks p-value 0.7")


def test_an_undecided_interval_says_so():
    assert "not decided yet" in summary_html("demo", {**SUMMARY, "reason": None, "trigger": None}, POLICY)


def test_the_summary_heads_the_body_and_is_replaced_not_repeated(tmp_path: Path):
    report = tmp_path / "r.html"
    report.write_text("<html><head><script>evidently()</script></head><body class='x'><div>panels</div></body></html>")
    put_summary(report, summary_html("demo", {**SUMMARY, "reason": None}, POLICY))
    put_summary(report, summary_html("demo", SUMMARY, POLICY))
    text = report.read_text()
    assert text.count(START) == 1 and "not decided yet" not in text
    assert text.index("<body class='x'>") + len("<body class='x'>") == text.index(START)
    assert text.index(END) < text.index("<div>panels</div>")
