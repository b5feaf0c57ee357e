"""monitor_drift: compare each published interval with its model's training data, estimate its performance
without labels (binary), and retrain on a lasting breach.

Wiring only: every task body is a local import and one call into driftline. Data-aware: it runs when
score_batch publishes an interval (scheduled, manual or backfilled run), once per published
interval: score_batch's predictions Asset event carries the interval as partition key and its
bounds and counts as extra. By hand, trigger it with `interval_start` and `interval_end` (Params).
Thresholds, sample size and the trigger policy come from [drift] in the dataset config.

One DAG per dataset, `<dataset>__monitor_drift`, for every config of the deployment (each *.toml of
$DRIFTLINE_CONFIGS, default config/, or only $DRIFTLINE_CONFIG when set): it runs on that dataset's
predictions Asset and triggers that dataset's `<dataset>__retrain_model`. A config that fails to load
is skipped here and reported by dags/dataset_configs.py as an import error naming the file and key.
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, PartitionedAssetTimetable, task

from driftline.airflow.dag_defaults import (
    build_dags,
    config_param,
    dag_id,
    predictions_asset,
    prepare_database,
    task_defaults,
)
from driftline.config import DatasetConfig


def monitor_drift(config_path: str, config: DatasetConfig) -> DAG:
    """`<dataset>__monitor_drift` for one dataset config; it triggers the same dataset's retrain_model."""
    retrain_dag_id = dag_id(config.name, "retrain_model")
    with DAG(
        dag_id=dag_id(config.name, "monitor_drift"),
        description=f"Drift metrics, retrain decision and Evidently drift report for one interval of {config.name}",
        # One run per partition key (= published interval), not one per batch of events.
        schedule=PartitionedAssetTimetable(assets=predictions_asset(config)),
        start_date=config.start_date,
        catchup=False,
        max_active_runs=1,  # one decision at a time; their order does not matter (drift.order)
        # No polling: a run starts only once its interval is published.
        default_args=task_defaults(config_path, retries=1, delay_minutes=1),
        params={
            "config": config_param(config_path),
            "interval_start": Param(
                None,
                type=["null", "string"],
                description="manual runs: ISO start of a published interval (empty = from the asset event)",
            ),
            "interval_end": Param(None, type=["null", "string"], description="manual runs: ISO end of that interval"),
        },
        tags=["driftline", config.name],
        doc_md=__doc__,
    ) as dag:

        @task(retries=0)
        def choose_interval(params=None, triggering_asset_events=None) -> dict:
            from driftline.airflow.tasks import choose_interval

            return choose_interval(params["interval_start"], params["interval_end"], triggering_asset_events)

        @task
        def monitor_interval(interval: dict, run_id=None, params=None) -> dict:
            from driftline.airflow.tasks import monitor_interval

            return monitor_interval(params["config"], interval["start"], interval["end"], run_id)

        @task
        def estimate_performance(interval: dict, run_id=None, params=None) -> dict:
            from driftline.airflow.tasks import estimate_performance

            return estimate_performance(params["config"], interval["start"], interval["end"], run_id)

        # Beside the decision, never upstream of it: a slow or failed report delays no retrain decision.
        @task
        def render_report(interval: dict, params=None) -> dict:
            from driftline.airflow.tasks import render_report

            return render_report(params["config"], interval["start"], interval["end"])

        # none_failed: decides on drift alone when estimate_performance skipped (regression, no calibration).
        @task(multiple_outputs=True, retries=0, trigger_rule="none_failed")
        def decide_retrain(interval: dict, run_id=None, params=None, ti=None) -> dict:
            from driftline.airflow.tasks import decide_retrain

            return decide_retrain(params["config"], interval["start"], interval["end"], run_id, ti, retrain_dag_id)

        @task(retries=0)
        def list_retrains(decision: dict) -> list[dict]:
            """The retrain runs to start (an XCom key of decide_retrain cannot be mapped over)."""
            return decision["retrains"]

        interval = choose_interval()
        decision = decide_retrain(interval)
        # One run per interval whose decision triggers (this one, or a later one it re-evaluated);
        # none mapped: skipped. The run id names the interval, so a rerun triggers nothing twice.
        TriggerDagRunOperator.partial(
            task_id="trigger_retrain",
            trigger_dag_id=retrain_dag_id,
            skip_when_already_exists=True,
            retries=0,
        ).expand_kwargs(list_retrains(decision))
        monitored = monitor_interval(interval)
        prepare_database() >> interval >> monitored >> estimate_performance(interval) >> decision
        monitored >> render_report(interval)
    return dag


# One DAG per dataset of the deployment (see the module docstring), by DAG id.
dags = build_dags(monitor_drift)
