"""When a scheduled interval is late: the freshness promise of [alerts] scoring_deadline_hours, as
plain functions of times (no Airflow, no clock of its own).

An interval is due `deadline_hours` after it ends. A run the scheduler created after that moment had
already passed (the first unpause of a deployment, or an unpause after a pause: catchup = false
schedules the newest complete interval at once) was late before it existed: that is not a missed
promise, so it raises no deadline alert, and it gets the same `deadline_hours` to find its input,
counted from its start. Until then, input that has not landed is waited for quietly.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# How often a waiting run looks for its input again (rescheduled, not retried: no attempt is used up).
POKE = timedelta(minutes=5)


def born_late(run_created: datetime | None, deadline_time: datetime | None) -> bool:
    """Whether the run was created after its deadline had already passed (nothing it could have met)."""
    return run_created is not None and deadline_time is not None and run_created >= deadline_time


def wait_until(interval_end: datetime, run_started: datetime | None, deadline_hours: float | None) -> datetime | None:
    """Until when a scheduled run waits quietly for input that has not landed: the interval's deadline,
    or, for a run started after it, deadline_hours after the run's start. None: no deadline configured
    (a missing input is retried, then fails, as any NotReady)."""
    if deadline_hours is None:
        return None
    allowed = timedelta(hours=deadline_hours)
    due = interval_end + allowed
    return max(due, run_started + allowed) if run_started is not None else due


def next_look(now: datetime, until: datetime | None) -> datetime | None:
    """When to look for the input again, or None when the wait is over (fail as usual from here)."""
    if until is None or now >= until:
        return None
    return min(now + POKE, until)
