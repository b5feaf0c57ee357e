"""The key reference of a dataset config, printed from the models (config/file.py, config/model.py):
one markdown row per key with its type, default and description, so the docs never restate them."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

from pydantic_core import PydanticUndefined

from driftline.config.file import ConfigFile
from driftline.config.messages import keys, settings_class


def key_rows(cls: type = ConfigFile, section: str = "") -> Iterator[tuple[str, str, str, str, str]]:
    """(section, key, type, default, description) of every key, in model order; sub-tables recurse."""
    for name in keys(cls):
        spec = cls.__pydantic_fields__[name]  # type: ignore[attr-defined]
        table = f"{section}.{name}" if section else name
        nested = settings_class(spec.annotation)
        if nested is not None:
            # a [source] location: a path template or a SQL table ([features] is a dict keyed by str: not one)
            if "str" in str(spec.annotation) and typing.get_origin(spec.annotation) is not dict:
                yield section, table, "str or table", _default(spec), spec.description or ""
            if typing.get_origin(spec.annotation) is dict:  # [features]: one sub-table per column
                yield from key_rows(nested, f"{table}.<column>")
            else:
                yield from key_rows(nested, table)
            continue
        yield section, table, _type(spec.annotation), _default(spec), (spec.description or "").replace("|", "\\|")


def key_reference() -> str:
    """The markdown table of every key (`driftline config-reference` prints it)."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{key}` | {kind} | {default} | {text} |" for _, key, kind, default, text in key_rows()]
    return "\n".join(lines) + "\n"


def _default(spec: Any) -> str:
    extra = spec.json_schema_extra or {}
    if "default" in extra:
        return f"`{extra['default']}`"
    if spec.default is PydanticUndefined and spec.default_factory is None:
        return "required"
    value = spec.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if hasattr(value, "date"):
        return f"`{value.date().isoformat()}`"
    if isinstance(value, tuple):
        value = list(value)
    text = str(value).lower() if isinstance(value, bool) else repr(value)
    return f"`{text}`".replace("|", "\\|")


def _type(annotation: Any) -> str:
    """A short type name a config author reads: str, int, number, bool, list, table, "a" | "b"."""
    text = str(annotation) if not isinstance(annotation, type) else annotation.__name__
    literal = re.findall(r"Literal\[(.*?)\]", text)
    if literal:
        return " \\| ".join(part.strip() for part in literal[0].split(","))
    for pattern, name in (
        (r"\btuple\b|\blist\b", "list"),
        (r"\bdict\b|SqlInput", "table"),
        (r"\bdatetime\b", "date"),
        (r"\bPath\b", "path"),
        (r"\bbool\b", "bool"),
        (r"\bfloat\b", "number"),
        (r"\bint\b", "int"),
        (r"\bstr\b", "str"),
    ):
        if re.search(pattern, text):
            kind = name
            break
    else:
        kind = text
    if "SqlInput" in text and "str" in text:
        kind = "str or table"
    return kind + (" or none" if "None" in text and kind != text else "")


if __name__ == "__main__":  # python -m driftline.config.reference > docs/config-keys.md
    print(key_reference(), end="")
