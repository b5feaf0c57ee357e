"""Typed, validated dataset config loaded from one TOML file per dataset.

Kept light on purpose: DAG files import this module at parse time, so it uses only the standard
library (tomllib, dataclasses). Every dataset specific (column names, paths, thresholds) lives in
the config file; package code reads them from here and never names a dataset column.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
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
NUMERIC_DRIFT_METHODS = ("ks", "wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "anderson", "cramer_von_mises", "mannw", "t_test", "ed")
CATEGORICAL_DRIFT_METHODS = ("chisquare", "z", "jensenshannon", "psi", "kl_div", "hellinger", "g_test")
PREDICTION_DRIFT_METHODS = ("wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "ed")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ConfigError(BadConfig):
    """A dataset config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Feature:
    name: str
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
    min_holdout_rows: int = 200  # fewer labelled rows unseen by both candidate and champion: rejected
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
class ExplainSettings:
    """[explain]: store the top-k TreeSHAP reasons of the rows people will look at (opt-in).

    Exactly one of min_score (rows scoring at least this) or top_fraction (the highest-scoring
    fraction of each scored chunk; 1.0 explains every row) chooses the rows, so the cost stays bounded.
    """

    top_k: int = 3
    min_score: float | None = None
    top_fraction: float | None = None


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


@dataclass(frozen=True)
class DriftSettings:
    """How monitor_drift samples and compares an interval ([drift])."""

    reports_dir: Path
    reference_dir: Path
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


@dataclass(frozen=True)
class DatasetConfig:
    path: Path
    root: Path
    name: str
    task: str
    entity_key: str
    event_time: str
    target: str
    features: tuple[Feature, ...]
    input_uri: str
    labels_uri: str
    history_uri: str
    cron: str
    timezone: str
    catchup: bool
    start_date: datetime
    db_url: str | None
    db_conn_id: str | None
    db_schema: str
    suite_path: Path
    quarantine_budget: float
    validation_engine: str
    registry_dir: Path
    threshold: float
    holdout_fraction: float
    lightgbm_params: dict[str, Any] = field(default_factory=dict)
    analyst_role: str | None = None  # read-only role `driftline init-db` creates for analysts
    num_boost_round: int = 200
    chunk_rows: int = 200_000
    files_per_partition: int = 0  # > 0: an interval with more input files is scored by mapped partitions
    scoring_engine: str = "compiled"
    retraining: RetrainingPolicy = field(default_factory=RetrainingPolicy)
    safeguards: Safeguards = field(default_factory=Safeguards)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    explain: ExplainSettings | None = None  # None: no reasons are computed ([explain] absent)
    drift: DriftSettings | None = None  # always set by load_config ([drift] is required)
    # binary: the target value that means the positive class ("Yes"); None: the target is 0/1/bool.
    positive_label: str | None = None
    source: SourceSettings = field(default_factory=SourceSettings)
    label_column: str | None = None  # the labels file's label column; None: named like the target

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

    def input_location(self, interval_start: datetime, interval_end: datetime) -> str:
        """The input URI for one data interval, relative paths resolved against the project root."""
        try:
            rendered = self.input_uri.format(interval_start=interval_start, interval_end=interval_end)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{self.path}: [source] input template {self.input_uri!r} cannot be rendered: {exc}. "
                "Use {interval_start:%Y-%m-%d} / {interval_end:...} placeholders."
            ) from exc
        return self.resolve_location(rendered)

    def resolve_location(self, location: str) -> str:
        if "://" in location or os.path.isabs(location):
            return location
        return str(self.root / location)


