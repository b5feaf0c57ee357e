"""OpenLineage of score_batch through dag.test() with the client's file transport: real events, no server."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest

from driftline.config import load_config
from tests.helpers import SMALL_PLAN, fetch

pytest.importorskip("airflow.providers.openlineage")
FIRST, _ = SMALL_PLAN.interval_bounds()


def test_score_batch_run_emits_inputs_predictions_and_counts(
    score_batch_dag, project, tmp_path, monkeypatch, database_url
):
    log = tmp_path / "events"
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps({"type": "file", "log_file_path": str(log), "append": True})
    )
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "driftline-test")
    dag_run = score_batch_dag.test(logical_date=FIRST[1], run_conf={"config": str(project)})
    assert str(dag_run.state) == "success"
    events = [json.loads(line) for path in tmp_path.glob("events*") for line in path.read_text().splitlines() if line]
    ours = [e for e in events if "driftline_counts" in e["run"].get("facets", {})]
    assert len(ours) == 1 and ours[0]["eventType"] == "COMPLETE"
    event = ours[0]
    ((rows_in, rows_scored, rows_quarantined),) = fetch(
        project,
        "SELECT rows_in, rows_scored, rows_quarantined FROM {s}.run_summary WHERE published AND interval_start = %s",
        (FIRST[0],),
    )
    counts = event["run"]["facets"]["driftline_counts"]
    assert (counts["rowsIn"], counts["rowsScored"], counts["rowsQuarantined"]) == (
        rows_in,
        rows_scored,
        rows_quarantined,
    )
    assert rows_quarantined > 0 and event["run"]["facets"]["driftline_model"]["modelVersion"] == 1
    config = load_config(project)
    url = urlparse(database_url)
    (output,) = event["outputs"]
    assert output["namespace"] == f"postgres://{url.hostname}:{url.port or 5432}"
    assert output["name"] == f"{url.path.lstrip('/')}.{config.db_schema}.predictions"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == rows_scored
    assert event["inputs"] and all(i["namespace"] == "file" for i in event["inputs"])
    assert all(i["inputFacets"]["dataQualityMetrics"]["rowCount"] == rows_in for i in event["inputs"])
    assert event["job"]["name"].endswith("score_batch.announce_predictions")
