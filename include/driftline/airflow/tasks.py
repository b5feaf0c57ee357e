"""What the DAG files call: one function per task, and the one place driftline errors become
Airflow outcomes.

`run_step` maps the error tree (errors.py) to Airflow: Skipped (the step has nothing to do for this
run) skips the task with its reason; BadInput / BadConfig / BadModel (and any other DriftlineError)
fail the task at once with AirflowFailException, so no retry is wasted on a
file or a config that will not change, and the failure notifier raises a task_failure alert;
NotReady / Transient raise unchanged, so Airflow retries them. A foreign exception is first
translated into the tree (errors.translate); one that means nothing known (a bug) is raised as it
is and retried. Every error is scrubbed of row data before Airflow logs it. Alerts raised inside a
step name the running task (alerts.ORIGIN). The step functions and their order are declared in
driftline/pipelines.py (the CLI runs the same list).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache


@cache
def _install() -> None:
    """Airflow connection ids, the log masker and the alert channels: once, at the first step (not at import)."""
    from driftline.airflow.connections import install

    install()


def run_step(function, *args, **kwargs):
    """Run one domain step and map its outcome to Airflow's (see the module docstring)."""
    from driftline import alerts, errors

    _install()
    with alerts.raised_from(task_origin()):
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure goes through the one mapping
            error = errors.translate(exc)
    # Raised outside the except block, so Python chains nothing implicitly.
    if isinstance(error, errors.Skipped):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(errors.safe_message(error)) from error
    if isinstance(error, errors.NotReady) and (later := _look_again()) is not None:
        from airflow.sdk.exceptions import AirflowRescheduleException

        # Input not landed before the interval is due (driftline.freshness): wait, no retry spent, no alert.
        raise AirflowRescheduleException(later) from error
    if isinstance(error, errors.RETRYABLE) or not isinstance(error, errors.DriftlineError):
        raise error
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(errors.safe_message(error)) from error  # the notifier reads alert_id/numbers


def _look_again() -> datetime | None:
    """For a scheduled run of a config with [alerts] scoring_deadline_hours: when to look for the input
    again (rescheduled), None once the interval is due (driftline.freshness) or for any other run."""
    from datetime import timezone

    from airflow.sdk import get_current_context

    from driftline import freshness
    from driftline.config import load_config

    try:
        context = get_current_context()
    except RuntimeError:  # no task is running (a step called directly)
        return None
    dag_run = context.get("dag_run")
    run_type = getattr(getattr(dag_run, "run_type", None), "value", getattr(dag_run, "run_type", None))
    end = context.get("data_interval_end")
    if run_type != "scheduled" or end is None:
        return None  # a backfill, manual or asset-triggered run retries and fails as it always did
    hours = load_config(context["params"]["config"]).alerts.scoring_deadline_hours
    until = freshness.wait_until(end, getattr(dag_run, "start_date", None), hours)
    return freshness.next_look(datetime.now(timezone.utc), until)


def task_origin():
    """The running task's DAG, task and run as an alerts.Origin (all None outside a task)."""
    from airflow.sdk import get_current_context

    from driftline.alerts import Origin

    try:
        context = get_current_context()
    except RuntimeError:  # no task is running (a step called directly)
        return Origin()
    ti = context.get("ti")
    return Origin(getattr(ti, "dag_id", None), getattr(ti, "task_id", None), context.get("run_id"))


def check_conf_keys(conf: dict, known: list[str]) -> None:
    """BadConfig naming the first conf key that is not a Param (Airflow would silently ignore it)."""
    from driftline.errors import BadConfig

    unknown = sorted(set(conf) - set(known))
    if unknown:
        raise BadConfig(
            f"unknown conf key {unknown[0]!r}"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            + f"; known: {', '.join(sorted(known))}"
        )


def prepare_database(config_path: str, conf: dict | None = None, known: list[str] | None = None) -> str:
    """Every DAG's first task: a conf key that is not a Param fails the run at once, then the schema."""
    from driftline.batch import prepare_database as prepare

    if known is not None:
        run_step(check_conf_keys, conf or {}, known)
    return run_step(prepare, config_path)


def require_interval(interval_start, interval_end) -> None:
    """BadConfig at once (no retry) for a run without a data interval: a manual trigger with no logical date."""
    from driftline.errors import BadConfig

    if interval_start is None or interval_end is None:
        raise BadConfig(
            "this run has no data interval (triggered without a logical date): trigger score_batch with one, "
            "from the UI or `POST /api/v2/dags/<dag_id>/dagRuns` with logical_date, or "
            "`airflow dags test <dag_id> 2026-11-02` (the CLI's `dags trigger -l` takes the interval from now)"
        )


