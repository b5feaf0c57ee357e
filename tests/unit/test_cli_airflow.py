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
