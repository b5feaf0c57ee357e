"""Run a DAG file in this process with Airflow's dag.test(): the demo's and the integration tests' harness."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def load_dag_file(path: Path):
    """The `dag` object of a DAG file, loaded as a private module, for dag.test().

    Deadlines are dropped: they are a scheduler feature, and Airflow 3.3.2's dag.test() cannot finish
    a successful run of a DAG that has one (DagRun.update_state looks the unsaved DeadlineAlert up by
    id: "'dict' object has no attribute 'hex'"). The scheduler path keeps them.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"driftline_dag_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.dag.deadline = None
    return module.dag


def run_dag_for_interval(dag, interval_end: datetime, conf: dict):
    """dag.test() for the interval that ends at interval_end (a manual run covers [end - 1 period, end))."""
    return dag.test(logical_date=interval_end, run_conf=conf)
