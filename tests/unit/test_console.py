"""Quiet commands: a command's stderr has driftline's warnings and errors only, one line per alert;
third-party warnings and INFO lines (httpx, pgserver, Airflow) and an alert's numbers with -v."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Noise of the kinds seen in commands, made on purpose after the command's output is configured.
NOISY = """
import logging, sys, warnings
from driftline import cli
from driftline.alerts import log as alert_log

def noisy(args):
    logging.getLogger("pgserver").info("pgserver INFO line")
    logging.getLogger("airflow.sdk.definitions.dag").warning("No tasks to run. unrunnable tasks: set()")
    warnings.warn("Setting per-request cookies=<...> is being deprecated", DeprecationWarning)
    logging.getLogger("driftline.run").warning("driftline warning kept")
    alert_log.error("ALERT %s (%s) %s%s: %s %s", "k", "critical", "ds", "", "one line", "numbers={}")

parser = cli.build_parser
def build():
    p = parser()
    p._subparsers._group_actions[0].choices["db-url"].set_defaults(func=noisy)
    return p
cli.build_parser = build
sys.exit(cli.main(sys.argv[1:]))
"""


def _run(*argv: str, env: dict | None = None, code: str | None = None) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(REPO / "include"), str(REPO)])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DRIFTLINE_DEBUG", "PYTHONWARNINGS"))}
    command = [sys.executable, "-c", code, *argv] if code else [sys.executable, "-m", "driftline.cli", *argv]
    return subprocess.run(
        command, env={**clean, "PYTHONPATH": path, **(env or {})}, capture_output=True, text=True, timeout=300
    )


def _noise(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if "Warning" in line or line.startswith(("INFO", "DEBUG")) or "INFO" in line
    ]


def test_help_is_quiet():
    result = _run("--help")
    assert result.returncode == 0 and result.stderr == ""


def test_third_party_noise_only_with_verbose():
    quiet = _run("db-url", code=NOISY)
    assert quiet.returncode == 0, quiet.stderr
    assert "driftline warning kept" in quiet.stderr and "ALERT k (critical) ds: one line" in quiet.stderr
    assert _noise(quiet.stderr) == [] and "No tasks to run" not in quiet.stderr, quiet.stderr
    loud = _run("-v", "db-url", code=NOISY)
    assert "pgserver INFO line" in loud.stderr and "No tasks to run" in loud.stderr and "deprecated" in loud.stderr


def test_init_db_and_alerts_print_no_warnings_or_info(tmp_path, database_url):
    from tests.helpers import config_copy

    config = config_copy(tmp_path, keys={"schema": '"quiet_cli"'})
    env = {"DRIFTLINE_DB_URL": database_url}
    for argv in (("init-db", "--config", str(config)), ("alerts", "--config", str(config))):
        result = _run(*argv, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", (argv, result.stderr)


def test_an_alert_is_one_line_with_its_numbers_a_flag_away():
    """In-process: the alert's log line names kind, dataset and message; numbers only with -v."""
    from driftline import alerts
    from driftline.console import command_output

    with command_output(False):
        assert alerts.LOG_NUMBERS is False
    assert alerts.LOG_NUMBERS is True  # put back: task logs keep the numbers
    with command_output(True):
        assert alerts.LOG_NUMBERS is True
