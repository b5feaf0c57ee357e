"""Run a DAG file in this process with Airflow's dag.test(): the demo's and the integration tests' harness."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def load_dataset_dag(dags_folder: Path, role: str, dataset: str):
    """The DAG `<dataset>__<role>` of dags_folder/<role>.py (role: score_batch, monitor_drift or
    retrain_model), freshly loaded for dag.test(); the file builds it from the deployment's configs."""
    from driftline.airflow.dag_defaults import dag_id

    return load_dag_file(dags_folder / f"{role}.py", dag_id(dataset, role))


def load_dag_file(path: Path, dag_id: str):
    """The DAG dag_id of a DAG file (its `dags` dict: one DAG per dataset), loaded as a private module,
    for dag.test(). KeyError naming the DAGs the file defines when dag_id is not one of them.

    Deadlines are dropped: they are a scheduler feature, and Airflow 3.3.2's dag.test() cannot finish
    a successful run of a DAG that has one (DagRun.update_state looks the unsaved DeadlineAlert up by
    id: "'dict' object has no attribute 'hex'"). The scheduler path keeps them.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"driftline_dag_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if dag_id not in module.dags:
        raise KeyError(f"{path} defines no DAG {dag_id!r} (it defines {sorted(module.dags) or 'none'})")
    dag = module.dags[dag_id]
    dag.deadline = None
    return dag


def run_dag_for_interval(dag, interval_end: datetime, conf: dict):
    """dag.test() for the interval that ends at interval_end (a manual run covers [end - 1 period, end))."""
    return dag.test(logical_date=interval_end, run_conf=conf)
