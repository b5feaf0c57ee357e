"""The driftline summary that heads each drift report: what was compared, what counted, what was decided.

Evidently's panels alone do not explain a decision (its "drift score" is a p-value for some methods,
it flags features driftline does not count, it knows no policy). This block says, for one interval:
dataset, interval, model version, reference window and sample sizes, per feature the statistic
(p-value or distance), effect size and whether it counted and why, the thresholds, and the decision
with its reason. It is built from the stored results only (no row data) and every value is escaped.

Light on purpose (psycopg and the standard library): the UI plugin renders it too.
"""

from __future__ import annotations

import html
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

START, END = "<!-- driftline-summary:start -->", "<!-- driftline-summary:end -->"
# Evidently methods whose statistic is a p-value (drift when below the threshold); the others are distances.
P_VALUE_METHODS = frozenset(
    {
        "ks",
        "chisquare",
        "z",
        "fisher_exact",
        "g_test",
        "t_test",
        "mannw",
        "anderson",
        "cramer_von_mises",
        "epps_singleton",
        "empirical_mmd",
    }
)


def statistic_kind(method: str) -> str:
    return "p-value" if method in P_VALUE_METHODS else "distance"


def why(feature: dict, floor: float | None, number: Callable[[Any], str] | None = None) -> str:
    """Why a feature counts as drift for the policy, or why not, in words. floor: the effect-size
    floor (None: none applies); number: how numbers are written (default: this report's, the floor as set)."""
    bound = None if floor is None else number(floor) if number else f"{floor:g}"
    number = number or _number
    kind = statistic_kind(feature["method"])
    flagged_by = (
        f"{feature['method']} {kind} {number(feature['statistic'])} vs threshold {number(feature['threshold'])}"
    )
    if not feature["drifted"]:
        return f"not flagged ({flagged_by})"
    if bound is None:
        return f"flagged ({flagged_by})"
    if feature["counted"]:
        return f"flagged ({flagged_by}) and effect size {number(feature['effect_size'])} >= floor {bound}"
    return f"flagged ({flagged_by}), but effect size {number(feature['effect_size'])} < floor {bound}: not counted"


def load_summary(conn, schema: str, start: datetime, end: datetime) -> dict | None:
    """The stored results of one monitored interval with its latest decision (None if not monitored)."""
    from psycopg import sql
    from psycopg.rows import dict_row

    from driftline.db import table

    with conn.cursor(row_factory=dict_row) as cursor:
        head = cursor.execute(
            sql.SQL(
                "SELECT s.*, m.manifest -> 'training_window' AS training_window "
                "FROM {s} s LEFT JOIN {m} m ON m.version = s.model_version "
                "WHERE s.interval_start = %s AND s.interval_end = %s"
            ).format(s=table(schema, "drift_summary"), m=table(schema, "model_versions")),
            (start, end),
        ).fetchone()
        if head is None:
            return None
        head["feature_results"] = cursor.execute(
            sql.SQL(
                "SELECT column_name, column_type, method, statistic, threshold, drifted, effect_size, counted "
                "FROM {} WHERE interval_start = %s AND interval_end = %s ORDER BY counted DESC, drifted DESC, column_name"
            ).format(table(schema, "drift_features")),
            (start, end),
        ).fetchall()
    return head


