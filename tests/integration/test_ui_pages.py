"""The UI pages as the plugin's app serves them, from a real schema that holds hostile values: every
value shown is escaped, report files are served only by id and only from inside the reports folder,
and every response carries its Content-Security-Policy. Airflow's login guard is lifted here (its
401 is checked in tests/unit/airflow/ui/test_app.py); everything else is the real app, config and database."""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from psycopg import sql

from driftline import db
from driftline.airflow.ui.app import create_app
from driftline.airflow.ui.report_files import report_id
from driftline.config import load_config
from driftline.registry import register_champion
from tests.helpers import config_copy, edit_config, write_config

HOSTILE = '<script>alert("x")</script>'
DATASET = "/demo_transactions"  # the pages of the demo config's copy
START = datetime(2026, 11, 4, tzinfo=timezone.utc)
REPORTED = (START, START + timedelta(days=1))  # its report file is inside the reports folder
OUTSIDE = (START + timedelta(days=1), START + timedelta(days=2))  # its stored path points outside


def monitored(conn, schema: str, interval, report_path: str) -> None:
    """One monitored interval as monitor_drift stores it, with hostile text where text is shown."""
    table = lambda name: db.table(schema, name)  # noqa: E731
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end, model_version, run_id, rows_scored, current_rows, "
            "reference_rows, features, drifted_features, counted_features, drifted_share, prediction_method, "
            "prediction_drift, breach, report_path) VALUES (%s, %s, 1, %s, 100, 100, 100, 7, 3, 2, 0.2857, %s, 0.12, "
            "true, %s)"
        ).format(table("drift_intervals")),
        (*interval, HOSTILE, HOSTILE, report_path),
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end, model_version, column_name, column_type, method, statistic, "
            "threshold, drifted, effect_size, counted) VALUES (%s, %s, 1, %s, 'numeric', 'ks', 0.001, 0.05, true, 0.8, true)"
        ).format(table("drift_features")),
        (*interval, HOSTILE),
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end, run_id, breach, trigger, reason, numbers) "
            "VALUES (%s, %s, 'r', true, false, %s, '{{}}')"
        ).format(table("drift_decisions")),
        (*interval, f"breach not persistent {HOSTILE}"),
    )


@pytest.fixture
def client(tmp_path, database_url, monkeypatch):
    """The plugin's app over a schema with two monitored intervals and a champion, without the login guard."""
    schema = f"ui_{uuid.uuid4().hex[:8]}"
    path = config_copy(tmp_path, keys={"schema": f'"{schema}"'})
    config = load_config(path)
    reports = config.drift.reports_dir
    reports.mkdir(parents=True)
    (reports / "inside.html").write_text("<html><body>the evidently report</body></html>")
    (tmp_path / "secret.html").write_text("not a report")
    with db.connect(database_url, autocommit=True) as conn:
        db.ensure_schema(conn, schema)
        monitored(conn, schema, REPORTED, str(reports / "inside.html"))
        monitored(conn, schema, OUTSIDE, str(reports / ".." / ".." / "secret.html"))
        register_champion(conn, schema, config.registry_dir, "tree\nversion=v4\n", {"metrics": {"auc": 0.9}}, HOSTILE)
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(path))
    monkeypatch.setenv("DRIFTLINE_DB_URL", database_url)
    with guardless_client() as client:
        yield client


@contextmanager
def guardless_client():
    """The plugin's app (for the configs the environment names), without the login guard."""
    from fastapi.testclient import TestClient

    app = create_app()
    assert app.router.dependencies, "the app has no app-wide guard to lift"
    for guard in app.router.dependencies:
        app.dependency_overrides[guard.dependency] = lambda: None
    with TestClient(app) as client:
        yield client


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    assert "default-src 'none'" in response.headers["content-security-policy"], path
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text, path
    return response.text


def test_every_page_escapes_what_it_shows(client):
    reports = page(client, f"{DATASET}/reports")
    assert reports.count("&lt;script&gt;") == 2 * 3  # per interval: prediction method, decision reason, run id
    assert f'href="{DATASET}/reports/{report_id(*REPORTED)}/details"' in reports

    details = page(client, f"{DATASET}/reports/{report_id(*REPORTED)}/details")
    assert "No retrain (breach)" in details and "breach not persistent &lt;script&gt;" in details
    assert "&lt;script&gt;" in details  # the feature name, in the one feature table

    registry = page(client, f"{DATASET}/registry")
    assert "v1" in registry and "&lt;script&gt;" in registry  # the promotion reason


