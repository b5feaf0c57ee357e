"""OpenLineage of score_batch through dag.test() with the client's file transport: real events, no server."""

from __future__ import annotations

import json

import pytest
from psycopg.conninfo import conninfo_to_dict

from driftline.config import load_config
from driftline.sources.plan import interval_plan
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
    server = conninfo_to_dict(database_url)  # the fixture's URL is key=value conninfo
    (output,) = event["outputs"]
    assert output["namespace"] == f"postgres://{server['host']}:{server.get('port', 5432)}"
    assert output["name"] == f"{server['dbname']}.{config.db_schema}.predictions"
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == rows_scored
    plan = interval_plan(config, *FIRST)
    assert [(i["namespace"], i["name"]) for i in event["inputs"]] == [("file", path) for path in plan["files"]]
    (only_input,) = event["inputs"]  # the demo's interval is one file: its row count is the interval's
    assert only_input["inputFacets"]["dataQualityMetrics"]["rowCount"] == rows_in
    assert (event["job"]["namespace"], event["job"]["name"]) == (
        "driftline-test",
        f"{score_batch_dag.dag_id}.announce_predictions",
    )
    # Merged into the task's own run: the provider's events of announce_predictions carry the same run id.
    # (The provider's listener does not emit under every dag.test setup — seen in CI's full run — so
    # only the events it did emit are checked.)
    provider = [e for e in events if e["job"]["name"] == event["job"]["name"] and e is not event]
    assert all(e["run"]["runId"] == event["run"]["runId"] for e in provider)
