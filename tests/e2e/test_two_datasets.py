"""Two datasets side by side under one real Airflow, from their configs alone: `driftline airflow` serving
a configs folder ($DRIFTLINE_CONFIGS) of two TOMLs. One dataset reads each interval from a Postgres table
(SQL source, Airflow connection `warehouse`), the other from objects on a local S3 server (moto's server
mode on 127.0.0.1, started here; Airflow connection `lake_s3`). Both score_batch DAGs are backfilled over
three days; each dataset's monitor_drift runs on its own Asset once per published interval.

Checked: every interval's predictions are the source's rows minus the quarantined, in the dataset's own
schema; monitoring wrote to its own schema and reports folder; each registry holds its own champion v1;
no entity of one dataset in the other's schema; six distinct DAG ids; the plugin's index lists both.
Run with: DRIFTLINE_TEST_DB_URL=... python -m pytest tests/e2e/test_two_datasets.py -m slow
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.airflow_api import Airflow, free_port, group_alive, stop_group
from tests.helpers import config_copy, drop_database, query_rows

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAY = timedelta(days=1)
FIRST = datetime(2026, 11, 1, tzinfo=timezone.utc)
INTERVALS = [FIRST + i * DAY for i in range(3)]  # backfilled: logical date D scores [D, D + 1 day)
ROWS_PER_INTERVAL = 2_000
BUCKET = "driftline-e2e"
KEY, SECRET = "AKIAFAKEDRIFTLINE", "fake-secret-never-logged"
WH, LAKE = "wh_tx", "lake_tx"  # the two datasets' names (and the prefixes of their entity keys)
ROLES = ("score_batch", "monitor_drift", "retrain_model")


def _dataset_keys(name: str, schema: str, data: str) -> dict[str, str]:
    """What each dataset owns: name, schema, registry and reports folders, its data files."""
    return {
        "name": f'"{name}"',
        "schema": f'"{schema}"',
        "registry_dir": f'"models/{name}"',
        "reports_dir": f'"reports/{name}"',
        "input": f'"{data}/input/{{interval_start:%Y-%m-%d}}.csv"',
        "history": f'"{data}/history.parquet"',
        "labels": f'"{data}/labels.parquet"',
    }


def _prefix_keys(path: Path, prefix: str) -> None:
    """Every record's entity key (the first field) prefixed, so each dataset's rows are told apart."""
    header, *lines = path.read_text().splitlines(keepends=True)
    path.write_text(header + "".join(prefix + line for line in lines))


def _valid(frame: pd.DataFrame, start: datetime) -> pd.Series:
    """Rows the demo data did not spoil (demo_data._inject_bad_rows) and inside [start, start + 1 day)."""
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    hour = pd.to_numeric(frame["hour_of_day"], errors="coerce")
    when = pd.to_datetime(frame["event_time"], utc=True)
    return (
        (amount >= 0)
        & hour.between(0, 23)
        & (frame["merchant_category"] != "crypto_exchange")
        & (when >= start)
        & (when < start + DAY)
    )


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], on_bad_lines="skip")


def _load_warehouse(url: str, schema: str, files: list[Path]) -> pd.DataFrame:
    """The files' well-formed records into schema.events (text columns, as exported); the rows loaded."""
    import psycopg
    from psycopg import sql

    frame = pd.concat([_read_csv(path) for path in files], ignore_index=True)
    target = sql.Identifier(schema, "events")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in frame.columns)
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, columns))
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target)) as copy:
            copy.write(frame.to_csv(index=False, header=False).encode())
    return frame


