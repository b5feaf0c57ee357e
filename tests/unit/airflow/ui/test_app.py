"""The UI plugin without a database: report ids, the report-file guard, a light import, and Airflow's login
guard in front of every route. The pages themselves, escaping included: tests/integration/test_ui_pages.py."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from driftline.airflow.ui.report_files import parse_report_id, report_id, safe_report_file

REPO = Path(__file__).resolve().parents[4]
START = datetime(2026, 11, 4, tzinfo=timezone.utc)


def test_report_id_round_trips_and_is_utc():
    end = START + timedelta(days=1)
    assert report_id(START, end) == "20261104T000000Z--20261105T000000Z"
    assert parse_report_id(report_id(START, end)) == (START, end)
    later = datetime(2026, 11, 4, 1, 0, tzinfo=timezone(timedelta(hours=1)))  # same instant as START
    assert report_id(later, end) == report_id(START, end)


@pytest.mark.parametrize(
    "value",
    [
        "../../etc/passwd",
        "20261104T000000Z",
        "20261104T000000Z--20261199T000000Z",
        "20261104T000000Z--x",
        "20261104T000000Z--20261105T000000Z/../x",
        " 20261104T000000Z--20261105T000000Z",
        "",
    ],
)
def test_parse_report_id_refuses_anything_else(value):
    assert parse_report_id(value) is None


def test_safe_report_file_only_serves_html_inside_the_reports_dir(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    good = reports / "drift_a.html"
    good.write_text("<html></html>")
    outside = tmp_path / "secret.html"
    outside.write_text("secret")
    (reports / "link.html").symlink_to(outside)
    (reports / "notes.txt").write_text("x")
    assert safe_report_file(str(good), reports) == good.resolve()
    assert safe_report_file(str(outside), reports) is None
    assert safe_report_file(str(reports / ".." / "secret.html"), reports) is None
    assert safe_report_file(str(reports / "link.html"), reports) is None  # a symlink out of the folder
    assert safe_report_file(str(reports / "notes.txt"), reports) is None
    assert safe_report_file(str(reports / "missing.html"), reports) is None
    assert safe_report_file(str(reports), reports) is None


def test_plugin_module_stays_light_to_import():
    """Airflow imports the plugin module in every component; the UI module must not pull in heavy libraries."""
    import subprocess
    import sys

    code = "import sys, driftline.airflow.ui.app; heavy = {'pandas', 'lightgbm', 'evidently', 'great_expectations', 'fastapi'}; print(sorted(heavy & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), check=True
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_plugin_registers_the_pages_and_every_route_requires_an_airflow_login(monkeypatch):
    """Plugin FastAPI apps are not behind Airflow auth by default: the app-wide guard must answer 401
    before any route runs (no database is reachable here, so a route that ran would fail differently)."""
    import importlib.util

    from fastapi.testclient import TestClient

    from driftline.db import DatabaseError

    monkeypatch.setenv("DRIFTLINE_CONFIG", str(REPO / "config" / "demo.toml"))
    monkeypatch.setenv("DRIFTLINE_DB_URL", "postgresql://nobody@127.0.0.1:1/none")  # never an embedded server

    spec = importlib.util.spec_from_file_location(
        "driftline_plugin_under_test", REPO / "plugins" / "driftline_plugin.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin = module.DriftlinePlugin
    [app_spec] = plugin.fastapi_apps
    assert not app_spec["url_prefix"].startswith(("/api/v2", "/ui", "/execution", "/auth"))
    assert {v["url_route"] for v in plugin.external_views} == {"driftline-reports", "driftline-registry"}
    assert all(not v["href"].startswith("/") for v in plugin.external_views)  # relative: works under a base_url path

    client = TestClient(app_spec["app"])
    paths = [
        "/",
        "/reports",
        "/registry",
        "/demo_transactions/reports",
        "/demo_transactions/registry",
        "/demo_transactions/trends",
        "/demo_transactions/reports/20261104T000000Z--20261105T000000Z",
        "/demo_transactions/reports/20261104T000000Z--20261105T000000Z/details",
        "/demo_transactions/reports/not-an-id",
        "/no_such_dataset/reports",
        "/no_such_dataset/trends",
    ]
    for path in paths:
        assert client.get(path, follow_redirects=False).status_code == 401, path
    assert client.get("/demo_transactions/reports/..%2F..%2Fetc%2Fpasswd").status_code == 404  # matches no route
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code in (401, 404), path

    # The 401 is the guard's: lifted, the routes run (and a page fails on the unreachable database).
    app = app_spec["app"]
    for guard in app.router.dependencies:
        app.dependency_overrides[guard.dependency] = lambda: None
    try:
        index = client.get("/")  # the datasets: read from the configs, no database
        assert index.status_code == 200 and "demo_transactions__score_batch" in index.text
        # One dataset: the menu entries lead to its pages.
        assert client.get("/reports", follow_redirects=False).headers["location"] == "/demo_transactions/reports"
        assert client.get("/registry", follow_redirects=False).headers["location"] == "/demo_transactions/registry"
        assert client.get("/demo_transactions/reports/not-an-id/details").status_code == 404
        assert client.get("/no_such_dataset/reports").status_code == 404
        assert client.get("/no_such_dataset/trends").status_code == 404
        with pytest.raises(DatabaseError, match="cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/none"):
            client.get("/demo_transactions/reports")
    finally:
        app.dependency_overrides.clear()
