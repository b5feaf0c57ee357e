"""Pieces every driftline DAG file shares: the dataset config, its Param, retry policy, and the
prepare_database task. Light on purpose (the TOML config and airflow.sdk only): DAG files import it
at parse time.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, task

from driftline.config import DatasetConfig, default_config_path, load_config


def dataset_config() -> tuple[str, DatasetConfig]:
    """The config the DAGs are built from: $DRIFTLINE_CONFIG, else config/demo.toml."""
    path = str(default_config_path())
    return path, load_config(path)


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
