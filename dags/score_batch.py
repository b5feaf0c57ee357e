"""score_batch: score one data interval with the champion model and publish the predictions.

Wiring only: every task body is a local import and one call into driftline. The schedule and the
Asset name come from the dataset config ($DRIFTLINE_CONFIG, default config/demo.toml); reading it
is a small TOML parse, so parsing this file stays fast and touches no database.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, task

from driftline.config import default_config_path, load_config

CONFIG_PATH = str(default_config_path())
CONFIG = load_config(CONFIG_PATH)
PREDICTIONS = Asset(name=f"driftline.{CONFIG.name}.predictions", group="driftline")

with DAG(
    dag_id="score_batch",
    description=f"Validate, score and publish one interval of {CONFIG.name}",
    schedule=CronDataIntervalTimetable(CONFIG.cron, timezone=CONFIG.timezone),
    start_date=CONFIG.start_date,
    catchup=CONFIG.catchup,
    max_active_runs=4,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=20),
    },
    params={
        "config": Param(CONFIG_PATH, type="string", description="Dataset config file (TOML)"),
        "model_version": Param(
            None, type=["null", "integer"], minimum=1, description="Pin a registered model version; empty = champion"
        ),
    },
    tags=["driftline", CONFIG.name],
    doc_md=__doc__,
) as dag:

    @task
    def prepare_database(params=None) -> str:
        from driftline.tasks import prepare_database

        return prepare_database(params["config"])

    @task
    def score_interval(data_interval_start=None, data_interval_end=None, run_id=None, params=None) -> dict:
        from driftline.tasks import score_interval

        return score_interval(params["config"], data_interval_start, data_interval_end, run_id, params["model_version"])

    @task(outlets=[PREDICTIONS], retries=0)
    def publish_predictions(data_interval_start=None, data_interval_end=None, params=None, outlet_events=None) -> dict:
        from driftline.tasks import publish_predictions

        summary = publish_predictions(params["config"], data_interval_start, data_interval_end)
        outlet_events[PREDICTIONS].extra = summary
        return summary

    prepare_database() >> score_interval() >> publish_predictions()
