"""Alembic migrations of the deployment schema: a fresh schema and one made before Alembic end in
the same catalog, the revision is recorded inside the deployment schema, and upgrading is idempotent."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from driftline import db
from driftline.db.schema import VERSION_TABLE, head_revision, schema_revision, upgrade_statements
from tests.integration import pre_alembic_schema

CATALOG = {
    "columns": """SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                         pg_get_expr(d.adbin, d.adrelid)
                  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  JOIN pg_namespace n ON n.oid = c.relnamespace
                  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE n.nspname = %(s)s AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> %(v)s
                    AND c.relkind IN ('r', 'v', 'S')""",
    "constraints": """SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
                      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
                      JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = %(s)s AND c.relname <> %(v)s""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s AND tablename <> %(v)s",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = %(s)s",
    "relations": """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = %(s)s AND c.relname NOT LIKE %(v)s || '%%'""",
}


# Added by revisions after the pre-Alembic head (0004): not in what the code before Alembic built.
AFTER_BASELINE = (
    "segment_values",
    "segment_intervals",
    "segment_estimates",
    "segment_performance",
    "compiled_objects",
    "performance_alerts",
)
# Columns later revisions added to baseline tables: (table, column).
ADDED_COLUMNS = {("estimated_performance", "alert_low"), ("estimated_performance", "alert_high")}


def catalog(conn: psycopg.Connection, schema: str) -> dict[str, list[tuple]]:
    """Every table, column, constraint, index and view of schema (but the version table), with the
    schema's name replaced so that two schemas compare."""
    params = {"s": schema, "v": VERSION_TABLE}
    return {
        part: sorted(
            tuple(value.replace(schema, "<schema>") if isinstance(value, str) else value for value in row)
            for row in conn.execute(query, params).fetchall()
        )
        for part, query in CATALOG.items()
    }


@pytest.fixture
def conn(database_url):
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def new_schema() -> str:
    return f"mig_{uuid.uuid4().hex[:8]}"


def test_fresh_schema_upgrades_to_head_with_the_version_table_inside_it(conn):
    schema = new_schema()
    db.ensure_schema(conn, schema)
    assert schema_revision(conn, schema) == head_revision() == "0008"
    where = conn.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = %s", (VERSION_TABLE,)
    ).fetchall()
    assert (schema,) in where and ("public",) not in where
    assert conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0] is None
    assert set(db.ANALYST_VIEWS) <= {name for name, _ in catalog(conn, schema)["views"]}


def test_schema_made_before_alembic_upgrades_to_the_catalog_of_a_fresh_install(conn):
    fresh, old = new_schema(), new_schema()
    db.ensure_schema(conn, fresh)
    pre_alembic_schema.ensure_schema(conn, old)
    conn.execute(
        psycopg.sql.SQL(
            "INSERT INTO {} (interval_start, interval_end) VALUES (now(), now() + interval '1 day')"
        ).format(db.table(old, "scored_intervals"))
    )
    assert schema_revision(conn, old) is None  # schema_version holds the old DDL digest

    db.ensure_schema(conn, old)

    assert schema_revision(conn, old) == head_revision()
    assert catalog(conn, old) == catalog(conn, fresh)
    assert (
        conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(db.table(old, "scored_intervals"))).fetchone()[0]
        == 1
    )


def test_the_baseline_revisions_build_what_the_code_before_alembic_built(conn):
    fresh, old = new_schema(), new_schema()
    db.ensure_schema(conn, fresh)
    pre_alembic_schema.ensure_schema(conn, old)
    built = {
        part: [
            row
            for row in rows
            if not str(row[0]).startswith(AFTER_BASELINE)
            and not (part == "columns" and (row[0], row[2]) in ADDED_COLUMNS)
        ]
        for part, rows in catalog(conn, fresh).items()
    }
    assert catalog(conn, old) == built


def test_upgrade_is_idempotent(conn):
    schema = new_schema()
    db.ensure_schema(conn, schema)
    before = catalog(conn, schema)
    db.ensure_schema(conn, schema)
    assert upgrade_statements(schema, head_revision()) == []
    # Every revision again over the finished schema (what a pre-Alembic deployment goes through).
    conn.execute(psycopg.sql.SQL("DELETE FROM {}").format(db.table(schema, VERSION_TABLE)))
    db.ensure_schema(conn, schema)
    assert catalog(conn, schema) == before
    assert schema_revision(conn, schema) == head_revision()


def test_a_schema_at_head_is_checked_with_one_select_and_no_alembic(conn, database_url):
    import subprocess
    import sys

    schema = new_schema()
    db.ensure_schema(conn, schema)
    code = (
        "import sys, psycopg; from driftline import db\n"
        f"with psycopg.connect({database_url!r}, autocommit=True) as conn: db.ensure_schema(conn, {schema!r})\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'alembic'], 'alembic imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_reading_the_revision_of_a_missing_schema_keeps_the_callers_transaction(database_url):
    with psycopg.connect(database_url) as conn:  # not autocommit: a transaction is open
        conn.execute("SELECT 1")
        assert schema_revision(conn, new_schema()) is None
        assert conn.execute("SELECT 2").fetchone() == (2,)  # not aborted
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert schema_revision(conn, new_schema()) is None
