"""The demo drops the retrain run monitor_drift queued (nothing else), in the test Airflow home."""

from __future__ import annotations

from datetime import datetime, timezone


def test_only_the_named_queued_runs_are_dropped(airflow_db):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    from driftline.airflow.runs import drop_queued_runs

    dag_id, now = "demo_queued_runs_test", datetime.now(timezone.utc)
    runs = {"drift__a": DagRunState.QUEUED, "drift__b": DagRunState.RUNNING, "other": DagRunState.QUEUED}
    with create_session() as session:
        for run_id, state in runs.items():
            session.add(DagRun(dag_id=dag_id, run_id=run_id, run_after=now, state=state, run_type="manual"))
    assert drop_queued_runs(dag_id, ["drift__a", "drift__b"]) == 1
    with create_session() as session:
        left = {run.run_id for run in session.query(DagRun).filter(DagRun.dag_id == dag_id)}
    assert left == {"drift__b", "other"}
