"""The scoring-run SQL: intervals, attempts (scoring_runs), partition plans, staged and quarantined rows, publishing.

`run_key` (the column name everywhere here) is the number of one scoring attempt of an interval;
Airflow's `run_id` names the DAG run that asked for it and is stored beside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import IO

from psycopg import sql
from psycopg.types.json import Jsonb

from driftline.db import copy_csv, table

QUARANTINE_COLUMNS = [
    "interval_id",
    "run_key",
    "partition",
    "source_file",
    "row_number",
    "entity_key",
    "reason_codes",
    "raw_row",
]


def interval_id(conn, schema: str, start: datetime, end: datetime) -> int:
    """The id of the interval [start, end), registered on first use."""
    return conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end) VALUES (%s, %s) "
            "ON CONFLICT (interval_start, interval_end) DO UPDATE SET interval_start = EXCLUDED.interval_start "
            "RETURNING interval_id"
        ).format(table(schema, "scored_intervals")),
        (start, end),
    ).fetchone()[0]


def new_run_key(conn, schema: str) -> int:
    """The key of a new scoring attempt (its scoring_runs row is written when it ends)."""
    return conn.execute(
        sql.SQL("SELECT nextval(pg_get_serial_sequence(%s, 'run_key'))"),
        (table(schema, "scoring_runs").as_string(conn),),
    ).fetchone()[0]


def current_run_key(conn, schema: str, interval_id: int) -> int | None:
    """The attempt whose rows are the interval's published rows (None before the first publish)."""
    return conn.execute(
        sql.SQL("SELECT current_run_key FROM {} WHERE interval_id = %s").format(table(schema, "scored_intervals")),
        (interval_id,),
    ).fetchone()[0]


def publish(conn, schema: str, interval_id: int, run_key: int) -> None:
    """Make run_key the interval's published attempt (the predictions view follows current_run_key)."""
    conn.execute(
        sql.SQL("UPDATE {} SET current_run_key = %s WHERE interval_id = %s").format(table(schema, "scored_intervals")),
        (run_key, interval_id),
    )


def delete_replaced_predictions(conn, schema: str, interval_id: int, run_key: int) -> None:
    """Delete the prediction (and [explain] reason) rows of the interval's earlier attempts: the
    published one, and partitioned plans that never published. Newer attempts are never touched."""
    for name in ("prediction_rows", "prediction_reason_rows"):
        conn.execute(
            sql.SQL(
                "DELETE FROM {p} WHERE run_key IN (SELECT run_key FROM {r} WHERE interval_id = %s AND run_key < %s "
                "UNION SELECT run_key FROM {plans} WHERE interval_id = %s AND run_key < %s)"
            ).format(p=table(schema, name), r=table(schema, "scoring_runs"), plans=table(schema, "partition_plans")),
            (interval_id, run_key, interval_id, run_key),
        )


def replace_quarantine(
    conn, schema: str, interval_id: int, run_key: int, published: bool, rows: IO[bytes] | None = None
) -> None:
    """Replace the interval's quarantine rows of earlier attempts with this attempt's (rows: CSV in
    QUARANTINE_COLUMNS order; None when they are already stored, as for a partitioned plan).

    An attempt that is not published keeps the published attempt's rows beside its own (readers tell
    them apart by run_key); only rows of earlier unpublished attempts go. Rows of newer attempts (a
    partitioned plan still scoring) are never touched.
    """
    quarantine = table(schema, "quarantine_rows")
    if published:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE interval_id = %s AND run_key < %s").format(quarantine), (interval_id, run_key)
        )
    else:
        conn.execute(
            sql.SQL(
                "DELETE FROM {} q WHERE q.interval_id = %s AND q.run_key < %s AND q.run_key IS DISTINCT FROM "
                "(SELECT current_run_key FROM {} WHERE interval_id = %s)"
            ).format(quarantine, table(schema, "scored_intervals")),
            (interval_id, run_key, interval_id),
        )
    if rows is not None:
        copy_quarantine(conn, schema, rows)


def copy_quarantine(conn, schema: str, rows: IO[bytes]) -> None:
    """COPY quarantine rows (CSV in QUARANTINE_COLUMNS order, as spilled while scoring)."""
    copy_csv(conn, table(schema, "quarantine_rows"), QUARANTINE_COLUMNS, rows)


def insert_run(conn, schema: str, **columns) -> None:
    """One scoring_runs row (the run summary and run health): column name -> value."""
    _insert(conn, schema, "scoring_runs", columns)


def _insert(conn, schema: str, name: str, columns: dict) -> None:
    """INSERT one row of column name -> value (dicts stored as jsonb)."""
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            table(schema, name),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        ),
        [Jsonb(value) if isinstance(value, dict) else value for value in columns.values()],
    )


def delete_failed_runs(conn, schema: str, run_key: int) -> None:
    """An earlier failed publish of the same attempt gives way to the one being recorded."""
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE run_key = %s AND status = 'failed'").format(table(schema, "scoring_runs")),
        (run_key,),
    )


def published_run(conn, schema: str, interval_id: int, run_key: int) -> dict | None:
    """The run summary when run_key is the interval's published attempt, else None."""
    row = conn.execute(
        sql.SQL(
            "SELECT r.run_id, r.model_version, r.rows_in, r.rows_scored, r.rows_quarantined, r.partitions FROM {} r "
            "JOIN {} i ON i.current_run_key = r.run_key WHERE i.interval_id = %s AND r.run_key = %s "
            "AND r.status = 'succeeded'"
        ).format(table(schema, "scoring_runs"), table(schema, "scored_intervals")),
        (interval_id, run_key),
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("run_id", "model_version", "rows_in", "rows_scored", "rows_quarantined", "partitions"), row))


