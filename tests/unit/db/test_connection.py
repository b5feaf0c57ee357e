"""The database URL and the log masker reach Airflow only through hooks the adapter installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftline import secrets
from driftline.db import connection
from driftline.errors import BadConfig


@pytest.fixture(autouse=True)
def no_hooks(monkeypatch):
    """No hooks during the test (importing the adapter elsewhere in the session installs them); restored after."""
    monkeypatch.delenv("DRIFTLINE_DB_URL", raising=False)
    monkeypatch.setattr(connection, "_url_resolver", None)
    monkeypatch.setattr(secrets, "_secret_masker", None)


def test_conn_id_without_a_resolver_is_a_config_error_naming_the_way_out(tmp_path):
    with pytest.raises(BadConfig, match="conn_id = 'warehouse'.*set db_url"):
        connection.resolve_db_url(None, "warehouse", tmp_path)


def test_conn_id_goes_through_the_installed_resolver_and_the_password_to_the_masker(tmp_path):
    seen: list[str] = []
    connection.set_url_resolver(lambda conn_id: f"postgresql://u:pw-{conn_id}@h/db")
    secrets.set_secret_masker(seen.append)
    assert connection.resolve_db_url(None, "warehouse", tmp_path) == "postgresql://u:pw-warehouse@h/db"
    assert seen == ["pw-warehouse"]


def test_a_configured_url_wins_over_the_conn_id(tmp_path):
    connection.set_url_resolver(lambda conn_id: pytest.fail("resolver called"))
    assert connection.resolve_db_url("postgresql://h/db", "warehouse", tmp_path) == "postgresql://h/db"


def test_db_config_and_secrets_do_not_import_airflow():
    code = (
        "import sys, driftline.db, driftline.db.schema, driftline.secrets, driftline.config, driftline.registry;"
        "sys.exit('airflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[3])
    assert result.returncode == 0, result.stderr or "airflow was imported"