def test_details_page_states_the_decision_first_then_the_evidence_and_one_feature_table(client):
    details = page(client, f"{DATASET}/reports/{report_id(*REPORTED)}/details")
    body = details[details.index("<h1>") :]
    decision, evidence, features = (body.index(mark) for mark in ('id="decision"', 'id="evidence"', 'id="features"'))
    assert decision < evidence < features  # the conclusion first
    assert body.index("Decision: ") < body.index("<table")  # nothing tabular ahead of it
    assert (
        body.count("<table") == 2 and body.count("&lt;script&gt;") == 3
    )  # reason, prediction method, the feature once
    assert "0.2857" in body and "0.0010" in body and "0.0500" in body  # one format: fixed decimals
    assert not re.search(r"\d[eE][+-]?\d", re.sub(r"<[^>]*>", " ", body))  # never scientific notation


def test_registry_page_shows_a_passed_candidate_waiting_for_approval(tmp_path, database_url, monkeypatch):
    from driftline.registry import register_candidate

    schema = f"ui_{uuid.uuid4().hex[:8]}"
    path = config_copy(tmp_path, [('promotion = "auto"', 'promotion = "manual"')], keys={"schema": f'"{schema}"'})
    config = load_config(path)
    with db.connect(database_url, autocommit=True) as conn:
        db.ensure_schema(conn, schema)
        register_champion(conn, schema, config.registry_dir, "tree\nversion=v4\n", {"metrics": {"auc": 0.9}}, "first")
        candidate, _ = register_candidate(conn, schema, config.registry_dir, "tree\nversion=v4\n\n", {"metrics": {}})
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (candidate_version, champion_version, holdout_rows, holdout_reason, passed, failures, "
                "result, run_id) VALUES (%s, 1, 12345, 'rows neither trained on', true, '[]', '{{}}', 'retrain_1')"
            ).format(db.table(schema, "model_evaluations")),
            (candidate,),
        )
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(path))
    monkeypatch.setenv("DRIFTLINE_DB_URL", database_url)
    with guardless_client() as client:
        registry = page(client, f"{DATASET}/registry")
    body = registry[registry.index("<h1>") :]
    waiting = f"Candidate v{candidate} passed, waiting for approval"
    assert waiting in body and body.index(waiting) < body.index("<table")  # the conclusion first
    assert "approve_promotion" in body and "retrain_1" in body
    assert ">passed<" not in body  # never a bare "passed" for a candidate that has no decision yet
    assert "12,345 rows" in body  # counts with thousands separators


def test_report_files_are_served_only_from_inside_the_reports_folder(client):
    served = client.get(f"{DATASET}/reports/{report_id(*REPORTED)}")
    assert served.status_code == 200 and served.text == "<html><body>the evidently report</body></html>"
    assert served.headers["content-security-policy"].startswith("sandbox allow-scripts")  # an opaque origin
    assert client.get(f"{DATASET}/reports/{report_id(*OUTSIDE)}").status_code == 404  # stored, outside the folder
    never_monitored = (START - timedelta(days=9), START - timedelta(days=8))
    assert client.get(f"{DATASET}/reports/{report_id(*never_monitored)}").status_code == 404
    assert client.get(f"{DATASET}/reports/{report_id(*never_monitored)}/details").status_code == 404
    assert client.get(f"{DATASET}/reports/not-an-id").status_code == 404
    assert client.get(f"/other_dataset/reports/{report_id(*REPORTED)}").status_code == 404  # no such dataset


def test_each_dataset_has_its_own_pages_and_a_broken_config_is_listed(tmp_path, database_url, monkeypatch):
    """Two datasets and a broken config in one configs folder: the index lists all three, each
    dataset's pages show its own schema only, and the broken one hides neither."""
    second = (START + timedelta(days=2), START + timedelta(days=3))
    datasets = {"demo_transactions": REPORTED, "second_dataset": second}
    with db.connect(database_url, autocommit=True) as conn:
        for name, interval in datasets.items():
            schema = f"ui_{uuid.uuid4().hex[:8]}"
            own = {"schema": f'"{schema}"', "registry_dir": f'"models/{name}"', "reports_dir": f'"reports/{name}"'}
            config = load_config(config_copy(tmp_path, name=f"{name}.toml", keys={"name": f'"{name}"', **own}))
            config.drift.reports_dir.mkdir(parents=True)
            (config.drift.reports_dir / "r.html").write_text(f"<html><body>{name}</body></html>")
            db.ensure_schema(conn, schema)
            monitored(conn, schema, interval, str(config.drift.reports_dir / "r.html"))
    demo = (tmp_path / "config" / "demo_transactions.toml").read_text()
    broken = edit_config(demo, keys={"name": '"broken_dataset"', "quarantine_budget": "2"})
    write_config(tmp_path, broken, name="zz_broken.toml")
    monkeypatch.delenv("DRIFTLINE_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTLINE_CONFIGS", str(tmp_path / "config"))
    monkeypatch.setenv("DRIFTLINE_DB_URL", database_url)
    with guardless_client() as client:
        check_two_datasets_and_a_broken_config(client, datasets)


