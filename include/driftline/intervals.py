"""Interval bounds as driftline stores and compares them: timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import overload

from driftline.errors import BadInput


@overload
def utc(moment: datetime) -> datetime: ...
@overload
def utc(moment: datetime | str | None) -> datetime | None: ...


def utc(moment: datetime | str | None) -> datetime | None:
    """moment in UTC: a naive datetime is taken as UTC, ISO 8601 text (a trailing Z too) is parsed;
    None or empty text gives None. Text that is not ISO 8601 raises BadInput."""
    if moment is None or moment == "":
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadInput(f"not an ISO 8601 date or time: {moment!r}") from exc
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def requested_interval(cron: str, zone: str, start, end) -> tuple[datetime, datetime] | None:
    """The interval a run's conf asks for (Params `interval_start` / `interval_end`, ISO 8601), or None
    when neither is given. Both or neither; the pair must be one interval of the schedule (cron in
    zone): a start the cron fires at and the next firing as end. Anything else is BadConfig naming
    the keys and, when the start is usable, the interval to pass instead."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from croniter import croniter

    from driftline.errors import BadConfig

    given = [value not in (None, "") for value in (start, end)]
    if not any(given):
        return None
    if not all(given):
        raise BadConfig("conf 'interval_start' and 'interval_end' go together: give both (ISO 8601) or neither")
    try:
        first, last = utc(start), utc(end)
    except BadInput as exc:
        raise BadConfig(f"conf 'interval_start' / 'interval_end': {exc}") from None
    # The first firing at or after the requested start, and the one after it (croniter counts in minutes).
    steps = croniter(cron, first.astimezone(ZoneInfo(zone)) - timedelta(seconds=1))
    expected = (utc(steps.get_next(datetime)), utc(steps.get_next(datetime)))
    if (first, last) != expected:
        raise BadConfig(
            f"conf interval [{first.isoformat()}, {last.isoformat()}) is not one interval of schedule.cron "
            f"{cron!r} ({zone}): the interval starting at or after its start is "
            f"[{expected[0].isoformat()}, {expected[1].isoformat()}); pass those bounds as interval_start / interval_end"
        )
    return first, last
