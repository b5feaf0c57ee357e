"""`driftline demo` end to end in a child process, twice: same tables, nothing doubled."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import psycopg
import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


def test_demo_twice_gives_the_same_tables(tmp_path, database_url):
    for folder in ("config", "dags", "expectations"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    env = {**os.environ, "DRIFTLINE_DB_URL": database_url}
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        env.pop(key)  # the demo sets up its own project-local Airflow
    command = [
        sys.executable,
        "-m",
        "driftline.cli",
        "demo",
        "--config",
        str(tmp_path / "config" / "demo.toml"),
        "--rows",
        "2000",
        "--intervals",
        "2",
    ]
    counts = []
    for _ in range(2):
        out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "succeeded" in out.stdout
        with psycopg.connect(database_url) as conn:
            counts.append(
                conn.execute(
                    "SELECT count(*), count(DISTINCT (interval_start, entity_key)), "
                    "(SELECT count(*) FROM driftline_demo.quarantine_rows), "
                    "(SELECT count(*) FROM driftline_demo.model_versions), "
                    "(SELECT count(*) FROM driftline_demo.model_evaluations), "
                    "(SELECT count(*) FROM driftline_demo.promotion_events) FROM driftline_demo.predictions"
                ).fetchone()
            )
    # The second run retrains nothing: no drift decision of its own triggered it, so no new
    # evaluation overwrites or adds to the first run's verdicts, and no new event.
    assert counts[0] == counts[1]
    assert "retrain_model: not run" in out.stdout
    predictions, distinct, quarantined, versions, evaluations, events = counts[0]
    assert evaluations == 1 and events == 2  # initial champion, then the retrained candidate's decision
    assert predictions == distinct == 2 * 2000 - quarantined + 2  # 2 malformed lines are quarantined too
    assert versions == 2  # the champion and the retrained candidate (promoted or rejected), not one per run
    assert "promotion history:" in out.stdout and "realized" in out.stdout
    # [explain] is on in the demo: the top 5% of each interval have reasons, attribution drift is shown.
    with psycopg.connect(database_url) as conn:
        explained = conn.execute(
            "SELECT count(DISTINCT (interval_start, entity_key)), max(rank), "
            "(SELECT sum(ceil(0.05 * rows_scored)) FROM driftline_demo.run_summary WHERE published) "
            "FROM driftline_demo.prediction_reasons"
        ).fetchone()
    assert explained[0] == explained[2] > 0 and explained[1] == 3  # each demo interval is one chunk
    assert "reasons: SELECT" in out.stdout and "attr_ndcg" in out.stdout
    # [monitoring] segments are on in the demo: the README's segment_performance example has rows.
    with psycopg.connect(database_url) as conn:
        ((segment_rows, metric_rows),) = conn.execute(
            "SELECT count(DISTINCT (interval_start, segment_value)), count(*) FILTER (WHERE metric = 'accuracy') "
            "FROM driftline_demo.segment_performance"
        ).fetchall()
    assert segment_rows > 0 and metric_rows > 0
    run_documented_sql(database_url, out.stdout)


def sql_statements(text: str, page: bool = True) -> list[str]:
    """Every statement of a page's ```sql blocks (prose mentioning SELECT is not SQL), or every
    `SELECT ...;` the demo printed (page=False)."""
    if page:
        blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
        body = "\n".join(line for block in blocks for line in block.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in body.split(";") if s.strip()]
    return [" ".join(s.split()) for s in re.findall(r"\bSELECT\b.*?;", text, flags=re.S)]


def run_documented_sql(database_url: str, demo_stdout: str) -> None:
    """Each SQL statement a newcomer is shown (README, the docs pages and the demo's own output) runs as written."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    readme = [s for page in pages for s in sql_statements(page.read_text(encoding="utf-8"))]
    printed = sql_statements(demo_stdout[demo_stdout.index("connect:") :], page=False)
    assert len(readme) >= 10 and len(printed) >= 4, (len(readme), len(printed))
    failures = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in readme + printed:
            try:
                conn.execute(statement).fetchall()
            except psycopg.Error as exc:
                failures.append(f"{statement[:160]} -> {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures)