def check_two_datasets_and_a_broken_config(client, datasets: dict) -> None:
    index = page(client, "/")
    for name in datasets:
        assert f'href="/{name}/reports"' in index and f'href="/{name}/registry"' in index
        assert f"{name}__monitor_drift" in index
    assert "zz_broken.toml" in index and "validation.quarantine_budget" in index
    assert page(client, "/reports") == index  # several datasets: the menu entry lists them
    for name, interval in datasets.items():
        other = next(i for n, i in datasets.items() if n != name)
        reports = page(client, f"/{name}/reports")
        assert report_id(*interval) in reports and report_id(*other) not in reports
        assert client.get(f"/{name}/reports/{report_id(*interval)}").text == f"<html><body>{name}</body></html>"
        assert client.get(f"/{name}/reports/{report_id(*other)}").status_code == 404  # the other one's interval
    assert client.get("/broken_dataset/reports").status_code == 404


def estimated(conn, schema: str, interval, auc: float, realized: float | None) -> None:
    """The interval's estimated AUC as estimate_performance stores it, realized when labelled."""
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end, model_version, run_id, metric, estimate, band_low, band_high, "
            "rows, threshold, realized, realized_rows) VALUES (%s, %s, 1, %s, 'auc', %s, %s, %s, 100, 0.5, %s, %s)"
        ).format(db.table(schema, "estimated_performance")),
        (*interval, HOSTILE, auc, auc - 0.03, auc + 0.03, realized, None if realized is None else 90),
    )


def test_trend_page_draws_a_point_per_interval_and_escapes_segment_values(tmp_path, database_url, monkeypatch):
    """Four monitored and estimated intervals, two of them labelled: one point per interval on each
    drift chart, estimates and realized values on the AUC chart; the segment section appears only
    with the segment_performance view, its hostile segment value escaped."""
    schema = f"ui_{uuid.uuid4().hex[:8]}"
    path = config_copy(tmp_path, keys={"schema": f'"{schema}"'})
    days = [(START + timedelta(days=i), START + timedelta(days=i + 1)) for i in range(4)]
    with db.connect(database_url, autocommit=True) as conn:
        db.ensure_schema(conn, schema)
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(db.table(schema, "segment_performance")))
        for i, day in enumerate(days):
            monitored(conn, schema, day, "nowhere.html")
            estimated(conn, schema, day, 0.8 - 0.02 * i, 0.79 - 0.05 * i if i < 2 else None)
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(path))
    monkeypatch.setenv("DRIFTLINE_DB_URL", database_url)
    with guardless_client() as client:
        trends = page(client, f"{DATASET}/trends")
        assert f'href="{DATASET}/trends"' in trends and f'href="/{DATASET.strip("/")}/trends"' in page(client, "/")
        charts = re.findall(r"<svg.*?</svg>", trends, flags=re.S)
        share, prediction, auc = charts
        assert share.count('class="point"') == prediction.count('class="point"') == len(days)
        assert share.count('class="threshold"') == prediction.count('class="threshold"') == 1
        assert auc.count('class="point"') == len(days) + 2 and auc.count('class="band"') == 1
        assert "2026-11-04" in share and "Per segment" not in trends

        with db.connect(database_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE VIEW {} AS SELECT interval_start, interval_end, 'channel'::text AS segment_column, "
                    "{}::text AS segment_value, false AS segment_other, rows, 0.1::float8 AS prediction_mean, 0 AS drifted_features, metric, "
                    "estimate, band_low AS estimate_low, band_high AS estimate_high, realized FROM {}"
                ).format(
                    db.table(schema, "segment_performance"),
                    sql.Literal(HOSTILE),  # DDL takes no bind parameters
                    db.table(schema, "estimated_performance"),
                )
            )
        trends = page(client, f"{DATASET}/trends")
        assert "Per segment: auc" in trends and "channel = &lt;script&gt;" in trends
        *_, segment = re.findall(r"<svg.*?</svg>", trends, flags=re.S)
        assert segment.count('class="point"') == len(days) + 2
