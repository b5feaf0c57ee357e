"""Postgres: where the database is, the schema, and the bulk-write helpers.

The only module that knows SQL dialect details. Every name goes through psycopg.sql.Identifier;
every value is a bind parameter.
"""

from __future__ import annotations

import io
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

EMBEDDED_DATA_DIR = ".driftline/pgdata"


class DatabaseError(RuntimeError):
    """The database cannot be reached or used; the message says which one (password masked)."""


class IntervalBusyError(RuntimeError):
    """Another run holds the write lock of the same interval."""


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***, for logs and error messages."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


def resolve_db_url(db_url: str | None, db_conn_id: str | None, root: Path) -> str:
    """$DRIFTLINE_DB_URL, else the configured URL, else the Airflow connection, else embedded pgserver."""
    env_url = os.environ.get("DRIFTLINE_DB_URL")
    if env_url:
        return env_url
    if db_url:
        return db_url
    if db_conn_id:
        from airflow.sdk import BaseHook  # only needed when a connection id is configured

        conn = BaseHook.get_connection(db_conn_id)
        return conn.get_uri().replace("postgres://", "postgresql://", 1)
    return start_embedded(root / EMBEDDED_DATA_DIR)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL kept in data_dir; returns its URL."""
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)  # keep running for later commands
    return server.get_uri()


def connect(url: str, **kwargs) -> psycopg.Connection:
    """A psycopg 3 connection; connection failures name the (masked) URL."""
    try:
        return psycopg.connect(url, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {mask_url(url)}: {str(exc).strip()}") from exc


def _ddl(schema: str) -> list[sql.Composed]:
    s = sql.Identifier(schema)

    def q(text: str) -> sql.Composed:
        return sql.SQL(text).format(s=s)

    return [
        q("CREATE SCHEMA IF NOT EXISTS {s}"),
        # One row per data interval; current_run_key points at the attempt whose predictions are published.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.scored_intervals (
                interval_id     serial PRIMARY KEY,
                interval_start  timestamptz NOT NULL,
                interval_end    timestamptz NOT NULL,
                current_run_key bigint,
                UNIQUE (interval_start, interval_end),
                CHECK (interval_end > interval_start))"""
        ),
        # One row per attempt, failed ones included: the run summary.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.scoring_runs (
                run_key          bigserial PRIMARY KEY,
                interval_id      integer NOT NULL REFERENCES {s}.scored_intervals,
                run_id           text NOT NULL,
                model_version    integer,
                status           text NOT NULL CHECK (status IN ('succeeded', 'failed')),
                rows_in          bigint,
                rows_scored      bigint,
                rows_quarantined bigint,
                stage_seconds    jsonb NOT NULL DEFAULT '{{}}',
                source_uri       text,
                message          text,
                started_at       timestamptz NOT NULL,
                finished_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
                CHECK (status <> 'succeeded' OR rows_in = rows_scored + rows_quarantined))"""
        ),
        q("CREATE INDEX IF NOT EXISTS scoring_runs_interval ON {s}.scoring_runs (interval_id, run_key)"),
        # Narrow on purpose: per-interval constants (bounds, model version, run id) live in the two
        # tables above and are joined by the predictions view. No FK: it would cost a trigger per row.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.prediction_rows (
                interval_id     integer NOT NULL,
                entity_key      text,
                score           double precision NOT NULL,
                predicted_class smallint)"""
        ),
        q("CREATE INDEX IF NOT EXISTS prediction_rows_interval ON {s}.prediction_rows (interval_id)"),
        q("CREATE INDEX IF NOT EXISTS prediction_rows_entity ON {s}.prediction_rows (entity_key)"),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.quarantine_rows (
                interval_id  integer NOT NULL,
                run_key      bigint NOT NULL,
                row_number   bigint NOT NULL,
                entity_key   text,
                reason_codes text[] NOT NULL,
                raw_row      jsonb NOT NULL)"""
        ),
        q("CREATE INDEX IF NOT EXISTS quarantine_rows_interval ON {s}.quarantine_rows (interval_id)"),
        # Model registry: the shape the retrain/promote/rollback lifecycle builds on.
        q(
            """CREATE TABLE IF NOT EXISTS {s}.model_versions (
                version      integer PRIMARY KEY,
                created_at   timestamptz NOT NULL DEFAULT now(),
                artifact_uri text NOT NULL,
                sha256       text NOT NULL UNIQUE,
                manifest     jsonb NOT NULL,
                metrics      jsonb NOT NULL,
                status       text NOT NULL CHECK (status IN ('candidate', 'champion', 'archived', 'rejected')))"""
        ),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.model_aliases (
                alias      text PRIMARY KEY,
                version    integer NOT NULL REFERENCES {s}.model_versions,
                updated_at timestamptz NOT NULL DEFAULT now())"""
        ),
        q(
            """CREATE TABLE IF NOT EXISTS {s}.promotion_events (
                event_id     bigserial PRIMARY KEY,
                from_version integer REFERENCES {s}.model_versions,
                to_version   integer NOT NULL REFERENCES {s}.model_versions,
                action       text NOT NULL CHECK (action IN ('promote', 'reject', 'rollback')),
                reason       text NOT NULL,
                run_id       text,
                created_at   timestamptz NOT NULL DEFAULT now())"""
        ),
        # Stable reader surface: analysts query these views, never the narrow tables.
        q(
            """CREATE OR REPLACE VIEW {s}.predictions AS
               SELECT i.interval_start, i.interval_end, p.entity_key, p.score, p.predicted_class,
                      r.model_version, r.run_id, r.finished_at AS scored_at
               FROM {s}.prediction_rows p
               JOIN {s}.scored_intervals i ON i.interval_id = p.interval_id
               JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key"""
        ),
        q(
            """CREATE OR REPLACE VIEW {s}.latest_predictions AS
               SELECT DISTINCT ON (entity_key) *
               FROM {s}.predictions
               ORDER BY entity_key, interval_end DESC"""
        ),
        q(
            """CREATE OR REPLACE VIEW {s}.run_summary AS
               SELECT i.interval_start, i.interval_end, r.run_key, r.run_id, r.status, r.model_version,
                      r.rows_in, r.rows_scored, r.rows_quarantined, r.stage_seconds, r.source_uri,
                      r.message, r.started_at, r.finished_at,
                      r.run_key = i.current_run_key AS published
               FROM {s}.scoring_runs r JOIN {s}.scored_intervals i ON i.interval_id = r.interval_id"""
        ),
    ]


