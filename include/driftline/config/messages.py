"""A pydantic ValidationError of a config file as one ConfigError: the file, the key ('a.b.c'), what is
expected and what was found (a config value, never row data), as a person would write it."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from driftline.config.checks import Whole
from driftline.config.errors import ConfigError

KINDS = {
    "string_type": "str",
    "int_type": "int",
    "float_type": "a number",
    "bool_type": "bool (true or false)",
    "list_type": "list",
    "tuple_type": "list",
    "dict_type": "a table",
    "dataclass_type": "a table",
    "model_type": "a table",
}
BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}


def config_error(path: Path, error: ValidationError, file_class: type) -> ConfigError:
    """The first problem of error as a ConfigError naming path and the key."""
    from driftline.config.file import TAGS

    problem = error.errors(include_url=False)[0]
    loc = [str(part) for part in problem["loc"] if part not in TAGS]
    kind, value = problem["type"], problem.get("input")
    key, table = ".".join(loc), ".".join(loc[:-1])
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    if kind in ("value_error", "assertion_error"):
        cause = problem.get("ctx", {}).get("error")
        text = str(cause) if cause is not None else problem["msg"]
        return ConfigError(f"{path}: {text}" if isinstance(cause, Whole) or not loc else f"{path}: '{key}' {text}")
    if kind in ("missing", "missing_argument"):
        if len(loc) == 1:
            return ConfigError(f"{path}: missing required section '[{key}]'")
        return ConfigError(f"{path}: missing required key '{key}'")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        allowed = ", ".join(sorted(keys(table_class(file_class, loc[:-1]))))
        if len(loc) == 1:
            return ConfigError(f"{path}: unknown section '[{key}]' (allowed: {allowed})")
        return ConfigError(f"{path}: unknown key '{key}' (allowed: {allowed})")
    if kind == "literal_error":
        return ConfigError(f"{path}: '{key}' must be one of {problem['ctx']['expected']}, got {shown}")
    if kind in BOUNDS:
        name, words = BOUNDS[kind]
        return ConfigError(f"{path}: '{key}' must be {words} {problem['ctx'][name]}, got {shown}")
    if kind in KINDS:
        where = f"'{key}'" if table or len(loc) == 1 else f"[{key}]"
        return ConfigError(f"{path}: {where} must be {KINDS[kind]}, got {shown}")
    return ConfigError(f"{path}: '{key}' {problem['msg'].lower()}, got {shown}")


def settings_class(annotation: Any) -> type | None:
    """The settings dataclass a field holds (`Settings`, `Settings | None`, `dict[str, Settings]`,
    an Annotated one), or None for a plain value."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, dict):
        found = [settings_class(arg) for arg in typing.get_args(annotation)]
        return next((cls for cls in found if cls is not None), None)
    return annotation if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) else None


def keys(cls: type | None) -> list[str]:
    """The TOML keys of a settings class: its fields, less those marked json_schema_extra={"key": False}."""
    if cls is None:
        return []
    return [name for name, spec in _fields(cls).items() if (spec.json_schema_extra or {}).get("key", True)]


def table_class(file_class: type, loc: list[str]) -> type | None:
    """The settings class of the table at loc (['drift', 'trigger']; ['features', 'amount'])."""
    cls: type | None = file_class
    for part in loc:
        if cls is None:
            return None
        spec = _fields(cls).get(part)
        if spec is None:  # a [features] column name: the dict's value class
            continue
        cls = settings_class(spec.annotation)
    return cls


def _fields(cls: type) -> dict:
    return getattr(cls, "__pydantic_fields__", {})