def summary_html(dataset: str, summary: dict, policy) -> str:
    """The summary block (an HTML fragment with its own styles); every value escaped."""
    e = html.escape
    window = summary.get("training_window") or {}
    reference = (
        f"training window of model v{summary['model_version']}: {window.get('start')} to {window.get('end')}"
        if window.get("start") and window.get("end")
        else f"training rows of model v{summary['model_version']}"
    )
    if summary.get("reason") is None:
        decision = "not decided yet (monitor_drift's decide_retrain records it)"
    else:
        verdict = "retrain triggered" if summary.get("trigger") else "no retrain"
        decision = f"{verdict}; breach: {'yes' if summary['breach'] else 'no'}. {summary['reason']}"
    floor = policy.effect_size_floor
    rows = "".join(
        "<tr>"
        f"<td>{e(f['column_name'])}</td><td>{e(f['column_type'])}</td><td>{e(f['method'])}</td>"
        f"<td>{e(statistic_kind(f['method']))}</td><td class='num'>{e(_number(f['statistic']))}</td>"
        f"<td class='num'>{e(_number(f['threshold']))}</td><td class='num'>{e(_number(f['effect_size']))}</td>"
        f"<td>{'yes' if f['counted'] else 'no'}</td><td>{e(why(f, floor))}</td>"
        "</tr>"
        for f in summary["feature_results"]
    )
    facts = [
        ("dataset", dataset),
        ("interval", f"{summary['interval_start']:%Y-%m-%d %H:%M} to {summary['interval_end']:%Y-%m-%d %H:%M} UTC"),
        ("model version", f"v{summary['model_version']}"),
        ("reference", f"{reference}; {summary['reference_rows']} rows sampled"),
        ("current", f"{summary['current_rows']} rows sampled of {summary['rows_scored']} scored"),
        (
            "features counted",
            f"{summary['counted_features']} of {summary['features']} "
            f"(drifted share {summary['drifted_share']:.2f}; Evidently flagged {summary['drifted_features']})",
        ),
        (
            "prediction drift",
            f"{summary['prediction_method']} {statistic_kind(summary['prediction_method'])} "
            f"{_number(summary['prediction_drift'])} on the model score",
        ),
        (
            "thresholds",
            f"breach when drifted share >= {policy.drifted_share:g} or prediction drift >= "
            f"{policy.prediction_drift:g}; a flagged feature counts when its effect size >= {floor:g}; "
            f"retrain when {policy.breaches} of the last {policy.window} intervals breach, "
            f"not within {policy.cooldown_hours:g} h of the last retrain",
        ),
        ("decision", decision),
    ]
    facts_html = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in facts)
    return (
        f"{START}<section id='driftline-summary' style='font:14px sans-serif;margin:16px;padding:12px;"
        "border:1px solid #999;background:#fff;color:#111'>"
        "<style>#driftline-summary table{border-collapse:collapse;margin:8px 0}"
        "#driftline-summary th,#driftline-summary td{border:1px solid #ccc;padding:3px 6px;text-align:left;"
        "vertical-align:top}#driftline-summary .num{text-align:right}</style>"
        f"<h2>driftline drift summary</h2><table>{facts_html}</table>"
        "<table><tr><th>feature</th><th>type</th><th>method</th><th>statistic is</th><th>statistic</th>"
        "<th>threshold</th><th>effect size</th><th>counted</th><th>why</th></tr>"
        f"{rows}</table>"
        "<p>p-value: drift when below the threshold (0 is the strongest drift); distance: drift when at or "
        "above it. Evidently's panels follow; driftline counts only the features marked counted above.</p>"
        f"</section>{END}"
    )


def put_summary(path: Path, block: str) -> None:
    """Insert (or replace) the summary at the top of the report's body; atomic, like the report itself."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        body = re.search(r"<body[^>]*>", text, re.I)
        at = body.end() if body else 0
        text = text[:at] + block + text[at:]
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def refresh_report_summary(conn, config, start: datetime, end: datetime) -> None:
    """Write the driftline summary (results, thresholds, latest decision) at the top of the interval's report."""
    summary = load_summary(conn, config.db_schema, start, end)
    if summary is None or not Path(summary["report_path"]).is_file():
        log.warning("no drift report file for [%s, %s) to head with the summary", start.isoformat(), end.isoformat())
        return
    put_summary(Path(summary["report_path"]), summary_html(config.name, summary, config.drift.trigger))


def _number(value) -> str:
    if value is None:
        return "-"
    value = float(value)
    return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")
