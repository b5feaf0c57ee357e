"""End to end under a real Airflow: `driftline airflow` (standalone: api-server, scheduler,
dag-processor, triggerer) in the background, driven only through its REST API and a browser.

The Airflow home, ports and project are this module's own; predictions go to the session's test
database. Everything started here runs in one process group that teardown stops by its id.
Run with: DRIFTLINE_TEST_DB_URL=... python -m pytest tests/e2e -m slow
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from html import escape as html_escape
from pathlib import Path

import pytest

from tests.e2e.airflow_api import Airflow, free_port, group_alive, stop_group
from tests.helpers import DEMO_DATASET, config_variant, drop_database, make_project, query_rows

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# The DAG ids of the project's dataset (make_project copies the demo config: demo_transactions).
PAGES = f"/driftline/{DEMO_DATASET}"  # the UI plugin's pages of that dataset
SCORE_BATCH, MONITOR_DRIFT, RETRAIN_MODEL = (
    f"{DEMO_DATASET}__{role}" for role in ("score_batch", "monitor_drift", "retrain_model")
)
DAY = timedelta(days=1)
FIRST = datetime(2026, 11, 1, tzinfo=timezone.utc)
MANUAL_LOGICAL_DATE = FIRST + DAY  # a manual run scores the interval that ends at its logical date
# Backfill runs score [D, D+1) with logical date D (a manual run at D scores the day before): Nov 3, 4, 5.
# Their logical dates must not meet the manual run's, or a backfill that reprocesses nothing skips one.
BACKFILL_FROM, BACKFILL_TO = FIRST + 2 * DAY, FIRST + 4 * DAY
BACKFILL_INTERVALS = [BACKFILL_FROM + i * DAY for i in range(3)]
ROWS_PER_INTERVAL = 2_000
APPROVAL_TIMEOUT_HOURS = 0.02  # 72 s: the approve_promotion response timeout of this Airflow's DAG
REVIEWERS = ("alice", "bob")  # simple auth manager users with role "user": enough to answer a required action
LINEAGE_NAMESPACE = "driftline-e2e"  # [openlineage] namespace of this instance: the job namespace of its events


def _predictions_per_interval(airflow: Airflow) -> dict[datetime, int]:
    from psycopg import sql

    from driftline.db import table

    rows = query_rows(
        airflow.db_url,
        sql.SQL("SELECT interval_start, count(*), count(DISTINCT entity_key) FROM {} GROUP BY 1").format(
            table(airflow.schema, "predictions")
        ),
    )
    for start, total, distinct in rows:
        assert total == distinct, f"interval {start}: {total} predictions for {distinct} entities"
    return {start: total for start, total, _ in rows}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, database_url, monkeypatch_module):
    from driftline.config import load_config
    from driftline.devtools.demo_data import DemoPlan, write_demo_data
    from driftline.training import train_champion

    root = tmp_path_factory.mktemp("e2e")
    schema = f"e2e_{uuid.uuid4().hex[:8]}"
    # promotion = "manual" with a short answer deadline (72 s), so the timeout path runs here too.
    config_path = make_project(
        root, schema, chunk_rows="1000", promotion='"manual"', approval_timeout_hours=str(APPROVAL_TIMEOUT_HOURS)
    )
    config = load_config(config_path)
    # The intervals this module scores, and the latest complete one: unpausing score_batch schedules
    # that run (catchup is off), and it should find its input like any other.
    plan = dict(history_days=10, history_rows_per_day=1_500, rows_per_interval=ROWS_PER_INTERVAL)
    yesterday = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - DAY
    write_demo_data(config, DemoPlan(first_interval=yesterday, intervals=1, **plan))
    write_demo_data(config, DemoPlan(first_interval=FIRST, intervals=5, **plan))
    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    train_champion(str(config_path))
    # A project is config + DAGs + plugins: use this checkout's.
    (root / "dags").symlink_to(REPO / "dags")
    (root / "plugins").symlink_to(REPO / "plugins")

    # Airflow's metadata in a database of its own on the test server (SQLite refuses backfills while
    # the scheduler writes); dropped at the end.
    from psycopg.conninfo import conninfo_to_dict

    from driftline.devtools.standalone import airflow_metadata_database

    metadata_db = f"{conninfo_to_dict(database_url)['dbname']}_airflow"
    port = free_port()
    lineage_log = root / "lineage" / "events.jsonl"
    lineage_log.parent.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "DRIFTLINE_"))}
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_metadata_database(database_url, metadata_db),
            "DRIFTLINE_DB_URL": database_url,
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(["admin:admin", *(f"{u}:user" for u in REVIEWERS)]),
            # How often the scheduler resolves timed-out required actions (default 15 s).
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "5",
            "PYTHONUNBUFFERED": "1",
            # OpenLineage through the client's file transport (JSON lines, appended by every worker): the
            # backfill test reads score_batch's events from it (docs/operate/lineage.md).
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(lineage_log), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": LINEAGE_NAMESPACE,
        }
    )
    log = root / "airflow.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "driftline.cli", "airflow", "--config", str(config_path), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: teardown stops all of Airflow by its id
        )
    instance = Airflow(f"http://localhost:{port}", root, config_path, schema, database_url, log)
    instance.started_env = {k: v for k, v in env.items() if k.startswith(("AIRFLOW", "DRIFTLINE_"))}
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
        drop_database(database_url, metadata_db)
        assert not group_alive(process.pid), "Airflow processes survived teardown"


def test_token_and_no_import_errors(airflow):
    # Without a token the public API refuses.
    assert airflow.http.get("/api/v2/dags").status_code == 401
    airflow.login()
    dag_ids = {SCORE_BATCH, MONITOR_DRIFT, RETRAIN_MODEL}
    airflow.wait_for(
        "the dag-processor to parse the DAG files",
        lambda: dag_ids <= {d["dag_id"] for d in airflow.api("GET", "/dags", params={"limit": 100})["dags"]},
        timeout=240,
    )
    errors = airflow.api("GET", "/importErrors")
    assert errors["total_entries"] == 0, errors["import_errors"]
    assert not {d["dag_id"] for d in airflow.api("GET", "/dags", params={"limit": 100})["dags"]} - dag_ids, (
        "example DAGs loaded"
    )


def test_trigger_score_batch_with_conf(airflow):
    airflow.api("PATCH", f"/dags/{SCORE_BATCH}", json={"is_paused": False})
    run = airflow.api(
        "POST",
        f"/dags/{SCORE_BATCH}/dagRuns",
        expect=(200,),
        json={
            "dag_run_id": "e2e_manual",
            "logical_date": MANUAL_LOGICAL_DATE.isoformat(),
            "conf": {"config": str(airflow.config)},
        },
    )
    assert run["conf"]["config"] == str(airflow.config)
    airflow.wait_run(SCORE_BATCH, "e2e_manual", timeout=300)
    counts = _predictions_per_interval(airflow)
    assert 0 < counts[FIRST] <= ROWS_PER_INTERVAL


def _backfill(airflow: Airflow, reprocess: str, through_cli: bool = False) -> dict:
    if through_cli:
        backfill = _backfill_through_cli(airflow, reprocess)
    else:
        backfill = airflow.api(
            "POST",
            "/backfills",
            json={
                "dag_id": SCORE_BATCH,
                "from_date": BACKFILL_FROM.isoformat(),
                "to_date": BACKFILL_TO.isoformat(),
                "max_active_runs": 3,
                "reprocess_behavior": reprocess,
                "dag_run_conf": {"config": str(airflow.config)},
            },
        )
    done = airflow.wait_for(
        f"backfill {backfill['id']} to complete",
        lambda: (b := airflow.api("GET", f"/backfills/{backfill['id']}"))["completed_at"] and b,
        timeout=420,
    )
    runs = airflow.api("GET", f"/dags/{SCORE_BATCH}/dagRuns", params={"run_type": "backfill", "limit": 100})["dag_runs"]
    mine = {r["data_interval_start"][:10]: r["state"] for r in runs}  # keyed by the interval each run scored
    return {"backfill": done, "runs": mine}


def _backfill_through_cli(airflow: Airflow, reprocess: str) -> dict:
    """`airflow backfill create` as the docs show (get-started, operate/airflow): in a shell that sourced the
    env file `driftline airflow` wrote, from an environment with nothing of Airflow's or driftline's in it;
    the backfill it created."""
    from driftline.devtools.standalone import ENV_FILE

    env_file = airflow.home / ENV_FILE
    assert env_file.exists(), "driftline airflow wrote no env file"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DRIFTLINE_"))}
    # `driftline airflow env` prints the same lines (given the environment the instance was started with).
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftline.cli",
            "airflow",
            "env",
            "--config",
            str(airflow.config),
            "--port",
            str(airflow.port),
        ],
        env={**clean, **airflow.started_env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == env_file.read_text()
    before = {b["id"] for b in airflow.api("GET", "/backfills", params={"dag_id": SCORE_BATCH})["backfills"]}
    command = [
        sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", SCORE_BATCH,
        "--from-date", BACKFILL_FROM.isoformat(), "--to-date", BACKFILL_TO.isoformat(),
        "--max-active-runs", "3", "--reprocess-behavior", reprocess,
        "--dag-run-conf", json.dumps({"config": str(airflow.config)}),
    ]  # fmt: skip
    import shlex

    result = subprocess.run(
        ["bash", "-c", f". {shlex.quote(str(env_file))}\n{shlex.join(command)}"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    created = [
        b
        for b in airflow.api("GET", "/backfills", params={"dag_id": SCORE_BATCH})["backfills"]
        if b["id"] not in before
    ]
    assert len(created) == 1, (created, result.stdout[-2000:])  # in the instance's metadata, not a SQLite beside it
    return created[0]


def test_backfill_three_intervals_twice_without_doubling(airflow):
    from psycopg import sql

    from driftline.db import table

    # monitor_drift runs on score_batch's predictions Asset: unpaused now, it monitors what the
    # backfills publish (a paused DAG is not queued, so the manual run above stays unmonitored).
    airflow.api("PATCH", f"/dags/{MONITOR_DRIFT}", json={"is_paused": False})
    first = _backfill(airflow, "none", through_cli=True)  # the `airflow` CLI, through the env file
    states = {day: state for day, state in first["runs"].items() if day >= f"{BACKFILL_FROM:%Y-%m-%d}"}
    assert states == {f"{d:%Y-%m-%d}": "success" for d in BACKFILL_INTERVALS}, first["runs"]
    counts = _predictions_per_interval(airflow)
    for start in BACKFILL_INTERVALS:
        assert 0 < counts.get(start, 0) <= ROWS_PER_INTERVAL, counts

    # The same backfill again, rerunning the completed runs: every interval is replaced, not added to.
    second = _backfill(airflow, "completed")
    assert all(second["runs"][f"{d:%Y-%m-%d}"] == "success" for d in BACKFILL_INTERVALS), second["runs"]
    assert _predictions_per_interval(airflow) == counts
    attempts = dict(
        query_rows(
            airflow.db_url,
            sql.SQL("SELECT interval_start, count(*) FILTER (WHERE status = 'succeeded') FROM {} GROUP BY 1").format(
                table(airflow.schema, "run_summary")
            ),
        )
    )
    assert all(attempts[d] == 2 for d in BACKFILL_INTERVALS), attempts  # the rerun really ran
    _assert_backfill_lineage(airflow)


def _assert_backfill_lineage(airflow: Airflow) -> None:
    """Each backfilled score_batch run (two per interval) emitted one COMPLETE event: the interval's
    input file -> the predictions table, with that attempt's counts and model version, under the run
    id of the provider's own events of announce_predictions (so a consumer merges them)."""
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    from driftline.config import load_config
    from driftline.db import table
    from driftline.sources.plan import interval_plan

    pytest.importorskip("airflow.providers.openlineage")
    path = airflow.root / "lineage" / "events.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    job_name = f"{SCORE_BATCH}.announce_predictions"
    ours = [e for e in events if "driftline_counts" in e["run"].get("facets", {})]
    assert ours and all(e["job"]["name"] == job_name for e in ours), [e["job"] for e in ours]
    assert {e["job"]["namespace"] for e in ours} == {LINEAGE_NAMESPACE}
    provider_runs = {e["run"]["runId"] for e in events if e["job"]["name"] == job_name and e not in ours}
    config = load_config(airflow.config)
    server = conninfo_to_dict(airflow.db_url)
    host = str(server.get("host") or "")
    host = host if host and not host.startswith("/") else "localhost"  # a socket directory: the local server
    output = (f"postgres://{host}:{server.get('port') or 5432}", f"{server['dbname']}.{airflow.schema}.predictions")
    for start in BACKFILL_INTERVALS:
        files = interval_plan(config, start, start + DAY)["files"]
        emitted = [
            e for e in ours if [(i["namespace"], i["name"]) for i in e["inputs"]] == [("file", f) for f in files]
        ]
        attempts = query_rows(
            airflow.db_url,
            sql.SQL(
                "SELECT rows_in, rows_scored, rows_quarantined, model_version FROM {} "
                "WHERE interval_start = %s AND status = 'succeeded'"
            ).format(table(airflow.schema, "run_summary")),
            (start,),
        )
        assert len(emitted) == len(attempts) == 2, (start, len(emitted), attempts)
        seen = []
        for event in emitted:
            assert event["eventType"] == "COMPLETE"
            facets = event["run"]["facets"]
            counts = facets["driftline_counts"]
            assert counts["rowsIn"] == counts["rowsScored"] + counts["rowsQuarantined"]
            assert facets["driftline_model"]["dataset"] == DEMO_DATASET
            seen.append((counts["rowsIn"], counts["rowsScored"], counts["rowsQuarantined"],
                         facets["driftline_model"]["modelVersion"]))  # fmt: skip
            (out,) = event["outputs"]
            assert (out["namespace"], out["name"]) == output
            assert out["outputFacets"]["outputStatistics"]["rowCount"] == counts["rowsScored"]
            (only_input,) = event["inputs"]
            assert only_input["inputFacets"]["dataQualityMetrics"]["rowCount"] == counts["rowsIn"]
            assert event["run"]["runId"] in provider_runs, "not merged into the provider's run of the task"
        assert sorted(seen) == sorted(tuple(row) for row in attempts), start
        assert all(quarantined > 0 for _, _, quarantined, _ in seen)  # the demo plants bad rows in each interval