def _connections(database_url: str, s3_endpoint: str) -> dict[str, str]:
    """AIRFLOW_CONN_<ID> for the warehouse (postgres, the test database) and the lake (aws, the moto server)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(database_url)
    warehouse = {
        "conn_type": "postgres",
        "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", 5432)),
        "login": params.get("user"),
        "password": params.get("password"),
        "schema": params["dbname"],
    }
    lake = {
        "conn_type": "aws",
        "login": KEY,
        "password": SECRET,
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    return {"AIRFLOW_CONN_WAREHOUSE": json.dumps(warehouse), "AIRFLOW_CONN_LAKE_S3": json.dumps(lake)}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, database_url, monkeypatch_module):
    pytest.importorskip("s3fs", reason="object storage needs the s3 extra (driftline[s3])")
    import boto3
    from moto.server import ThreadedMotoServer
    from psycopg.conninfo import conninfo_to_dict

    from driftline.config import load_config
    from driftline.devtools.demo_data import DemoPlan, write_demo_data
    from driftline.devtools.standalone import airflow_metadata_database
    from driftline.training import train_champion
    from driftline.validation import write_suite

    root = tmp_path_factory.mktemp("two_datasets")
    tag = uuid.uuid4().hex[:8]
    schemas = {WH: f"e2e_wh_{tag}", LAKE: f"e2e_lake_{tag}"}
    warehouse_schema = f"warehouse_{tag}"

    # Local files first (staging/, outside the configs folder): the demo data of each dataset, for
    # the intervals under test and yesterday's (unpausing score_batch schedules that one).
    yesterday = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - DAY
    plan = dict(history_days=10, history_rows_per_day=1_500, rows_per_interval=ROWS_PER_INTERVAL)
    staged: dict[str, list[Path]] = {}
    for name in (WH, LAKE):
        path = config_copy(
            root / "staging", name=f"{name}.toml", keys=_dataset_keys(name, schemas[name], f"data/{name}")
        )
        # the project root of a config is its folder's parent: keep staging's data under root
        path = path.rename(root / "staging" / f"{name}.toml")
        config = load_config(path)
        write_demo_data(config, DemoPlan(first_interval=yesterday, intervals=1, **plan))
        write_demo_data(config, DemoPlan(first_interval=FIRST, intervals=3, **plan))
        staged[name] = [Path(config.input_location(start, start + DAY)) for start in [*INTERVALS, yesterday]]
        for file in staged[name]:
            _prefix_keys(file, f"{name}-")
    write_suite(config)  # the two datasets share the demo's features, hence its suite file

    # The sources: a warehouse table in the test database, objects on a local S3 server.
    warehouse_rows = _load_warehouse(database_url, warehouse_schema, staged[WH])
    s3_port = free_port()
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3_server.start()
    endpoint = f"http://127.0.0.1:{s3_port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket=BUCKET)
    for file in staged[LAKE]:
        client.put_object(Bucket=BUCKET, Key=f"{LAKE}/{file.stem}.csv", Body=file.read_bytes())

    # The deployment's configs folder: only the interval input differs from the staging copies.
    query = (
        f"SELECT * FROM {warehouse_schema}.events WHERE event_time::timestamptz >= %(interval_start)s "
        "AND event_time::timestamptz < %(interval_end)s"
    )
    wh_input = "{ " + f'conn_id = "warehouse", query = {json.dumps(query)}' + " }"
    configs = {
        WH: config_copy(root, base=root / "staging" / f"{WH}.toml", name=f"{WH}.toml", keys={"input": wh_input}),
        LAKE: config_copy(
            root,
            [("\ninput = ", '\nstorage_conn_id = "lake_s3"\ninput = ')],
            base=root / "staging" / f"{LAKE}.toml",
            name=f"{LAKE}.toml",
            keys={"input": f'"s3://{BUCKET}/{LAKE}/{{interval_start:%Y-%m-%d}}.csv"'},
        ),
    }
    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    for path in configs.values():
        train_champion(str(path))  # from the local history; only the interval input is remote
    (root / "dags").symlink_to(REPO / "dags")
    (root / "plugins").symlink_to(REPO / "plugins")

    metadata_db = f"{conninfo_to_dict(database_url)['dbname']}_two"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "DRIFTLINE_"))}
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_metadata_database(database_url, metadata_db),
            "DRIFTLINE_CONFIGS": str(root / "config"),  # no DRIFTLINE_CONFIG: every dataset of the folder
            "DRIFTLINE_DB_URL": database_url,
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "PYTHONUNBUFFERED": "1",
            **_connections(database_url, endpoint),
        }
    )
    log = root / "airflow.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", "airflow", "--port", str(port)],
            env=env,
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: teardown stops all of Airflow by its id
        )
    instance = Airflow(f"http://localhost:{port}", root, configs[WH], schemas[WH], database_url, log)
    instance.configs, instance.schemas = configs, schemas
    instance.sources = {WH: warehouse_rows, LAKE: {f.stem: f for f in staged[LAKE]}}
    try:
        started = time.monotonic()
        instance.wait_healthy(
            {"driftline airflow": process}, lambda _: instance.log_tail(), "the API server's health endpoint"
        )
        instance.started_seconds = time.monotonic() - started
        yield instance
    finally:
        instance.http.close()
        stop_group(process)
        s3_server.stop()
        drop_database(database_url, metadata_db)
        import psycopg
        from psycopg import sql

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(warehouse_schema)))
        assert not group_alive(process.pid), "Airflow processes survived teardown"


def _dag_ids(name: str) -> list[str]:
    return [f"{name}__{role}" for role in ROLES]


def _interval_key(start: datetime) -> str:
    return f"{start.isoformat()}/{(start + DAY).isoformat()}"


def _rows(airflow: Airflow, name: str, query: str, params=()) -> list[tuple]:
    from psycopg import sql

    return query_rows(airflow.db_url, sql.SQL(query).format(s=sql.Identifier(airflow.schemas[name])), params)


def _expected(airflow: Airflow, name: str, start: datetime) -> tuple[int, int]:
    """(rows the source holds for the interval, rows that should be scored), from the source data."""
    if name == WH:
        rows = airflow.sources[WH]
        when = pd.to_datetime(rows["event_time"], utc=True)
        rows = rows[(when >= start) & (when < start + DAY)]
        return len(rows), int(_valid(rows, start).sum())
    path = airflow.sources[LAKE][f"{start:%Y-%m-%d}"]
    rows = _read_csv(path)
    records = sum(1 for _ in csv.reader(path.open())) - 1  # the malformed line included
    return records, int(_valid(rows, start).sum())


def test_both_datasets_dags_load_with_distinct_ids(deployment):
    airflow = deployment
    airflow.login()
    expected = {*_dag_ids(WH), *_dag_ids(LAKE)}
    airflow.wait_for(
        "the dag-processor to parse both datasets' DAGs",
        lambda: expected <= {d["dag_id"] for d in airflow.api("GET", "/dags", params={"limit": 100})["dags"]},
        timeout=240,
    )
    dags = airflow.api("GET", "/dags", params={"limit": 100})["dags"]
    assert sorted(d["dag_id"] for d in dags) == sorted(expected)  # six DAGs, six ids
    errors = airflow.api("GET", "/importErrors")
    assert errors["total_entries"] == 0, errors["import_errors"]
    for dag in dags:
        name = dag["dag_id"].split("__")[0]
        assert {t["name"] for t in dag["tags"]} == {"driftline", name}
    # The plugin's index lists both datasets.
    index = airflow.http.get("/driftline/", headers=airflow.auth)
    assert index.status_code == 200
    assert f"{WH}__score_batch" in index.text and f"{LAKE}__score_batch" in index.text


def test_backfill_both_datasets(deployment):
    airflow = deployment
    if airflow.token is None:
        airflow.login()
    started = time.monotonic()
    for name in (WH, LAKE):  # monitors first: a paused DAG is not queued on its Asset
        airflow.api("PATCH", f"/dags/{name}__monitor_drift", json={"is_paused": False})
    backfills = {}
    for name in (WH, LAKE):
        airflow.api("PATCH", f"/dags/{name}__score_batch", json={"is_paused": False})
        backfills[name] = airflow.api(
            "POST",
            "/backfills",
            json={
                "dag_id": f"{name}__score_batch",
                "from_date": INTERVALS[0].isoformat(),
                "to_date": INTERVALS[-1].isoformat(),
                "max_active_runs": 3,
                "reprocess_behavior": "none",
            },
        )
    for name, backfill in backfills.items():
        airflow.wait_for(
            f"{name} backfill {backfill['id']} to complete",
            lambda b=backfill: airflow.api("GET", f"/backfills/{b['id']}")["completed_at"],
            timeout=600,
        )
        runs = airflow.api("GET", f"/dags/{name}__score_batch/dagRuns", params={"run_type": "backfill", "limit": 100})[
            "dag_runs"
        ]
        for run in runs:
            if run["state"] != "success":
                airflow.wait_run(f"{name}__score_batch", run["dag_run_id"])  # fails with the failed tasks' logs
        assert sorted(r["data_interval_start"][:10] for r in runs) == [f"{d:%Y-%m-%d}" for d in INTERVALS]
    airflow.backfill_seconds = time.monotonic() - started

    for name in (WH, LAKE):
        counts = dict(
            _rows(
                airflow,
                name,
                "SELECT interval_start, count(*) FROM {s}.predictions WHERE interval_start = ANY(%s) GROUP BY 1",
                (INTERVALS,),
            )
        )
        summary = {
            start: (rows_in, scored, quarantined)
            for start, rows_in, scored, quarantined in _rows(
                airflow,
                name,
                "SELECT interval_start, rows_in, rows_scored, rows_quarantined FROM {s}.run_summary WHERE published",
            )
        }
        for start in INTERVALS:
            source_rows, valid = _expected(airflow, name, start)
            assert valid > 0.95 * ROWS_PER_INTERVAL
            assert counts[start] == valid, (name, start, counts[start], valid)
            assert summary[start] == (source_rows, valid, source_rows - valid), (name, start, summary[start])


def test_each_dataset_is_monitored_per_published_interval_in_its_own_schema(deployment):
    airflow = deployment
    keys = {_interval_key(start) for start in INTERVALS}
    for name in (WH, LAKE):
        dag = f"{name}__monitor_drift"

        def done(dag=dag):
            runs = [
                r
                for r in airflow.api("GET", f"/dags/{dag}/dagRuns", params={"limit": 100})["dag_runs"]
                if r["partition_key"] in keys
            ]
            finished = len(runs) >= len(keys) and all(r["state"] in ("success", "failed") for r in runs)
            return finished and runs

        runs = airflow.wait_for(f"{dag} runs for the backfilled intervals", done, timeout=900, every=5)
        for run in runs:
            if run["state"] != "success":
                airflow.wait_run(dag, run["dag_run_id"])
        assert sorted(r["partition_key"] for r in runs) == sorted(keys)  # once per published interval
        assert {r["run_type"] for r in runs} == {"asset_triggered"}
        monitored = _rows(
            airflow,
            name,
            "SELECT interval_start, run_id, report_path FROM {s}.drift_intervals WHERE run_id = ANY(%s)",
            ([r["dag_run_id"] for r in runs],),
        )
        assert sorted(start for start, *_ in monitored) == INTERVALS
        reports = airflow.root / "reports" / name
        for _, _, report in monitored:
            assert Path(report).parent == reports and Path(report).stat().st_size > 10_000
        # Each run decides its own interval once; it may also re-decide later intervals of its window
        # (decisions in data order), which adds rows for those intervals, never for its own.
        decisions = _rows(
            airflow,
            name,
            "SELECT run_id, interval_start FROM {s}.drift_decisions WHERE run_id = ANY(%s)",
            ([r[1] for r in monitored],),
        )
        for start, run_id, _ in monitored:
            assert sum(1 for d_run, d_start in decisions if d_run == run_id and d_start == start) == 1, (name, start)
    # Every report either dataset recorded is in its own reports folder.
    for name in (WH, LAKE):
        paths = [Path(path) for (path,) in _rows(airflow, name, "SELECT report_path FROM {s}.drift_intervals")]
        assert paths and {path.parent for path in paths} == {airflow.root / "reports" / name}


def test_registries_are_separate_and_nothing_crosses(deployment):
    from driftline import db
    from driftline.registry import champion_version

    airflow = deployment
    for name, other in ((WH, LAKE), (LAKE, WH)):
        schema = airflow.schemas[name]
        with db.connect(airflow.db_url) as conn:
            assert champion_version(conn, schema) == 1
        versions = _rows(airflow, name, "SELECT version, artifact_uri FROM {s}.model_versions")
        assert [v for v, _ in versions] == [1]
        assert f"models/{name}" in versions[0][1] and f"models/{other}" not in versions[0][1]
        assert (airflow.root / "models" / name).is_dir()
        # No row of the other dataset here, and every prediction is of this dataset's entities.
        keys = _rows(
            airflow,
            name,
            "SELECT count(*) FILTER (WHERE entity_key LIKE %s), count(*) FILTER (WHERE entity_key NOT LIKE %s) "
            "FROM {s}.predictions",
            (f"{other}-%", f"{name}-%"),
        )
        assert keys == [(0, 0)], (name, keys)
        sources = _rows(airflow, name, "SELECT DISTINCT source_uri FROM {s}.scoring_runs")
        marker = "sql:" if name == WH else f"s3://{BUCKET}/{LAKE}/"
        assert sources and all(uri.startswith(marker) for (uri,) in sources), sources
    print(
        f"\nAirflow healthy after {airflow.started_seconds:.0f} s; both backfills (3 intervals each) "
        f"done in {getattr(airflow, 'backfill_seconds', float('nan')):.0f} s"
    )
