"""[schedule]: the cron, time zone and start date Airflow will serialize, deserialize and step through.

Each value is checked here the way Airflow later uses it (croniter for the cron, the IANA database that
pendulum reads for the time zone, a first run computed from the start date), so a value Airflow cannot
use is one ConfigError naming the file and key at load, never an import or serialization error of a
DAG file that serves every dataset.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StrictBool, StrictStr, field_validator, model_validator
from pydantic.dataclasses import dataclass

from driftline.config.checks import Whole
from driftline.config.model import SETTINGS

# Start dates Airflow can step through: after the Unix epoch (run ids and timestamps), and early
# enough that a year of cron steps after it stays far from datetime's year 9999.
FIRST_YEAR, LAST_YEAR = 1970, 2199
DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _start_date(value: Any) -> datetime:
    """TOML dates arrive as date/datetime objects, strings are parsed as ISO 8601; naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"is not an ISO date: {value[:80]!r}") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ValueError(f"must be a date, got {value!r}"[:200])
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        year = value.astimezone(timezone.utc).year
    except OverflowError:
        year = value.year
    if not FIRST_YEAR <= year <= LAST_YEAR or not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be in the years {FIRST_YEAR}-{LAST_YEAR}, got {value}")
    return value


@dataclass(frozen=True, config=SETTINGS)
class ScheduleSection:
    """[schedule]: the data intervals Airflow steps through."""

    cron: StrictStr = Field(description="5-field cron expression of the data intervals")
    timezone: StrictStr = Field("UTC", description='IANA time zone of the cron (e.g. "Europe/Berlin")')
    catchup: StrictBool = Field(False, description="Airflow catchup: run every missed interval since start_date")
    start_date: Annotated[datetime, BeforeValidator(_start_date)] = Field(
        DEFAULT_START, description="first interval start (a TOML date; naive = UTC)"
    )

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, cron: str) -> str:
        if len(cron.split()) != 5:
            raise ValueError(f"must be a 5-field cron expression, got {cron[:80]!r}")
        return cron

    @field_validator("timezone")
    @classmethod
    def _iana(cls, name: str) -> str:
        """An IANA time zone name: what pendulum, and so Airflow, can deserialize."""
        from zoneinfo import ZoneInfo

        try:
            # ZoneInfo raises ValueError, OSError or ZoneInfoNotFoundError (a KeyError) depending on the name.
            return ZoneInfo(name).key
        except Exception:
            raise ValueError(f'is not an IANA time zone name (e.g. "UTC", "Europe/Berlin"): {name[:80]!r}') from None

    @model_validator(mode="after")
    def _first_run(self) -> ScheduleSection:
        """croniter accepts the expression and it fires at least twice (one interval) after start_date:
        "0 0 31 2 *" parses but never fires, "0 0 * * 8" does not parse."""
        from zoneinfo import ZoneInfo

        from croniter import croniter

        try:
            steps = croniter(self.cron, self.start_date.astimezone(ZoneInfo(self.timezone)))
            steps.get_next(datetime)
            steps.get_next(datetime)
        except Exception as exc:  # croniter raises its own errors, ValueError, KeyError or OverflowError
            raise Whole(
                f"'schedule.cron' = {self.cron[:80]!r} is not a cron expression that fires "
                f"({type(exc).__name__}); five fields: minute hour day-of-month month day-of-week"
            ) from None
        return self
