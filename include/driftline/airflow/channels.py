"""The optional alert channels of [alerts] (SMTP, a Slack incoming webhook) as Airflow provider notifiers.

Registered with driftline.alerts by connections.install(); the providers come from extras
(driftline[smtp], driftline[slack]), not from the required dependencies.
"""

from __future__ import annotations

import html
import logging

from driftline.config import AlertSettings
from driftline.errors import BadConfig

log = logging.getLogger("driftline.alerts")

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