def _interval_key(start: datetime) -> str:
    return f"{start.isoformat()}/{(start + DAY).isoformat()}"


def test_backfilled_intervals_are_monitored_once_per_publication(airflow):
    """Data-aware monitoring under the scheduler: every interval the two backfills published (twice
    each) gets one monitor_drift run per publication, for exactly that interval, with its decision."""
    from psycopg import sql

    from driftline.db import table

    keys = {_interval_key(start) for start in BACKFILL_INTERVALS}

    def monitor_runs():
        runs = airflow.api("GET", f"/dags/{MONITOR_DRIFT}/dagRuns", params={"limit": 100})["dag_runs"]
        return [r for r in runs if r["partition_key"] in keys]

    def all_done():
        runs = monitor_runs()
        per_key = {key: [r for r in runs if r["partition_key"] == key] for key in keys}
        finished = all(r["state"] in ("success", "failed") for r in runs)
        return finished and all(len(found) >= 2 for found in per_key.values()) and runs

    runs = airflow.wait_for("monitor_drift runs for both backfills", all_done, timeout=900, every=5)
    for run in runs:
        if run["state"] != "success":
            airflow.wait_run(MONITOR_DRIFT, run["dag_run_id"])  # fails with the failed tasks' logs
    assert sorted(r["partition_key"] for r in runs) == sorted([*keys, *keys]), [r["partition_key"] for r in runs]
    assert {r["run_type"] for r in runs} == {"asset_triggered"}
    # Each run monitored its own interval: the decisions name exactly the runs and intervals.
    decisions = query_rows(
        airflow.db_url,
        sql.SQL("SELECT interval_start, interval_end, run_id, breach, reason FROM {} WHERE run_id = ANY(%s)").format(
            table(airflow.schema, "drift_decisions")
        ),
        ([r["dag_run_id"] for r in runs],),
    )
    # A run decides its own interval first; it may also decide later ones again (drift.order: data
    # order, whatever order the backfill published in), appended as rows of their own.
    by_run: dict[str, list] = {}
    for start, end, run_id, _, _ in decisions:
        by_run.setdefault(run_id, []).append((start, end))
    assert len(by_run) == len(runs)
    for run in runs:
        own = [(start, end) for start, end in by_run[run["dag_run_id"]] if _interval_key(start) == run["partition_key"]]
        assert len(own) == 1 and own[0][1] == own[0][0] + DAY, by_run[run["dag_run_id"]]
    # The triggers are those of deciding in data order, once per interval, whatever the arrival order.
    from driftline.config import load_config
    from driftline.drift.order import Interval, plan

    flags = query_rows(
        airflow.db_url,
        sql.SQL("SELECT d.interval_end, d.breach FROM {} d").format(table(airflow.schema, "drift_intervals")),
    )
    known = query_rows(
        airflow.db_url, sql.SQL("SELECT interval_end FROM {}").format(table(airflow.schema, "scored_intervals"))
    )
    breach = dict(flags)
    expected = plan(load_config(airflow.config).drift.trigger, [Interval(end, breach.get(end)) for (end,) in known])
    triggered = query_rows(
        airflow.db_url,
        sql.SQL("SELECT interval_end, count(DISTINCT retrain_run_id) FROM {} WHERE trigger GROUP BY 1").format(
            table(airflow.schema, "drift_decisions")
        ),
    )
    # A planned trigger the retrain DAG could not take (its run for an earlier trigger still active) is
    # held, not lost: its newest decision says so, and the next monitor_drift run decides it again.
    latest = query_rows(
        airflow.db_url,
        sql.SQL(
            "SELECT DISTINCT ON (interval_end) interval_end, numbers ->> 'held' FROM {} "
            "ORDER BY interval_end, decided_at DESC, decision_id DESC"
        ).format(table(airflow.schema, "drift_decisions")),
    )
    held = {end for end, why in latest if why == "retrain_dag"}
    started = {end for end, _ in triggered}
    assert not started & held and started | held == {end for end, p in expected.items() if p.trigger}, (
        triggered,
        held,
    )
    assert all(count == 1 for _, count in triggered), triggered
    summary = query_rows(
        airflow.db_url,
        sql.SQL("SELECT interval_start, reason FROM {} WHERE interval_start = ANY(%s)").format(
            table(airflow.schema, "drift_summary")
        ),
        (BACKFILL_INTERVALS,),
    )
    assert sorted(start for start, _ in summary) == BACKFILL_INTERVALS and all(reason for _, reason in summary)
    # A retrain triggered on the paused retrain_model waits; later decisions say so instead of
    # counting it as "already active" in silence, and raise an alert.
    waiting = airflow.api("GET", f"/dags/{RETRAIN_MODEL}/dagRuns", params={"state": "queued"})["dag_runs"]
    if waiting:
        reasons = [reason for *_, reason in decisions]
        assert any(f"{RETRAIN_MODEL} is paused: the run triggered on" in reason for reason in reasons), reasons
        kinds = query_rows(
            airflow.db_url,
            sql.SQL("SELECT kind FROM {} WHERE kind = 'retrain_waiting'").format(table(airflow.schema, "alerts")),
        )
        assert kinds, "no retrain_waiting alert"
    for run in waiting:  # the review tests below need retrain_model to themselves
        airflow.api("DELETE", f"/dags/{RETRAIN_MODEL}/dagRuns/{run['dag_run_id']}", expect=(204,))
    airflow.api("PATCH", f"/dags/{MONITOR_DRIFT}", json={"is_paused": True})


