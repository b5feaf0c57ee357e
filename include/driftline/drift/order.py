"""Drift decisions in data order, pure: which monitored intervals start a retrain, whatever order
they were monitored in.

score_batch runs intervals concurrently, so a backfill publishes (and monitors) them out of order.
The trigger policy is therefore evaluated over the intervals in data order, never arrival order:
the window is the last `window` *known* intervals (those score_batch has started on and not given
up on) ending at or before the decided one, a known interval not monitored yet counts as no breach
(more data can only add breaches, so a "not persistent" is provisional and re-evaluated, never
wrong), and the cooldown counts in data time from the interval end of the previous retrain.

A trigger is the one outcome that cannot be taken back, so it waits ("held") while an earlier
interval within its cooldown is not monitored or its own trigger is not known yet (an unmonitored
interval in its window can only add breaches: it changes a trigger only through the cooldown).
Once every known interval is monitored, the triggers are exactly those of monitoring in order.

The cooldown is symmetric around retrains that happened: no interval ending within `cooldown` of a
recorded trigger that started a retrain (or of a promoted model's training end) triggers, before or
after it. That matters when an earlier interval becomes known late (its scoring started after a
later interval had already triggered): the recorded trigger stands, and the earlier interval does
not add a second retrain within one cooldown. Such a late interval is the one case where the
triggers can differ from those of data order; no two retrains are ever closer than the cooldown.
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
    waiting_for: tuple[datetime, ...]  # ends of earlier intervals that must be known before it triggers
    trigger: bool  # breach, persistent, out of cooldown and not waiting
    next_retrain: datetime | None = None  # a later retrain within the cooldown (symmetric cooldown)

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
    cooldown, on both sides, whatever is planned now; one that started none never does). A planned
    trigger not recorded yet anchors the later intervals: the caller records it (at once, or once the
    retrain DAG can take a run: a hold, never a no).
    """
    recorded = recorded or {}
    ordered = sorted(intervals, key=lambda i: i.end)
    cooldown = timedelta(hours=policy.cooldown_hours)
    happened = sorted({*retrained, *(end for end, started in recorded.items() if started)})
    anchors = list(happened)
    known: dict[datetime, bool] = {}  # end -> whether its trigger outcome can no longer change
    planned: dict[datetime, Planned] = {}
    for position, interval in enumerate(ordered):
        if interval.breach is None:
            known[interval.end] = False
            continue
        window = ordered[max(0, position - policy.window + 1) : position + 1][::-1]
        flags = tuple(bool(i.breach) for i in window)
        last = max((a for a in anchors if a < interval.end), default=None)
        following = min((a for a in happened if a > interval.end), default=None)
        persistent = bool(interval.breach) and sum(flags) >= policy.breaches
        cooled = (last is None or interval.end - last >= cooldown) and (
            following is None or following - interval.end >= cooldown
        )
        # What could still change a trigger: an earlier interval within the cooldown whose own
        # trigger is not known yet (it may start a retrain this one would be in the cooldown of).
        waiting = tuple(
            sorted(i.end for i in ordered[:position] if interval.end - i.end < cooldown and not known[i.end])
        )
        trigger = persistent and cooled and not waiting
        # Final: no breach, a trigger, a cooldown (its anchors are final), or not persistent with
        # every window interval monitored. A recorded trigger is final whatever is planned now.
        known[interval.end] = (
            interval.end in recorded
            or not interval.breach
            or trigger
            or not cooled
            or (not persistent and all(i.breach is not None for i in window))
        )
        if trigger and recorded.get(interval.end, anchor):
            anchors.append(interval.end)
        planned[interval.end] = Planned(
            interval.end,
            flags,
            last,
            waiting if persistent and cooled else (),
            trigger,
            following if following is not None and following - interval.end < cooldown else None,
        )
    return planned
