"""Shared fixtures: a throwaway Airflow home (set before Airflow is imported) and a real Postgres.

The database comes from DRIFTLINE_TEST_DB_URL (a server URL; each session creates and drops its
own database there) or, when unset, from an embedded pgserver in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Airflow reads its configuration at import time: point it at a private home before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="driftline-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "GX_ANALYTICS_ENABLED": "False",
    }
)
os.environ.pop("DRIFTLINE_DB_URL", None)
os.environ.pop("DRIFTLINE_CONFIG", None)
os.environ.pop("DRIFTLINE_CONFIGS", None)
os.environ.pop("DRIFTLINE_HOME", None)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated Airflow metadata DB (SQLite) for dag.test()."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def database_url() -> str:
    """URL of a fresh database on a real PostgreSQL server, dropped at the end of the session."""
    from tests.helpers import create_database, drop_database

    server_url = os.environ.get("DRIFTLINE_TEST_DB_URL")
    if not server_url:
        import pgserver

        # Not under pytest's basetemp: pytest prunes old basetemps, which would pull the data
        # directory from under a server that another, concurrent session still uses.
        server = pgserver.get_server(tempfile.mkdtemp(prefix="driftline-pgdata-"), cleanup_mode="delete")
        server_url = server.get_uri()
    name = f"driftline_test_{uuid.uuid4().hex[:10]}"
    yield create_database(server_url, name)
    drop_database(server_url, name)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """monkeypatch for module-scoped fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


# hypothesis keeps no example database: tests write nothing into the repo (nor into the working directory).
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("driftline", database=None)
_hypothesis_settings.load_profile("driftline")
# and its caches (unicode tables, constants) go to a temporary folder, not ./.hypothesis
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="driftline-hypothesis-"))
