"""Every DAG file imports cleanly, parses fast, and does no heavy or database work at parse time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY_MODULES = ["pandas", "numpy", "pyarrow", "psycopg", "psycopg2", "lightgbm", "sklearn", "great_expectations", "evidently"]

# Runs in a fresh interpreter: import the framework first (its cost is not the DAG's), then time
# only the DAG module's execution and list what it pulled in.
PARSE_PROBE = r"""
import importlib.util, json, sys, time
import airflow.sdk, driftline.config
path = sys.argv[1]
before = set(sys.modules)
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "new_modules": sorted(set(sys.modules) - before)}))
"""


def test_dag_files_exist():
    assert [p.name for p in DAG_FILES] == ["score_batch.py"]


def test_dagbag_has_no_import_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"score_batch"}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_parse_is_fast_and_light(dag_file):
    # An unreachable database: if parsing touched it, it would hang or fail.
    env = {**os.environ, "DRIFTLINE_DB_URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, str(dag_file)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = [m for m in probe["new_modules"] if m.split(".")[0] in HEAVY_MODULES]
    assert heavy == [], f"{dag_file.name} imports heavy modules at parse time: {heavy[:10]}"
    assert probe["seconds"] < 0.5, f"{dag_file.name} took {probe['seconds']:.2f} s to parse"


def test_score_batch_contract():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.param import ParamValidationError

    dag = DagBag(dag_folder=str(REPO / "dags" / "score_batch.py")).dags["score_batch"]
    assert [t.task_id for t in dag.topological_sort()] == ["prepare_database", "score_interval", "publish_predictions"]
    # A real data interval (not the zero-width one of schedule="@daily").
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is False
    score = dag.get_task("score_interval")
    assert score.retries >= 1 and score.retry_exponential_backoff
    publish = dag.get_task("publish_predictions")
    assert [outlet.name for outlet in publish.outlets] == ["driftline.demo_transactions.predictions"]
    # Params are typed: a pinned version must be an integer.
    model_version = dag.params.get_param("model_version")
    assert model_version.resolve(3) == 3
    assert model_version.resolve(None) is None
    with pytest.raises(ParamValidationError):
        model_version.resolve("latest")
    with pytest.raises(ParamValidationError):
        model_version.resolve(0)