def ensure_schema(conn: psycopg.Connection, schema: str) -> None:
    """Create the schema, tables, indexes and views if missing; safe to call on every run."""
    with conn.transaction():
        # Serialise concurrent first runs: CREATE ... IF NOT EXISTS races on the catalogs.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"driftline-ddl:{schema}",))
        for statement in _ddl(schema):
            conn.execute(statement)


def table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


@contextmanager
def interval_lock(conn: psycopg.Connection, schema: str, interval_label: str) -> Iterator[None]:
    """Hold a session advisory lock on one interval, or fail fast naming the other holder."""
    key = f"driftline-interval:{schema}:{interval_label}"
    got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]
    if not got:
        holder = conn.execute(
            """SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l
               JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted
                 AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)""",
            (key,),
        ).fetchone()
        who = f"backend pid {holder[0]} since {holder[2]:%Y-%m-%d %H:%M:%S}" if holder else "another session"
        raise IntervalBusyError(
            f"interval {interval_label} is being written by another run ({who}); "
            "this run wrote nothing. Retry when that run has finished."
        )
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def copy_csv(conn: psycopg.Connection, target: sql.Composed, columns: list[str], data: bytes | IO[bytes]) -> None:
    """COPY CSV bytes (or a binary file object) into target(columns)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        if isinstance(data, (bytes, bytearray, memoryview)):
            copy.write(data)
        else:
            while block := data.read(1 << 20):
                copy.write(block)


def arrow_to_csv_bytes(table) -> bytes:
    """Encode an Arrow table as header-less CSV for COPY (doubles keep full precision)."""
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()
