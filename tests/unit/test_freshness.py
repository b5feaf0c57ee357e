"""The first unpause of a deployment: a run created after its interval was due raises no deadline
alert and waits for its input quietly as long as an on-time run would have (driftline.freshness)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from driftline.freshness import POKE, born_late, next_look, wait_until

END = datetime(2026, 12, 6, tzinfo=timezone.utc)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(timezone.utc)
)
hours = st.floats(min_value=0.1, max_value=72, allow_nan=False)


def test_first_unpause_after_the_deadline_waits_six_hours_from_its_start_and_does_not_alert():
    unpaused = END + timedelta(hours=14)  # daily interval ending at midnight, deadline 06:00, unpaused 14:00
    assert born_late(unpaused, END + timedelta(hours=6))
    assert wait_until(END, unpaused, 6) == unpaused + timedelta(hours=6)
    assert next_look(unpaused, wait_until(END, unpaused, 6)) == unpaused + POKE


def test_an_on_time_run_waits_until_its_deadline_then_fails_as_usual():
    started = END + timedelta(seconds=5)
    assert not born_late(started, END + timedelta(hours=6))
    until = wait_until(END, started, 6)
    assert until == END + timedelta(hours=6) + timedelta(seconds=5)
    assert next_look(END + timedelta(hours=5, minutes=58), until) == until
    assert next_look(until, until) is None


def test_no_deadline_configured_means_no_waiting():
    assert wait_until(END, END, None) is None and next_look(END, None) is None


@given(moments, moments, hours, moments)
def test_a_waiting_run_never_waits_past_its_allowance_nor_busy_loops(end, started, allowed, now):
    until = wait_until(end, started, allowed)
    assert until is not None and until >= end + timedelta(hours=allowed) and until >= started + timedelta(hours=allowed)
    later = next_look(now, until)
    if later is None:
        assert now >= until
    else:
        assert now < later <= until and later - now <= POKE


@given(moments, hours, st.integers(min_value=-360_000, max_value=360_000))
def test_born_late_is_exactly_created_at_or_after_the_deadline(end, allowed, offset_seconds):
    deadline = end + timedelta(hours=allowed)
    created = deadline + timedelta(seconds=offset_seconds)
    assert born_late(created, deadline) == (offset_seconds >= 0)
    assert not born_late(None, deadline) and not born_late(created, None)
