"""Scoring-run SQL: which intervals are published, by which run and model version."""

from __future__ import annotations

from datetime import datetime

from psycopg import sql

from driftline.db import table


def published_intervals(conn, schema: str, start: datetime | None = None, end: datetime | None = None) -> list[tuple]:
    """(interval_start, interval_end, model_version, run_id) of published intervals overlapping [start, end)."""
    return conn.execute(
        sql.SQL(
            "SELECT i.interval_start, i.interval_end, r.model_version, r.run_id FROM {} i "
            "JOIN {} r ON r.run_key = i.current_run_key "
            "WHERE (%s::timestamptz IS NULL OR i.interval_end > %s) AND (%s::timestamptz IS NULL OR i.interval_start < %s) "
            "ORDER BY i.interval_start"
        ).format(table(schema, "scored_intervals"), table(schema, "scoring_runs")),
        (start, start, end, end),
    ).fetchall()
