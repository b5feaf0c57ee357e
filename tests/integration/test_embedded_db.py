"""The embedded PostgreSQL (pgserver) a newcomer gets without a server: started on demand, stopped by `driftline db-stop`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings

import psycopg
import pytest

from driftline import db
from tests.helpers import REPO


def test_db_stop_stops_the_embedded_server_and_says_when_none_runs(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    env = {k: v for k, v in os.environ.items() if k not in ("DRIFTLINE_DB_URL", "XDG_RUNTIME_DIR")}
    command = [sys.executable, "-m", "driftline.cli"]
    config = ["--config", str(tmp_path / "config" / "demo.toml")]
    try:
        url = subprocess.run(
            [*command, "db-url", "--reveal", *config], env=env, capture_output=True, text=True, timeout=120, check=True
        )
        assert "XDG_RUNTIME_DIR" not in url.stderr  # no stray warning on every command
        with psycopg.connect(url.stdout.strip()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        stopped = subprocess.run([*command, "db-stop", *config], env=env, capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0 and "stopped the embedded PostgreSQL" in stopped.stdout, stopped.stderr
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url.stdout.strip(), connect_timeout=3)
        again = subprocess.run([*command, "db-stop", *config], env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "is not running" in again.stdout
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            db.stop_embedded(tmp_path / db.EMBEDDED_DATA_DIR)