# Allowed keys per section: (required, optional). Unknown keys are errors, so a typo never
# silently falls back to a default.
_SECTIONS: dict[str, tuple[set[str], set[str]]] = {
    "dataset": ({"name", "entity_key", "event_time", "target"}, {"task", "positive_label"}),
    "features": (set(), set()),  # free-form: one sub-table per feature column
    "source": ({"input", "labels", "history"}, {"label_column", *(f.name for f in fields(SourceSettings))}),
    "schedule": ({"cron"}, {"timezone", "catchup", "start_date"}),
    "database": ({"schema"}, {"url", "conn_id", "analyst_role"}),
    "validation": ({"suite", "quarantine_budget"}, {"engine"}),
    "model": (
        {"registry_dir"},
        {"threshold", "holdout_fraction", "num_boost_round", "params"},
    ),
    "scoring": (set(), {"chunk_rows", "files_per_partition", "engine"}),
    "retraining": (
        set(),
        {
            "training_days",
            "min_training_rows",
            "metric",
            "min_metric",
            "min_improvement",
            "max_regression",
            "segment",
            "min_segment_rows",
            "min_holdout_rows",
            "keep_versions",
            "shadow",
            "realized_lookback_days",
            "promotion",
            "approval_timeout_hours",
        },
    ),
}
_SECTIONS["safeguards"] = (
    set(),
    {
        "fallback",
        "min_score_std_ratio",
        "max_majority_share",
        "min_rows_for_distribution_check",
        "review_band",
        "score_range",
    },
)
_SECTIONS["explain"] = (set(), {f.name for f in fields(ExplainSettings)})
_SECTIONS["alerts"] = (set(), {"smtp_conn_id", "smtp_to", "slack_webhook_conn_id", "scoring_deadline_hours"})
_SECTIONS["drift"] = (
    {"reports_dir", "trigger"},
    {
        "reference_dir",
        "sample_rows",
        "seed",
        "numeric_method",
        "categorical_method",
        "numeric_threshold",
        "categorical_threshold",
        "prediction_method",
    },
)
_REQUIRED_SECTIONS = {"dataset", "features", "source", "schedule", "database", "validation", "model", "drift"}
_DRIFT_TRIGGER_KEYS = {"drifted_share", "prediction_drift", "effect_size_floor", "breaches", "window", "cooldown_hours"}
_DRIFT_TRIGGER_OPTIONAL_KEYS = {"estimated_metric", "estimated_metric_floor", "estimated_metric_drop"}
ESTIMATED_METRICS = ("auc", "accuracy", "precision", "recall", "f1")
_FEATURE_KEYS = {"type", "nullable", "min", "max", "categories"}


def _check_keys(path: Path, where: str, table: dict, required: set[str], optional: set[str]) -> None:
    for key in table:
        if key not in required | optional:
            allowed = ", ".join(sorted(required | optional))
            raise ConfigError(f"{path}: unknown key '{where}.{key}' (allowed: {allowed})")
    for key in sorted(required):
        if key not in table:
            raise ConfigError(f"{path}: missing required key '{where}.{key}'")


