"""Alerts: every failed or degraded situation is written to <schema>.alerts and the log, with numbers.

The default destination needs no outside service: a row in the alerts table and a WARNING/ERROR line in
the task log. Optional channels (SMTP, a Slack incoming webhook) are delivered by the deliverer the
Airflow adapter registers (`set_deliverer`; driftline.airflow.channels); a destination that fails is
recorded in the alert's `deliveries` and never fails the task that raised the alert. Which DAG, task
and run raised it comes from `ORIGIN`, set by whoever runs the step (the adapter's run_step, the CLI).

Messages carry counts, bounds, versions and column names, never feature values or entity keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from driftline.config import AlertSettings, DatasetConfig
from driftline.errors import safe_message

log = logging.getLogger("driftline.alerts")
# The numbers in the alert's log line: task logs keep them; a command's stderr only with -v (driftline.console).
LOG_NUMBERS = True

SEVERITIES = ("info", "warning", "critical")
_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


@dataclass(frozen=True)
class Origin:
    """Where an alert was raised: the DAG, task and run of the step (None outside Airflow)."""

    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None


ORIGIN: ContextVar[Origin] = ContextVar("driftline_alert_origin", default=Origin())  # noqa: B039 - Origin is frozen


@contextmanager
def raised_from(origin: Origin):
    """Inside: alerts name `origin` as where they were raised."""
    token = ORIGIN.set(origin)
    try:
        yield origin
    finally:
        ORIGIN.reset(token)


# (settings, subject, body) -> {destination: 'sent' | 'failed: why'}; must not raise.
Deliverer = Callable[[AlertSettings, str, str], dict[str, str]]
_deliverer: Deliverer | None = None


def set_deliverer(fn: Deliverer | None) -> None:
    """Register who sends alerts through the optional channels of [alerts] (the Airflow adapter does)."""
    global _deliverer
    _deliverer = fn


def deliver(settings: AlertSettings, subject: str, body: str) -> dict[str, str]:
    """Send through every optional destination; returns {destination: 'sent' | 'failed: why'}, never raises."""
    if not settings.channels:
        return {}
    if _deliverer is None:
        why = "failed: no alert deliverer registered (channels are sent under Airflow or the driftline CLI)"
        return {destination: why for destination in settings.channels}
    try:
        return _deliverer(settings, subject, body)
    except Exception as exc:  # noqa: BLE001 - a broken destination must not hide the alert
        return {destination: f"failed: {safe_message(exc)}"[:300] for destination in settings.channels}


def raise_alert(
    config: DatasetConfig,
    kind: str,
    severity: str,
    message: str,
    numbers: dict | None = None,
    *,
    run_id: str | None = None,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
) -> int | None:
    """Log the alert, store it in <schema>.alerts, send it through the optional channels.

    DAG, task and run come from ORIGIN (run_id overrides its run). Returns the alert id, or None
    when the database could not take it (the log line still has it). Never raises: an alert must
    not replace the error it reports.
    """
    from psycopg import sql
    from psycopg.types.json import Jsonb

    from driftline import db

    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    origin = ORIGIN.get()
    dag_id, task_id, run_id = origin.dag_id, origin.task_id, run_id or origin.run_id
    numbers = numbers or {}
    where = f" [{interval_start.isoformat()}, {interval_end.isoformat()})" if interval_start and interval_end else ""
    log.log(
        _LOG_LEVELS[severity],
        "ALERT %s (%s) %s%s: %s %s",
        kind,
        severity,
        config.name,
        where,
        message,
        f"numbers={json.dumps(numbers, default=str, sort_keys=True)}" if LOG_NUMBERS else "(details: driftline alerts)",
    )
    subject = f"[driftline {severity}] {config.name}: {kind}{where}"
    body = f"{message}\n\nnumbers: {json.dumps(numbers, default=str, indent=2, sort_keys=True)}"
    if run_id:
        body += f"\nrun: {dag_id or '?'}.{task_id or '?'} {run_id}"
    alerts = db.table(config.db_schema, "alerts")
    try:
        url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
        with db.connect(url, application_name="driftline alert", autocommit=True) as conn:
            db.ensure_schema(conn, config.db_schema)
            alert_id = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (kind, severity, dag_id, task_id, run_id, interval_start, interval_end, "
                    "message, numbers) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING alert_id"
                ).format(alerts),
                (
                    kind,
                    severity,
                    dag_id,
                    task_id,
                    run_id,
                    interval_start,
                    interval_end,
                    message[:4000],
                    Jsonb(json.loads(json.dumps(numbers, default=str))),
                ),
            ).fetchone()[0]
            deliveries = deliver(config.alerts, subject, body)
            if deliveries:
                conn.execute(
                    sql.SQL("UPDATE {} SET deliveries = %s WHERE alert_id = %s").format(alerts),
                    (Jsonb(deliveries), alert_id),
                )
            return alert_id
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.error("could not store alert %s for %s: %s", kind, config.name, db.mask_url(safe_message(exc)))
        return None


def recent_alerts(conn, schema: str, limit: int = 20) -> list[dict]:
    """The newest alerts, newest first (for the CLI and the demo)."""
    from psycopg import sql
    from psycopg.rows import dict_row

    from driftline import db

    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(
            sql.SQL(
                "SELECT alert_id, raised_at, kind, severity, dag_id, task_id, run_id, interval_start, interval_end, "
                "message, numbers, deliveries FROM {} ORDER BY raised_at DESC, alert_id DESC LIMIT %s"
            ).format(db.table(schema, "alerts")),
            (limit,),
        ).fetchall()
