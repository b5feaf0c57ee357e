"""monitor_drift: compare each scored interval with its model's training data, estimate its performance
without labels (binary), and retrain on a lasting breach.

Wiring only: every task body is a local import and one call into driftline. Runs on the same
timetable as score_batch and monitors the interval score_batch published for the same data
interval (retrying while it is not scored yet). Thresholds, sample size and the trigger policy
come from [drift] in the dataset config ($DRIFTLINE_CONFIG, default config/demo.toml).
"""

from __future__ import annotations

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, task

from driftline.dag_parts import config_param, dataset_config, prepare_database, task_defaults

CONFIG_PATH, CONFIG = dataset_config()
RETRAIN_DAG_ID = "retrain_model"

with DAG(
    dag_id="monitor_drift",
    description=f"Evidently drift report, drift metrics and retrain decision for one interval of {CONFIG.name}",
    schedule=CronDataIntervalTimetable(CONFIG.cron, timezone=CONFIG.timezone),
    start_date=CONFIG.start_date,
    catchup=CONFIG.catchup,
    max_active_runs=1,  # decisions read the previous intervals' breaches: keep them in order
    # Six retries: score_batch may still be scoring the interval.
    default_args=task_defaults(CONFIG_PATH, retries=6, delay_minutes=5, max_delay_minutes=30),
    params={"config": config_param(CONFIG_PATH)},
    tags=["driftline", CONFIG.name],
    doc_md=__doc__,
) as dag:

    @task
    def monitor_interval(data_interval_start=None, data_interval_end=None, run_id=None, params=None) -> dict:
        from driftline.tasks import monitor_interval

        return monitor_interval(params["config"], data_interval_start, data_interval_end, run_id)

    @task
    def estimate_performance(data_interval_start=None, data_interval_end=None, run_id=None, params=None) -> dict:
        from driftline.tasks import estimate_performance

        return estimate_performance(params["config"], data_interval_start, data_interval_end, run_id)

    # none_failed: decides on drift alone when estimate_performance skipped (regression, no calibration).
    @task(multiple_outputs=True, retries=0, trigger_rule="none_failed")
    def decide_retrain(data_interval_start=None, data_interval_end=None, run_id=None, params=None, ti=None) -> dict:
        from driftline.tasks import decide_retrain

        return decide_retrain(params["config"], data_interval_start, data_interval_end, run_id, ti)

    @task.short_circuit
    def check_trigger(trigger: bool) -> bool:
        """Skip trigger_retrain unless the policy decided to retrain."""
        return trigger

    decision = decide_retrain()
    trigger_retrain = TriggerDagRunOperator(
        task_id="trigger_retrain",
        trigger_dag_id=RETRAIN_DAG_ID,
        trigger_run_id=decision["retrain_run_id"],
        conf=decision["retrain_conf"],
        skip_when_already_exists=True,  # one retrain per breaching interval, even when it is rerun
        retries=0,
    )
    prepare_database() >> monitor_interval() >> estimate_performance() >> decision
    check_trigger(decision["trigger"]) >> trigger_retrain
