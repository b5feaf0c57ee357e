"""`driftline init-db --analyst-role`: a read-only role that reads the reader views and nothing else.

The test connects as that role to the real PostgreSQL and proves both sides: the views answer, the
quarantine (raw input rows) and registry tables refuse, and nothing can be written.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from psycopg import sql

from driftline import db
from driftline.batch import score_interval
from driftline.cli import main as cli_main
from driftline.config import load_config
from tests.helpers import SMALL_PLAN

FORBIDDEN = [
    "quarantine_rows",
    "model_versions",
    "model_aliases",
    "promotion_events",
    "prediction_rows",
    "scoring_runs",
    "scored_intervals",
    "shadow_predictions",
    "drift_references",
]


@pytest.fixture(scope="module")
def analyst(project, database_url):
    """A unique role name, dropped (with its grants) afterwards: roles are cluster-wide."""
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    yield role
    with psycopg.connect(database_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _as(database_url: str, role: str) -> psycopg.Connection:
    # The test server trusts local connections; with password auth the role's password would come
    # from $DRIFTLINE_ANALYST_PASSWORD as init-db set it.
    return psycopg.connect(psycopg.conninfo.make_conninfo(database_url, user=role), autocommit=True)


def test_analyst_role_reads_views_only(project, database_url, analyst, monkeypatch, capsys):
    config = load_config(project)
    schema = config.db_schema
    score_interval(str(project), *SMALL_PLAN.interval_bounds()[0], run_id="analyst_test")
    with psycopg.connect(database_url) as conn:
        ((quarantined,),) = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(db.table(schema, "quarantine_rows"))
        ).fetchall()
    assert quarantined > 0  # the demo input has planted bad rows: there is something to hide

    password = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("DRIFTLINE_ANALYST_PASSWORD", password)
    for _ in range(2):  # re-runnable
        assert cli_main(["init-db", "--config", str(project), "--analyst-role", analyst]) == 0
    out = capsys.readouterr()
    assert f"read-only role {analyst}" in out.out and "predictions" in out.out
    assert password not in out.out + out.err

    with _as(database_url, analyst) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == analyst
        for view in db.ANALYST_VIEWS:
            conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(db.table(schema, view))).fetchall()
        ((predictions,),) = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(db.table(schema, "predictions"))
        ).fetchall()
        assert predictions > 0
        ((published,),) = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE published").format(db.table(schema, "run_summary"))
        ).fetchall()
        assert published == 1
        for name in FORBIDDEN:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(db.table(schema, name)))
        # Read-only, whatever it tries: its sessions start read-only, and it owns nothing to write to.
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ReadOnlySqlTransaction)):
            conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(db.table(schema, "analyst_scratch")))

    # A grant added by hand outside the list is taken back by the next init-db: the list is the truth.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(db.table(schema, "quarantine_rows"), sql.Identifier(analyst))
        )
    with _as(database_url, analyst) as conn:
        conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(db.table(schema, "quarantine_rows")))
    assert cli_main(["init-db", "--config", str(project), "--analyst-role", analyst]) == 0
    with _as(database_url, analyst) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(db.table(schema, "quarantine_rows")))
    # The superuser still sees everything: nothing was revoked from anyone else.
    with psycopg.connect(os.environ["DRIFTLINE_DB_URL"]) as conn:
        assert (
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(db.table(schema, "quarantine_rows"))).fetchone()[0]
            == quarantined
        )