@pytest.fixture(scope="module")
def drift_report(airflow):
    """monitor_drift's report and decision for the last backfilled interval, in this process (the
    functions its tasks call): the pages under test only read what they store."""
    from driftline.airflow.tasks import retrain_run_id
    from driftline.airflow.ui.report_files import report_id
    from driftline.drift.decision import RetrainState, decide_retrain
    from driftline.drift.html import render_report
    from driftline.drift.monitor import monitor_interval

    start = BACKFILL_INTERVALS[-1]
    summary = monitor_interval(str(airflow.config), start, start + DAY, "e2e_monitor")
    render_report(str(airflow.config), start, start + DAY)  # monitor_drift's render_report task
    decision = decide_retrain(
        str(airflow.config),
        start,
        start + DAY,
        "e2e_monitor",
        RetrainState(RETRAIN_MODEL),
        retrain_run_id=retrain_run_id,
    )
    return {"id": report_id(start, start + DAY), "summary": summary, "decision": decision}


def test_plugin_pages_require_airflow_auth(airflow, drift_report):
    pages = [
        f"{PAGES}/reports",
        f"{PAGES}/registry",
        f"{PAGES}/trends",
        f"{PAGES}/reports/{drift_report['id']}",
        f"{PAGES}/reports/{drift_report['id']}/details",
    ]
    for page in pages:
        assert airflow.http.get(page).status_code == 401, page
        assert airflow.http.get(page, headers={"Authorization": "Bearer not-a-token"}).status_code in (401, 403), page

    reports = airflow.http.get(f"{PAGES}/reports", headers=airflow.auth)
    assert reports.status_code == 200
    assert drift_report["id"] in reports.text and f"{BACKFILL_INTERVALS[-1]:%Y-%m-%d} 00:00 UTC" in reports.text
    assert html_escape(drift_report["decision"]["reason"]) in reports.text
    html = airflow.http.get(f"{PAGES}/reports/{drift_report['id']}", headers=airflow.auth)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "sandbox" in html.headers["content-security-policy"]
    assert Path(drift_report["summary"]["report_path"]).read_bytes() == html.content
    details = airflow.http.get(f"{PAGES}/reports/{drift_report['id']}/details", headers=airflow.auth)
    assert details.status_code == 200 and "amount" in details.text
    # The decision and why head both: the details page states it first, the report file carries driftline's summary.
    assert 'id="decision"' in details.text and "Decision:" in details.text and "driftline drift summary" in html.text
    assert html_escape(drift_report["decision"]["reason"]) in details.text
    registry = airflow.http.get(f"{PAGES}/registry", headers=airflow.auth)
    assert registry.status_code == 200 and "champion" in registry.text and "v1" in registry.text
    trends = airflow.http.get(f"{PAGES}/trends", headers=airflow.auth)
    assert trends.status_code == 200 and "<svg" in trends.text and "<script" not in trends.text
    # The UI session cookie works as well (pages open inside the UI), and ids never reach the filesystem.
    cookie = airflow.http.get(f"{PAGES}/registry", cookies={"_token": airflow.token})
    assert cookie.status_code == 200
    # The menu entries lead to the only dataset's pages; the plugin's root lists the datasets.
    entry = airflow.http.get("/driftline/reports", headers=airflow.auth)
    assert entry.status_code == 307 and entry.headers["location"].endswith(f"{PAGES}/reports")
    index = airflow.http.get("/driftline/", headers=airflow.auth)
    assert index.status_code == 200 and f"{DEMO_DATASET}__score_batch" in index.text
    for bad in ("..%2F..%2Fetc%2Fpasswd", "20261105T000000Z--20261199T000000Z", "20250101T000000Z--20250102T000000Z"):
        assert airflow.http.get(f"{PAGES}/reports/{bad}", headers=airflow.auth).status_code == 404, bad
    # The plugin is registered with its pages in the UI navigation.
    plugins = airflow.api("GET", "/plugins")["plugins"]
    views = {v["url_route"] for p in plugins if p["name"] == "driftline" for v in p["external_views"]}
    assert views == {"driftline-reports", "driftline-registry"}


