"""The deployment schema: bring it to the newest Alembic revision, name its tables, grant analysts.

The revisions live in db/migrations/versions. Alembic renders each revision's SQL (offline mode);
it runs here on the caller's psycopg connection, in one transaction under an advisory lock, and
the version table is <schema>.schema_version, so every deployment schema carries its own version.
"""

from __future__ import annotations

import ast
import functools
from contextlib import nullcontext
from pathlib import Path

import psycopg
from psycopg import sql

# What an analyst's read-only role may SELECT (`driftline init-db --analyst-role`): the reader
# views only. Never quarantine_rows (raw input rows) nor the registry tables. Add new reader views
# here; the grant revokes everything else in the schema, so the list is the whole truth.
ANALYST_VIEWS = (
    "predictions",
    "latest_predictions",
    "predictions_for_review",
    "run_summary",
    "run_health",
    "run_stage_health",
    "drift_summary",
    "estimated_vs_realized",
    "performance_alerts",
    "segment_performance",
    "prediction_reasons",
)

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "schema_version"


def table(schema: str, name: str) -> sql.Composed:
    """schema.name, both quoted as identifiers."""
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def ensure_schema(conn: psycopg.Connection, schema: str) -> None:
    """Upgrade the schema to the newest revision (`driftline init-db`); safe to call on every run.

    When the schema is already at the head revision this is one read and takes no table lock. It
    matters on the scoring path: `ALTER TABLE ... IF NOT EXISTS` and `CREATE INDEX IF NOT EXISTS`
    lock their table even when there is nothing to do, so running them beside an interval's open
    write queued every reader behind it and could deadlock with it (Postgres then aborted the
    scoring transaction).
    """
    head = head_revision()
    if schema_revision(conn, schema) == head:
        return
    with conn.transaction():
        # Serialise concurrent first runs: CREATE ... IF NOT EXISTS races on the catalogs.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"driftline-ddl:{schema}",))
        current = schema_revision(conn, schema)
        if current == head:
            return  # another process brought it up to date while this one waited
        if current is None:
            # No revision recorded: a new schema, or one made before Alembic (its schema_version
            # held a DDL digest). Revisions up to the pre-Alembic head are idempotent, so the
            # upgrade from base brings any earlier deployment up to date, then records the head.
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table(schema, VERSION_TABLE)))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for statement in upgrade_statements(schema, current):
            conn.execute(statement)


def schema_revision(conn: psycopg.Connection, schema: str) -> str | None:
    """The Alembic revision the schema is at, or None (no schema, no version row, or a pre-Alembic
    version table without version_num); one SELECT of the version table, no table lock beyond the read."""
    query = sql.SQL("SELECT version_num FROM {}").format(table(schema, VERSION_TABLE))
    try:
        # Inside a transaction a failed SELECT must not abort it: a savepoint there.
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with nullcontext() if conn.autocommit and idle else conn.transaction():
            row = conn.execute(query).fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.errors.InvalidSchemaName):
        return None
    return row[0] if row else None


def _alembic_config(schema: str | None = None, output=None):
    """Alembic configured in code: the scripts in db/migrations, no alembic.ini."""
    from alembic.config import Config

    config = Config(output_buffer=output)
    config.set_main_option("script_location", str(MIGRATIONS))
    if schema is not None:
        config.attributes["schema"] = schema
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision in db/migrations/versions, read from the files' `revision` and
    `down_revision` assignments without importing Alembic (0.3 s of CPU on every scoring run); Alembic
    decides only when the files do not name exactly one head."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = _revision_of(path)
        if found is None:
            return _alembic_head()
        revision, down = found
        revisions.add(revision)
        parents.update(down)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _revision_of(path: Path) -> tuple[str, tuple[str, ...]] | None:
    """(revision, down_revisions) as a revision file assigns them at module level, or None."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_bytes(), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("revision", "down_revision"):
                try:
                    values[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    return None
    revision, down = values.get("revision"), values.get("down_revision", None)
    downs = (down,) if isinstance(down, str) else tuple(down) if isinstance(down, (tuple, list)) else ()
    if not isinstance(revision, str) or (down is not None and not downs) or not all(isinstance(d, str) for d in downs):
        return None
    return revision, downs


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


class _Statements:
    """Alembic's offline output buffer: one write per statement ("<sql>;\\n\\n"), kept as a list."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def write(self, text: str) -> None:
        statement = text.strip().removesuffix(";").strip()
        if statement and not statement.startswith("--"):  # "-- Running upgrade 0001 -> 0002"
            self.statements.append(statement)

    def flush(self) -> None:
        pass


def upgrade_statements(schema: str, current: str | None) -> list[str]:
    """The SQL that takes schema from revision current (None: nothing yet) to the head, version
    table bookkeeping included, as Alembic renders it (`alembic upgrade --sql`)."""
    from alembic import command

    output = _Statements()
    command.upgrade(_alembic_config(schema, output), f"{current}:head" if current else "head", sql=True)
    return output.statements


def execute_in_revision(*statements: str) -> None:
    """For revision files: emit each statement with {s} as the quoted deployment schema and {name}
    as its name as a text literal."""
    from alembic import context, op

    schema = context.config.attributes["schema"]
    names = {"s": sql.Identifier(schema), "name": sql.Literal(schema)}
    for statement in statements:
        op.execute(sql.SQL(statement).format(**names).as_string(None))


def grant_analyst_role(conn: psycopg.Connection, schema: str, role: str, password: str | None = None) -> list[str]:
    """Create (if missing) a LOGIN role that can read ANALYST_VIEWS and nothing else in the schema.

    Re-runnable: privileges are revoked and granted again in one transaction, so a view dropped from
    ANALYST_VIEWS loses its grant. The password, when given, comes from the caller's environment and
    is sent as a quoted literal, never logged. Returns the views granted.
    """
    ident, s = sql.Identifier(role), sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"driftline-role:{role}",))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(ident))
        if password:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
        database = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), ident))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, ident))
        conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, ident))
        conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(s, ident))
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.SQL(", ").join(table(schema, view) for view in ANALYST_VIEWS), ident
            )
        )
    return list(ANALYST_VIEWS)
