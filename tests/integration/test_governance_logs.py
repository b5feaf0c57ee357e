"""No personal data and no credential in logs or CLI output.

Unique markers are planted as an entity key and as feature values of one interval's input, and the
database URL carries a unique password. score_batch, monitor_drift and retrain_model then run
through Airflow (dag.test) and the CLI runs its everyday commands, with every log record, the
process's stdout/stderr and Airflow's task log files captured. The markers must reach the database
(the scored key in predictions, the bad row verbatim in quarantine_rows) and appear in no log line;
the password appears nowhere, not even in a connection error.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from driftline import db
from driftline.cli import load_dag_file, main as cli_main, run_dag_for_interval
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
    frame = pd.read_csv(location, dtype=str, keep_default_na=False)
    frame.loc[0, [config.entity_key, "amount"]] = [SCORED_KEY, str(AMOUNT)]
    frame.loc[1, [config.entity_key, "merchant_category"]] = [QUARANTINED_KEY, BAD_CATEGORY]
    frame.to_csv(location, index=False)
    labels_path = Path(config.resolve_location(config.labels_uri))
    labels = pd.read_parquet(labels_path)
    event_time = pd.Timestamp(frame.loc[0, config.event_time])
    marker_label = {config.entity_key: SCORED_KEY, config.target: 1, "observed_at": event_time + pd.Timedelta(days=1)}
    labels = pd.concat([labels, pd.DataFrame([marker_label]).astype(labels.dtypes.to_dict())], ignore_index=True)
    labels.to_parquet(labels_path, index=False)


@pytest.fixture
def haystack(caplog, capfd, airflow_db):
    """Everything the runs below say: log records at INFO and above, stdout/stderr, task log files."""
    caplog.set_level(logging.INFO)
    before = {p: p.stat().st_size for p in (airflow_db / "logs").rglob("*") if p.is_file()} if (airflow_db / "logs").exists() else {}

    def collect() -> str:
        out, err = capfd.readouterr()
        texts = [out, err, caplog.text, *(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)]
        for path in (airflow_db / "logs").rglob("*") if (airflow_db / "logs").exists() else []:
            if path.is_file():
                texts.append(path.read_bytes()[before.get(path, 0):].decode(errors="replace"))
        return "\n".join(texts)

    return collect


def test_markers_and_password_appear_in_no_log(project, database_url, monkeypatch, haystack):
    secret_url = url_with_password(database_url, PASSWORD)
    monkeypatch.setenv("DRIFTLINE_DB_URL", secret_url)
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(project))
    plant_markers(project)
    config = load_config(project)
    conf = {"config": str(project)}

    runs = {
        "score_batch": run_dag_for_interval(load_dag_file(REPO / "dags" / "score_batch.py"), INTERVAL[1], conf),
        "monitor_drift": run_dag_for_interval(load_dag_file(REPO / "dags" / "monitor_drift.py"), INTERVAL[1], conf),
        "retrain_model": load_dag_file(REPO / "dags" / "retrain_model.py").test(
            run_conf={
                **conf,
                "reason": "governance test",
                "interval": {"start": INTERVAL[0].isoformat(), "end": INTERVAL[1].isoformat()},
                "labels_as_of": (INTERVAL[1] + timedelta(days=4)).isoformat(),
            }
        ),
    }
    assert {name: str(run.state) for name, run in runs.items()} == dict.fromkeys(runs, "success")
    start, end = (moment.isoformat() for moment in INTERVAL)
    for command in (
        ["score", "--config", str(project), "--start", start, "--end", end],
        ["models", "--config", str(project)],
        ["init-db", "--config", str(project)],
        ["db-url", "--config", str(project)],
    ):
        assert cli_main(command) == 0, command
    # An unreachable server: the error names the URL, masked.
    monkeypatch.setenv("DRIFTLINE_DB_URL", secret_url.replace(":5432/", ":1/") if ":5432/" in secret_url else secret_url + "&port=1")
    assert cli_main(["init-db", "--config", str(project)]) == 1
    text = haystack()

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
                     "cannot connect to PostgreSQL at postgresql://postgres:***@", start[:10]):
        assert expected in text, f"{expected!r} not captured: the check below would prove nothing"

    for secret in (SCORED_KEY, QUARANTINED_KEY, BAD_CATEGORY, f"{AMOUNT}", TOKEN, PASSWORD, quote(PASSWORD)):
        assert secret not in text, f"{secret!r} leaked into logs or output:\n" + "\n".join(
            line for line in text.splitlines() if secret in line
        )[:3000]
    assert os.environ["DRIFTLINE_DB_URL"] != db.mask_url(os.environ["DRIFTLINE_DB_URL"])  # the URL did carry a password
