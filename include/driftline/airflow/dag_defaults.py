"""Pieces every driftline DAG file shares: the deployment's dataset configs, DAG ids, the config
Param, retry policy, and the prepare_database task. Light on purpose (the TOML configs and airflow.sdk
only): DAG files import it at parse time.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, task

from driftline.config import DatasetConfig, load_datasets


def dataset_configs() -> list[tuple[str, DatasetConfig]]:
    """(path, config) of every dataset whose config loads: the DAG files build one DAG each.

    A config that fails to load is left out here; dags/dataset_configs.py reports it as an import
    error of its own, so it hides none of the other datasets' DAGs.
    """
    return load_datasets().loaded


DAG_ROLES = ("score_batch", "monitor_drift", "retrain_model")  # the DAG files, each one DAG per dataset


def dag_id(dataset: str, role: str) -> str:
    """The id of one dataset's DAG: `<dataset>__<role>`, role being the DAG file's name
    (score_batch, monitor_drift, retrain_model)."""
    return f"{dataset}__{role}"


def predictions_asset(config: DatasetConfig) -> Asset:
    """What score_batch publishes per interval (partition key = the interval) and monitor_drift runs on."""
    return Asset(name=f"driftline.{config.name}.predictions", group="driftline")


def config_param(path: str) -> Param:
    return Param(path, type="string", description="Dataset config file (TOML)")


def task_defaults(config_path: str, retries: int, delay_minutes: int, max_delay_minutes: int | None = None) -> dict:
    """default_args for a DAG: retries with exponential backoff, and an alert when a task finally fails
    (alerts table + task log + the optional channels of [alerts])."""
    from driftline.airflow.notifiers import DriftlineAlertNotifier

    policy = {
        "retries": retries,
        "retry_delay": timedelta(minutes=delay_minutes),
        "retry_exponential_backoff": True,
        "on_failure_callback": [DriftlineAlertNotifier(config_path)],
    }
    if max_delay_minutes is not None:
        policy["max_retry_delay"] = timedelta(minutes=max_delay_minutes)
    return policy


@task
def prepare_database(params=None, dag_run=None, dag=None) -> str:
    """Refuse conf keys that are not the DAG's Params (BadConfig: fails without retries), then create the
    schema, tables and views if missing (a database hiccup is retried)."""
    from driftline.airflow.tasks import prepare_database as prepare

    return prepare(params["config"], dict(getattr(dag_run, "conf", None) or {}), list(dag.params))
