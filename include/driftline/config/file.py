"""The TOML file as pydantic v2 models: one section per table, the settings tables of config/model.py,
and the checks across sections. Each model's fields are its allowed keys (unknown keys refused), with
type, default and description in one place; config/load.py turns a valid file into a DatasetConfig."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)
from pydantic.dataclasses import dataclass

import driftline.config.checks as checks
from driftline.config.checks import Whole
from driftline.config.handoff import HandoffSettings
from driftline.config.model import (
    SETTINGS,
    TASK_METRICS,
    AlertSettings,
    Count,
    DriftSettings,
    ExplainSettings,
    Feature,
    Fraction,
    MonitoringSettings,
    Number,
    RetrainingPolicy,
    RootPath,
    Safeguards,
    SourceSettings,
    SqlInput,
)
from driftline.config.names import owned_name
from driftline.config.schedule import ScheduleSection

Column = Annotated[StrictStr, AfterValidator(checks.column)]
# A [source] location: a path / URL template (str), or a PostgreSQL query or table (a TOML table).
Location = Annotated[
    Annotated[StrictStr, Tag("path")] | Annotated[SqlInput, Tag("sql")],
    Discriminator(lambda value: "path" if isinstance(value, str) else "sql"),
]
TAGS = ("path", "sql")  # union tags pydantic puts into an error's location (config/messages.py drops them)


def _positive_label(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise ValueError(
            f'must be the target value of the positive class as text or an integer (e.g. "Yes"), got {value!r}'[:200]
        )
    return str(value).strip()


@dataclass(frozen=True, config=SETTINGS)
class DatasetSection:
    """[dataset]: what one row is and what the model predicts."""

    name: Annotated[StrictStr, AfterValidator(checks.lower_snake_case)] = Field(
        description="lower_snake_case; DAG ids, Asset and tags are named after it"
    )
    entity_key: Column = Field(description="column of the row key")
    event_time: Column = Field(description="column of the event time")
    target: Column = Field(description="column of the label")
    task: Literal["binary", "regression"] = Field("binary", description="binary | regression")
    positive_label: Annotated[str | None, BeforeValidator(_positive_label)] = Field(
        None, description='binary: the target value of the positive class ("Yes"); none: the target is 0/1/bool'
    )


@dataclass(frozen=True, config=SETTINGS, kw_only=True)
class SourceSection(SourceSettings):
    """[source]: where the input, labels and history come from, and how files are read."""

    input: Location = Field(description="interval input: path/URL template ({interval_start:%Y-%m-%d}) or SQL table")
    labels: Location = Field(description="labels: path/URL or SQL table")
    history: Location = Field(description="training history: path/URL or SQL table")
    label_column: Column | None = Field(None, description="the labels' label column (none: named like the target)")

    @model_validator(mode="before")
    @classmethod
    def _name_sql_inputs(cls, table: Any) -> Any:
        """Each SQL table learns its key (for messages); a URL with credentials is refused."""
        if not isinstance(table, dict):
            return table
        table = dict(table)
        for key in ("input", "labels", "history"):
            checks.object_url(key, table.get(key))
            if isinstance(table.get(key), dict):
                if "key" in table[key]:
                    raise Whole(f"unknown key 'source.{key}.key' (allowed: conn_id, event_time, query, table, url)")
                table[key] = {**table[key], "key": key}
        return table

    @property
    def settings(self) -> SourceSettings:
        return SourceSettings(**{spec.name: getattr(self, spec.name) for spec in fields(SourceSettings)})


@dataclass(frozen=True, config=SETTINGS)
class DatabaseSection:
    """[database]: the schema of this dataset's tables (no credentials: the file is committed)."""

    schema: Annotated[StrictStr, AfterValidator(owned_name)] = Field(description="schema of this dataset's tables")
    url: Annotated[StrictStr | None, AfterValidator(checks.no_password)] = Field(
        None, description="postgresql:// URL without password (else $DRIFTLINE_DB_URL, conn_id)"
    )
    conn_id: StrictStr | None = Field(None, description="Airflow connection of the database")
    analyst_role: Annotated[StrictStr | None, AfterValidator(lambda v: v if v is None else owned_name(v))] = Field(
        None, description="read-only role `driftline init-db` creates for analysts"
    )


@dataclass(frozen=True, config=SETTINGS)
class ValidationSection:
    """[validation]: the expectation suite and how much may be quarantined."""

    suite: Annotated[RootPath, BeforeValidator(checks.text)] = Field(description="GE suite (JSON) of the input")
    quarantine_budget: Fraction = Field(description="fail the run when a larger share of rows is quarantined")
    engine: Literal["auto", "great_expectations"] = Field(
        "auto", description="auto: known expectations on Arrow, the rest through GE"
    )


@dataclass(frozen=True, config=SETTINGS)
class ModelSection:
    """[model]: where versions are kept and how LightGBM trains."""

    registry_dir: Annotated[RootPath, BeforeValidator(checks.text)] = Field(description="model versions folder")
    threshold: Number = Field(0.5, description="binary: score at or above = positive class")
    holdout_fraction: Annotated[Number, Field(gt=0.0, lt=1.0)] = Field(0.2, description="share of rows held out")
    num_boost_round: StrictInt = Field(200, description="LightGBM boosting rounds")
    params: dict[str, Any] = Field(default_factory=dict, description="[model.params]: LightGBM parameters")


