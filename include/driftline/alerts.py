"""Alerts: every failed or degraded situation is written to <schema>.alerts and the log, with numbers.

The default destination needs no outside service: a row in the alerts table and a WARNING/ERROR line in
the task log. Optional channels (SMTP, a Slack incoming webhook) are Airflow provider notifiers
chosen by connection id in [alerts]; their providers come from extras (driftline[smtp],
driftline[slack]), not from the required dependencies. A destination that fails is recorded in the
alert's `deliveries` and never fails the task that raised the alert.

Messages carry counts, bounds, versions and column names, never feature values or entity keys.
"""

from __future__ import annotations

import html
import json
import logging
from datetime import datetime

from driftline.config import AlertSettings, DatasetConfig
from driftline.errors import BadConfig, safe_message

log = logging.getLogger("driftline.alerts")

SEVERITIES = ("info", "warning", "critical")
_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}
# Extras that bring each destination's provider; named in the error when the provider is missing.
CHANNEL_EXTRAS = {"smtp": "driftline[smtp]", "slack": "driftline[slack]"}


class AlertChannelError(BadConfig):
    """A configured alert destination cannot be built (its provider is not installed)."""


def build_notifiers(settings: AlertSettings, subject: str, body: str) -> dict[str, object]:
    """The Airflow notifiers for the configured optional channels, keyed 'destination:conn_id'."""
    notifiers: dict[str, object] = {}
    for destination in settings.channels:
        try:
            if destination == "smtp":
                from airflow.providers.smtp.notifications.smtp import SmtpNotifier

                notifiers[f"smtp:{settings.smtp_conn_id}"] = SmtpNotifier(
                    smtp_conn_id=settings.smtp_conn_id,
                    to=list(settings.smtp_to),
                    subject=subject,
                    html_content=f"<pre>{html.escape(body)}</pre>",
                )
            elif destination == "slack":
                from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

                notifiers[f"slack:{settings.slack_webhook_conn_id}"] = SlackWebhookNotifier(
                    slack_webhook_conn_id=settings.slack_webhook_conn_id, text=f"{subject}\n{body}"
                )
        except ImportError as exc:
            raise AlertChannelError(
                f"[alerts] configures the {destination} destination but its Airflow provider is not installed: "
                f"pip install '{CHANNEL_EXTRAS[destination]}' ({exc.name or exc})"
            ) from exc
    return notifiers


def deliver(settings: AlertSettings, subject: str, body: str) -> dict[str, str]:
    """Send through every optional destination; returns {destination: 'sent' | 'failed: why'}, never raises."""
    try:
        notifiers = build_notifiers(settings, subject, body)
    except AlertChannelError as exc:
        return {destination: f"failed: {exc}" for destination in settings.channels}
    outcome = {}
    for name, notifier in notifiers.items():
        try:
            notifier.notify({})
            outcome[name] = "sent"
        except Exception as exc:  # noqa: BLE001 - a broken destination must not hide the alert
            outcome[name] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
            log.warning("alert destination %s failed: %s", name, outcome[name])
    return outcome


def raise_alert(
    config: DatasetConfig,
    kind: str,
    severity: str,
    message: str,
    numbers: dict | None = None,
    *,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    interval_start: datetime | None = None,
    interval_end: datetime | None = None,
) -> int | None:
    """Log the alert, store it in <schema>.alerts, send it through the optional channels.

    Returns the alert id, or None when the database could not take it (the log line still has it).
    Never raises: an alert must not replace the error it reports.
    """
    from psycopg import sql
    from psycopg.types.json import Jsonb

    from driftline import db

    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    numbers = numbers or {}
    where = f" [{interval_start.isoformat()}, {interval_end.isoformat()})" if interval_start and interval_end else ""
    log.log(
        _LOG_LEVELS[severity],
        "ALERT %s (%s) %s%s: %s numbers=%s",
        kind,
        severity,
        config.name,
        where,
        message,
        json.dumps(numbers, default=str, sort_keys=True),
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
                (kind, severity, dag_id, task_id, run_id, interval_start, interval_end, message[:4000],
                 Jsonb(json.loads(json.dumps(numbers, default=str)))),
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
