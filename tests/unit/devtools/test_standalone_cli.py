"""`driftline airflow`'s environment: INFO task logs and log-server ports that follow --port."""

from __future__ import annotations

from pathlib import Path

from driftline.devtools.standalone import airflow_standalone_environment


def test_log_servers_follow_the_api_port_and_tasks_log_at_info(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("AIRFLOW__LOGGING__LOGGING_LEVEL", raising=False)
    first = airflow_standalone_environment(tmp_path, "config/demo.toml", "postgresql://x/y", "127.0.0.1", 8080)
    second = airflow_standalone_environment(tmp_path, "config/demo.toml", "postgresql://x/y", "127.0.0.1", 8090)
    assert (first["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"], first["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]) == (
        "8793",
        "8794",
    )  # Airflow's defaults for the default port
    ports = {first[k] for k in first if k.endswith("_LOG_SERVER_PORT")}
    assert ports.isdisjoint(second[k] for k in second if k.endswith("_LOG_SERVER_PORT"))
    assert first["AIRFLOW__LOGGING__LOGGING_LEVEL"] == "INFO"


def test_a_configs_folder_alone_serves_every_dataset(tmp_path: Path, monkeypatch):
    """DRIFTLINE_CONFIGS set, no --config and no DRIFTLINE_CONFIG: standalone serves the whole folder."""
    from driftline import cli
    from driftline.devtools import standalone
    from tests.helpers import config_copy

    for name in ("b_set", "a_set"):
        config_copy(
            tmp_path,
            name=f"{name}.toml",
            keys={
                "name": f'"{name}"',
                "schema": f'"{name}"',
                "registry_dir": f'"models/{name}"',
                "reports_dir": f'"reports/{name}"',
            },
        )
    calls = []
    monkeypatch.setattr(standalone, "run_standalone", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.delenv("DRIFTLINE_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTLINE_CONFIGS", str(tmp_path / "config"))
    cli.main(["airflow", "--port", "8090"])
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(tmp_path / "config" / "b_set.toml"))
    cli.main(["airflow", "--port", "8090"])
    (folder, folder_kwargs), (single, single_kwargs) = calls
    assert folder[0] == str((tmp_path / "config" / "a_set.toml").resolve())
    assert folder_kwargs["configs_dir"] == str(tmp_path / "config")
    assert single[0].endswith("b_set.toml") and single_kwargs["configs_dir"] is None