@dataclass(frozen=True, config=SETTINGS)
class ScoringSection:
    """[scoring]: how an interval is scored."""

    chunk_rows: Count = Field(200_000, description="rows scored per chunk")
    files_per_partition: Annotated[StrictInt, Field(ge=0)] = Field(
        0, description="> 0: an interval with more input files is scored by mapped partitions"
    )
    engine: Literal["compiled", "lightgbm"] = Field(
        "compiled", description="compiled: trees compiled to native code (lleaves); lightgbm: Booster.predict"
    )


def _features(table: Any) -> Any:
    """{column: sub-table} with each sub-table told its column name; `<column> = "numeric"` is shorthand."""
    if not isinstance(table, dict):
        return table
    if not table:
        raise Whole("'[features]' must list at least one feature column")
    named = {}
    for name, spec in table.items():
        checks.model_feature_name(name)
        spec = {"type": spec} if isinstance(spec, str) else spec
        if isinstance(spec, dict) and "name" in spec:
            raise Whole(f"unknown key 'features.{name}.name' (allowed: categories, max, min, nullable, type)")
        named[name] = {**spec, "name": name} if isinstance(spec, dict) else spec
    return named


@dataclass(frozen=True, config=SETTINGS, kw_only=True)
class ConfigFile:
    """One dataset config file: its [sections] and the checks that span them."""

    dataset: DatasetSection
    features: Annotated[dict[str, Feature], BeforeValidator(_features)] = Field(
        description="one sub-table per model feature column"
    )
    source: SourceSection
    schedule: ScheduleSection
    database: DatabaseSection
    validation: ValidationSection
    model: ModelSection
    drift: DriftSettings
    scoring: ScoringSection = Field(default_factory=ScoringSection)
    retraining: RetrainingPolicy = Field(default_factory=RetrainingPolicy)
    safeguards: Safeguards = Field(default_factory=Safeguards)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    explain: ExplainSettings | None = Field(None, description="none: no reasons are computed")
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_other_sections(cls, raw: Any) -> Any:
        """Defaults that depend on another section: the task's first metric, the reference beside the models."""
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        dataset, model, drift = (raw.get(name) for name in ("dataset", "model", "drift"))
        task = dataset.get("task", "binary") if isinstance(dataset, dict) else None
        retraining = raw.get("retraining", {})
        if task in TASK_METRICS and isinstance(retraining, dict) and "metric" not in retraining:
            raw["retraining"] = {**retraining, "metric": TASK_METRICS[task][0]}
        if isinstance(drift, dict) and "reference_dir" not in drift and isinstance(model, dict):
            registry = model.get("registry_dir")
            if isinstance(registry, str):
                raw["drift"] = {**drift, "reference_dir": f"{registry}/reference"}
        safeguards = raw.get("safeguards", {})
        if task != "binary" and isinstance(safeguards, dict):  # the majority rule is a binary one
            raw["safeguards"] = {**safeguards, "max_majority_share": None}
        return raw

    @model_validator(mode="after")
    def _across_sections(self) -> ConfigFile:
        _across_sections(self)
        return self

    @property
    def label_column(self) -> str:
        return self.source.label_column or self.dataset.target


def _across_sections(file: Any) -> None:
    """The checks of a ConfigFile that read more than one section."""
    dataset, task = file.dataset, file.dataset.task
    if dataset.positive_label is not None and task != "binary":
        raise Whole(f"'dataset.positive_label' applies to binary targets; dataset.task is {task!r}")
    if file.label_column in (dataset.entity_key, "observed_at"):
        raise Whole(
            f"'source.label_column' is {file.label_column!r}, which the labels file uses for the "
            "entity key or observed_at; name the column that holds the label"
        )
    names = [dataset.entity_key, dataset.event_time, dataset.target, *file.features]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Whole(f"column(s) {duplicates} used twice across dataset.entity_key/event_time/target and [features]")
    policy = file.retraining
    if policy.metric not in TASK_METRICS[task]:
        raise Whole(f"'retraining.metric' must be one of {TASK_METRICS[task]} for task {task!r}, got {policy.metric!r}")
    types = {name: feature.type for name, feature in file.features.items()}
    categorical = [name for name, kind in types.items() if kind == "categorical"]
    if policy.segment is not None and policy.segment not in categorical:
        raise Whole(f"'retraining.segment' must name a categorical feature {categorical}, got {policy.segment!r}")
    if file.safeguards.score_range is not None and task == "binary":
        raise Whole("'safeguards.score_range' applies to regression; binary scores are always [0, 1]")
    for name in file.monitoring.segments:
        if name not in types:
            raise Whole(f"'monitoring.segments' lists {name!r}, which is not a feature (features: {', '.join(types)})")
        if types[name] != "categorical":
            raise Whole(f"'monitoring.segments' lists {name!r}, a {types[name]} feature: segments must be categorical")
