"""score_batch: score one data interval with the champion model and publish the predictions.

Wiring only: every task body is a local import and one call into driftline. One DAG per dataset,
`<dataset>__score_batch`, for every config of the deployment: each *.toml of $DRIFTLINE_CONFIGS
(default config/), or only $DRIFTLINE_CONFIG when it is set. Its schedule and Asset come from that
config; reading the configs is a small TOML parse each, so parsing this file stays fast and touches
no database. A config that fails to load is skipped here (its DAGs are missing, the other datasets'
are not) and dags/dataset_configs.py reports it as an import error naming the file and key.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task

from driftline.airflow.dag_defaults import (
    build_dags,
    config_param,
    dag_id,
    predictions_asset,
    prepare_database,
    task_defaults,
)
from driftline.airflow.notifiers import scoring_deadline
from driftline.config import DatasetConfig


def score_batch(config_path: str, config: DatasetConfig) -> DAG:
    """`<dataset>__score_batch` for one dataset config."""
    predictions = predictions_asset(config)
    with DAG(
        dag_id=dag_id(config.name, "score_batch"),
        description=f"Validate, score and publish one interval of {config.name}",
        schedule=CronDataIntervalTimetable(config.cron, timezone=config.timezone),
        start_date=config.start_date,
        catchup=config.catchup,
        max_active_runs=4,
        default_args=task_defaults(config_path, retries=3, delay_minutes=1, max_delay_minutes=20),
        params={
            "config": config_param(config_path),
            "model_version": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                description="Pin a registered model version; empty = champion",
            ),
            # Rescoring a past interval (README, manual runs): both or neither, one interval of the schedule.
            "interval_start": Param(
                None, type=["null", "string"], description="ISO start of the interval to score; empty = the run's"
            ),
            "interval_end": Param(
                None, type=["null", "string"], description="ISO end of that interval; empty = the run's"
            ),
        },
        deadline=scoring_deadline(config),  # [alerts] scoring_deadline_hours; None: no deadline
        tags=["driftline", config.name],
        doc_md=__doc__,
    ) as dag:

        @task
        def plan_partitions(data_interval_start=None, data_interval_end=None, run_id=None, params=None) -> list[dict]:
            from driftline.airflow.tasks import plan_partitions, scored_interval

            interval = scored_interval(params, data_interval_start, data_interval_end)
            return plan_partitions(params["config"], *interval, run_id, params["model_version"])

        @task
        def score_interval(
            partitions: list[dict], data_interval_start=None, data_interval_end=None, run_id=None, params=None
        ) -> dict:
            from driftline.airflow.tasks import score_interval, scored_interval

            interval = scored_interval(params, data_interval_start, data_interval_end)
            return score_interval(params["config"], *interval, run_id, params["model_version"], partitions)

        @task(map_index_template="{{ task.op_kwargs['partition']['partition'] }}")
        def score_partition(
            partition: dict, data_interval_start=None, data_interval_end=None, run_id=None, params=None
        ) -> dict:
            from driftline.airflow.tasks import score_partition, scored_interval

            interval = scored_interval(params, data_interval_start, data_interval_end)
            return score_partition(params["config"], *interval, run_id, partition)

        @task(retries=1)
        def publish_partitions(
            partitions: list[dict], data_interval_start=None, data_interval_end=None, run_id=None, params=None
        ) -> dict:
            from driftline.airflow.tasks import publish_partitions, scored_interval

            interval = scored_interval(params, data_interval_start, data_interval_end)
            return publish_partitions(params["config"], *interval, run_id, partitions)

        # After either path (the single task, or the partitions swapped in; the other one is skipped):
        # check the stored interval adds up and announce it to monitor_drift (the Asset event).
        @task(outlets=[predictions], retries=0, trigger_rule="none_failed_min_one_success")
        def announce_predictions(
            data_interval_start=None, data_interval_end=None, params=None, outlet_events=None
        ) -> dict:
            from driftline.airflow.tasks import announce_predictions, scored_interval

            interval = scored_interval(params, data_interval_start, data_interval_end)
            summary = announce_predictions(params["config"], *interval)
            # One event per published interval: the bounds and counts as extra, the interval as partition
            # key, so monitor_drift gets one run per interval however many are published at once.
            outlet_events[predictions].extra = summary
            outlet_events[predictions].add_partitions(f"{summary['interval_start']}/{summary['interval_end']}")
            return summary

        @task(retries=0)
        def score_shadow(data_interval_start=None, data_interval_end=None, run_id=None, params=None) -> dict:
            from driftline.airflow.tasks import score_shadow, scored_interval

            interval = scored_interval(params, data_interval_start, data_interval_end)
            return score_shadow(params["config"], *interval, run_id)

        @task
        def update_realized_performance(params=None) -> list[dict]:
            from driftline.airflow.tasks import update_realized_performance

            return update_realized_performance(params["config"], None)  # labels observed by now

        # Small intervals (scoring.files_per_partition, see the README) keep the single-task path;
        # larger ones are scored by one mapped score_partition per group of input files.
        plan = plan_partitions()  # the partitions; none for a small interval
        prepare_database() >> plan
        scored = score_interval(plan)
        published = publish_partitions(plan)
        score_partition.expand(partition=plan) >> published
        [scored, published] >> announce_predictions() >> update_realized_performance()
        scored >> score_shadow()  # skipped unless retraining.shadow is on and a candidate is pending
    return dag


# One DAG per dataset of the deployment (see the module docstring), by DAG id.
dags = build_dags(score_batch)
