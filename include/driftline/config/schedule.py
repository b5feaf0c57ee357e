"""[schedule]: the cron, time zone and start date Airflow will serialize, deserialize and step through.

Each value is checked here the way Airflow later uses it (croniter for the cron, the IANA database that
pendulum reads for the time zone, a first run computed from the start date), so a value Airflow cannot
use is one ConfigError naming the file and key at load, never an import or serialization error of a
DAG file that serves every dataset.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from driftline.config.checks import expect
from driftline.config.model import ConfigError

# Start dates Airflow can step through: after the Unix epoch (run ids and timestamps), and early
# enough that a year of cron steps after it stays far from datetime's year 9999.
FIRST_YEAR, LAST_YEAR = 1970, 2199


def schedule_settings(path: Path, table: dict) -> dict[str, Any]:
    """cron, timezone, catchup and start_date of [schedule], each one usable by Airflow's timetable."""
    cron = expect(path, "schedule.cron", table["cron"], str)
    if len(cron.split()) != 5:
        raise ConfigError(f"{path}: 'schedule.cron' must be a 5-field cron expression, got {cron!r}")
    zone = _timezone(path, expect(path, "schedule.timezone", table.get("timezone", "UTC"), str))
    start_date = _start_date(path, table.get("start_date", "2024-01-01"))
    _first_run(path, cron, start_date.astimezone(zone))
    return {
        "cron": cron,
        "timezone": zone.key,
        "catchup": expect(path, "schedule.catchup", table.get("catchup", False), bool),
        "start_date": start_date,
    }


def _timezone(path: Path, name: str):
    """An IANA time zone name (e.g. "Europe/Berlin"): what pendulum, and so Airflow, can deserialize."""
    from zoneinfo import ZoneInfo

    try:
        # ZoneInfo raises ValueError, OSError or ZoneInfoNotFoundError (a KeyError) depending on the name.
        return ZoneInfo(name)
    except Exception as exc:
        raise ConfigError(
            f'{path}: \'schedule.timezone\' is not an IANA time zone name (e.g. "UTC", "Europe/Berlin"): {name[:80]!r}'
        ) from exc


def _start_date(path: Path, value: Any) -> datetime:
    """TOML dates arrive as date/datetime objects, strings are parsed as ISO 8601; naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: 'schedule.start_date' is not an ISO date: {value[:80]!r}") from exc
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ConfigError(f"{path}: 'schedule.start_date' must be a date, got {value!r}")
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        year = value.astimezone(timezone.utc).year
    except OverflowError:
        year = value.year
    if not FIRST_YEAR <= year <= LAST_YEAR or not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ConfigError(f"{path}: 'schedule.start_date' must be in the years {FIRST_YEAR}-{LAST_YEAR}, got {value}")
    return value


def _first_run(path: Path, cron: str, start: datetime) -> None:
    """croniter accepts the expression and it fires at least twice (one interval) after start_date:
    "0 0 31 2 *" parses but never fires, "0 0 * * 8" does not parse."""
    from croniter import croniter

    try:
        steps = croniter(cron, start)
        steps.get_next(datetime)
        steps.get_next(datetime)
    except Exception as exc:  # croniter raises its own errors, ValueError, KeyError or OverflowError
        raise ConfigError(
            f"{path}: 'schedule.cron' = {cron[:80]!r} is not a cron expression that fires "
            f"({type(exc).__name__}); five fields: minute hour day-of-month month day-of-week"
        ) from exc