def test_browser_screenshots(airflow, drift_report, tmp_path):
    from tests.e2e.browser import Browser, find_chromium

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium: apt-get install -y chromium")
    # Tests write nothing into the repository: screenshots go to a temporary folder unless asked
    # (DRIFTLINE_SCREENSHOTS_DIR=docs refreshes the README's pictures).
    out = Path(os.environ.get("DRIFTLINE_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    shown = f"{BACKFILL_INTERVALS[-1]:%Y-%m-%d} 00:00 UTC"
    browser = Browser(chromium)
    try:
        browser.set_cookie(airflow.base, "_token", airflow.token)
        grid = browser.screenshot(
            f"{airflow.base}/dags/{SCORE_BATCH}",
            out / "airflow-grid.png",
            settle_seconds=8,
            wait_for_text="score_interval",
        )
        assert SCORE_BATCH in grid
        reports = browser.screenshot(
            f"{airflow.base}/plugin/driftline-reports", out / "drift-reports.png", settle_seconds=5, wait_for_text=shown
        )
        assert shown in reports, reports[:2000]
        report = browser.screenshot(
            f"{airflow.base}{PAGES}/reports/{drift_report['id']}", out / "drift-report.png", settle_seconds=8
        )
        assert report.strip(), "the Evidently report rendered no text"
        registry = browser.screenshot(
            f"{airflow.base}/plugin/driftline-registry",
            out / "model-registry.png",
            settle_seconds=5,
            wait_for_text="Promotion history",
        )
        assert "Promotion history" in registry
        trends = browser.screenshot(
            f"{airflow.base}{PAGES}/trends", out / "trends.png", settle_seconds=5, wait_for_text="Prediction drift"
        )
        assert "Estimated vs realized" in trends, trends[:2000]
    finally:
        browser.close()
    for name in ("airflow-grid.png", "drift-reports.png", "drift-report.png", "model-registry.png", "trends.png"):
        assert (out / name).stat().st_size > 10_000, name


# -- promotion = "manual": retrain_model waits for a person --------------------------------------------


@pytest.fixture(scope="module")
def review_project(airflow):
    """A config beside the served one (same data, its own schema) whose champion is weak, so every
    retrain candidate passes the guardrails and reaches the reviewer. The same window and seed give
    the same candidate each run: reject, time out, then approve the same version."""
    from driftline import db, registry
    from driftline.config import load_config
    from driftline.labelled import read_table
    from driftline.training import train

    if airflow.token is None:
        airflow.login()
    path = config_variant(airflow.config, f"review_{uuid.uuid4().hex[:8]}")
    config = load_config(path)
    trained = train(config, read_table(config.resolve_location(config.history_uri), config).head(300))
    with db.connect(airflow.db_url, autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        weak, _ = registry.register_champion(
            conn, config.db_schema, config.registry_dir, trained.model_text, trained.manifest, "weak e2e champion"
        )
    airflow.api("PATCH", f"/dags/{RETRAIN_MODEL}", json={"is_paused": False})
    return {"config": path, "schema": config.db_schema, "weak": weak}


def _start_review_run(airflow: Airflow, project: dict, run_id: str, reason: str) -> dict:
    """Trigger retrain_model and wait until approve_promotion waits for a person; its required action."""
    airflow.api(
        "POST",
        f"/dags/{RETRAIN_MODEL}/dagRuns",
        json={
            "dag_run_id": run_id,
            "logical_date": None,
            "conf": {"config": str(project["config"]), "reason": reason, "training_window_end": FIRST.isoformat()},
        },
    )
    task = f"/dags/{RETRAIN_MODEL}/dagRuns/{run_id}/taskInstances/approve_promotion"

    def waiting():
        state = airflow.api("GET", task)["state"]
        assert state not in ("failed", "skipped", "upstream_failed"), f"approve_promotion {state}\n{airflow.log_tail()}"
        return state == "awaiting_input"

    airflow.wait_for(f"{run_id}: approve_promotion awaiting input", waiting, timeout=300)
    # Answer like a person, not within the second: in Airflow 3.3 an answer that lands before the
    # scheduler has processed the parked workload's exit can fail the task (executor-event race).
    time.sleep(10)
    assert airflow.api("GET", task)["state"] == "awaiting_input"
    assert airflow.run_state(RETRAIN_MODEL, run_id) == "running"  # the run waits, the champion stays
    return airflow.api("GET", f"{task}/-1/hitlDetails")


def _events(airflow: Airflow, project: dict) -> list[tuple]:
    from psycopg import sql

    from driftline.db import table

    return query_rows(
        airflow.db_url,
        sql.SQL(
            "SELECT action, to_version, actor, reviewer, review_comment, reason, run_id FROM {} ORDER BY event_id"
        ).format(table(project["schema"], "promotion_events")),
    )


def _manifest(airflow: Airflow, project: dict, version: int) -> dict:
    from psycopg import sql

    from driftline.db import table

    ((manifest,),) = query_rows(
        airflow.db_url,
        sql.SQL("SELECT manifest FROM {} WHERE version = %s").format(table(project["schema"], "model_versions")),
        (version,),
    )
    return manifest


def _task_states(airflow: Airflow, run_id: str) -> dict[str, str]:
    tasks = airflow.api("GET", f"/dags/{RETRAIN_MODEL}/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {t["task_id"]: t["state"] for t in tasks}


def test_manual_promotion_waits_for_a_reviewer_who_rejects(airflow, review_project):
    detail = _start_review_run(airflow, review_project, "e2e_review_reject", "e2e: reviewer rejects")
    weak = review_project["weak"]
    assert (
        detail["subject"].startswith("demo_transactions: promote candidate v")
        and f"over champion v{weak}?" in detail["subject"]
    )
    assert "| auc (primary) |" in detail["body"] and "Guardrails (all passed)" in detail["body"]
    assert detail["options"] == ["Approve", "Reject"] and detail["defaults"] == ["Reject"]
    assert detail["response_received"] is False
    assert [e[0] for e in _events(airflow, review_project)] == ["promote"]  # only the weak champion's

    bob = airflow.token_for("bob")
    answer = airflow.api(
        "PATCH",
        f"/dags/{RETRAIN_MODEL}/dagRuns/e2e_review_reject/taskInstances/approve_promotion/-1/hitlDetails",
        token=bob,
        json={"chosen_options": ["Reject"], "params_input": {"comment": "segment mix looks off, not this week"}},
    )
    assert answer["responded_by"]["name"] == "bob"
    airflow.wait_run(RETRAIN_MODEL, "e2e_review_reject", timeout=300)
    states = _task_states(airflow, "e2e_review_reject")
    assert states["approved"] == "skipped" and states["decide_promotion"] == "success"

    action, version, actor, reviewer, comment, reason, run_id = _events(airflow, review_project)[-1]
    assert (action, actor, reviewer, comment, run_id) == (
        "reject",
        "bob",
        "bob",
        "segment mix looks off, not this week",
        "e2e_review_reject",
    )
    assert "rejected by bob: segment mix looks off, not this week" in reason
    last = _manifest(airflow, review_project, version)["decisions"][-1]
    assert (last["action"], last["reviewer"], last["comment"], last["timed_out"]) == (
        "reject",
        "bob",
        "segment mix looks off, not this week",
        False,
    )
    review_project["candidate"] = version


def test_manual_promotion_without_an_answer_is_rejected_at_the_timeout(airflow, review_project):
    started = time.monotonic()
    _start_review_run(airflow, review_project, "e2e_review_timeout", "e2e: nobody answers")
    airflow.wait_run(RETRAIN_MODEL, "e2e_review_timeout", timeout=APPROVAL_TIMEOUT_HOURS * 3600 + 240)
    assert time.monotonic() - started >= APPROVAL_TIMEOUT_HOURS * 3600 * 0.9  # it waited for the deadline
    action, version, actor, reviewer, comment, reason, _ = _events(airflow, review_project)[-1]
    assert (action, version, actor, reviewer, comment) == (
        "reject",
        review_project["candidate"],
        "retrain_model",
        None,
        None,
    )
    assert f"no answer within {APPROVAL_TIMEOUT_HOURS:g} h" in reason
    last = _manifest(airflow, review_project, version)["decisions"][-1]
    assert last["timed_out"] is True and last["reviewer"] is None and last["run_id"] == "e2e_review_timeout"


def test_manual_promotion_approved_by_a_named_reviewer(airflow, review_project):
    from driftline import registry

    _start_review_run(airflow, review_project, "e2e_review_approve", "e2e: reviewer approves")
    alice = airflow.token_for("alice")
    airflow.api(
        "PATCH",
        f"/dags/{RETRAIN_MODEL}/dagRuns/e2e_review_approve/taskInstances/approve_promotion/-1/hitlDetails",
        token=alice,
        json={"chosen_options": ["Approve"], "params_input": {"comment": "holdout and segments checked"}},
    )
    airflow.wait_run(RETRAIN_MODEL, "e2e_review_approve", timeout=300)
    assert _task_states(airflow, "e2e_review_approve")["approved"] == "success"
    action, version, actor, reviewer, comment, reason, _ = _events(airflow, review_project)[-1]
    assert (action, version, actor, reviewer, comment) == (
        "promote",
        review_project["candidate"],
        "alice",
        "alice",
        "holdout and segments checked",
    )
    assert "approved by alice: holdout and segments checked" in reason
    manifest = _manifest(airflow, review_project, version)
    assert [(d["action"], d["reviewer"]) for d in manifest["decisions"]] == [
        ("reject", "bob"),
        ("reject", None),
        ("promote", "alice"),
    ]
    from psycopg import sql

    from driftline.db import table

    ((uri,),) = query_rows(
        airflow.db_url,
        sql.SQL("SELECT artifact_uri FROM {} WHERE version = %s").format(
            table(review_project["schema"], "model_versions")
        ),
        (version,),
    )
    assert json.loads((registry.artifact_path(uri).parent / registry.MANIFEST_FILE).read_text()) == manifest
