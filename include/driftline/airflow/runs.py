"""The demo's housekeeping in Airflow's metadata: runs it queued but runs itself through dag.test()."""

from __future__ import annotations


def drop_queued_runs(dag_id: str, run_ids: list[str]) -> int:
    """Delete the *queued* runs run_ids of dag_id (a run that started or finished is kept); how many.

    monitor_drift's trigger_retrain queues a retrain_model run that no scheduler runs under dag.test():
    left behind, it would make every later decision of this Airflow home wait on it."""
    if not run_ids:
        return 0
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        runs = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids), DagRun.state == DagRunState.QUEUED)
            .all()
        )
        for run in runs:
            session.delete(run)
        return len(runs)
