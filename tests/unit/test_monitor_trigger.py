"""monitor_drift's operational edges: which interval a run covers, and a retrain that cannot start."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from driftline.config import DriftPolicy
from driftline.drift.policy import STALE_QUEUED_RETRAIN, RetrainState, decide, interval_to_monitor
from driftline.errors import BadConfig, BadInput

NOW = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
POLICY = DriftPolicy(
    drifted_share=0.3, prediction_drift=0.1, effect_size_floor=0.1, breaches=2, window=3, cooldown_hours=24
)
NUMBERS = {"drifted_share": 0.43, "prediction_drift": 0.02}
PERSISTENT = [True, True, False]
DAY = ("2026-11-03T00:00:00+00:00", "2026-11-04T00:00:00+00:00")
EVENT = {"interval_start": DAY[0], "interval_end": DAY[1], "rows_scored": 10, "partition_key": "/".join(DAY)}


def test_an_asset_triggered_run_monitors_the_interval_of_its_event():
    assert interval_to_monitor(None, None, [EVENT, dict(EVENT)]) == {"start": DAY[0], "end": DAY[1]}


def test_a_manual_run_names_its_interval_and_it_wins_over_events():
    other = {"interval_start": "2026-11-05T00:00:00Z", "interval_end": "2026-11-06T00:00:00Z"}
    assert interval_to_monitor("2026-11-03", "2026-11-04", [other]) == {"start": DAY[0], "end": DAY[1]}


@pytest.mark.parametrize(
    "start, end, events, error, message",
    [
        (None, None, [], BadConfig, "no interval to monitor"),
        ("2026-11-03", None, [], BadConfig, "both interval_start and interval_end"),
        ("2026-11-04", "2026-11-03", [], BadConfig, "is not before"),
        ("yesterday", "today", [], BadConfig, "not ISO 8601"),
        (
            None,
            None,
            [EVENT, {"interval_start": DAY[1], "interval_end": "2026-11-05T00:00:00+00:00"}],
            BadInput,
            "2 different intervals",
        ),
    ],
)
def test_a_run_without_one_clear_interval_fails_saying_why(start, end, events, error, message):
    with pytest.raises(error, match=message):
        interval_to_monitor(start, end, events)


def test_a_run_queued_on_a_paused_retrain_model_is_said_not_counted_as_active():
    triggered = (NOW - timedelta(hours=30), "drift__2026-11-09T00:00:00+00:00")
    decision = decide(
        POLICY,
        True,
        PERSISTENT,
        None,
        NOW,
        RetrainState("retrain_model", queued=1, paused=True),
        NUMBERS,
        last_trigger=triggered,
    )
    assert (decision.breach, decision.trigger) == (True, False)
    assert "retrain_model is paused: the run triggered on 2026-11-09 06:00 UTC" in decision.reason
    assert "already active" not in decision.reason
    assert decision.numbers["retrain_waiting"].startswith("retrain_model is paused")


def test_a_fresh_queued_run_on_a_running_dag_waits_but_a_stuck_one_no_longer_blocks():
    fresh = (NOW - timedelta(hours=1), "drift__a")
    waiting = decide(
        POLICY, True, PERSISTENT, None, NOW, RetrainState("retrain_model", queued=1), NUMBERS, last_trigger=fresh
    )
    assert waiting.trigger is False and "is waiting" in waiting.reason
    # Older than the bound, and past the cooldown: the stuck run is reported, and the breach triggers.
    stuck = (NOW - STALE_QUEUED_RETRAIN - timedelta(hours=24), "drift__b")
    decision = decide(
        POLICY, True, PERSISTENT, None, NOW, RetrainState("retrain_model", queued=1), NUMBERS, last_trigger=stuck
    )
    assert decision.trigger is True
    assert "stuck" in decision.numbers["retrain_waiting"] and "drift__b" in decision.numbers["retrain_waiting"]
    assert "stuck" not in decision.reason  # the reason goes to the promotion: no transient state in it


def test_a_trigger_on_a_paused_retrain_model_says_the_run_will_wait():
    decision = decide(POLICY, True, PERSISTENT, None, NOW, RetrainState("retrain_model", paused=True), NUMBERS)
    assert decision.trigger is True
    assert "retrain_model is paused" in decision.numbers["retrain_waiting"]
    assert "paused" not in decision.reason  # carried to the promotion: says the data, not the DAG's state


def test_nothing_queued_and_unpaused_says_nothing_about_waiting():
    decision = decide(POLICY, True, PERSISTENT, None, NOW, RetrainState("retrain_model"), NUMBERS)
    assert decision.trigger is True and "retrain_waiting" not in decision.numbers and "note" not in decision.reason


def test_unknown_conf_keys_are_refused_with_the_known_ones():
    from driftline.airflow.tasks import check_conf_keys

    with pytest.raises(BadConfig, match=r"unknown conf key 'modelversion'; known: config, model_version"):
        check_conf_keys({"config": "x", "modelversion": 2}, ["model_version", "config"])
    check_conf_keys({"model_version": 2}, ["model_version", "config"])  # a subset is fine


def test_a_run_without_a_data_interval_is_bad_config_saying_how_to_trigger():
    from driftline.airflow.tasks import require_interval
    from driftline.errors import BadConfig

    with pytest.raises(BadConfig, match="logical date"):
        require_interval(None, None)
    require_interval(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))
