"""Airflow-side alert hooks: the failure notifier every driftline task carries, and score_batch's
deadline callback. Both end in alerts.raise_alert (alerts table + task log + optional channels), naming the
failed task through alerts.ORIGIN.

Light at import (airflow.sdk only): the DAG files import it at parse time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from airflow.sdk import BaseNotifier

log = logging.getLogger("driftline.alerts")


class DriftlineAlertNotifier(BaseNotifier):
    """on_failure_callback for driftline tasks: one alert per finally-failed task instance.

    Failures the pipeline already alerted on (an output sanity failure, say) carry that alert's id;
    the notifier then only logs the reference instead of alerting twice.
    """

    def __init__(self, config_path: str, kind: str = "task_failure", severity: str = "critical"):
        super().__init__()
        self.config_path = config_path
        self.kind = kind
        self.severity = severity

    def notify(self, context) -> None:
        from driftline.airflow.connections import install
        from driftline.alerts import Origin, raise_alert, raised_from
        from driftline.errors import safe_message

        install()  # the failure callback may run where no task module was imported (the channels)
        exception = context.get("exception")
        # The driftline error behind Airflow's AirflowFailException, when there is one: its type says which branch.
        cause = _driftline_error(exception)
        ti = context.get("ti") or context.get("task_instance")
        dag_id, task_id = getattr(ti, "dag_id", None), getattr(ti, "task_id", None)
        run_id = context.get("run_id") or getattr(ti, "run_id", None)
        if getattr(cause, "alert_id", None) is not None:
            log.error("%s.%s failed (run %s); already alerted as alert %s", dag_id, task_id, run_id, cause.alert_id)
            return
        try_number = getattr(ti, "try_number", None)
        error = safe_message(cause or exception) if exception is not None else "no exception recorded"
        message = f"{dag_id}.{task_id} failed after {try_number} attempt(s): {error}"
        params = context.get("params") or {}
        config, problem = _alert_config(params.get("config"), self.config_path)
        if config is None:
            # Nowhere to store it (no config loads): the task log still carries the alert.
            log.error("ALERT %s (%s) run %s: %s; not stored: %s", self.kind, self.severity, run_id, message, problem)
            return
        if problem:
            message += f" (alert stored with the DAG's config: {problem})"
        with raised_from(Origin(dag_id, task_id, run_id)):
            raise_alert(
                config,
                self.kind,
                self.severity,
                message,
                {"try_number": try_number, **(getattr(cause, "numbers", None) or {})},
                interval_start=context.get("data_interval_start"),
                interval_end=context.get("data_interval_end"),
            )


def _alert_config(requested: str | None, dag_config: str):
    """(config, problem): the run's config Param, else the DAG's own config when that one cannot be
    loaded (a Param pointing nowhere must still leave an alert), else (None, why)."""
    from driftline.config import load_config
    from driftline.errors import DriftlineError

    problems = []
    for path in dict.fromkeys(p for p in (requested, dag_config) if p):
        try:
            return load_config(path), "; ".join(problems)
        except DriftlineError as exc:
            problems.append(str(exc))
    return None, "; ".join(problems) or "no config path"


def _driftline_error(exception):
    """exception itself when it is a DriftlineError, else the one it was raised from (run_step
    raises AirflowFailException from it), else None."""
    from driftline.errors import DriftlineError

    while exception is not None and not isinstance(exception, DriftlineError):
        exception = exception.__cause__
    return exception


async def scoring_deadline_missed(config_path: str, deadline_hours: float, context: dict | None = None) -> None:
    """DeadlineAlert callback (runs in the triggerer): the interval was not scored in time."""
    import asyncio

    await asyncio.to_thread(record_missed_deadline, config_path, deadline_hours, context or {})


def record_missed_deadline(config_path: str, deadline_hours: float, context: dict) -> int | None:
    """Alert for a scheduled score_batch run still unfinished at its deadline; returns the alert id."""
    from driftline.airflow.connections import install
    from driftline.alerts import Origin, raise_alert, raised_from
    from driftline.config import load_config

    install()  # runs in the triggerer: nothing else registered the channels there
    dag_run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    if dag_run.get("run_type") in ("backfill", "manual"):
        # Freshness is a promise about scheduled runs; a backfill of old intervals misses it by design.
        log.info(
            "deadline of %s run %s passed; not an alert for that run type",
            dag_run.get("run_type"),
            dag_run.get("dag_run_id"),
        )
        return None
    from driftline.freshness import born_late

    created = _timestamp(dag_run.get("queued_at") or dag_run.get("start_date"))
    if born_late(created, _timestamp(deadline.get("deadline_time"))):
        # Created after its deadline had passed (a first unpause with catchup = false): not a missed
        # promise. Its input is still waited for (driftline.freshness); a run that never lands fails and alerts.
        log.info(
            "run %s was created after its deadline %s; not an alert",
            dag_run.get("dag_run_id"),
            deadline.get("deadline_time"),
        )
        return None
    start, end = _timestamp(dag_run.get("data_interval_start")), _timestamp(dag_run.get("data_interval_end"))
    with raised_from(Origin(dag_run.get("dag_id"), None, dag_run.get("dag_run_id"))):
        return raise_alert(
            load_config(config_path),
            "deadline_missed",
            "critical",
            f"interval not scored within {deadline_hours:g} h of its end (deadline {deadline.get('deadline_time')}); "
            f"run {dag_run.get('dag_run_id')} is {dag_run.get('state')}",
            {"deadline_hours": deadline_hours, "deadline_time": str(deadline.get("deadline_time"))},
            interval_start=start,
            interval_end=end,
        )


def _timestamp(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def scoring_deadline(config) -> object | None:
    """score_batch's DeadlineAlert: fires when a run has not finished `scoring_deadline_hours` after
    its interval ends. Airflow measures from the run's logical date (the interval start for
    CronDataIntervalTimetable), so the interval length is added; for crons with uneven gaps it is
    the gap after start_date."""
    hours = config.alerts.scoring_deadline_hours
    if hours is None:
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=interval_length(config) + timedelta(hours=hours),
        callback=AsyncCallback(
            "driftline.airflow.notifiers.scoring_deadline_missed",
            kwargs={"config_path": str(config.path), "deadline_hours": hours},
        ),
        name="score_batch_freshness",
    )


def interval_length(config) -> timedelta:
    """The length of the schedule's data interval that starts at (or after) start_date."""
    from croniter import croniter

    first = croniter(config.cron, config.start_date).get_next(datetime)
    return croniter(config.cron, first).get_next(datetime) - first
