"""Value checks the config models run (pydantic validators): each takes a value and returns it (or
its normal form) or raises ValueError saying what is expected. `Whole` is a message that already
names its key; any other ValueError is prefixed with the key it was raised for (config/messages.py)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pydantic import AfterValidator

from driftline.config.errors import ConfigError

# A day short of a year: long enough for any wait or window driftline has, short enough that Airflow's
# timedelta arithmetic (interval + hours, max 999,999,999 days) can never overflow.
MAX_HOURS = 365 * 24
MAX_DAYS = 100 * 365  # look-back windows in days: a century of data is past any real one
MAX_TOP_N = 1000  # segment values kept per feature; more is a 20 MB trends page, not monitoring
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Whole(ConfigError, ValueError):
    """A check's message that names its keys itself ("'a.b' cannot exceed 'a.c'"). A ValueError too:
    pydantic turns only ValueError/AssertionError raised in a validator into a validation error."""


def column(value: str) -> str:
    if not value.strip():
        raise ValueError("must name a column")
    return value


def lower_snake_case(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"must be lower_snake_case (got {value[:80]!r})")
    return value


def no_password(value: str | None) -> str | None:
    """A URL may name a server, never hold its password: config files are committed."""
    from driftline.secrets import has_password

    if value is not None and has_password(value):
        raise ValueError(
            "contains a password; config files are committed, so put the URL in $DRIFTLINE_DB_URL or use "
            "'conn_id' (an Airflow connection) instead"
        )
    return value


def not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("is empty; name an Airflow connection or leave it out")
    return value


def encoding(value: str) -> str:
    """A codec name Python knows that writes ASCII as ASCII: records are split at newline bytes before decoding."""
    import codecs

    try:
        name = codecs.lookup(value).name
    except LookupError:
        raise ValueError(f'names no known encoding: {value[:80]!r} (e.g. "utf-8", "latin-1")') from None
    try:
        ascii_compatible = bytes(range(128)).decode(name) == "".join(map(chr, range(128)))
    except (UnicodeDecodeError, ValueError):
        ascii_compatible = False
    if not ascii_compatible:
        raise ValueError(
            f"= {value[:80]!r} is not ASCII-compatible (UTF-16/32 and the like are not supported); re-export the "
            "files as UTF-8"
        )
    return "utf-8" if name in ("utf-8", "utf-8-sig") else name


def null_values(value: Any) -> Any:
    if isinstance(value, list) and not all(isinstance(token, str) and token for token in value):
        raise ValueError("must be a list of non-empty strings (the empty cell is always missing)")
    return value


def off_when_false(value: Any) -> Any:
    """`min_score_std_ratio = false` turns a rule off (None)."""
    return None if value is False else value


def pair(value: Any) -> Any:
    """[low, high] numbers, or [] for off (None)."""
    if value is None or value == []:
        return None
    if isinstance(value, list):
        if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ValueError(f"must be [low, high] numbers, got {value!r}"[:200])
        if value[0] > value[1]:
            raise ValueError(f"low must not exceed high, got {value!r}")
        return float(value[0]), float(value[1])
    return value


def emails(value: Any) -> Any:
    if isinstance(value, list) and not all(isinstance(address, str) and "@" in address for address in value):
        raise ValueError("must be a list of e-mail addresses")
    return value


def categories(value: Any) -> Any:
    return [str(c) for c in value] if isinstance(value, list) else value


# LightGBM stores feature names in its text model and JSON dump and refuses names with JSON special
# characters ("Do not support special JSON characters in feature name"); a line break or other
# control character breaks the text model's one-line feature list. Checked at config load, so
# `driftline train` never gets that far with a column the model cannot take.
LIGHTGBM_REFUSED = set('",:[]{}')


def model_feature_name(name: str) -> str:
    refused = sorted({c for c in name if c in LIGHTGBM_REFUSED or ord(c) < 32 or ord(c) == 127})
    if not name.strip() or refused:
        what = "is blank" if not name.strip() else f"contains {' '.join(repr(c) for c in refused)}"
        raise Whole(
            f"feature name {name!r} in [features] {what}: LightGBM cannot store it in a model "
            '(it refuses the JSON special characters " , : [ ] { } and control characters). Rename the '
            "column in the export (and in [features]) to one without them."
        )
    return name


def object_url(key: str, value: Any) -> None:
    """An object storage URL with user info (s3://key:secret@bucket/...) is refused: credentials live in
    the Airflow connection 'source.storage_conn_id' names."""
    from urllib.parse import urlsplit

    if isinstance(value, str) and "://" in value and "@" in urlsplit(value).netloc:
        raise Whole(
            f"'source.{key}' carries credentials or a connection in its URL (user info before '@'); "
            "config files are committed: put the credentials in an Airflow connection and name it in "
            "'source.storage_conn_id'"
        )


def plain_numbers(path: Path, table: Any, where: str = "") -> None:
    """Refuse nan, inf and integers past 64 bits anywhere in the file: TOML allows them, no setting
    means them, and they overflow the timedelta, numpy and LightGBM values they end up in."""
    items = table.items() if isinstance(table, dict) else enumerate(table)
    for key, value in items:
        name = f"{where}.{key}" if where and isinstance(key, str) else (f"{where}[{key}]" if where else str(key))
        if isinstance(value, (dict, list)):
            plain_numbers(path, value, name)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: '{name}' must be a finite number, got {value}")
        elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise ConfigError(f"{path}: '{name}' is outside the 64-bit integer range")


def text(value: Any) -> Any:
    """A path key must be a string before it is joined to the project root."""
    if not isinstance(value, (str, Path)):
        raise ValueError(f"must be str, got {value!r}"[:200])
    return value


def sql_input(source: Any) -> None:
    """[source] input (or history, labels) as a table: a PostgreSQL query or table (sources/sql.py);
    input selects one interval, history and labels are read whole."""
    where = f"source.{source.key}"
    if (source.conn_id is None) == (source.url is None):
        raise Whole(
            f"'{where}' needs exactly one of 'conn_id' (an Airflow connection to the database) or 'url' "
            "(postgresql://host/db, no password)"
        )
    if (source.query is None) == (source.table is None):
        raise Whole(f"'{where}' needs exactly one of 'query' or 'table'")
    interval = source.key == "input"
    placeholders = set(re.findall(r"%\((\w+)\)s", source.query or ""))
    if source.table is not None:
        parts = source.table.split(".")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise Whole(f'\'{where}.table\' must be "table" or "schema.table", got {source.table[:80]!r}')
        if interval and source.event_time is None:
            raise Whole(f"'{where}' with 'table' needs 'event_time' naming its event-time column")
    elif source.event_time is not None:
        raise Whole(f"'{where}.event_time' goes with 'table'; a 'query' selects its rows itself")
    elif interval and (not placeholders or placeholders - {"interval_start", "interval_end"}):
        raise Whole(
            f"'{where}.query' must select one interval with %(interval_start)s and %(interval_end)s "
            f"(the only placeholders), got {sorted(placeholders) or 'none'}"
        )
    elif not interval and placeholders:
        raise Whole(f"'{where}.query' is read whole and takes no placeholder, got {sorted(placeholders)}")


def within(low: float, high: float, low_open: bool = False) -> Any:
    """A validator of a number in [low, high] ((low, high] when low_open), saying so when it is not."""

    def check(value: float) -> float:
        if value < low or value > high or (low_open and value == low):
            what = (
                "a fraction in [0, 1]"
                if (low, high, low_open) == (0, 1, False)
                else f"in {'(' if low_open else '['}{low:g}, {high:g}]"
            )
            raise ValueError(f"must be {what}, got {value}")
        return value

    return AfterValidator(check)
