"""The database URL and the log masker reach Airflow only through hooks the adapter installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftline import db, secrets
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


# Connection strings are masked wherever they are shown: no database needed (connecting to port 1 fails).


def test_unreachable_database_names_the_masked_url():
    with pytest.raises(db.DatabaseError) as error:
        db.connect("postgresql://analyst:s3cret@127.0.0.1:1/nowhere")
    assert "analyst:***@127.0.0.1:1" in str(error.value) and "s3cret" not in str(error.value)


def test_passwords_are_masked_in_every_connection_string_form():
    assert db.mask_url("postgresql://a:s3cret@h/db") == "postgresql://a:***@h/db"
    assert (
        db.mask_url("postgresql://a@h/db?password=s3cret&sslmode=require")
        == "postgresql://a@h/db?password=***&sslmode=require"
    )
    assert "s3cret" not in db.mask_url("host=h password=s3cret dbname=x")
    assert db.mask_url("postgresql://postgres:@/postgres?host=/tmp/x") == "postgresql://postgres:@/postgres?host=/tmp/x"
