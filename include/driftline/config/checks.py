"""Which TOML keys each section allows (derived from the dataclass fields) and the value checks
every section parser uses. Unknown keys are errors, so a typo never silently falls back to a default."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

from driftline.config.model import ConfigError, DatasetConfig


def settings_keys(cls: type) -> tuple[set[str], set[str]]:
    """(required, optional) keys of a settings table: the dataclass's field names; a field without
    a default is required unless its metadata says otherwise, metadata key None is not a key."""
    required: set[str] = set()
    optional: set[str] = set()
    for spec in fields(cls):
        key = spec.metadata.get("key", spec.name)
        if key is None:
            continue
        needed = spec.metadata.get("required", spec.default is MISSING and spec.default_factory is MISSING)
        (required if needed else optional).add(key)
    return required, optional


def _settings_class(annotation: Any) -> type | None:
    """The settings dataclass of a field typed `Settings` or `Settings | None` (not tuple[Feature, ...])."""
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    for candidate in (annotation, *(typing.get_args(annotation) if optional else ())):
        if isinstance(candidate, type) and is_dataclass(candidate):
            return candidate
    return None


def _sections() -> tuple[dict[str, tuple[set[str], set[str]]], set[str]]:
    """Allowed keys per section ({section: (required, optional)}) and the required sections, read off
    DatasetConfig's field metadata. [features] is free-form (one sub-table per column: Feature)."""
    hints = typing.get_type_hints(DatasetConfig)
    sections: dict[str, tuple[set[str], set[str]]] = {}
    required_sections: set[str] = set()
    for spec in fields(DatasetConfig):
        if "section" not in spec.metadata:
            continue  # path, root: not from the file
        section, key = spec.metadata["section"], spec.metadata["key"]
        required, optional = sections.setdefault(section, (set(), set()))
        settings = _settings_class(hints[spec.name]) if key is None else None
        if settings is not None:
            table_required, table_optional = settings_keys(settings)
            required |= table_required
            optional |= table_optional
        elif key is not None:
            (required if spec.metadata["required"] else optional).add(key)
        if spec.metadata["required"] or required:
            required_sections.add(section)
    return sections, required_sections


SECTIONS, REQUIRED_SECTIONS = _sections()


def check_keys(path: Path, where: str, table: dict, required: set[str], optional: set[str]) -> None:
    for key in table:
        if key not in required | optional:
            allowed = ", ".join(sorted(required | optional))
            raise ConfigError(f"{path}: unknown key '{where}.{key}' (allowed: {allowed})")
    for key in sorted(required):
        if key not in table:
            raise ConfigError(f"{path}: missing required key '{where}.{key}'")


def expect(path: Path, where: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; `threshold = true` must not pass as a number.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"{path}: '{where}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def non_negative(path: Path, where: str, value: Any) -> int:
    if expect(path, where, value, int) < 0:
        raise ConfigError(f"{path}: '{where}' must be >= 0, got {value}")
    return value


def choice(path: Path, where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{path}: '{where}' must be one of {allowed}, got {value!r}")
    return value


def column(path: Path, where: str, value: Any) -> str:
    expect(path, where, value, str)
    if not value.strip():
        raise ConfigError(f"{path}: '{where}' must name a column")
    return value


# A day short of a year: long enough for any wait or window driftline has, short enough that Airflow's
# timedelta arithmetic (interval + hours, max 999,999,999 days) can never overflow.
MAX_HOURS = 365 * 24
MAX_DAYS = 100 * 365  # look-back windows in days: a century of data is past any real one


def hours(path: Path, where: str, value: Any, minimum: float = 0.0, exclusive: bool = True) -> float:
    """A duration in hours that Airflow turns into a timedelta: a finite number in (minimum, MAX_HOURS]."""
    value = float(expect(path, where, value, (int, float)))
    low_ok = value > minimum if exclusive else value >= minimum
    if not (low_ok and value <= MAX_HOURS):
        bound = ">" if exclusive else ">="
        raise ConfigError(f"{path}: '{where}' must be {bound} {minimum:g} and <= {MAX_HOURS} hours, got {value}")
    return value


def plain_numbers(path: Path, table: dict, where: str = "") -> None:
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
