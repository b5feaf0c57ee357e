"""retrain_model: train a candidate, validate it against the champion, promote or reject; or roll back.

With conf `candidate_version` (a registered candidate nobody judged yet, e.g. one `driftline
import-model` left awaiting approval) train_candidate trains nothing and hands that version on.

Wiring only: every task body is a local import and one call into driftline. Not scheduled: it runs
when monitor_drift triggers it (conf: reason, interval and its drift figures, which stay visible in
the run's conf) or by hand (Params below). The decision and its reasons are the `decide_promotion`
task's return value (XCom) and log line, and stay in `<schema>.promotion_events`.

With `retraining.promotion = "manual"` in the run's config, a candidate that passed every guardrail
waits at `approve_promotion` (Airflow's human-in-the-loop ApprovalOperator: Required actions in the
UI) for a person to approve or reject it with a comment; no answer within
`retraining.approval_timeout_hours` rejects it. In auto mode `request_approval` skips that step.

One DAG per dataset, `<dataset>__retrain_model`, for every config of the deployment (each *.toml of
$DRIFTLINE_CONFIGS, default config/, or only $DRIFTLINE_CONFIG when set); that dataset's monitor_drift
triggers it. A config that fails to load is skipped here and reported by dags/dataset_configs.py as an
import error naming the file and key.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, task

from driftline.airflow.approval import REVIEW_XCOM_KEY, RecordedApprovalOperator
from driftline.airflow.dag_defaults import build_dags, config_param, dag_id, prepare_database, task_defaults
from driftline.config import DatasetConfig

DRIFT_FIGURES = {
    "decision_id": ["integer"],
    "report_path": ["string"],
    "drifted_share": ["number"],
    "prediction_drift": ["number"],
    "drifted_features": ["array"],
    "model_version": ["integer"],
}


def retrain_model(config_path: str, config: DatasetConfig) -> DAG:
    """`<dataset>__retrain_model` for one dataset config."""
    with DAG(
        dag_id=dag_id(config.name, "retrain_model"),
        description=f"Retrain, validate and promote (or roll back) the {config.name} model",
        schedule=None,
        start_date=config.start_date,
        catchup=False,
        max_active_runs=1,  # one alias change at a time; monitor_drift also waits for an active run
        default_args=task_defaults(config_path, retries=2, delay_minutes=1),
        params={
            "config": config_param(config_path),
            # No default: every run says why (monitor_drift sends its decision's reason).
            "reason": Param(
                type="string", minLength=1, description="Why this run: recorded with the decision or rollback"
            ),
            "action": Param("retrain", enum=["retrain", "rollback"], description="retrain a candidate, or roll back"),
            "rollback_to_version": Param(
                None, type=["null", "integer"], minimum=1, description="rollback only: target version; empty = previous"
            ),
            "rollback_expect_champion": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                description="rollback only: the champion it replaces; if another is champion by then, nothing changes "
                "and the task fails saying so (empty = the champion when the task starts)",
            ),
            "training_window_start": Param(
                None, type=["null", "string"], description="ISO date; empty = retraining.training_days before the end"
            ),
            "training_window_end": Param(
                None,
                type=["null", "string"],
                description="ISO date; empty = the trigger interval's end, else the newest labelled event",
            ),
            "candidate_version": Param(
                None,
                type=["null", "integer"],
                minimum=1,
                description="retrain only: judge this registered, not yet judged candidate (e.g. from "
                "`driftline import-model`) instead of training one; empty = train a new candidate",
            ),
            "labels_as_of": Param(
                None, type=["null", "string"], description="ISO time; labels observed by then (empty = now)"
            ),
            "interval": Param(
                None,
                type=["null", "object", "array", "string"],
                description="set by monitor_drift: the breaching interval",
            ),
            # What monitor_drift's trigger adds, shown on the run: Params, so strict conf accepts them.
            **{
                name: Param(None, type=["null", *kinds], description=f"set by monitor_drift: the decision's {name}")
                for name, kinds in DRIFT_FIGURES.items()
            },
        },
        tags=["driftline", config.name],
        doc_md=__doc__,
    ) as dag:

        @task.branch
        def choose_action(params=None) -> str:
            return "rollback_champion" if params["action"] == "rollback" else "train_candidate"

        @task
        def train_candidate(params=None) -> dict:
            from driftline.airflow.tasks import train_candidate

            return train_candidate(
                params["config"],
                params["reason"],
                params["training_window_start"],
                params["training_window_end"],
                params["labels_as_of"],
                params["interval"],
                params["candidate_version"],
            )

        @task
        def validate_candidate(candidate: dict, run_id=None, params=None) -> dict:
            from driftline.airflow.tasks import validate_candidate

            return validate_candidate(params["config"], candidate, run_id)

        # Truthy (the reviewer's subject and body) only in manual mode for a candidate that passed every
        # guardrail; otherwise approve_promotion is skipped and decide_promotion decides alone.
        @task.short_circuit(ignore_downstream_trigger_rules=False)
        def request_approval(validation: dict, params=None) -> dict | None:
            from driftline.airflow.tasks import approval_request

            return approval_request(params["config"], validation)

        approve_promotion = RecordedApprovalOperator(
            task_id="approve_promotion",
            subject="{{ ti.xcom_pull(task_ids='request_approval')['subject'] }}",
            body="{{ ti.xcom_pull(task_ids='request_approval')['body'] }}",
            params={
                "comment": Param("", type="string", description="Why you approve or reject: recorded with your name")
            },
            defaults=RecordedApprovalOperator.REJECT,  # what the scheduler picks when nobody answers in time
            response_timeout=timedelta(hours=config.retraining.approval_timeout_hours),
            retries=0,
        )
        # Succeeds on Approve; a Reject (or the timeout) skips it. decide_promotion runs either way and
        # reads the answer, so a rejection is recorded with the reviewer's name and comment.
        approved = EmptyOperator(task_id="approved")

        @task(retries=0, trigger_rule="none_failed_min_one_success")
        def decide_promotion(validation: dict, run_id=None, params=None, ti=None) -> dict:
            from driftline.airflow.tasks import decide_promotion

            review = ti.xcom_pull(task_ids="approve_promotion", key=REVIEW_XCOM_KEY)  # None when nobody was asked
            return decide_promotion(params["config"], validation, params["reason"], run_id, review)

        @task(retries=0)
        def rollback_champion(run_id=None, params=None) -> dict:
            from driftline.airflow.tasks import rollback_champion

            return rollback_champion(
                params["config"],
                params["reason"],
                params["rollback_to_version"],
                run_id,
                params["rollback_expect_champion"],
            )

        @task(trigger_rule="none_failed_min_one_success")
        def apply_retention(params=None) -> dict:
            from driftline.airflow.tasks import apply_retention

            return apply_retention(params["config"])

        @task
        def update_realized_performance(params=None) -> list[dict]:
            from driftline.airflow.tasks import update_realized_performance

            return update_realized_performance(params["config"], params["labels_as_of"])

        candidate = train_candidate()
        validation = validate_candidate(candidate)
        decision = decide_promotion(validation)
        request_approval(validation) >> approve_promotion >> approved >> decision
        rollback = rollback_champion()
        prepare_database() >> choose_action() >> [candidate, rollback]
        [decision, rollback] >> apply_retention() >> update_realized_performance()
    return dag


# One DAG per dataset of the deployment (see the module docstring), by DAG id.
dags = build_dags(retrain_model)
