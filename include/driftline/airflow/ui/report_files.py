"""Drift report ids (one monitored interval each) and the checked path of a report file."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

# A report is one monitored interval: drift_intervals' primary key (interval_start, interval_end).
_REPORT_ID = re.compile(r"^(\d{8}T\d{6}Z)--(\d{8}T\d{6}Z)$")
_ID_TIME = "%Y%m%dT%H%M%SZ"


def report_id(interval_start: datetime, interval_end: datetime) -> str:
    """The URL id of the drift report of one interval (UTC, second precision)."""
    return f"{as_utc(interval_start):{_ID_TIME}}--{as_utc(interval_end):{_ID_TIME}}"


def parse_report_id(value: str) -> tuple[datetime, datetime] | None:
    """(interval_start, interval_end) of a report id, or None when it is not one."""
    match = _REPORT_ID.match(value)
    if not match:
        return None
    try:
        start, end = (datetime.strptime(part, _ID_TIME).replace(tzinfo=timezone.utc) for part in match.groups())
    except ValueError:
        return None
    return start, end


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def safe_report_file(stored_path: str, reports_dir: Path) -> Path | None:
    """The report file if it is an existing .html file inside reports_dir (symlinks resolved), else None."""
    try:
        path = Path(stored_path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not path.is_relative_to(reports_dir.resolve()) or path.suffix != ".html" or not path.is_file():
        return None
    return path
