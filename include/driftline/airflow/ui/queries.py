"""What the UI pages read: the deployment's datasets, drift reports, drifted columns, the registry
overview (read-only SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from driftline.airflow.ui.report_files import report_id
from driftline.config import DatasetConfig, Datasets, load_datasets


def page_datasets() -> Datasets:
    """The datasets the pages show: the same configs the DAG files build from ($DRIFTLINE_CONFIG, else
    every *.toml of $DRIFTLINE_CONFIGS), read per request so a config dropped into the folder appears."""
    return load_datasets()


def page_config(dataset: str) -> DatasetConfig | None:
    """The config of the dataset called `dataset`, or None when the deployment has none that loads."""
    found = page_datasets().get(dataset)
    return None if found is None else found[1]


def connect(config: DatasetConfig):
    """A read connection to the config's database."""
    from driftline import db

    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    return db.connect(url, application_name="driftline-ui", autocommit=True)


def _exists(conn, schema: str, name: str) -> bool:
    from psycopg import sql

    # to_regclass takes a text name: quote it the way Postgres would, never by string formatting.
    qualified = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name)).as_string(conn)
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]


def _rows(conn, query, params: tuple = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(query, params)
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def drift_reports(conn, schema: str, limit: int = 500) -> list[dict[str, Any]]:
    """One row per monitored interval, newest first, with its latest trigger decision."""
    from psycopg import sql

    from driftline.db import table

    if not _exists(conn, schema, "drift_summary"):
        return []
    rows = _rows(
        conn,
        sql.SQL(
            "SELECT interval_start, interval_end, model_version, features, drifted_features, counted_features, "
            "drifted_share, prediction_method, prediction_drift, breach, trigger, reason, retrain_run_id, "
            "rows_scored, current_rows, reference_rows, run_id, monitored_at "
            "FROM {} ORDER BY interval_start DESC, interval_end DESC LIMIT %s"
        ).format(table(schema, "drift_summary")),
        (limit,),
    )
    for row in rows:
        row["report_id"] = report_id(row["interval_start"], row["interval_end"])
    return rows


def drifted_columns(conn, schema: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per-feature drift results of one interval."""
    from psycopg import sql

    from driftline.db import table

    return _rows(
        conn,
        sql.SQL(
            "SELECT column_name, column_type, method, statistic, threshold, drifted, effect_size, counted "
            "FROM {} WHERE interval_start = %s AND interval_end = %s ORDER BY counted DESC, drifted DESC, column_name"
        ).format(table(schema, "drift_features")),
        (start, end),
    )


def report_summary(conn, config: DatasetConfig, start: datetime, end: datetime) -> dict[str, Any] | None:
    """The stored results of one monitored interval with its latest decision (drift.summary.load_summary),
    or None without one."""
    from driftline.drift.summary import load_summary

    return None if config.drift is None else load_summary(conn, config.db_schema, start, end)


def stored_report_path(conn, schema: str, start: datetime, end: datetime) -> str | None:
    from psycopg import sql

    from driftline.db import table

    if not _exists(conn, schema, "drift_intervals"):
        return None
    row = conn.execute(
        sql.SQL("SELECT report_path FROM {} WHERE interval_start = %s AND interval_end = %s").format(
            table(schema, "drift_intervals")
        ),
        (start, end),
    ).fetchone()
    return row[0] if row else None


def registry_overview(conn, schema: str) -> dict[str, Any]:
    """Versions with aliases and metrics (own holdout, and shared holdout at promotion), promotion
    history and evaluations (newest first) and realized performance."""
    from psycopg import sql

    from driftline import registry
    from driftline.db import table

    if not _exists(conn, schema, "model_versions"):
        return {"versions": [], "history": [], "realized": [], "shared": {}, "evaluations": []}
    versions = registry.list_versions(conn, schema)
    history = list(reversed(registry.promotion_history(conn, schema)))
    shared, evaluations = {}, []
    if _exists(conn, schema, "model_evaluations"):
        from driftline.registry import shared_holdout_at_promotion

        shared = shared_holdout_at_promotion(conn, schema)
        evaluations = _rows(
            conn,
            sql.SQL(
                "SELECT evaluation_id, evaluated_at, candidate_version, champion_version, holdout_start, holdout_end, "
                "holdout_rows, holdout_reason, passed, failures, run_id FROM {} ORDER BY evaluation_id DESC LIMIT 50"
            ).format(table(schema, "model_evaluations")),
        )
    realized = []
    if _exists(conn, schema, "realized_performance"):
        realized = _rows(
            conn,
            sql.SQL(
                "SELECT interval_start, interval_end, model_version, rows_predicted, rows_labelled, metrics, "
                "labels_as_of FROM {} ORDER BY interval_start DESC LIMIT 200"
            ).format(table(schema, "realized_performance")),
        )
    return {
        "versions": versions,
        "history": history,
        "realized": realized,
        "shared": shared,
        "evaluations": evaluations,
        "importance": champion_importance(conn, schema),
    }


def champion_importance(conn, schema: str) -> dict[str, Any] | None:
    """The champion's global importance: LightGBM gain per feature, read from its verified model
    text (explain.gain_importance), largest first with its share; None without a loadable champion."""
    from driftline.errors import DriftlineError
    from driftline.registry import load_model
    from driftline.scoring.explain import gain_importance

    try:
        model = load_model(conn, schema, scoring_only=True)
    except DriftlineError:
        return None
    gains = gain_importance(model.text or b"")
    total = sum(gains.values()) or 1.0
    features = [
        {"feature": name, "gain": gain, "share": gain / total}
        for name, gain in sorted(gains.items(), key=lambda item: -item[1])
    ]
    return {"version": model.version, "features": features}


def trend_rows(conn, config: DatasetConfig, limit: int = 120) -> dict[str, list[dict[str, Any]] | None]:
    """The trend page's rows, oldest first, of the last `limit` interval starts: drift per interval,
    estimated vs realized performance per interval and metric, and per segment, and the alert band
    per interval and metric; None for a view the schema does not have (segment_performance comes
    with segments)."""
    columns = {
        "drift": ("drift_summary", "drifted_share, prediction_drift, breach, trigger", ""),
        "performance": (
            "estimated_vs_realized",
            "model_version, metric, estimate, band_low, band_high, realized, realized_rows, rows",
            "metric",
        ),
        "segments": (
            "segment_performance",
            "segment_column, segment_value, segment_other, rows, prediction_mean, drifted_features, metric, "
            "estimate, estimate_low, estimate_high, realized",
            "segment_column, segment_value, segment_other, metric",
        ),
        "alerts": ("performance_alerts", "metric, alert_low, alert_high", "metric"),
    }
    return {key: _recent_rows(conn, config.db_schema, *spec, limit) for key, spec in columns.items()}


def _recent_rows(conn, schema: str, view: str, columns: str, order: str, limit: int) -> list[dict[str, Any]] | None:
    """`columns` of `view`'s rows whose interval starts are among its newest `limit`, oldest first."""
    from psycopg import sql

    from driftline.db import table

    if not _exists(conn, schema, view):
        return None
    # columns and order are this module's constants, never input: composed as SQL text.
    query = sql.SQL(
        "SELECT interval_start, interval_end, " + columns + " FROM {view} WHERE interval_start >= "
        "(SELECT min(interval_start) FROM (SELECT DISTINCT interval_start FROM {view} ORDER BY 1 DESC LIMIT %s) AS recent) "
        "ORDER BY interval_start, interval_end" + (", " + order if order else "")
    ).format(view=table(schema, view))
    return _rows(conn, query, (limit,))
