"""DatasetConfig: the validated config of one dataset, as every module of the package reads it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from driftline.config.errors import ConfigError
from driftline.config.handoff import HandoffSettings
from driftline.config.model import (
    AlertSettings,
    DriftSettings,
    ExplainSettings,
    Feature,
    MonitoringSettings,
    RetrainingPolicy,
    Safeguards,
    SourceSettings,
    SqlInput,
    SqlInterval,
)


def toml(section: str, key: str | None = None) -> dict:
    """Field metadata: the field is [section] key of the file (key None: the whole section)."""
    return {"section": section, "key": key}


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset's config file, validated, as the package reads it (flat: config.db_schema, config.drift).

    config/load.py builds it from the file's models (config/file.py): each field names the [section]
    and key it is read from; keys, types and defaults are the sections' own, never repeated here.
    """

    path: Path
    root: Path
    name: str = field(metadata=toml("dataset", "name"))
    task: str = field(metadata=toml("dataset", "task"))
    entity_key: str = field(metadata=toml("dataset", "entity_key"))
    event_time: str = field(metadata=toml("dataset", "event_time"))
    target: str = field(metadata=toml("dataset", "target"))
    features: tuple[Feature, ...] = field(metadata=toml("features"))
    input_uri: str | SqlInput = field(metadata=toml("source", "input"))
    labels_uri: str | SqlInput = field(metadata=toml("source", "labels"))
    history_uri: str | SqlInput = field(metadata=toml("source", "history"))
    cron: str = field(metadata=toml("schedule", "cron"))
    timezone: str = field(metadata=toml("schedule", "timezone"))
    catchup: bool = field(metadata=toml("schedule", "catchup"))
    start_date: datetime = field(metadata=toml("schedule", "start_date"))
    db_url: str | None = field(metadata=toml("database", "url"))
    db_conn_id: str | None = field(metadata=toml("database", "conn_id"))
    db_schema: str = field(metadata=toml("database", "schema"))
    suite_path: Path = field(metadata=toml("validation", "suite"))
    quarantine_budget: float = field(metadata=toml("validation", "quarantine_budget"))
    validation_engine: str = field(metadata=toml("validation", "engine"))
    registry_dir: Path = field(metadata=toml("model", "registry_dir"))
    threshold: float = field(metadata=toml("model", "threshold"))
    holdout_fraction: float = field(metadata=toml("model", "holdout_fraction"))
    lightgbm_params: dict[str, Any] = field(metadata=toml("model", "params"))
    # read-only role `driftline init-db` creates for analysts
    analyst_role: str | None = field(metadata=toml("database", "analyst_role"))
    num_boost_round: int = field(metadata=toml("model", "num_boost_round"))
    chunk_rows: int = field(metadata=toml("scoring", "chunk_rows"))
    # > 0: an interval with more input files is scored by mapped partitions
    files_per_partition: int = field(metadata=toml("scoring", "files_per_partition"))
    scoring_engine: str = field(metadata=toml("scoring", "engine"))
    retraining: RetrainingPolicy = field(metadata=toml("retraining"))
    safeguards: Safeguards = field(metadata=toml("safeguards"))
    alerts: AlertSettings = field(metadata=toml("alerts"))
    # None: no reasons are computed ([explain] absent)
    explain: ExplainSettings | None = field(metadata=toml("explain"))
    monitoring: MonitoringSettings = field(metadata=toml("monitoring"))
    drift: DriftSettings = field(metadata=toml("drift"))
    # binary: the target value that means the positive class ("Yes"); None: the target is 0/1/bool.
    positive_label: str | None = field(metadata=toml("dataset", "positive_label"))
    source: SourceSettings = field(metadata=toml("source", "settings"))
    # the labels file's label column; None: named like the target
    label_column: str | None = field(metadata=toml("source", "label_column"))
    # [handoff]: what `driftline import-model` trusts (config/handoff.py)
    handoff: HandoffSettings = field(metadata=toml("handoff"))

    @property
    def labels_target_column(self) -> str:
        """The column of [source] labels that holds the label ([source] label_column, else the target's name)."""
        return self.label_column or self.target

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.type == "categorical"]

    @property
    def input_columns(self) -> list[str]:
        """Columns every interval input must carry (key, event time, features)."""
        return [self.entity_key, self.event_time, *self.feature_names]

    def input_location(self, interval_start: datetime, interval_end: datetime) -> str | SqlInterval:
        """The input URI for one data interval, relative paths resolved against the project root
        (a SqlInterval when [source] input is a query or table)."""
        if isinstance(self.input_uri, SqlInput):
            return SqlInterval(self.input_uri, interval_start, interval_end)
        try:
            rendered = self.input_uri.format(interval_start=interval_start, interval_end=interval_end)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{self.path}: [source] input template {self.input_uri!r} cannot be rendered: {exc}. "
                "Use {interval_start:%Y-%m-%d} / {interval_end:...} placeholders."
            ) from exc
        return self.resolve_location(rendered)

    def resolve_location(self, location: str | SqlInput) -> str | SqlInput:
        if isinstance(location, SqlInput):
            return location
        if "://" in location or os.path.isabs(location):
            return location
        return str(self.root / location)
