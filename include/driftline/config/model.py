"""The dataset config as typed dataclasses, and where each field comes from in the TOML file.

A field of a settings dataclass is the TOML key of the same name; DatasetConfig's fields say their
[section] and key in their metadata (`toml`). config/checks.py derives the allowed keys from these.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from driftline.errors import BadConfig

FEATURE_TYPES = ("numeric", "categorical")
# auto: row-level expectation types driftline knows run vectorized on Arrow, the rest through GE;
# great_expectations: every expectation through GE (slower; the reference the tests compare with).
VALIDATION_ENGINES = ("auto", "great_expectations")
TASK_TYPES = ("binary", "regression")
# auto: retrain_model promotes a candidate that passes every guardrail; manual: it then waits for a
# person to approve or reject it in the Airflow UI (human-in-the-loop ApprovalOperator).
PROMOTION_MODES = ("auto", "manual")
# compiled: the LightGBM trees compiled to native code (lleaves), ~5x faster, scores equal within
# 1e-9, falls back to lightgbm with a warning when compiling fails; lightgbm: Booster.predict.
SCORING_ENGINES = ("compiled", "lightgbm")
# Evidently drift methods accepted per column type. Prediction drift is compared with a "greater or
# equal" threshold, so it only takes distance methods (a p-value shrinks as drift grows).
NUMERIC_DRIFT_METHODS = (
    "ks",
    "wasserstein",
    "psi",
    "jensenshannon",
    "kl_div",
    "hellinger",
    "anderson",
    "cramer_von_mises",
    "mannw",
    "t_test",
    "ed",
)
CATEGORICAL_DRIFT_METHODS = ("chisquare", "z", "jensenshannon", "psi", "kl_div", "hellinger", "g_test")
PREDICTION_DRIFT_METHODS = ("wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "ed")
ESTIMATED_METRICS = ("auc", "accuracy", "precision", "recall", "f1")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ConfigError(BadConfig):
    """A dataset config that cannot be used; the message names the file and the key."""


def toml(section: str, key: str | None = None, required: bool = False) -> dict:
    """Field metadata: the field is [section] key of the TOML file (key None: the whole section,
    whose keys are the fields of the field's settings dataclass)."""
    return {"section": section, "key": key, "required": required}


@dataclass(frozen=True)
class Feature:
    """One [features] column; the other fields are the keys of its sub-table."""

    name: str = field(metadata={"key": None})  # the sub-table's name, not a key in it
    type: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None


METRIC_DIRECTIONS = {"auc": "higher", "accuracy": "higher", "log_loss": "lower", "rmse": "lower", "mae": "lower"}
TASK_METRICS = {"binary": ("auc", "log_loss", "accuracy"), "regression": ("rmse", "mae")}


@dataclass(frozen=True)
class RetrainingPolicy:
    """[retraining]: training window, promotion guardrails, retention and shadow scoring."""

    training_days: int = 30
    min_training_rows: int = 1000
    metric: str = "auc"
    min_metric: float | None = None
    min_improvement: float = 0.0
    max_regression: float = 0.01
    segment: str | None = None
    min_segment_rows: int = 200
    # Fewer labelled rows unseen by both candidate and champion: rejected. Scaled to small data:
    # min(this, max(30, holdout_fraction x window rows / 2)) (retraining.windows.required_holdout_rows).
    min_holdout_rows: int = 200
    keep_versions: int = 5
    shadow: bool = False
    realized_lookback_days: int = 30
    promotion: str = "auto"  # auto | manual (a person approves in the Airflow UI)
    approval_timeout_hours: float = 72.0  # manual: no answer by then = rejected


@dataclass(frozen=True)
class Safeguards:
    """[safeguards]: what score_batch does when the model or its output cannot be trusted."""

    fallback: bool = True  # champion unloadable -> score with the newest earlier champion that loads
    min_score_std_ratio: float | None = 0.25  # scores' std below this x the model's reference std: collapsed
    max_majority_share: float | None = None  # binary: one predicted class above this share: collapsed (off)
    min_rows_for_distribution_check: int = 500  # fewer scored rows: the distribution check is skipped
    review_band: tuple[float, float] | None = None  # scores in [low, high] are listed for human review
    score_range: tuple[float, float] | None = None  # regression: valid score range (binary: always [0, 1])


@dataclass(frozen=True)
class AlertSettings:
    """[alerts]: where alerts go besides <schema>.alerts and the task log, and the scoring deadline."""

    smtp_conn_id: str | None = None  # Airflow SMTP connection (extra: driftline[smtp])
    smtp_to: tuple[str, ...] = ()
    slack_webhook_conn_id: str | None = None  # Airflow Slack incoming-webhook connection (driftline[slack])
    scoring_deadline_hours: float | None = None  # DeadlineAlert: interval not scored this long after its end

    @property
    def channels(self) -> list[str]:
        """Optional channels by name, in delivery order."""
        return [name for name, conn in (("smtp", self.smtp_conn_id), ("slack", self.slack_webhook_conn_id)) if conn]


@dataclass(frozen=True)
class MonitoringSettings:
    """[monitoring]: per-segment monitoring (segment_performance): each listed categorical feature is
    split into its top_n values in the model's reference (training) sample plus "other"."""

    segments: tuple[str, ...] = ()
    top_n: int = 10
    min_segment_rows: int = 100  # a segment's drift test needs this many rows on both sides (else NULL)


@dataclass(frozen=True)
class ExplainSettings:
    """[explain]: store the top-k TreeSHAP reasons of the rows people will look at (opt-in).

    Exactly one of min_score (rows scoring at least this) or top_fraction (the highest-scoring
    fraction of each scored chunk; 1.0 explains every row) chooses the rows, so the cost stays bounded.
    """

    top_k: int = 3
    min_score: float | None = None
    top_fraction: float | None = None


@dataclass(frozen=True)
class HandoffSettings:
    """[handoff]: how `driftline import-model` accepts a model trained elsewhere (config/handoff.py)."""

    trusted_types: tuple[str, ...] = ()  # skops types trusted beyond driftline's own list (handoff/files.py)
    pickle_sha256: tuple[str, ...] = ()  # pickle/joblib files accepted, by sha256; every other pickle is refused
    parity_tolerance: float = 1e-6  # max |driftline's score - the notebook's| on any row of the parity sample
    mlflow_tracking_uri: str | None = None  # else $MLFLOW_TRACKING_URI
    mlflow_register_as: str | None = None  # retrained candidates are written back under this registered name
    mlflow_alias: str = "champion"  # moved to the promoted version when driftline promotes


@dataclass(frozen=True)
class DriftPolicy:
    """When drift is a breach, and when a breach starts retrain_model ([drift.trigger])."""

    drifted_share: float  # breach when the share of counted drifted features >= this
    prediction_drift: float  # ... or when the prediction drift statistic >= this
    effect_size_floor: float  # a drifted feature counts only when its effect size >= this
    breaches: int  # trigger only when >= breaches of the last `window` monitored intervals breached
    window: int
    cooldown_hours: float  # no trigger within this many hours after the last retrain
    # Estimated performance (estimation.py, binary): also a breach when the interval's estimated
    # metric is below the floor, or has dropped this much below the champion's holdout value.
    estimated_metric: str = "auc"
    estimated_metric_floor: float | None = None
    estimated_metric_drop: float | None = None
    # ... or below the alert band from the data: mean - this many standard deviations of the metric over
    # ten chunks of the holdout (estimation.chunk_spread, stored at registration); 0 turns it off.
    estimated_metric_std: float = 3.0


@dataclass(frozen=True)
class DriftSettings:
    """How monitor_drift samples and compares an interval ([drift])."""

    reports_dir: Path
    reference_dir: Path = field(metadata={"required": False})  # default: <registry_dir>/reference
    trigger: DriftPolicy
    sample_rows: int = 50_000
    seed: int = 42
    numeric_method: str = "ks"
    categorical_method: str = "chisquare"
    numeric_threshold: float | None = None  # None: Evidently's default for the method
    categorical_threshold: float | None = None
    prediction_method: str = "wasserstein"


DEFAULT_MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class SourceSettings:
    """How input files are read ([source] besides input/labels/history): the reading contract's options."""

    encoding: str = "utf-8"  # text encoding of CSV files (ASCII-compatible: utf-8, latin-1, cp1252, ...)
    null_values: tuple[str, ...] = ()  # cell texts read as missing besides the empty cell (e.g. ["NA", "null"])
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES  # a longer CSV line is quarantined as malformed_record
    # Airflow connection holding the credentials of an object storage input (s3://...); None: the
    # worker's default credentials (instance role, environment)
    storage_conn_id: str | None = None


@dataclass(frozen=True)
class SqlInput:
    """[source] input as a PostgreSQL query: `{ conn_id | url, query }` (the query takes
    %(interval_start)s and %(interval_end)s) or `{ conn_id | url, table, event_time }`."""

    conn_id: str | None = None  # an Airflow connection (credentials live there, never in the config)
    url: str | None = None  # a postgresql:// URL without password (tests, the CLI without Airflow)
    query: str | None = None
    table: str | None = None  # "schema.table" or "table"
    event_time: str | None = None  # the table's event-time column
    key: str = "input"  # the [source] key it came from: input, history or labels (for messages)

    def __str__(self) -> str:
        """Where the rows come from, for run records and messages (never credentials or row data)."""
        where = self.conn_id if self.conn_id else (self.url or "").split("?")[0]
        return f"sql:{where}/{self.table or 'query'}"


@dataclass(frozen=True)
class SqlInterval:
    """One data interval of a SqlInput: what read_interval reads for it."""

    source: SqlInput
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return str(self.source)


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset's config file, validated (config/load.py builds it)."""

    path: Path
    root: Path
    name: str = field(metadata=toml("dataset", "name", required=True))
    task: str = field(metadata=toml("dataset", "task"))
    entity_key: str = field(metadata=toml("dataset", "entity_key", required=True))
    event_time: str = field(metadata=toml("dataset", "event_time", required=True))
    target: str = field(metadata=toml("dataset", "target", required=True))
    features: tuple[Feature, ...] = field(metadata=toml("features", required=True))
    input_uri: str | SqlInput = field(metadata=toml("source", "input", required=True))
    labels_uri: str | SqlInput = field(metadata=toml("source", "labels", required=True))
    history_uri: str | SqlInput = field(metadata=toml("source", "history", required=True))
    cron: str = field(metadata=toml("schedule", "cron", required=True))
    timezone: str = field(metadata=toml("schedule", "timezone"))
    catchup: bool = field(metadata=toml("schedule", "catchup"))
    start_date: datetime = field(metadata=toml("schedule", "start_date"))
    db_url: str | None = field(metadata=toml("database", "url"))
    db_conn_id: str | None = field(metadata=toml("database", "conn_id"))
    db_schema: str = field(metadata=toml("database", "schema", required=True))
    suite_path: Path = field(metadata=toml("validation", "suite", required=True))
    quarantine_budget: float = field(metadata=toml("validation", "quarantine_budget", required=True))
    validation_engine: str = field(metadata=toml("validation", "engine"))
    registry_dir: Path = field(metadata=toml("model", "registry_dir", required=True))
    threshold: float = field(metadata=toml("model", "threshold"))
    holdout_fraction: float = field(metadata=toml("model", "holdout_fraction"))
    lightgbm_params: dict[str, Any] = field(default_factory=dict, metadata=toml("model", "params"))
    # read-only role `driftline init-db` creates for analysts
    analyst_role: str | None = field(default=None, metadata=toml("database", "analyst_role"))
    num_boost_round: int = field(default=200, metadata=toml("model", "num_boost_round"))
    chunk_rows: int = field(default=200_000, metadata=toml("scoring", "chunk_rows"))
    # > 0: an interval with more input files is scored by mapped partitions
    files_per_partition: int = field(default=0, metadata=toml("scoring", "files_per_partition"))
    scoring_engine: str = field(default="compiled", metadata=toml("scoring", "engine"))
    retraining: RetrainingPolicy = field(default_factory=RetrainingPolicy, metadata=toml("retraining"))
    safeguards: Safeguards = field(default_factory=Safeguards, metadata=toml("safeguards"))
    alerts: AlertSettings = field(default_factory=AlertSettings, metadata=toml("alerts"))
    # None: no reasons are computed ([explain] absent)
    explain: ExplainSettings | None = field(default=None, metadata=toml("explain"))
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings, metadata=toml("monitoring"))
    # always set by load_config ([drift] is required)
    drift: DriftSettings | None = field(default=None, metadata=toml("drift"))
    # binary: the target value that means the positive class ("Yes"); None: the target is 0/1/bool.
    positive_label: str | None = field(default=None, metadata=toml("dataset", "positive_label"))
    source: SourceSettings = field(default_factory=SourceSettings, metadata=toml("source"))
    # the labels file's label column; None: named like the target
    label_column: str | None = field(default=None, metadata=toml("source", "label_column"))
    handoff: HandoffSettings = field(default_factory=HandoffSettings, metadata=toml("handoff"))

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
