"""No personal data and no credential in logs or CLI output.

Unique markers are planted as an entity key and as feature values of one interval's input, and the
database URL carries a unique password. score_batch, monitor_drift and retrain_model then run
through Airflow (dag.test) and the CLI runs its everyday commands, with everything they write
(log records, stdout, stderr) captured. Both run in child processes at log level INFO. The markers must reach the database
(the scored key in predictions, the bad row verbatim in quarantine_rows) and appear in no log line;
the password appears nowhere, not even in a connection error.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from driftline import db
from driftline.config import load_config
from tests.helpers import REPO, SMALL_PLAN

TOKEN = uuid.uuid4().hex[:12]
SCORED_KEY = f"pii-key-{TOKEN}"  # entity key of a valid row: scored, so it is in predictions
QUARANTINED_KEY = f"pii-qkey-{TOKEN}"  # entity key of a bad row: quarantined
BAD_CATEGORY = f"pii-value-{TOKEN}"  # a feature value outside the allowed categories
AMOUNT = 43210.98765  # a valid, unusual feature value of the scored row
PASSWORD = f"pw-{TOKEN}-secret"
INTERVAL = SMALL_PLAN.interval_bounds()[0]


def url_with_password(conninfo: str, password: str) -> str:
    """The test database as a postgresql:// URL with a password (trust auth on the test server ignores it)."""
    params = conninfo_to_dict(conninfo)
    host = params.get("host", "")
    netloc = f"{quote(params.get('user', 'postgres'))}:{quote(password)}@"
    if host.startswith("/"):  # embedded server: Unix socket directory in the query
        return f"postgresql://{netloc}/{params['dbname']}?host={quote(host)}&port={params.get('port', 5432)}"
    return f"postgresql://{netloc}{host}:{params.get('port', 5432)}/{params['dbname']}"


