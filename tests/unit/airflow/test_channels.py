"""Alert destinations: a notifier per configured connection id; a missing provider names the extra."""

from __future__ import annotations

import pytest

from driftline.airflow.channels import AlertChannelError, build_notifiers
from driftline.config import AlertSettings


def test_notifier_selection_by_connection_id():
    assert build_notifiers(AlertSettings(), "subject", "body") == {}
    smtp = build_notifiers(AlertSettings(smtp_conn_id="smtp_alerts", smtp_to=("a@example.com",)), "subject", "body")
    [(name, notifier)] = smtp.items()
    assert name == "smtp:smtp_alerts" and type(notifier).__name__ == "SmtpNotifier"
    assert notifier.to == ["a@example.com"] and notifier.smtp_conn_id == "smtp_alerts" and notifier.subject == "subject"


def test_missing_provider_names_the_extra():
    settings = AlertSettings(slack_webhook_conn_id="slack_alerts")
    try:
        import airflow.providers.slack  # noqa: F401
    except ImportError:
        with pytest.raises(AlertChannelError, match=r"pip install 'driftline\[slack\]'"):
            build_notifiers(settings, "subject", "body")
    else:
        [(name, notifier)] = build_notifiers(settings, "subject", "body").items()
        assert name == "slack:slack_alerts" and type(notifier).__name__ == "SlackWebhookNotifier"
