"""The drift decision (drift.policy) on tiny inputs, without Postgres: thresholds, effect-size floor, k of n,
cooldown, the retrain DAG's state (named in every reason), the estimated-metric breach, and the interval a
monitor_drift run covers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.config import DriftPolicy
from driftline.drift.policy import (
    RetrainState,
    counts_as_drift,
    decide,
    effect_size,
    interval_to_monitor,
    is_breach,
)
from driftline.errors import BadConfig, BadInput

NOW = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
POLICY = DriftPolicy(
    drifted_share=0.3, prediction_drift=0.1, effect_size_floor=0.1, breaches=2, window=3, cooldown_hours=24
)
NUMBERS = {"drifted_share": 0.43, "prediction_drift": 0.02}
PERSISTENT = [True, True, False]
RETRAIN = RetrainState("retrain_model")
DAY = ("2026-11-03T00:00:00+00:00", "2026-11-04T00:00:00+00:00")
EVENT = {"interval_start": DAY[0], "interval_end": DAY[1], "rows_scored": 10, "partition_key": "/".join(DAY)}


def test_breach_thresholds_are_inclusive_and_either_one_suffices():
    assert is_breach(POLICY, 0.3, 0.0)
    assert not is_breach(POLICY, 0.29, 0.099)
    assert is_breach(POLICY, 0.0, 0.1)


def test_effect_size_floor_drops_statistically_significant_trivia():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 20_000))
    nudged = pd.Series(rng.normal(0.03, 1, 20_000))  # a p-value test flags this at n=20k
    shifted = pd.Series(rng.normal(1.0, 1, 20_000))
    small, large = effect_size(reference, nudged, "numeric"), effect_size(reference, shifted, "numeric")
    assert small < 0.1 < 0.9 < large < 1.1  # in units of the reference's standard deviation
    assert not counts_as_drift(True, small, POLICY.effect_size_floor)
    assert counts_as_drift(True, large, POLICY.effect_size_floor)
    assert not counts_as_drift(False, large, POLICY.effect_size_floor)
    assert not counts_as_drift(True, None, POLICY.effect_size_floor)


def test_categorical_effect_size_is_jensen_shannon_distance():
    same = pd.Series(["a", "b", "c"] * 100)
    assert effect_size(same, same.sample(frac=1, random_state=1), "categorical") == pytest.approx(0.0)
    assert effect_size(pd.Series(["a"] * 10), pd.Series(["b"] * 10), "categorical") == pytest.approx(1.0)
    with_missing = pd.Series(["a", None] * 50)
    assert effect_size(pd.Series(["a"] * 100), with_missing, "categorical") > 0.4  # missing is a category
    assert effect_size(pd.Series([], dtype=float), pd.Series([1.0]), "numeric") is None


def test_no_breach_never_triggers():
    decision = decide(POLICY, False, [False, True, True], None, NOW, RETRAIN, numbers=NUMBERS)
    assert (decision.breach, decision.trigger) == (False, False)
    assert decision.reason.startswith("no breach")


@pytest.mark.parametrize(
    "recent, trigger",
    [
        ([True], False),  # first interval ever: 1 of 3
        ([True, False, False], False),
        ([True, False, True], True),
        ([True, True], True),
        ([True, False, False, True, True], False),  # only the last `window` intervals count
    ],
)
def test_breach_must_persist_k_of_the_last_n_intervals(recent, trigger):
    decision = decide(POLICY, True, recent, None, NOW, RETRAIN, numbers=NUMBERS)
    assert decision.trigger is trigger
    assert decision.numbers["breaches_in_window"] == sum(recent[:3])
    if not trigger:
        assert "not persistent" in decision.reason


@pytest.mark.parametrize("hours_ago, trigger", [(1, False), (23.9, False), (24.1, True)])
def test_no_trigger_within_the_cooldown_after_the_last_retrain(hours_ago, trigger):
    decision = decide(POLICY, True, [True, True, True], NOW - timedelta(hours=hours_ago), NOW, RETRAIN, numbers=NUMBERS)
    assert decision.trigger is trigger
    if not trigger:
        assert "cooldown" in decision.reason


def test_without_numbers_the_reason_says_so():
    decision = decide(POLICY, False, [False], None, NOW, RetrainState("retrain_model"))
    assert (decision.breach, decision.trigger, decision.reason) == (False, False, "no breach: no numbers")


def test_an_estimated_breach_is_named_in_the_decision_reason():
    numbers = {**NUMBERS, "estimated_breach": "estimated auc 0.700 below floor 0.75"}
    decision = decide(POLICY, True, [True, True], None, NOW, RETRAIN, numbers=numbers)
    assert decision.trigger and decision.reason.endswith("; estimated auc 0.700 below floor 0.75)")
    assert "estimated" not in decide(POLICY, True, [True, True], None, NOW, RETRAIN, numbers=NUMBERS).reason


# -- the retrain DAG's state --------------------------------------------------------------------------------


def _decide(retrain: RetrainState, **kwargs):
    return decide(POLICY, True, PERSISTENT, None, NOW, retrain, NUMBERS, **kwargs)


def test_no_trigger_while_a_retrain_runs_or_when_retrain_model_is_missing():
    running = decide(POLICY, True, [True, True], None, NOW, RetrainState("retrain_model", running=1), numbers=NUMBERS)
    assert (running.breach, running.trigger) == (True, False) and "already active" in running.reason
    missing = decide(
        POLICY, True, [True, True], None, NOW, RetrainState("retrain_model", deployed=False), numbers=NUMBERS
    )
    assert (missing.breach, missing.trigger) == (True, False) and "not deployed" in missing.reason
    go = decide(POLICY, True, [True, True], None, NOW, RETRAIN, numbers=NUMBERS)
    assert go.trigger and go.reason.startswith("retrain:") and "0.43" in go.reason


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


@given(age_hours=st.floats(0, 24 * 400))
def test_a_queued_run_holds_a_trigger_however_long_it_has_been_queued(age_hours):
    """The retrain run's state decides, never the wall clock: no queued run counts as stuck by its age."""
    last = (NOW - timedelta(hours=age_hours), "drift__x")
    waiting = _decide(RetrainState("retrain_model", queued=1), last_trigger=last)
    assert waiting.trigger is False and "(queued, not yet running)" in waiting.reason
    assert waiting.numbers["held"] == "retrain_dag" and "drift__x" in waiting.numbers["retrain_waiting"]
    same = _decide(RetrainState("retrain_model", queued=1), last_trigger=last)
    assert (same.trigger, same.numbers) == (waiting.trigger, waiting.numbers)


