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
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from driftline import db
from driftline.config import load_config

from .conftest import REPO, SMALL_PLAN

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
    for row, changes in zip(rows, ({config.entity_key: SCORED_KEY, "amount": str(AMOUNT)},
                                   {config.entity_key: QUARANTINED_KEY, "merchant_category": BAD_CATEGORY})):
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
from driftline.cli import load_dag_file, run_dag_for_interval

dags, config, start, end = Path(sys.argv[1]), sys.argv[2], datetime.fromisoformat(sys.argv[3]), datetime.fromisoformat(sys.argv[4])
conf = {"config": config}
states = {
    "score_batch": run_dag_for_interval(load_dag_file(dags / "score_batch.py"), end, conf).state,
    "monitor_drift": run_dag_for_interval(load_dag_file(dags / "monitor_drift.py"), end, conf).state,
    "retrain_model": load_dag_file(dags / "retrain_model.py").test(run_conf={
        **conf, "reason": "governance test", "interval": {"start": start.isoformat(), "end": end.isoformat()},
        "labels_as_of": (end + timedelta(days=4)).isoformat()}).state,
}
print("DAG STATES", json.dumps({name: str(state) for name, state in states.items()}))
"""


def run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """A child process at log level INFO; its return code and everything it wrote."""
    result = subprocess.run(
        [sys.executable, *args], env={**env, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"},
        capture_output=True, text=True, timeout=900,
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
    assert 'DAG STATES {"score_batch": "success", "monitor_drift": "success", "retrain_model": "success"}' in output, output[-5000:]
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
            sql.SQL("SELECT raw_row FROM {} WHERE entity_key = %s").format(db.table(config.db_schema, "quarantine_rows")),
            (QUARANTINED_KEY,),
        ).fetchall()
    assert published == 1
    assert quarantined and all(row[0]["merchant_category"] == BAD_CATEGORY for row in quarantined)

    # What was captured really is the runs' logging: each task's own INFO line, the CLI's output, the masked error.
    for expected in ("scored interval", "monitored interval", "candidate v", "retrain_model decision", "promotion history",
                     "cannot connect to PostgreSQL at postgresql://postgres:***@", "rows_quarantined", start[:10]):
        assert expected in text, f"{expected!r} not captured: the check below would prove nothing"

    for secret in (SCORED_KEY, QUARANTINED_KEY, BAD_CATEGORY, f"{AMOUNT}", TOKEN, PASSWORD, quote(PASSWORD)):
        assert secret not in text, f"{secret!r} leaked into logs or output:\n" + "\n".join(
            line for line in text.splitlines() if secret in line
        )[:3000]
    assert secret_url != db.mask_url(secret_url)  # the URL did carry a password
