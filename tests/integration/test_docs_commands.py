"""The bash blocks marked `<!-- runs in tests: tests/integration/test_docs_commands.py -->` run as written:
each page's blocks in order, as one bash script each, in a fresh project (the demo config and its
synthetic data) with `driftline` on PATH, against the session's test database.

Blocks that need a running Airflow, Docker, the network or minutes of benchmark are marked `not-run`
with the test that covers them instead (tests/integration/test_docs.py checks every block is one or
the other)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from driftline.devtools.demo_data import DemoPlan
from tests.helpers import (
    blocks_run_by,
    config_copy,
    doc_blocks,
    doc_shell_env,
    fetch,
    run_doc_block,
)

HERE = "tests/integration/test_docs_commands.py"
# The pages whose blocks this file runs, and how many blocks each: a block marked for this file on any
# other page, or one more on these, fails here until a test below runs it.
PAGES = {
    "docs/configure/dataset.md": 2,
    "docs/configure/datasets.md": 1,
    "docs/configure/input.md": 1,
    "docs/operate/lineage.md": 1,
}


def test_every_block_marked_for_this_file_is_run_here():
    marked: dict[str, int] = {}
    for block in doc_blocks("bash"):
        if block.mark == "runs in tests" and block.detail == HERE:
            marked[block.page] = marked.get(block.page, 0) + 1
    assert marked == PAGES


# Small on purpose: each command is a process of its own, and three of them train (train, retrain, and
# the other page's train). Ten days of history and one interval (2026-11-01, the pages' example dates).
PLAN = DemoPlan(history_days=10, history_rows_per_day=600, intervals=1, rows_per_interval=1_500)


def demo_project(root: Path, name: str) -> Path:
    """The demo config as root/config/<name> (a schema and registry of its own, fewer boosting rounds)
    and its synthetic data: what a newcomer has after copying the demo config; no suite, no model yet."""
    from driftline.config import load_config
    from driftline.devtools.demo_data import write_demo_data

    schema = f"docs_{uuid.uuid4().hex[:8]}"
    keys = {"schema": f'"{schema}"', "registry_dir": f'"models/{schema}"', "num_boost_round": "30"}
    path = config_copy(root, name=name, keys=keys)
    write_demo_data(load_config(path), PLAN)
    return path


@pytest.mark.slow  # eight `driftline` processes, two of them training: 196 s at load average 13 on 2 cores
def test_describe_your_dataset_commands(tmp_path, database_url):
    """docs/configure/dataset.md: the dry run, then suite, init-db, train, suite --from-model, score,
    monitor, retrain and models on config/loans.toml (here a copy of the demo config)."""
    page = "docs/configure/dataset.md"
    dry_run, walkthrough = blocks_run_by(page, HERE)
    config = demo_project(tmp_path, "loans.toml")
    env = doc_shell_env(tmp_path, database_url)
    plan = json.loads(run_doc_block(dry_run, tmp_path, env))
    assert plan["landed"] and len(plan["files"]) == 1, plan  # the interval's file of the demo data
    out = run_doc_block(walkthrough, tmp_path, env, timeout=600)
    assert "champion" in out
    [(scored, version)] = fetch(
        config,
        "SELECT rows_scored, model_version FROM {s}.run_summary WHERE published AND interval_start = '2026-11-01'",
        url=database_url,
    )
    assert scored > 0 and version >= 1
    assert fetch(
        config, "SELECT count(*) FROM {s}.drift_summary WHERE interval_start = '2026-11-01'", url=database_url
    ) == [(1,)]


@pytest.mark.slow  # three `driftline` processes, one training: 37 s at load average 13 on 2 cores
def test_several_datasets_commands(tmp_path, database_url):
    """docs/configure/datasets.md: copy the demo config, its suite and champion, the analysts' role (a
    role name of this test's own for `driftline_analyst`: roles are cluster-wide, dropped afterwards)."""
    (block,) = blocks_run_by("docs/configure/datasets.md", HERE)
    demo_project(tmp_path, "demo.toml")
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    assert "--analyst-role driftline_analyst" in block
    try:
        out = run_doc_block(block.replace("driftline_analyst", role), tmp_path, doc_shell_env(tmp_path, database_url))
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert f"read-only role {role}" in out
    loans = tmp_path / "config" / "loans.toml"
    assert fetch(loans, "SELECT count(*) FROM {s}.model_versions WHERE status = 'champion'", url=database_url) == [(1,)]


def _exported(block: str, tmp_path: Path, names: list[str]) -> list[str]:
    """The values of the environment variables names after the block ran in a shell of its own."""
    printf = "printf '%s\\0' " + " ".join(f'"${name}"' for name in names)
    printed = run_doc_block(f"{block}\n{printf}", tmp_path, {"PATH": os.environ["PATH"]})
    return printed.split("\0")[:-1]


def test_an_object_storage_connection_as_an_environment_variable(tmp_path):
    """docs/configure/input.md: the exported connection is one Airflow reads (the JSON spans two lines)."""
    from airflow.models.connection import Connection

    (block,) = blocks_run_by("docs/configure/input.md", HERE)
    (value,) = _exported(block, tmp_path, ["AIRFLOW_CONN_ACME_LAKE"])
    connection = Connection.from_json(value, conn_id="acme_lake")
    assert (connection.conn_type, connection.login) == ("aws", "AKIA...")
    assert connection.extra_dejson == {"region_name": "eu-west-1"}


def test_the_openlineage_transport_as_environment_variables(tmp_path):
    """docs/operate/lineage.md: the exported transport is one the OpenLineage client builds (no server needed)."""
    from openlineage.client.transport import get_default_factory
    from openlineage.client.transport.http import HttpTransport

    (block,) = blocks_run_by("docs/operate/lineage.md", HERE)
    namespace, transport = _exported(
        block, tmp_path, ["AIRFLOW__OPENLINEAGE__NAMESPACE", "AIRFLOW__OPENLINEAGE__TRANSPORT"]
    )
    assert namespace == "driftline"
    built = get_default_factory().create(json.loads(transport))
    assert isinstance(built, HttpTransport) and built.url == "http://marquez:5000"
