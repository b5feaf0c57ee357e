"""`driftline demo` end to end in a child process, twice: same tables, nothing doubled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psycopg
import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def test_demo_twice_gives_the_same_tables(tmp_path, database_url):
    for folder in ("config", "dags", "expectations"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    env = {**os.environ, "DRIFTLINE_DB_URL": database_url}
    for key in [k for k in env if k.startswith("AIRFLOW")]:
        env.pop(key)  # the demo sets up its own project-local Airflow
    command = [sys.executable, "-m", "driftline.cli", "demo", "--config", str(tmp_path / "config" / "demo.toml"), "--rows", "2000", "--intervals", "2"]
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
