"""[handoff]: what `driftline import-model` trusts in a model trained elsewhere (driftline.handoff).
Keys, types, defaults and checks in one place, like the other sections (config/model.py)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StrictFloat, StrictStr
from pydantic.dataclasses import dataclass

from driftline.config.model import SETTINGS, Count

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# An MLflow registered model name driftline writes back under; it goes into a search filter as a quoted
# literal (handoff/mlflow_source.py), so no quotes or backslashes.
_REGISTERED_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_. -]{0,255}$")


def _entries(pattern: re.Pattern, what: str) -> AfterValidator:
    """A list whose every entry matches pattern; the message says what an entry is."""

    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not pattern.match(value):
                raise ValueError(f"entries are {what}, got {value[:80]!r}")
        return values

    return AfterValidator(check)


def _tolerance(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"must be in [0, 1), got {value}")
    return value


def _alias(value: str) -> str:
    if not _ALIAS.match(value):
        raise ValueError(f"must be an MLflow alias name (letters, digits, _ and -), got {value[:80]!r}")
    return value


def _registered_name(value: str | None) -> str | None:
    if value is not None and not _REGISTERED_NAME.match(value):
        raise ValueError(
            "must be an MLflow registered model name (letters, digits, _, ., - and spaces; no quotes), "
            f"got {value[:80]!r}"
        )
    return value


Optional = Annotated[StrictStr | None, AfterValidator(lambda value: value or None)]  # "" is not set


@dataclass(frozen=True, config=SETTINGS)
class HandoffSettings:
    """[handoff]: how `driftline import-model` accepts a model trained elsewhere."""

    trusted_types: Annotated[
        tuple[StrictStr, ...], _entries(_TYPE_NAME, "full type names such as 'mypackage.features.AddRatio'")
    ] = Field(default=(), description="skops types trusted beyond driftline's own list (registry/model_objects.py)")
    pickle_sha256: Annotated[
        tuple[StrictStr, ...],
        _entries(_SHA256, "lower-case hex sha256 digests (64 characters, `sha256sum model.pkl`)"),
    ] = Field(default=(), description="pickle/joblib files accepted, by sha256; every other pickle is refused")
    parity_tolerance: Annotated[StrictFloat, AfterValidator(_tolerance)] = Field(
        default=1e-6, description="max |driftline's score - the notebook's| on any row of the parity sample"
    )
    parity_min_rows: Count = Field(
        default=100,
        description="fewest notebook rows the parity gate must compare (a handful of rows proves little)",
    )
    mlflow_tracking_uri: Optional = Field(
        default=None, description="MLflow tracking server (none: $MLFLOW_TRACKING_URI)"
    )
    mlflow_register_as: Annotated[Optional, AfterValidator(_registered_name)] = Field(
        default=None,
        description="registered model name retrained candidates are written back under (none: no write-back)",
    )
    mlflow_alias: Annotated[StrictStr, AfterValidator(_alias)] = Field(
        default="champion", description="MLflow alias moved to the version driftline promotes"
    )
