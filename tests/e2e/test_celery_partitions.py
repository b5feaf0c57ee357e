"""Partitioned scoring on CeleryExecutor: a real scheduler, dag-processor and API server, and two
Celery workers on the local Redis (broker) and Postgres (metadata and result backend).

An interval whose input is a directory of 5 files is scored by 3 mapped score_partition tasks. One
partition fails first (a file with no rows); after the file is fixed, that partition and one that
had succeeded are cleared through the REST API and re-run alone. The published interval equals the
single-task path's, with no row twice. Everything started here is stopped by process group.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.e2e.airflow_api import Airflow, free_port, group_alive, stop_group
from tests.helpers import DEMO_DATASET, config_copy, drop_database, fetch, make_project, split_input

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# The score_batch DAG of the project's dataset (make_project copies the demo config: demo_transactions).
SCORE_BATCH = f"{DEMO_DATASET}__score_batch"
DAY = timedelta(days=1)
INTERVAL = (datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))
REDIS = os.environ.get("DRIFTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_reachable() -> bool:
    import socket
    from urllib.parse import urlparse

    url = urlparse(REDIS)
    try:
        with socket.create_connection((url.hostname, url.port or 6379), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, database_url, monkeypatch_module):
    pytest.importorskip("airflow.providers.celery", reason="needs the celery extra: pip install -e '.[celery]'")
    if not _redis_reachable():
        pytest.fail(f"Redis is not reachable at {REDIS} (set DRIFTLINE_TEST_REDIS_URL)")
    from psycopg.conninfo import conninfo_to_dict

    from driftline.config import load_config
    from driftline.devtools.demo_data import DemoPlan, write_demo_data
    from driftline.devtools.standalone import airflow_metadata_database
    from driftline.training import train_champion

    root = tmp_path_factory.mktemp("celery")
    schema = f"celery_{uuid.uuid4().hex[:8]}"
    config_path = make_project(root, schema, chunk_rows="500", files_per_partition="2")
    config = load_config(config_path)
    # This test's interval, and the latest complete one: unpausing score_batch schedules that run.
    plan = dict(history_days=10, history_rows_per_day=1_500, rows_per_interval=3_000)
    yesterday = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - DAY
    for first in (INTERVAL[0], yesterday):
        write_demo_data(config, DemoPlan(first_interval=first, intervals=1, **plan))
        split_input(config_path, (first, first + DAY), 5)
    # From here on, each interval's input is its directory of 5 files.
    config_copy(root, base=config_path, name=config_path.name, keys={"input": '"data/parts/{interval_start:%Y-%m-%d}"'})
    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    train_champion(str(config_path))

    metadata_db = f"{conninfo_to_dict(database_url)['dbname']}_celery"
    metadata_url = airflow_metadata_database(database_url, metadata_db)
    port, queue = free_port(), f"driftline_{uuid.uuid4().hex[:8]}"
    home = root / ".driftline" / "airflow"
    home.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "DRIFTLINE_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "no_plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": REDIS,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url.replace("+psycopg2", ""),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,  # this test's workers only take this test's tasks
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "DRIFTLINE_CONFIG": str(config_path),
            "DRIFTLINE_DB_URL": database_url,
            "GX_ANALYTICS_ENABLED": "False",
            "PYTHONUNBUFFERED": "1",
        }
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    commands = {
        "api-server": ["api-server", "--port", str(port)],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        "worker-1": [
            "celery",
            "worker",
            "-q",
            queue,
            "--concurrency",
            "1",
            "--celery-hostname",
            "driftline1@%h",
            "--skip-serve-logs",
        ],
        "worker-2": [
            "celery",
            "worker",
            "-q",
            queue,
            "--concurrency",
            "1",
            "--celery-hostname",
            "driftline2@%h",
            "--skip-serve-logs",
        ],
    }
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, arguments in commands.items():
            with (root / f"{name}.log").open("wb") as out:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", *arguments],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: teardown stops it and its children by id
                )
        instance = Airflow(f"http://127.0.0.1:{port}", root, config_path, schema, database_url, root / "scheduler.log")
        instance.processes, instance.root = processes, root
        instance.wait_healthy(processes, lambda name: (root / f"{name}.log").read_text()[-4000:], "the API server")
        yield instance
    finally:
        for process in processes.values():
            stop_group(process, grace=30)
        drop_database(database_url, metadata_db)
        assert not any(group_alive(p.pid) for p in processes.values()), "Airflow/Celery processes survived teardown"


def _rows(cluster, config_path: Path) -> list[tuple]:
    return fetch(
        config_path,
        "SELECT entity_key, score, predicted_class FROM {s}.predictions WHERE interval_start = %s ORDER BY entity_key",
        (INTERVAL[0],),
        url=cluster.db_url,
    )


def _mapped_states(cluster, run_id: str) -> dict[int, str]:
    tis = cluster.api("GET", f"/dags/{SCORE_BATCH}/dagRuns/{run_id}/taskInstances", params={"limit": 100})[
        "task_instances"
    ]
    return {ti["map_index"]: ti["state"] for ti in tis if ti["task_id"] == "score_partition"}


def _wait_finished(cluster, run_id: str, timeout: float = 420) -> str:
    return cluster.wait_for(
        f"score_batch run {run_id}",
        lambda: (state := cluster.run_state(SCORE_BATCH, run_id)) in ("success", "failed") and state,
        timeout,
    )


def test_partitions_run_on_two_celery_workers_and_rerun_alone(cluster):
    from driftline.batch import check_interval, score_interval
    from driftline.config import load_config

    files = sorted((cluster.root / "data" / "parts" / f"{INTERVAL[0]:%Y-%m-%d}").glob("part-*.csv"))
    broken, content = files[2], files[2].read_text()
    broken.write_text(content.splitlines(keepends=True)[0])  # header only: partition 1 fails, without retries

    cluster.login()
    cluster.wait_for(
        "score_batch to be parsed",
        lambda: cluster.http.get(f"/api/v2/dags/{SCORE_BATCH}", headers=cluster.auth).status_code == 200,
        240,
    )
    cluster.api("PATCH", f"/dags/{SCORE_BATCH}", json={"is_paused": False})
    run_id = "celery_partitioned"
    cluster.api(
        "POST",
        f"/dags/{SCORE_BATCH}/dagRuns",
        json={"dag_run_id": run_id, "logical_date": INTERVAL[1].isoformat(), "conf": {"config": str(cluster.config)}},
    )
    assert _wait_finished(cluster, run_id) == "failed"
    assert _mapped_states(cluster, run_id) == {0: "success", 1: "failed", 2: "success"}
    assert _rows(cluster, cluster.config) == []  # nothing published while a partition is missing

    # Fix the file, then re-run the failed partition and one that had succeeded, alone (+ downstream).
    broken.write_text(content)
    cluster.api(
        "POST",
        f"/dags/{SCORE_BATCH}/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [["score_partition", 0], ["score_partition", 1]],
            "only_failed": False,
            "include_downstream": True,
            "reset_dag_runs": True,
        },
    )
    assert _wait_finished(cluster, run_id) == "success", cluster.log_tail()
    states = cluster.api("GET", f"/dags/{SCORE_BATCH}/dagRuns/{run_id}/taskInstances", params={"limit": 100})[
        "task_instances"
    ]
    by_task = {(ti["task_id"], ti["map_index"]): ti for ti in states}
    assert by_task[("score_interval", -1)]["state"] == "skipped"
    assert by_task[("publish_partitions", -1)]["state"] == "success"
    assert by_task[("score_partition", 0)]["try_number"] == 2 and by_task[("score_partition", 2)]["try_number"] == 1

    # Both workers took tasks from this test's queue.
    received = {
        name: (cluster.root / f"{name}.log").read_text(errors="replace").count("received")
        for name in ("worker-1", "worker-2")
    }
    assert all(count > 0 for count in received.values()), received

    # The same interval through the single-task path, in another schema: identical predictions.
    partitioned = _rows(cluster, cluster.config)
    keys = [key for key, *_ in partitioned]
    assert len(keys) == len(set(keys)) > 0
    single_config = config_copy(
        cluster.config.parent.parent,
        base=cluster.config,
        name="single.toml",
        keys={"schema": f'"{cluster.schema}_single"', "files_per_partition": "0"},
    )
    from driftline.training import train_champion

    train_champion(str(single_config))
    score_interval(str(single_config), *INTERVAL, run_id="single")
    assert partitioned == _rows(cluster, single_config)
    published, single = check_interval(str(cluster.config), *INTERVAL), check_interval(str(single_config), *INTERVAL)
    assert [published[k] for k in ("rows_in", "rows_scored", "rows_quarantined")] == [
        single[k] for k in ("rows_in", "rows_scored", "rows_quarantined")
    ]
    assert load_config(cluster.config).files_per_partition == 2
