"""Pieces every driftline DAG file shares: the deployment's dataset configs, DAG ids, the config
Param, retry policy, and the prepare_database task. Light on purpose (the TOML configs and airflow.sdk
only): DAG files import it at parse time.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import timedelta

from airflow.sdk import Asset, Param, task

from driftline.config import ConfigError, DatasetConfig, Datasets, load_datasets
from driftline.pipelines import dag_id  # noqa: F401 - the DAG files and tasks import it from here


def deployment() -> Datasets:
    """The deployment's configs as the DAG files see them: those load_datasets refuses, and those whose
    schedule Airflow's own timetable refuses, are broken; dags/dataset_configs.py raises their error."""
    datasets = load_datasets()
    usable = Datasets(broken=list(datasets.broken))
    for path, config in datasets.loaded:
        problem = _airflow_problem(config)
        if problem is None:
            usable.loaded.append((path, config))
        else:
            usable.broken.append((path, ConfigError(f"{path}: {problem}")))
    return usable


def _airflow_problem(config: DatasetConfig) -> str | None:
    """What Airflow would fail on when it builds, serializes or schedules this config's DAGs, or None.
    load_config checks the same values without Airflow; this is the second opinion of the real thing."""
    try:
        import pendulum
        from airflow.sdk import CronDataIntervalTimetable

        from driftline.airflow.notifiers import interval_length

        CronDataIntervalTimetable(config.cron, timezone=pendulum.timezone(config.timezone)).validate()
        interval_length(config)  # the DeadlineAlert's interval: croniter from start_date
    except Exception as exc:  # noqa: BLE001 - any failure is this config's, and must hide no other dataset
        return f"'[schedule]' cannot be used by Airflow's timetable ({type(exc).__name__}); fix cron, timezone or start_date"
    return None


def dataset_configs() -> list[tuple[str, DatasetConfig]]:
    """(path, config) of every dataset whose config loads: the DAG files build one DAG each.

    A config that fails to load is left out here; dags/dataset_configs.py reports it as an import
    error of its own, so it hides none of the other datasets' DAGs.
    """
    return deployment().loaded


def build_dags(factory: Callable[[str, DatasetConfig], object]) -> dict[str, object]:
    """{dag_id: DAG} of factory(path, config) for every dataset; a config whose DAG still fails to build
    (a check load_config lacks) is left out with a warning in the DAG file's parse log, not raised: raising
    would drop every other dataset's DAG of this file."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    dags = {}
    for path, config in dataset_configs():
        registered = set(DagContext.autoregistered_dags)
        try:
            dag = factory(path, config)
        except Exception as exc:  # noqa: BLE001
            # `with DAG(...)` registers the DAG on exit even when its body raised: unregister the half-built one.
            DagContext.autoregistered_dags &= registered
            warnings.warn(
                f"{path}: its DAG was not built ({type(exc).__name__}); the other datasets' were", stacklevel=2
            )
            continue
        dags[dag.dag_id] = dag
    return dags


DAG_ROLES = ("score_batch", "monitor_drift", "retrain_model")  # the DAG files, each one DAG per dataset


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
