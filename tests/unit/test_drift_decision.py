"""The drift decision policy on tiny inputs, without Postgres: the retrain DAG's state, its id in every
reason, the estimated-metric breach, and the interval bounds a run is given."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from driftline.config import DriftPolicy
from driftline.drift.policy import STALE_QUEUED_RETRAIN, RetrainState, decide, interval_to_monitor
from driftline.errors import BadConfig, BadInput
from driftline.intervals import utc

NOW = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
POLICY = DriftPolicy(
    drifted_share=0.3, prediction_drift=0.1, effect_size_floor=0.1, breaches=2, window=3, cooldown_hours=24
)
NUMBERS = {"drifted_share": 0.5, "prediction_drift": 0.02}
PERSISTENT = [True, True, False]


def _decide(retrain: RetrainState, **kwargs):
    return decide(POLICY, True, PERSISTENT, None, NOW, retrain, NUMBERS, **kwargs)


def test_the_reasons_name_the_retrain_dag_the_state_comes_from():
    running = _decide(RetrainState("nightly_retrain", running=1))
    assert not running.trigger and "a nightly_retrain run is already active" in running.reason
    missing = _decide(RetrainState("nightly_retrain", deployed=False))
    assert not missing.trigger and "DAG nightly_retrain is not deployed" in missing.reason
    paused = _decide(RetrainState("nightly_retrain", paused=True, queued=1))
    assert not paused.trigger and "unpause nightly_retrain to let it run" in paused.reason
    assert "retrain_model" not in running.reason + missing.reason + paused.reason


def test_the_state_is_recorded_in_the_numbers():
    decision = _decide(RetrainState("retrain_model", paused=True, running=0, queued=2))
    assert decision.numbers["active_retrain_runs"] == 0
    assert decision.numbers["queued_retrain_runs"] == 2
    assert decision.numbers["retrain_paused"] is True
    assert decision.numbers["breaches_in_window"] == 2 and decision.numbers["breaches_required"] == 2


def test_a_paused_dag_with_nothing_queued_still_triggers_and_says_the_run_will_wait():
    decision = _decide(RetrainState("retrain_model", paused=True))
    assert decision.trigger
    assert decision.numbers["retrain_waiting"] == (
        "retrain_model is paused: the run triggered now will wait until it is unpaused"
    )
    # Transient state stays out of the reason, which is carried to the promotion and stored for good.
    assert "paused" not in decision.reason and "wait" not in decision.reason


def test_a_queued_run_blocks_until_it_is_stale():
    fresh = _decide(RetrainState("retrain_model", queued=1), last_trigger=(NOW - timedelta(minutes=5), "drift__x"))
    assert not fresh.trigger and "(queued, not yet running)" in fresh.reason
    stale_at = NOW - STALE_QUEUED_RETRAIN
    stale = _decide(RetrainState("retrain_model", queued=1), last_trigger=(stale_at, "drift__x"))
    assert stale.trigger and "counted as stuck" in stale.numbers["retrain_waiting"]


def test_an_estimated_metric_breach_names_itself_in_the_reason():
    numbers = {**NUMBERS, "drifted_share": 0.0, "estimated_breach": "estimated auc 0.610 below floor 0.7"}
    decision = decide(POLICY, True, PERSISTENT, None, NOW, RetrainState("retrain_model"), numbers)
    assert decision.trigger and decision.reason.endswith("; estimated auc 0.610 below floor 0.7)")


def test_without_numbers_the_reason_says_so():
    decision = decide(POLICY, False, [False], None, NOW, RetrainState("retrain_model"))
    assert (decision.breach, decision.trigger, decision.reason) == (False, False, "no breach: no numbers")


def test_interval_bounds_accept_z_and_naive_times_as_utc():
    assert interval_to_monitor("2026-11-03T00:00:00Z", "2026-11-04T00:00:00", []) == {
        "start": "2026-11-03T00:00:00+00:00",
        "end": "2026-11-04T00:00:00+00:00",
    }
    event = {"interval_start": "2026-11-03T01:00:00+01:00", "interval_end": "2026-11-04T00:00:00Z"}
    assert interval_to_monitor(None, None, [event])["start"] == "2026-11-03T00:00:00+00:00"


def test_events_without_bounds_are_not_an_interval():
    with pytest.raises(BadConfig, match="no interval to monitor"):
        interval_to_monitor("", None, [{"rows_scored": 3}])


def test_utc_reads_what_runs_and_confs_carry():
    assert utc(None) is None and utc("") is None
    assert utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert utc("2026-01-01T02:00:00+02:00") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert utc("2026-01-01T00:00:00Z").tzinfo == timezone.utc
    with pytest.raises(BadInput, match="not an ISO 8601 date or time: 'tomorrow'"):
        utc("tomorrow")