def scored_interval(params: dict, data_interval_start, data_interval_end) -> tuple:
    """(start, end) a score_batch run scores: its Params `interval_start` / `interval_end` when set (a
    manual rescore of a past interval, checked against the config's schedule), else its data interval."""
    from driftline.config import load_config
    from driftline.intervals import requested_interval

    def choose():
        config = load_config(params["config"])
        asked = params.get("interval_start"), params.get("interval_end")
        return requested_interval(config.cron, config.timezone, *asked) or (data_interval_start, data_interval_end)

    return run_step(choose)


def score_interval(
    config_path: str,
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    model_version: int | None,
    partitions: list[dict],
) -> dict:
    """The single-task path; skipped (visible in the UI) when the interval is scored by partitions."""
    from driftline.batch import score_interval as score
    from driftline.pipelines import scored_whole

    run_step(scored_whole, partitions)
    return run_step(score, config_path, interval_start, interval_end, run_id, model_version)  # run.write: the COPY


def plan_partitions(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, model_version
) -> list[dict]:
    """The interval's partitions for score_partition to map over; none when it is scored in one task."""
    from driftline.partitions import plan_partitions as plan

    run_step(require_interval, interval_start, interval_end)
    return run_step(plan, config_path, interval_start, interval_end, run_id, model_version)["partitions"]


def score_partition(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, partition: dict
) -> dict:
    from driftline.partitions import score_partition as score

    return run_step(score, config_path, interval_start, interval_end, run_id, partition)


def publish_partitions(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, partitions: list[dict]
) -> dict:
    """Swap the partitions in (normally skipped with score_partition when there are none)."""
    from driftline.partitions import publish_partitions as publish
    from driftline.pipelines import scored_in_parts

    run_key = run_step(scored_in_parts, partitions)
    return run_step(publish, config_path, interval_start, interval_end, run_id, run_key)


def announce_predictions(config_path: str, interval_start: datetime, interval_end: datetime) -> dict:
    """Check the stored interval adds up; the returned summary becomes the Asset event's extra."""
    from driftline.airflow.lineage import emit_interval
    from driftline.batch import check_interval

    summary = run_step(check_interval, config_path, interval_start, interval_end)
    emit_interval(config_path, summary)  # OpenLineage (extra `lineage`): inputs -> predictions with counts
    return summary


def train_candidate(
    config_path: str,
    reason: str,
    window_start,
    window_end,
    labels_as_of,
    trigger_interval,
    candidate_version: int | None = None,
) -> dict:
    """Train a new candidate; with candidate_version (one registered and not yet judged, e.g. imported),
    train nothing and hand that one on (BadConfig at once when it is not a pending candidate)."""
    from driftline.retraining.lifecycle import train_candidate as step
    from driftline.retraining.pending import pending_candidate

    if candidate_version is not None:
        return run_step(pending_candidate, config_path, candidate_version, labels_as_of)
    return run_step(step, config_path, reason, window_start, window_end, labels_as_of, trigger_interval)


def validate_candidate(config_path: str, candidate: dict, run_id: str | None = None) -> dict:
    from driftline.retraining.lifecycle import validate_candidate as step

    return run_step(step, config_path, candidate, run_id)


def approval_request(config_path: str, validation: dict) -> dict | None:
    """The reviewer's subject and body when retraining.promotion = "manual" asks a person; else None."""
    from driftline.retraining.review import approval_request as step

    return run_step(step, config_path, validation)


# The actor promotion_events records for a decision no person took (the value existing rows carry).
AUTOMATIC_ACTOR = "retrain_model"


def decide_promotion(config_path: str, validation: dict, reason: str, run_id: str, review: dict | None = None) -> dict:
    """review: approve_promotion's XCom `review` (None when nobody was asked), read here into plain values."""
    from driftline.airflow.approval import review_answer
    from driftline.retraining.lifecycle import decide_promotion as step

    return run_step(step, config_path, validation, reason, run_id, review_answer(review), actor=AUTOMATIC_ACTOR)


def rollback_champion(
    config_path: str, reason: str, to_version: int | None, run_id: str, expected_champion: int | None = None
) -> dict:
    from driftline.retraining.lifecycle import rollback_champion as step

    return run_step(
        step, config_path, reason, to_version, run_id, actor=f"airflow:{run_id}", expected_champion=expected_champion
    )


