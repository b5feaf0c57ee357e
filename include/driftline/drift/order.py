"""Drift decisions in data order, pure: which monitored intervals start a retrain, whatever order
they were monitored in.

score_batch runs intervals concurrently, so a backfill publishes (and monitors) them out of order.
The trigger policy is therefore evaluated over the intervals in data order, never arrival order:
the window is the last `window` *known* intervals (those score_batch has started on) ending at or
before the decided one, a known interval not monitored yet counts as no breach (more data can only
add breaches, so a "not persistent" is provisional and re-evaluated, never wrong), and the cooldown
counts in data time from the interval end of the previous retrain. A trigger is the one outcome that
cannot be taken back, so it waits ("held") while an earlier interval that could still change it is
not monitored: one in its window, or one within its cooldown whose own trigger is not yet known.
Once every known interval is monitored, the triggers are exactly those of monitoring in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from driftline.config import DriftPolicy


@dataclass(frozen=True)
class Interval:
    """One known interval: its end (data time) and its breach flag; None = not monitored yet."""

    end: datetime
    breach: bool | None


@dataclass(frozen=True)
class Planned:
    """The data-order decision of one monitored interval."""

    end: datetime
    window: tuple[bool, ...]  # breach flags of its window, newest first (not monitored = False)
    last_retrain: datetime | None  # data time of the retrain its cooldown counts from (None: none)
    waiting_for: tuple[datetime, ...]  # ends of earlier intervals that must be monitored before it triggers
    trigger: bool  # breach, persistent, out of cooldown and not waiting

    @property
    def persisted(self) -> int:
        return sum(self.window)


def plan(
    policy: DriftPolicy,
    intervals: list[Interval],
    retrained: list[datetime] = (),
    anchor: bool = True,
    recorded: dict[datetime, bool] | None = None,
) -> dict[datetime, Planned]:
    """The data-order decision of every monitored interval (by end).

    retrained: data times of retrains not started by these decisions (a promotion's training end);
    anchor: whether a new planned trigger starts a retrain that the cooldown counts from (False for
    `driftline monitor --no-retrain`, which records the trigger but runs nothing); recorded: the
    intervals already triggered, by end, and whether that trigger started a retrain (it anchors the
    cooldown either way it is planned now; one that started none never does).
    """
    recorded = recorded or {}
    ordered = sorted(intervals, key=lambda i: i.end)
    cooldown = timedelta(hours=policy.cooldown_hours)
    anchors = sorted({*retrained, *(end for end, started in recorded.items() if started)})
    known: dict[datetime, bool] = {}  # end -> whether its trigger outcome can no longer change
    planned: dict[datetime, Planned] = {}
    for position, interval in enumerate(ordered):
        if interval.breach is None:
            known[interval.end] = False
            continue
        window = ordered[max(0, position - policy.window + 1) : position + 1][::-1]
        # What could still change this outcome: a window interval not monitored yet (it may breach),
        # or an earlier interval within the cooldown whose own trigger is not known yet.
        unsure = sorted(
            {i.end for i in window if i.breach is None}
            | {i.end for i in ordered[:position] if interval.end - i.end < cooldown and not known[i.end]}
        )
        last = max((a for a in anchors if a < interval.end), default=None)
        flags = tuple(bool(i.breach) for i in window)
        candidate = bool(
            interval.breach and sum(flags) >= policy.breaches and (last is None or interval.end - last >= cooldown)
        )
        known[interval.end] = not interval.breach or not unsure
        waiting = tuple(unsure) if candidate else ()
        trigger = candidate and not waiting
        if trigger and recorded.get(interval.end, anchor):
            anchors.append(interval.end)
        planned[interval.end] = Planned(interval.end, flags, last, waiting, trigger)
    return planned
