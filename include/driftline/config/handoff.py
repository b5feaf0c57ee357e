"""[handoff]: what `driftline import-model` trusts in a model trained elsewhere (driftline.handoff)."""

from __future__ import annotations

import re
from pathlib import Path

from driftline.config.checks import expect
from driftline.config.model import ConfigError, HandoffSettings

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _entries(path: Path, table: dict, key: str, pattern: re.Pattern, what: str) -> list[str]:
    values = expect(path, f"handoff.{key}", table.get(key, []), list)
    for value in values:
        if not isinstance(value, str) or not pattern.match(value):
            raise ConfigError(f"{path}: 'handoff.{key}' entries are {what}, got {value!r}")
    return values


def handoff_settings(path: Path, table: dict) -> HandoffSettings:
    """[handoff] is optional; every value is checked here so import-model never meets a bad one."""
    trusted = _entries(
        path, table, "trusted_types", _TYPE_NAME, "full type names such as 'mypackage.features.AddRatio'"
    )
    pinned = _entries(
        path, table, "pickle_sha256", _SHA256, "lower-case hex sha256 digests (64 characters, `sha256sum model.pkl`)"
    )
    tolerance = float(
        expect(
            path,
            "handoff.parity_tolerance",
            table.get("parity_tolerance", HandoffSettings.parity_tolerance),
            (int, float),
        )
    )
    if not 0.0 <= tolerance < 1.0:
        raise ConfigError(f"{path}: 'handoff.parity_tolerance' must be in [0, 1), got {tolerance}")
    optional = {}
    for key in ("mlflow_tracking_uri", "mlflow_register_as"):
        optional[key] = expect(path, f"handoff.{key}", table.get(key), (str, type(None))) or None
    alias = expect(path, "handoff.mlflow_alias", table.get("mlflow_alias", HandoffSettings.mlflow_alias), str)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", alias):
        raise ConfigError(f"{path}: 'handoff.mlflow_alias' must be an MLflow alias name, got {alias!r}")
    return HandoffSettings(
        trusted_types=tuple(trusted),
        pickle_sha256=tuple(pinned),
        parity_tolerance=tolerance,
        mlflow_alias=alias,
        **optional,
    )