def plant_markers(config_path: Path) -> None:
    config = load_config(config_path)
    location = Path(config.input_location(*INTERVAL))
    # Edit the first two data rows in place: the demo input also holds deliberately malformed lines.
    lines = location.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    rows = [next(csv.reader([line])) for line in lines[1:3]]
    for row, changes in zip(
        rows,
        (
            {config.entity_key: SCORED_KEY, "amount": str(AMOUNT)},
            {config.entity_key: QUARANTINED_KEY, "merchant_category": BAD_CATEGORY},
        ),
    ):
        for column, value in changes.items():
            row[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    location.write_text(lines[0] + buffer.getvalue() + "".join(lines[3:]), encoding="utf-8")
    event_time = pd.Timestamp(rows[0][header.index(config.event_time)])
    labels_path = Path(config.resolve_location(config.labels_uri))
    labels = pd.read_parquet(labels_path)
    marker_label = {config.entity_key: SCORED_KEY, config.target: 1, "observed_at": event_time + pd.Timedelta(days=1)}
    labels = pd.concat([labels, pd.DataFrame([marker_label]).astype(labels.dtypes.to_dict())], ignore_index=True)
    labels.to_parquet(labels_path, index=False)


# The DAG runs and CLI commands run in child processes at log level INFO (the test session runs
# Airflow at WARNING): what is captured is everything they write, as an operator would see it.
RUN_DAGS = r"""
import json, sys
from datetime import datetime, timedelta
from pathlib import Path
from driftline.config import load_config
from driftline.devtools.dag_runner import load_dataset_dag, run_dag_for_interval
from driftline.devtools.demo_steps import monitor_conf

dags, config, start, end = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3]), datetime.fromisoformat(sys.argv[4])
conf, dataset = {"config": config}, load_config(config).name
states = {
    "score_batch": run_dag_for_interval(load_dataset_dag(dags, "score_batch", dataset), end, conf).state,
    "monitor_drift": load_dataset_dag(dags, "monitor_drift", dataset).test(run_conf=monitor_conf(config, start, end)).state,
    "retrain_model": load_dataset_dag(dags, "retrain_model", dataset).test(run_conf={
        **conf, "reason": "governance test", "interval": {"start": start.isoformat(), "end": end.isoformat()},
        "labels_as_of": (end + timedelta(days=4)).isoformat()}).state,
}
print("DAG STATES", json.dumps({name: str(state) for name, state in states.items()}))
"""


def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """A child process at log level INFO; its return code and everything it wrote."""
    result = subprocess.run(
        [sys.executable, *args],
        env={**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result.returncode, result.stdout + "\n" + result.stderr


def test_markers_and_password_appear_in_no_log(project, database_url, airflow_db):
    secret_url = url_with_password(database_url, PASSWORD)
    plant_markers(project)
    config = load_config(project)
    env = {**os.environ, "DRIFTLINE_DB_URL": secret_url, "DRIFTLINE_CONFIG": str(project)}
    start, end = (moment.isoformat() for moment in INTERVAL)
    outputs = []

    code, output = run(["-c", RUN_DAGS, str(REPO / "dags"), str(project), start, end], env)
    outputs.append(output)
    assert code == 0, output[-5000:]
    assert 'DAG STATES {"score_batch": "success", "monitor_drift": "success", "retrain_model": "success"}' in output, (
        output[-5000:]
    )
    cli = ["-m", "driftline.cli"]
    for command in (
        ["score", "--config", str(project), "--start", start, "--end", end],
        ["models", "--config", str(project)],
        ["init-db", "--config", str(project)],
        ["db-url", "--config", str(project)],
    ):
        code, output = run(cli + command, env)
        outputs.append(output)
        assert code == 0, output[-3000:]
    # An unreachable server: the error names the URL, masked, and no traceback.
    unreachable = secret_url.replace(":5432/", ":1/") if ":5432/" in secret_url else secret_url + "&port=1"
    code, output = run(cli + ["init-db", "--config", str(project)], {**env, "DRIFTLINE_DB_URL": unreachable})
    outputs.append(output)
    assert code == 1 and "Traceback" not in output, output[-3000:]
    text = "\n".join(outputs)

    # The markers went through the pipeline: the scored key is published, the bad row is quarantined as read.
    with psycopg.connect(database_url) as conn:
        published = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE entity_key = %s").format(db.table(config.db_schema, "predictions")),
            (SCORED_KEY,),
        ).fetchone()[0]
        quarantined = conn.execute(
            sql.SQL("SELECT raw_row FROM {} WHERE entity_key = %s").format(
                db.table(config.db_schema, "quarantine_rows")
            ),
            (QUARANTINED_KEY,),
        ).fetchall()
    assert published == 1
    assert quarantined and all(row[0]["merchant_category"] == BAD_CATEGORY for row in quarantined)

    # What was captured really is the runs' logging: each task's own INFO line, the CLI's output, the masked error.
    for expected in (
        "scored interval",
        "monitored interval",
        "candidate v",
        "retrain_model decision",
        "promotion history",
        "cannot connect to PostgreSQL at postgresql://postgres:***@",
        "rows_quarantined",
        start[:10],
    ):
        assert expected in text, f"{expected!r} not captured: the check below would prove nothing"

    for secret in (SCORED_KEY, QUARANTINED_KEY, BAD_CATEGORY, f"{AMOUNT}", TOKEN, PASSWORD, quote(PASSWORD)):
        assert secret not in text, (
            f"{secret!r} leaked into logs or output:\n"
            + "\n".join(line for line in text.splitlines() if secret in line)[:3000]
        )
    assert secret_url != db.mask_url(secret_url)  # the URL did carry a password


# -- failures whose database error carries row data (DETAIL / CONTEXT lines) ------------------------

RUN_SCORE_BATCH = r"""
import sys
from datetime import datetime
from pathlib import Path
from driftline.config import load_config
from driftline.devtools.dag_runner import load_dataset_dag, run_dag_for_interval
from driftline.devtools.demo_steps import monitor_conf

dag = load_dataset_dag(Path(sys.argv[1]), "score_batch", load_config(sys.argv[2]).name)
print("DAG STATE", run_dag_for_interval(dag, datetime.fromisoformat(sys.argv[3]), {"config": sys.argv[2]}).state)
"""
DUPLICATE_KEY = f"pii-dup-{TOKEN}"  # one key on two rows 1,500 rows apart: further apart than chunk_rows=1000
NUL_KEY = f"pii-nul-{TOKEN}"  # a quarantined row whose raw JSON holds \u0000, which jsonb refuses


def _rewrite_rows(path: Path, change) -> None:
    """Apply change(rows, header) to the parsed data rows of a CSV input and write it back."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    rows = [next(csv.reader([line])) for line in lines[1:]]
    change(rows, header)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(lines[0] + buffer.getvalue(), encoding="utf-8")


def test_database_errors_leave_no_row_data_in_logs_run_summary_or_alerts(project, database_url, airflow_db):
    config = load_config(project)
    interval = SMALL_PLAN.interval_bounds()[1]
    location = Path(config.input_location(*interval))
    original = location.read_bytes()

    def duplicate_keys(rows, header):
        key = header.index(config.entity_key)
        for offset in range(0, 200, 10):  # several pairs: at least one has two valid (scored) rows
            rows[offset][key] = rows[offset + 1_500][key] = f"{DUPLICATE_KEY}-{offset}"

    def nul_in_quarantined_row(rows, header):
        rows[5][header.index(config.entity_key)] = NUL_KEY
        rows[5][header.index("merchant_category")] = f"pii-value-\x00-{TOKEN}"

    env = {**os.environ, "DRIFTLINE_CONFIG": str(project)}
    outputs, states = [], []
    try:
        for change in (duplicate_keys, nul_in_quarantined_row):
            location.write_bytes(original)
            _rewrite_rows(location, change)
            code, output = run(["-c", RUN_SCORE_BATCH, str(REPO / "dags"), str(project), interval[1].isoformat()], env)
            assert code == 0, output[-5000:]
            outputs.append(output)
            states.append(output.split("DAG STATE", 1)[1].split()[0] if "DAG STATE" in output else None)
    finally:
        location.write_bytes(original)
    text = "\n".join(outputs)

    # The duplicate really reached Postgres' unique index and failed the interval at once, with a
    # message that says what to do; the logs carry the scrubbed database error.
    assert states[0] == "failed"
    assert "duplicate key value violates unique constraint" in text and "SQLSTATE 23505" in text
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            sql.SQL("SELECT status, coalesce(message, '') FROM {} WHERE interval_start = %s").format(
                db.table(config.db_schema, "run_summary")
            ),
            (interval[0],),
        ).fetchall()
        alerts = conn.execute(
            sql.SQL("SELECT message || ' ' || numbers::text FROM {}").format(db.table(config.db_schema, "alerts"))
        ).fetchall()
    messages = [message for _, message in stored]
    assert any("appears more than once" in message for message in messages)
    assert any("score_batch.score_interval failed" in message for (message,) in alerts)

    for where, captured in (
        ("logs", text),
        ("run_summary", "\n".join(messages)),
        ("alerts", "\n".join(a for (a,) in alerts)),
    ):
        assert TOKEN not in captured, (
            f"row data leaked into {where}:\n"
            + "\n".join(line for line in captured.splitlines() if TOKEN in line)[:3000]
        )


def test_real_database_errors_are_scrubbed_before_anything_sees_them(project, database_url):
    """Each kind of Postgres error that quotes row data, raised for real, then passed through what
    logs, stores and alerts it: the adapter's outcome (and its traceback), the stored message, the alert."""
    import threading
    import time
    import traceback

    from airflow.sdk.exceptions import AirflowFailException

    from driftline import errors
    from driftline.airflow import tasks
    from driftline.airflow.notifiers import DriftlineAlertNotifier

    config = load_config(project)
    marker = f"pii-db-{TOKEN}"
    raised: dict[str, psycopg.Error] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (k text PRIMARY KEY, j jsonb, x float8)")
        conn.execute("INSERT INTO t VALUES (%s, NULL, 1)", (marker,))
        cases = {
            "duplicate key": f"{marker},,1\n",
            "NUL in JSON": f'k2,"{{""a"": ""{marker}\\u0000""}}",1\n',
            "bad number": f"k3,,{marker}\n",
        }
        for name, data in cases.items():
            try:
                db.copy_csv(conn, sql.SQL("t"), ["k", "j", "x"], data.encode())
            except psycopg.Error as exc:
                raised[name] = exc
    # A server restart mid-COPY, as the client sees it: the backend is terminated while it loads.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (k text PRIMARY KEY)")
        pid = conn.info.backend_pid

        def terminate():
            time.sleep(0.3)
            with psycopg.connect(database_url, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", (pid,))

        threading.Thread(target=terminate).start()
        try:
            db.copy_csv(conn, sql.SQL("t"), ["k"], "".join(f"{marker}-{i}\n" for i in range(2_000_000)).encode())
        except psycopg.Error as exc:
            raised["restart mid-COPY"] = exc
    assert set(raised) == {*cases, "restart mid-COPY"}
    assert all(marker in str(raised[name]) for name in cases)  # the server did quote the row

    notifier = DriftlineAlertNotifier(str(project))
    for name, exc in raised.items():
        # The data's fault: fail now; a server restart: retried (raised as it is, a Transient).
        expected = errors.Transient if name == "restart mid-COPY" else AirflowFailException
        with pytest.raises(expected) as raised_by_adapter:
            tasks.run_step(lambda exc=exc: (_ for _ in ()).throw(exc))
        outcome = raised_by_adapter.value
        shown = "".join(traceback.format_exception(outcome))
        assert marker not in shown and "DETAIL" not in shown and "CONTEXT" not in shown, name
        assert marker not in errors.safe_message(exc), name
        notifier.notify({"exception": outcome, "run_id": f"scrub {name}", "params": {"config": str(project)}})
    with psycopg.connect(database_url) as conn:
        alerts = conn.execute(
            sql.SQL("SELECT message FROM {} WHERE run_id LIKE 'scrub %%'").format(db.table(config.db_schema, "alerts"))
        ).fetchall()
    assert len(alerts) == len(raised)
    assert all(marker not in message for (message,) in alerts)
    assert any("SQLSTATE 23505" in message and "constraint t_pkey" in message for (message,) in alerts)