def apply_retention(config_path: str) -> dict:
    from driftline.retraining.lifecycle import apply_retention as step

    return run_step(step, config_path)


def update_realized_performance(config_path: str, labels_as_of) -> list[dict]:
    from driftline.retraining.realized import update_realized_performance as step

    return run_step(step, config_path, labels_as_of)


def score_shadow(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """Shadow-score the interval with the pending candidate; skipped (visible in the UI) when there is none."""
    from driftline.retraining.shadow import score_shadow as shadow

    return run_step(shadow, config_path, interval_start, interval_end, run_id)


def monitor_interval(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """monitor_drift's compare step: sample, compare with the reference, store the metrics (HTML: render_report)."""
    from driftline.drift.monitor import monitor_interval as monitor

    return run_step(monitor, config_path, interval_start, interval_end, run_id)


def render_report(config_path: str, interval_start: datetime, interval_end: datetime) -> dict:
    """monitor_drift's HTML step: the Evidently report of the monitored interval (no decision waits on it)."""
    from driftline.drift.html import render_report as render

    return run_step(render, config_path, interval_start, interval_end)


def choose_interval(start: str | None, end: str | None, triggering_asset_events) -> dict:
    """The interval this monitor_drift run covers: the Params of a manual run, else the asset event's extra."""
    from driftline.drift.policy import interval_to_monitor

    extras = [
        {**(event.extra or {}), "partition_key": event.partition_key}
        for events in (triggering_asset_events or {}).values()
        for event in events
    ]
    return run_step(interval_to_monitor, start, end, extras)


def estimate_performance(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """monitor_drift's estimate step (CBPE); skipped (visible in the UI) for regression or an uncalibrated model."""
    from driftline.drift.performance import estimate_interval

    return run_step(estimate_interval, config_path, interval_start, interval_end, run_id)


def decide_retrain(config_path: str, interval_start, interval_end, run_id: str, ti, retrain_dag_id: str) -> dict:
    """Apply the trigger policy to the state of retrain_dag_id (deployed, paused, running, queued);
    `retrains` lists the retrain runs to start (run id and conf), one per interval that now triggers."""
    from driftline.drift.decision import decide_retrain as decide

    state = retrain_state(ti, retrain_dag_id)
    decision = run_step(decide, config_path, interval_start, interval_end, run_id, state, retrain_run_id=retrain_run_id)
    # One retrain run per triggering interval: this one and the later ones it re-evaluated (drift.order).
    retrains = [
        {"trigger_run_id": d["retrain_run_id"], "conf": retrain_conf(config_path, d)} for d in decision["retrains"]
    ]
    return {**decision, "retrains": retrains, "retrain_conf": retrain_conf(config_path, decision)}


def retrain_run_id(interval_end: datetime) -> str:
    """The retrain_model run id a decision to retrain for the interval ending interval_end asks for: it
    names the interval, so a rerun of monitor_drift triggers nothing twice."""
    return f"drift__{interval_end.isoformat()}"


def retrain_state(ti, dag_id: str):
    """What Airflow says about DAG dag_id: deployed, paused, runs running and queued."""
    from driftline.drift.decision import RetrainState

    try:
        paused = bool(ti.get_dag(dag_id=dag_id).is_paused)
    except Exception:  # noqa: BLE001 - "not found" arrives as a generic server error
        # Not deployed: the decision is recorded; a later breach triggers once it is.
        return RetrainState(dag_id=dag_id, deployed=False, paused=False, running=0, queued=0)
    return RetrainState(
        dag_id=dag_id,
        deployed=True,
        paused=paused,
        running=ti.get_dr_count(dag_id=dag_id, states=["running"]),
        queued=ti.get_dr_count(dag_id=dag_id, states=["queued"]),
    )


def retrain_conf(config_path: str, decision: dict) -> dict:
    """What retrain_model receives as dag_run.conf (visible on the triggered run in the UI)."""
    return {
        "config": config_path,
        "reason": retrain_reason(decision),
        "interval": decision["interval"],
        "decision_id": decision["decision_id"],
        "report_path": decision["report_path"],
        **{k: decision[k] for k in ("drifted_share", "prediction_drift", "drifted_features", "model_version")},
    }


def retrain_reason(decision: dict) -> str:
    """The reason a retrain started by a drift decision records."""
    from driftline.pipelines import MONITOR_DRIFT

    return f"{MONITOR_DRIFT.name}: {decision['reason']}"
