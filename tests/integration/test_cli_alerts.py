"""A failed CLI run leaves the same kind of alert as a failed task, and `driftline alerts` shows it."""

from __future__ import annotations

from driftline.cli import main
from tests.helpers import fetch, scalar


def test_a_failed_score_writes_a_task_failure_alert_that_alerts_shows(project, capsys):
    # No input file for this interval: an expected failure (exit 1), not a traceback.
    code = main(
        ["score", "--config", str(project), "--start", "2031-01-01", "--end", "2031-01-02", "--run-id", "cli_fail"]
    )
    assert code == 1
    failed = capsys.readouterr().err
    ((kind, severity, task_id, message, numbers, start),) = fetch(
        project,
        "SELECT kind, severity, task_id, message, numbers, interval_start FROM {s}.alerts WHERE run_id = 'cli_fail'",
    )
    assert (kind, severity, task_id) == ("task_failure", "critical", "cli score")
    assert numbers["source"] == "cli" and numbers["command"] == "score"
    assert message.startswith("driftline score failed: ") and message[len("driftline score failed: ") :] in failed
    assert f"{start:%Y-%m-%d}" == "2031-01-01"

    assert main(["alerts", "--config", str(project), "--limit", "5"]) == 0
    shown = capsys.readouterr().out
    assert "task_failure" in shown and "driftline score failed" in shown


def test_a_failed_rollback_alerts_and_reading_alerts_does_not(project, capsys):
    before = scalar(project, "SELECT count(*) FROM {s}.alerts")
    assert main(["rollback", "--config", str(project), "--to", "99", "--reason", "x"]) == 1  # a step: alerts
    assert scalar(project, "SELECT count(*) FROM {s}.alerts") == before + 1
    assert main(["alerts", "--config", str(project), "--limit", "1"]) == 0  # reading alerts never adds one
    assert scalar(project, "SELECT count(*) FROM {s}.alerts") == before + 1
