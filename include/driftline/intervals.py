"""Interval bounds as driftline stores and compares them: timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import datetime, timezone

from driftline.errors import BadInput


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