def test_the_retrain_dag_holds_a_trigger_and_never_refuses_one():
    for state in (
        RetrainState("retrain_model", running=1),
        RetrainState("retrain_model", queued=1),
        RetrainState("retrain_model", queued=1, paused=True),
        RetrainState("retrain_model", deployed=False),
    ):
        decision = _decide(state)
        assert decision.trigger is False and decision.numbers["held"] == "retrain_dag"
        assert "held" in decision.reason
    assert "held" not in _decide(RETRAIN).numbers


def test_a_later_recorded_retrain_puts_an_earlier_interval_in_cooldown():
    later = NOW + timedelta(hours=POLICY.cooldown_hours - 1)
    decision = _decide(RETRAIN, at=NOW, next_retrain_at=later)
    assert decision.trigger is False and "in cooldown" in decision.reason
    assert decision.numbers["next_retrain_at"] == later.isoformat()
    assert _decide(RETRAIN, at=NOW, next_retrain_at=NOW + timedelta(hours=POLICY.cooldown_hours)).trigger


def test_nothing_queued_and_unpaused_says_nothing_about_waiting():
    decision = decide(POLICY, True, PERSISTENT, None, NOW, RetrainState("retrain_model"), NUMBERS)
    assert decision.trigger is True and "retrain_waiting" not in decision.numbers and "note" not in decision.reason


# -- the interval a run covers --------------------------------------------------------------------------------


def test_an_asset_triggered_run_monitors_the_interval_of_its_event():
    assert interval_to_monitor(None, None, [EVENT, dict(EVENT)]) == {"start": DAY[0], "end": DAY[1]}


def test_a_manual_run_names_its_interval_and_it_wins_over_events():
    other = {"interval_start": "2026-11-05T00:00:00Z", "interval_end": "2026-11-06T00:00:00Z"}
    assert interval_to_monitor("2026-11-03", "2026-11-04", [other]) == {"start": DAY[0], "end": DAY[1]}


def test_interval_bounds_accept_z_and_naive_times_as_utc():
    assert interval_to_monitor("2026-11-03T00:00:00Z", "2026-11-04T00:00:00", []) == {
        "start": "2026-11-03T00:00:00+00:00",
        "end": "2026-11-04T00:00:00+00:00",
    }
    event = {"interval_start": "2026-11-03T01:00:00+01:00", "interval_end": "2026-11-04T00:00:00Z"}
    assert interval_to_monitor(None, None, [event])["start"] == "2026-11-03T00:00:00+00:00"


@pytest.mark.parametrize(
    "start, end, events, error, message",
    [
        (None, None, [], BadConfig, "no interval to monitor"),
        ("", None, [{"rows_scored": 3}], BadConfig, "no interval to monitor"),  # events without bounds
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