def _expect(path: Path, where: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; `threshold = true` must not pass as a number.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"{path}: '{where}' must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _non_negative(path: Path, where: str, value: Any) -> int:
    if _expect(path, where, value, int) < 0:
        raise ConfigError(f"{path}: '{where}' must be >= 0, got {value}")
    return value


def _choice(path: Path, where: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{path}: '{where}' must be one of {allowed}, got {value!r}")
    return value


def _column(path: Path, where: str, value: Any) -> str:
    _expect(path, where, value, str)
    if not value.strip():
        raise ConfigError(f"{path}: '{where}' must name a column")
    return value


def _project_root(config_path: Path) -> Path:
    """Relative paths are resolved against the project root: the parent of the config folder."""
    env_root = os.environ.get("DRIFTLINE_HOME")
    if env_root:
        return Path(env_root).resolve()
    return config_path.resolve().parent.parent


def load_config(path: str | os.PathLike) -> DatasetConfig:
    """Load and validate one dataset config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc

    for section in raw:
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section '[{section}]' (allowed: {', '.join(_SECTIONS)})")
    for section in sorted(_REQUIRED_SECTIONS):
        if section not in raw:
            raise ConfigError(f"{path}: missing required section '[{section}]'")
    for section, (required, optional) in _SECTIONS.items():
        if section != "features":
            _check_keys(path, section, raw.get(section, {}), required, optional)

    dataset = raw["dataset"]
    name = _expect(path, "dataset.name", dataset["name"], str)
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"{path}: 'dataset.name' must be lower_snake_case (got {name!r})")
    task = _expect(path, "dataset.task", dataset.get("task", "binary"), str)
    if task not in TASK_TYPES:
        raise ConfigError(f"{path}: 'dataset.task' must be one of {TASK_TYPES}, got {task!r}")
    entity_key = _column(path, "dataset.entity_key", dataset["entity_key"])
    event_time = _column(path, "dataset.event_time", dataset["event_time"])
    target = _column(path, "dataset.target", dataset["target"])
    positive_label = dataset.get("positive_label")
    if positive_label is not None:
        if task != "binary":
            raise ConfigError(f"{path}: 'dataset.positive_label' applies to binary targets; dataset.task is {task!r}")
        if isinstance(positive_label, bool) or not isinstance(positive_label, (str, int)) or not str(positive_label).strip():
            raise ConfigError(
                f"{path}: 'dataset.positive_label' must be the target value of the positive class as text or an "
                f"integer (e.g. \"Yes\"), got {positive_label!r}"
            )
        positive_label = str(positive_label).strip()
    label_column = _column(path, "source.label_column", raw["source"].get("label_column", target))
    if label_column in (entity_key, "observed_at"):
        raise ConfigError(
            f"{path}: 'source.label_column' is {label_column!r}, which the labels file uses for the "
            "entity key or observed_at; name the column that holds the label"
        )

    features = _load_features(path, raw["features"])
    names = [entity_key, event_time, target, *[f.name for f in features]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"{path}: column(s) {duplicates} used twice across dataset.entity_key/event_time/target and [features]"
        )

    source = raw["source"]
    schedule = raw["schedule"]
    database = raw["database"]
    validation = raw["validation"]
    model = raw["model"]
    scoring = raw.get("scoring", {})
    root = _project_root(path)

    cron = _expect(path, "schedule.cron", schedule["cron"], str)
    if len(cron.split()) != 5:
        raise ConfigError(f"{path}: 'schedule.cron' must be a 5-field cron expression, got {cron!r}")

    schema = _expect(path, "database.schema", database["schema"], str)
    if not _IDENTIFIER.match(schema):
        raise ConfigError(f"{path}: 'database.schema' must be a lower_snake_case identifier, got {schema!r}")

    budget = float(_expect(path, "validation.quarantine_budget", validation["quarantine_budget"], (int, float)))
    if not 0.0 <= budget <= 1.0:
        raise ConfigError(f"{path}: 'validation.quarantine_budget' must be a fraction in [0, 1], got {budget}")

    holdout = float(_expect(path, "model.holdout_fraction", model.get("holdout_fraction", 0.2), (int, float)))
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"{path}: 'model.holdout_fraction' must be in (0, 1), got {holdout}")
    chunk_rows = _expect(path, "scoring.chunk_rows", scoring.get("chunk_rows", 200_000), int)
    if chunk_rows < 1:
        raise ConfigError(f"{path}: 'scoring.chunk_rows' must be positive, got {chunk_rows}")

    return DatasetConfig(
        path=path.resolve(),
        root=root,
        name=name,
        task=task,
        entity_key=entity_key,
        event_time=event_time,
        target=target,
        features=features,
        input_uri=_expect(path, "source.input", source["input"], str),
        labels_uri=_expect(path, "source.labels", source["labels"], str),
        history_uri=_expect(path, "source.history", source["history"], str),
        cron=cron,
        timezone=_expect(path, "schedule.timezone", schedule.get("timezone", "UTC"), str),
        catchup=_expect(path, "schedule.catchup", schedule.get("catchup", False), bool),
        start_date=_start_date(path, schedule.get("start_date", "2024-01-01")),
        db_url=_db_url(path, database.get("url")),
        db_conn_id=_expect(path, "database.conn_id", database.get("conn_id"), (str, type(None))),
        db_schema=schema,
        analyst_role=_analyst_role(path, database.get("analyst_role")),
        suite_path=root / _expect(path, "validation.suite", validation["suite"], str),
        quarantine_budget=budget,
        validation_engine=_choice(path, "validation.engine", validation.get("engine", "auto"), VALIDATION_ENGINES),
        registry_dir=root / _expect(path, "model.registry_dir", model["registry_dir"], str),
        threshold=float(_expect(path, "model.threshold", model.get("threshold", 0.5), (int, float))),
        holdout_fraction=holdout,
        num_boost_round=_expect(path, "model.num_boost_round", model.get("num_boost_round", 200), int),
        lightgbm_params=dict(_expect(path, "model.params", model.get("params", {}), dict)),
        chunk_rows=chunk_rows,
        files_per_partition=_non_negative(path, "scoring.files_per_partition", scoring.get("files_per_partition", 0)),
        scoring_engine=_choice(path, "scoring.engine", scoring.get("engine", "compiled"), SCORING_ENGINES),
        retraining=_retraining_policy(path, raw.get("retraining", {}), task, features),
        safeguards=_safeguards(path, raw.get("safeguards", {}), task),
        alerts=_alert_settings(path, raw.get("alerts", {})),
        explain=_explain_settings(path, raw["explain"]) if "explain" in raw else None,
        drift=_load_drift(path, root, raw["drift"], model["registry_dir"]),
        positive_label=positive_label,
        label_column=label_column,
        source=_source_settings(path, source),
    )


def _source_settings(path: Path, table: dict) -> SourceSettings:
    """[source] encoding / null_values / max_record_bytes, checked so reading never meets a bad option."""
    import codecs

    defaults = SourceSettings()
    encoding = _expect(path, "source.encoding", table.get("encoding", defaults.encoding), str)
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(
            f"{path}: 'source.encoding' names no known encoding: {encoding!r} (e.g. \"utf-8\", \"latin-1\")"
        ) from None
    # Records are split at newline bytes before decoding, so the encoding must write ASCII as ASCII.
    try:
        ascii_compatible = bytes(range(128)).decode(name) == "".join(map(chr, range(128)))
    except (UnicodeDecodeError, ValueError):
        ascii_compatible = False
    if not ascii_compatible:
        raise ConfigError(
            f"{path}: 'source.encoding' = {encoding!r} is not ASCII-compatible (UTF-16/32 and the like are not "
            "supported); re-export the files as UTF-8"
        )
    null_values = _expect(path, "source.null_values", table.get("null_values", []), list)
    if not all(isinstance(token, str) and token for token in null_values):
        raise ConfigError(f"{path}: 'source.null_values' must be a list of non-empty strings (the empty cell is always missing)")
    max_record_bytes = _expect(path, "source.max_record_bytes", table.get("max_record_bytes", defaults.max_record_bytes), int)
    if max_record_bytes < 64:
        raise ConfigError(f"{path}: 'source.max_record_bytes' must be at least 64, got {max_record_bytes}")
    return SourceSettings(
        encoding="utf-8" if name in ("utf-8", "utf-8-sig") else name,
        null_values=tuple(null_values),
        max_record_bytes=max_record_bytes,
    )


def _retraining_policy(path: Path, table: dict, task: str, features: tuple[Feature, ...]) -> RetrainingPolicy:
    """[retraining] is optional; every key present is checked, defaults fill the rest."""
    defaults = RetrainingPolicy(metric=TASK_METRICS[task][0])

    def get(key: str, kind) -> Any:
        return _expect(path, f"retraining.{key}", table.get(key, getattr(defaults, key)), kind)

    policy = RetrainingPolicy(
        training_days=get("training_days", int),
        min_training_rows=get("min_training_rows", int),
        metric=get("metric", str),
        min_metric=None if table.get("min_metric") is None else float(get("min_metric", (int, float))),
        min_improvement=float(get("min_improvement", (int, float))),
        max_regression=float(get("max_regression", (int, float))),
        segment=get("segment", (str, type(None))),
        min_segment_rows=get("min_segment_rows", int),
        min_holdout_rows=get("min_holdout_rows", int),
        keep_versions=get("keep_versions", int),
        shadow=get("shadow", bool),
        realized_lookback_days=get("realized_lookback_days", int),
        promotion=_choice(path, "retraining.promotion", table.get("promotion", defaults.promotion), PROMOTION_MODES),
        approval_timeout_hours=float(get("approval_timeout_hours", (int, float))),
    )
    if policy.approval_timeout_hours <= 0:
        raise ConfigError(
            f"{path}: 'retraining.approval_timeout_hours' must be positive, got {policy.approval_timeout_hours}"
        )
    if policy.metric not in TASK_METRICS[task]:
        raise ConfigError(
            f"{path}: 'retraining.metric' must be one of {TASK_METRICS[task]} for task {task!r}, got {policy.metric!r}"
        )
    if policy.keep_versions < 2:
        raise ConfigError(f"{path}: 'retraining.keep_versions' must be at least 2, got {policy.keep_versions}")
    for key in ("training_days", "min_training_rows", "min_segment_rows", "min_holdout_rows", "realized_lookback_days"):
        if getattr(policy, key) < 1:
            raise ConfigError(f"{path}: 'retraining.{key}' must be positive, got {getattr(policy, key)}")
    if policy.max_regression < 0 or policy.min_improvement < 0:
        raise ConfigError(f"{path}: 'retraining.max_regression' and 'retraining.min_improvement' must be >= 0")
    categorical = [f.name for f in features if f.type == "categorical"]
    if policy.segment is not None and policy.segment not in categorical:
        raise ConfigError(
            f"{path}: 'retraining.segment' must name a categorical feature {categorical}, got {policy.segment!r}"
        )
    return policy


def _safeguards(path: Path, table: dict, task: str) -> Safeguards:
    """[safeguards] is optional; a key set to false/omitted where noted turns that check off."""
    defaults = Safeguards()

    def fraction(key: str) -> float | None:
        value = table.get(key, getattr(defaults, key))
        if value is None or value is False:  # `min_score_std_ratio = false` turns the rule off
            return None
        value = float(_expect(path, f"safeguards.{key}", value, (int, float)))
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{path}: 'safeguards.{key}' must be a fraction in [0, 1] (or false), got {value}")
        return value

    def pair(key: str) -> tuple[float, float] | None:
        value = table.get(key)
        if value is None or value == []:  # [] turns it off
            return None
        _expect(path, f"safeguards.{key}", value, list)
        if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{path}: 'safeguards.{key}' must be [low, high] numbers, got {value!r}")
        if value[0] > value[1]:
            raise ConfigError(f"{path}: 'safeguards.{key}' low must not exceed high, got {value!r}")
        return float(value[0]), float(value[1])

    if "score_range" in table and task == "binary":
        raise ConfigError(f"{path}: 'safeguards.score_range' applies to regression; binary scores are always [0, 1]")
    min_rows = _expect(
        path,
        "safeguards.min_rows_for_distribution_check",
        table.get("min_rows_for_distribution_check", defaults.min_rows_for_distribution_check),
        int,
    )
    if min_rows < 2:
        raise ConfigError(f"{path}: 'safeguards.min_rows_for_distribution_check' must be at least 2, got {min_rows}")
    return Safeguards(
        fallback=_expect(path, "safeguards.fallback", table.get("fallback", defaults.fallback), bool),
        min_score_std_ratio=fraction("min_score_std_ratio"),
        max_majority_share=fraction("max_majority_share") if task == "binary" else None,
        min_rows_for_distribution_check=min_rows,
        review_band=pair("review_band"),
        score_range=pair("score_range"),
    )


def _explain_settings(path: Path, table: dict) -> ExplainSettings:
    top_k = _expect(path, "explain.top_k", table.get("top_k", ExplainSettings.top_k), int)
    if top_k < 1:
        raise ConfigError(f"{path}: 'explain.top_k' must be at least 1, got {top_k}")
    chosen = [key for key in ("min_score", "top_fraction") if key in table]
    if len(chosen) != 1:
        raise ConfigError(
            f"{path}: [explain] needs exactly one of 'min_score' (explain rows scoring at least this) or "
            f"'top_fraction' (explain the highest-scoring fraction; 1.0 = every row), got {chosen or 'neither'}"
        )
    key = chosen[0]
    value = float(_expect(path, f"explain.{key}", table[key], (int, float)))
    if key == "top_fraction" and not 0.0 < value <= 1.0:
        raise ConfigError(f"{path}: 'explain.top_fraction' must be in (0, 1], got {value}")
    return ExplainSettings(top_k=top_k, **{key: value})


def _alert_settings(path: Path, table: dict) -> AlertSettings:
    """[alerts] is optional: without it alerts go to <schema>.alerts and the task log only."""
    to = _expect(path, "alerts.smtp_to", table.get("smtp_to", []), list)
    if not all(isinstance(address, str) and "@" in address for address in to):
        raise ConfigError(f"{path}: 'alerts.smtp_to' must be a list of e-mail addresses, got {to!r}")
    smtp = _expect(path, "alerts.smtp_conn_id", table.get("smtp_conn_id"), (str, type(None)))
    if smtp and not to:
        raise ConfigError(f"{path}: 'alerts.smtp_conn_id' is set but 'alerts.smtp_to' lists no recipient")
    deadline = table.get("scoring_deadline_hours")
    if deadline is not None:
        deadline = float(_expect(path, "alerts.scoring_deadline_hours", deadline, (int, float)))
        if deadline <= 0:
            raise ConfigError(f"{path}: 'alerts.scoring_deadline_hours' must be positive, got {deadline}")
    return AlertSettings(
        smtp_conn_id=smtp,
        smtp_to=tuple(to),
        slack_webhook_conn_id=_expect(
            path, "alerts.slack_webhook_conn_id", table.get("slack_webhook_conn_id"), (str, type(None))
        ),
        scoring_deadline_hours=deadline,
    )


def _db_url(path: Path, value: Any) -> str | None:
    """[database] url may name a server, never hold its password: config files are committed."""
    from driftline.secrets import has_password

    _expect(path, "database.url", value, (str, type(None)))
    if value is not None and has_password(value):
        raise ConfigError(
            f"{path}: 'database.url' contains a password; config files are committed, so put the URL in "
            "$DRIFTLINE_DB_URL or an Airflow connection ('database.conn_id') instead"
        )
    return value


def _analyst_role(path: Path, value: Any) -> str | None:
    """[database] analyst_role: a role name only; its password (if any) comes from the environment."""
    if value is None:
        return None
    _expect(path, "database.analyst_role", value, str)
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{path}: 'database.analyst_role' must be a lower_snake_case identifier, got {value!r}")
    return value


def _start_date(path: Path, value: Any) -> datetime:
    """TOML dates arrive as date/datetime objects, strings are parsed as ISO 8601; naive means UTC."""
    from datetime import date, timezone

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: 'schedule.start_date' is not an ISO date: {value!r}") from exc
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ConfigError(f"{path}: 'schedule.start_date' must be a date, got {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _load_features(path: Path, table: Any) -> tuple[Feature, ...]:
    _expect(path, "features", table, dict)
    if not table:
        raise ConfigError(f"{path}: '[features]' must list at least one feature column")
    features = []
    for name, spec in table.items():
        _model_feature_name(path, name)
        where = f"features.{name}"
        if isinstance(spec, str):  # shorthand: <column> = "numeric"
            spec = {"type": spec}
        _expect(path, where, spec, dict)
        _check_keys(path, where, spec, {"type"}, _FEATURE_KEYS - {"type"})
        ftype = spec["type"]
        if ftype not in FEATURE_TYPES:
            raise ConfigError(f"{path}: '{where}.type' must be one of {FEATURE_TYPES}, got {ftype!r}")
        categories = spec.get("categories")
        if categories is not None:
            if ftype != "categorical":
                raise ConfigError(f"{path}: '{where}.categories' only applies to categorical features")
            _expect(path, f"{where}.categories", categories, list)
            categories = tuple(str(c) for c in categories)
        for bound in ("min", "max"):
            if bound in spec:
                if ftype != "numeric":
                    raise ConfigError(f"{path}: '{where}.{bound}' only applies to numeric features")
                _expect(path, f"{where}.{bound}", spec[bound], (int, float))
        features.append(
            Feature(
                name=name,
                type=ftype,
                nullable=_expect(path, f"{where}.nullable", spec.get("nullable", True), bool),
                min=spec.get("min"),
                max=spec.get("max"),
                categories=categories,
            )
        )
    return tuple(features)


# LightGBM stores feature names in its text model and JSON dump and refuses names with JSON special
# characters ("Do not support special JSON characters in feature name"); a line break or other
# control character breaks the text model's one-line feature list. Checked at config load, so
# `driftline train` never gets that far with a column the model cannot take.
_LIGHTGBM_REFUSED = set('",:[]{}')


def _model_feature_name(path: Path, name: str) -> None:
    refused = sorted({c for c in name if c in _LIGHTGBM_REFUSED or ord(c) < 32 or ord(c) == 127})
    if not name.strip() or refused:
        what = "is blank" if not name.strip() else f"contains {' '.join(repr(c) for c in refused)}"
        raise ConfigError(
            f"{path}: feature name {name!r} in [features] {what}: LightGBM cannot store it in a model "
            "(it refuses the JSON special characters \" , : [ ] { } and control characters). Rename the "
            "column in the export (and in [features]) to one without them."
        )


def default_config_path() -> Path:
    """The config used when none is given: $DRIFTLINE_CONFIG, else config/demo.toml in this checkout."""
    env = os.environ.get("DRIFTLINE_CONFIG")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "config" / "demo.toml"


def _load_drift(path: Path, root: Path, drift: dict, registry_dir: str) -> DriftSettings:
    """[drift] and its [drift.trigger] policy: every key checked, ranges enforced."""
    trigger = _expect(path, "drift.trigger", drift["trigger"], dict)
    _check_keys(path, "drift.trigger", trigger, _DRIFT_TRIGGER_KEYS, _DRIFT_TRIGGER_OPTIONAL_KEYS)

    def number(where: str, value: Any, low: float, high: float | None = None) -> float:
        value = float(_expect(path, where, value, (int, float)))
        if value < low or (high is not None and value > high):
            bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise ConfigError(f"{path}: '{where}' must be in {bounds}, got {value}")
        return value

    def count(where: str, value: Any) -> int:
        if _expect(path, where, value, int) < 1:
            raise ConfigError(f"{path}: '{where}' must be a positive integer, got {value}")
        return value

    def method(key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = _expect(path, f"drift.{key}", drift.get(key, default), str)
        if value not in allowed:
            raise ConfigError(f"{path}: 'drift.{key}' must be one of {allowed}, got {value!r}")
        return value

    def threshold(key: str) -> float | None:
        return None if drift.get(key) is None else number(f"drift.{key}", drift[key], 0.0)

    def optional(key: str) -> float | None:
        return None if trigger.get(key) is None else number(f"drift.trigger.{key}", trigger[key], 0.0, 1.0)

    policy = DriftPolicy(
        drifted_share=number("drift.trigger.drifted_share", trigger["drifted_share"], 0.0, 1.0),
        prediction_drift=number("drift.trigger.prediction_drift", trigger["prediction_drift"], 0.0),
        effect_size_floor=number("drift.trigger.effect_size_floor", trigger["effect_size_floor"], 0.0),
        breaches=count("drift.trigger.breaches", trigger["breaches"]),
        window=count("drift.trigger.window", trigger["window"]),
        cooldown_hours=number("drift.trigger.cooldown_hours", trigger["cooldown_hours"], 0.0),
        estimated_metric=_choice(
            path, "drift.trigger.estimated_metric", trigger.get("estimated_metric", "auc"), ESTIMATED_METRICS
        ),
        estimated_metric_floor=optional("estimated_metric_floor"),
        estimated_metric_drop=optional("estimated_metric_drop"),
    )
    if policy.breaches > policy.window:
        raise ConfigError(
            f"{path}: 'drift.trigger.breaches' ({policy.breaches}) cannot exceed 'drift.trigger.window' ({policy.window})"
        )
    sample_rows = _expect(path, "drift.sample_rows", drift.get("sample_rows", 50_000), int)
    if sample_rows < 100:
        raise ConfigError(f"{path}: 'drift.sample_rows' must be at least 100, got {sample_rows}")
    return DriftSettings(
        reports_dir=root / _expect(path, "drift.reports_dir", drift["reports_dir"], str),
        # Default: beside the model artifacts, since a reference belongs to one model version.
        reference_dir=root / _expect(path, "drift.reference_dir", drift.get("reference_dir", f"{registry_dir}/reference"), str),
        trigger=policy,
        sample_rows=sample_rows,
        seed=_expect(path, "drift.seed", drift.get("seed", 42), int),
        numeric_method=method("numeric_method", "ks", NUMERIC_DRIFT_METHODS),
        categorical_method=method("categorical_method", "chisquare", CATEGORICAL_DRIFT_METHODS),
        numeric_threshold=threshold("numeric_threshold"),
        categorical_threshold=threshold("categorical_threshold"),
        prediction_method=method("prediction_method", "wasserstein", PREDICTION_DRIFT_METHODS),
    )
