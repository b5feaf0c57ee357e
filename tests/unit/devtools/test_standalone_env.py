"""`driftline airflow env` / AIRFLOW_HOME/driftline-airflow.env: sourced, the `airflow` CLI reaches the
running instance (its metadata database, DAGs and API), not the SQLite file under AIRFLOW_HOME."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from driftline.devtools.standalone import CLI_KEYS, cli_environment, instance_environment, write_cli_environment

METADATA = "postgresql+psycopg2://airflow:s3cret@db.example:5432/airflow_meta"


def _sourced(script: str, keys) -> dict[str, str]:
    """What a shell has in its environment after sourcing `script` (from a clean environment)."""
    out = subprocess.run(
        ["bash", "-c", f'{script}\nfor k in {" ".join(keys)}; do printf "%s=%s\\0" "$k" "${{!k}}"; done'],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
    ).stdout.decode()  # bytes: text=True would turn a '\r' in a value into '\n' (universal newlines)
    return dict(item.split("=", 1) for item in out.split("\0") if item)


def test_the_env_names_the_instance_metadata_database_dags_and_config(tmp_path: Path, monkeypatch):
    from tests.helpers import config_copy

    config_path = config_copy(tmp_path)
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", METADATA)
    monkeypatch.setenv("DRIFTLINE_DB_URL", "postgresql://postgres@127.0.0.1:5432/predictions")
    env, config = instance_environment(str(config_path), "127.0.0.1", 8090)
    path = write_cli_environment(env)
    assert path == Path(env["AIRFLOW_HOME"]) / "driftline-airflow.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it may carry database passwords
    sourced = _sourced(f". {path}", CLI_KEYS)
    assert sourced["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == METADATA  # the instance's, not <home>/airflow.db
    assert sourced["AIRFLOW_HOME"] == str(config.root / ".driftline" / "airflow")
    assert sourced["AIRFLOW__CORE__DAGS_FOLDER"] == str(config.root / "dags")
    assert sourced["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8090/execution/"
    assert sourced["DRIFTLINE_CONFIG"] == str(config_path)
    assert sourced["DRIFTLINE_DB_URL"] == "postgresql://postgres@127.0.0.1:5432/predictions"
    assert "PATH" not in cli_environment(env).replace("_PATH", "")  # not the process tuning


def test_the_airflow_cli_reads_the_instance_metadata_database_through_it(tmp_path: Path, monkeypatch):
    """The real `airflow` configuration, as `airflow backfill create` would resolve it."""
    import sys

    from tests.helpers import config_copy

    config_path = config_copy(tmp_path)
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", METADATA)
    monkeypatch.setenv("DRIFTLINE_DB_URL", "postgresql://postgres@127.0.0.1:5432/predictions")
    path = write_cli_environment(instance_environment(str(config_path), "127.0.0.1", 8090)[0])
    probe = f'{sys.executable} -c \'from airflow.configuration import conf; print(conf.get("database", "sql_alchemy_conn"))\''
    out = subprocess.run(
        ["bash", "-c", f". {path}\n{probe}"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == METADATA


@settings(max_examples=25, deadline=None)
@example("\r")
@example("a\r\nb")
@given(st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40))
def test_any_value_survives_sourcing(value: str):
    env = {key: f"{value}{index}" for index, key in enumerate(CLI_KEYS)}
    assert _sourced(cli_environment(env), CLI_KEYS) == env
