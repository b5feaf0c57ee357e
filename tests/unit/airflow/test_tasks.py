"""The task functions' guards: a run without a data interval fails at once, saying how to trigger one that has
it; unknown trigger-conf keys are refused naming the known ones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from driftline.airflow.tasks import check_conf_keys, require_interval
from driftline.errors import BadConfig


@pytest.mark.parametrize("start, end", [(None, None), (datetime(2026, 11, 1, tzinfo=timezone.utc), None)])
def test_no_data_interval_is_bad_config_naming_a_trigger_that_works(start, end):
    with pytest.raises(BadConfig, match="no data interval") as raised:
        require_interval(start, end)
    assert "logical_date" in str(raised.value) and "dags trigger -l" in str(raised.value)
    assert "logical date" in str(raised.value)


def test_an_interval_passes():
    require_interval(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))


def test_unknown_conf_keys_are_refused_with_the_known_ones():
    with pytest.raises(BadConfig, match=r"unknown conf key 'modelversion'; known: config, model_version"):
        check_conf_keys({"config": "x", "modelversion": 2}, ["model_version", "config"])
    check_conf_keys({"model_version": 2}, ["model_version", "config"])  # a subset is fine


def _context(monkeypatch, tmp_path, run_type: str, started: datetime, deadline_hours: str | None):
    from types import SimpleNamespace

    import airflow.sdk

    from tests.helpers import config_copy

    hours = f"scoring_deadline_hours = {deadline_hours}" if deadline_hours else "# no deadline"
    path = config_copy(tmp_path / run_type, [("scoring_deadline_hours = 6", hours)])
    run = SimpleNamespace(run_type=run_type, start_date=started)
    context = {
        "dag_run": run,
        "data_interval_end": datetime(2026, 12, 6, tzinfo=timezone.utc),
        "params": {"config": str(path)},
    }
    monkeypatch.setattr(airflow.sdk, "get_current_context", lambda: context)


def _not_landed():
    from driftline.errors import NotReady

    raise NotReady("input for [2026-12-05, 2026-12-06) has not landed")


@pytest.mark.parametrize("run_type", ["scheduled", "backfill", "manual"])
def test_input_not_landed_is_waited_for_quietly_in_a_scheduled_run_until_it_is_due(monkeypatch, tmp_path, run_type):
    """The first unpause (a scheduled run started now, after its interval's deadline): rescheduled, not
    retried nor failed, for deadline_hours; other runs retry as before."""
    from airflow.sdk.exceptions import AirflowRescheduleException

    from driftline.airflow.tasks import run_step
    from driftline.errors import NotReady

    _context(monkeypatch, tmp_path, run_type, datetime.now(timezone.utc), "6")
    expected = AirflowRescheduleException if run_type == "scheduled" else NotReady
    with pytest.raises(expected):
        run_step(_not_landed)


def test_once_due_or_without_a_deadline_input_not_landed_is_retried_as_before(monkeypatch, tmp_path):
    from driftline.airflow.tasks import run_step
    from driftline.errors import NotReady

    _context(monkeypatch, tmp_path, "scheduled", datetime.now(timezone.utc) - timedelta(hours=7), "6")
    with pytest.raises(NotReady):
        run_step(_not_landed)
    _context(monkeypatch, tmp_path / "none", "scheduled", datetime.now(timezone.utc), None)
    with pytest.raises(NotReady):
        run_step(_not_landed)