def published_counts(conn, schema: str, start: datetime, end: datetime) -> tuple | None:
    """(run_key, run_id, model_version, rows_in, rows_scored, rows_quarantined, stored predictions,
    stored quarantine rows) of the interval's published attempt, or None."""
    return conn.execute(
        sql.SQL(
            """SELECT r.run_key, r.run_id, r.model_version, r.rows_in, r.rows_scored, r.rows_quarantined,
                      (SELECT count(*) FROM {p} p WHERE p.run_key = i.current_run_key),
                      (SELECT count(*) FROM {q} q WHERE q.interval_id = i.interval_id
                                                      AND q.run_key = i.current_run_key)
               FROM {i} i JOIN {r} r ON r.run_key = i.current_run_key
               WHERE i.interval_start = %s AND i.interval_end = %s"""
        ).format(
            p=table(schema, "prediction_rows"),
            q=table(schema, "quarantine_rows"),
            i=table(schema, "scored_intervals"),
            r=table(schema, "scoring_runs"),
        ),
        (start, end),
    ).fetchone()


def published_interval(conn, schema: str, start: datetime, end: datetime) -> tuple[int, int, set[str]] | None:
    """(model version, rows scored, quarantined entity keys) of the interval's published scoring run, or None."""
    row = conn.execute(
        sql.SQL(
            "SELECT model_version, rows_scored FROM {} WHERE published AND status = 'succeeded' "
            "AND interval_start = %s AND interval_end = %s"
        ).format(table(schema, "run_summary")),
        (start, end),
    ).fetchone()
    if row is None:
        return None
    keys = conn.execute(
        sql.SQL(
            "SELECT DISTINCT q.entity_key FROM {} q JOIN {} i USING (interval_id) "
            "WHERE i.interval_start = %s AND i.interval_end = %s AND q.entity_key IS NOT NULL "
            "AND q.run_key = i.current_run_key"
        ).format(table(schema, "quarantine_rows"), table(schema, "scored_intervals")),
        (start, end),
    ).fetchall()
    return row[0], row[1], {key for (key,) in keys}


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


def score_reference(conn, schema: str, version: int) -> dict | None:
    """The score distribution a model version recorded on its holdout (its manifest's score_reference)."""
    row = conn.execute(
        sql.SQL("SELECT manifest -> 'score_reference' FROM {} WHERE version = %s").format(
            table(schema, "model_versions")
        ),
        (version,),
    ).fetchone()
    return row[0] if row else None


# -- partitioned attempts: a plan (partition_plans), one partition_runs row per scored partition ------


def insert_plan(
    conn,
    schema: str,
    run_key: int,
    interval_id: int,
    run_id: str,
    groups: list[list[str]],
    model_version: int,
    requested_version: int | None,
    fallback_reason: str | None,
) -> None:
    """Record a partitioned attempt: its groups of input files and the model every partition uses."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (run_key, interval_id, run_id, partitions, files, model_version, requested_version, "
            "fallback_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(table(schema, "partition_plans")),
        (run_key, interval_id, run_id, len(groups), Jsonb(groups), model_version, requested_version, fallback_reason),
    )


def plan(conn, schema: str, run_key: int) -> tuple | None:
    """(interval_id, partitions, model_version, requested_version, fallback_reason, files, planned_at), or None."""
    return conn.execute(
        sql.SQL(
            "SELECT interval_id, partitions, model_version, requested_version, fallback_reason, files, planned_at "
            "FROM {} WHERE run_key = %s"
        ).format(table(schema, "partition_plans")),
        (run_key,),
    ).fetchone()


def lock_plan(conn, schema: str, run_key: int, exclusive: bool) -> None:
    """Lock the plan row until the transaction ends: partitions share it while they write, publishing
    takes it exclusively (so it never counts a partition that is still writing)."""
    mode = sql.SQL("FOR UPDATE" if exclusive else "FOR SHARE")
    conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE run_key = %s {}").format(table(schema, "partition_plans"), mode), (run_key,)
    )


def restart_partition(conn, schema: str, run_key: int, partition: int) -> None:
    """Inside the partition's transaction: hold its lock (a zombie try of it waits) and delete what an
    earlier try of it wrote."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"driftline-partition:{schema}:{run_key}:{partition}",),
    )
    for name in ("prediction_rows", "prediction_reason_rows", "quarantine_rows", "partition_runs"):
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE run_key = %s AND partition = %s").format(table(schema, name)),
            (run_key, partition),
        )


def insert_partition_run(conn, schema: str, **columns) -> None:
    """One partition_runs row (a scored partition's counts, timings, score state): column name -> value."""
    _insert(conn, schema, "partition_runs", columns)


def partition_runs(conn, schema: str, run_key: int) -> list[tuple]:
    """(partition, rows_in, rows_scored, rows_quarantined, stage_seconds, score_state, reasons) of the plan's scored partitions."""
    return conn.execute(
        sql.SQL(
            "SELECT partition, rows_in, rows_scored, rows_quarantined, stage_seconds, score_state, reasons FROM {} "
            "WHERE run_key = %s ORDER BY partition"
        ).format(table(schema, "partition_runs")),
        (run_key,),
    ).fetchall()


def staged_counts(conn, schema: str, run_key: int) -> tuple[int, int]:
    """(prediction rows, quarantine rows) stored under run_key."""
    return conn.execute(
        sql.SQL(
            "SELECT (SELECT count(*) FROM {p} WHERE run_key = %s), (SELECT count(*) FROM {q} WHERE run_key = %s)"
        ).format(p=table(schema, "prediction_rows"), q=table(schema, "quarantine_rows")),
        (run_key, run_key),
    ).fetchone()
