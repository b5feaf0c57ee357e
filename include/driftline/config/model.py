"""The dataset config's settings tables as pydantic v2 dataclasses: each field is the TOML key of the
same name, with its type, default, bounds and description in one place (config/reference.py prints
them). They stay dataclasses (dataclasses.replace, positional fields) for the code that uses them;
unknown keys are refused (extra="forbid"), types are strict (`threshold = true` is no number).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

import driftline.config.checks as checks
from driftline.config.checks import MAX_DAYS, MAX_HOURS, MAX_TOP_N, Whole
from driftline.config.errors import ConfigError

__all__ = ["ConfigError"]

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

DEFAULT_MAX_RECORD_BYTES = 1 << 20
METRIC_DIRECTIONS = {"auc": "higher", "accuracy": "higher", "log_loss": "lower", "rmse": "lower", "mae": "lower"}
TASK_METRICS = {"binary": ("auc", "log_loss", "accuracy"), "regression": ("rmse", "mae")}


# Unknown keys are errors, so a typo never silently falls back to a default.
SETTINGS = ConfigDict(extra="forbid")
Number = StrictFloat  # an int or a float, never a bool
Fraction = Annotated[StrictFloat, checks.within(0, 1)]
Count = Annotated[StrictInt, Field(ge=1)]
Hours = Annotated[StrictFloat, Field(gt=0.0, le=MAX_HOURS)]  # Airflow turns these into timedeltas
Days = Annotated[StrictInt, Field(ge=1, le=MAX_DAYS)]
ConnId = Annotated[StrictStr | None, AfterValidator(checks.not_blank)]


@dataclass(frozen=True, config=SETTINGS)
class Feature:
    """One [features] column (the sub-table's name); the other fields are the keys of its sub-table."""

    name: Annotated[StrictStr, AfterValidator(checks.model_feature_name)] = Field(json_schema_extra={"key": False})
    type: Literal["numeric", "categorical"] = Field(description="numeric | categorical")
    nullable: StrictBool = Field(True, description="missing values are valid")
    min: StrictInt | StrictFloat | None = Field(None, description="numeric: smallest valid value (driftline suite)")
    max: StrictInt | StrictFloat | None = Field(None, description="numeric: largest valid value (driftline suite)")
    categories: Annotated[tuple[StrictStr, ...] | None, BeforeValidator(checks.categories)] = Field(
        None, description="categorical: the valid values (driftline suite)"
    )

    @model_validator(mode="after")
    def _fits_type(self) -> Feature:
        where = f"features.{self.name}"
        if self.categories is not None and self.type != "categorical":
            raise Whole(f"'{where}.categories' only applies to categorical features")
        for bound in ("min", "max"):
            if getattr(self, bound) is not None and self.type != "numeric":
                raise Whole(f"'{where}.{bound}' only applies to numeric features")
        return self


@dataclass(frozen=True, config=SETTINGS)
class RetrainingPolicy:
    """[retraining]: training window, promotion guardrails, retention and shadow scoring."""

    training_days: Days = Field(30, description="training window: days before the trigger's interval end")
    min_training_rows: Count = Field(1000, description="fewer labelled rows in the window: candidate rejected")
    metric: StrictStr = Field(
        "auc", description="primary metric: auc | log_loss | accuracy; rmse | mae (regression, default rmse)"
    )
    min_metric: Number | None = Field(None, description="floor of the candidate's holdout metric (none: no floor)")
    min_improvement: Annotated[StrictFloat, Field(ge=0.0)] = Field(
        0.0, description="promote only when better by more than this"
    )
    max_regression: Annotated[StrictFloat, Field(ge=0.0)] = Field(
        0.01, description="no other metric or segment worse by more"
    )
    segment: StrictStr | None = Field(None, description="categorical feature checked per segment")
    min_segment_rows: Count = Field(200, description="segments with fewer holdout rows are not checked")
    # Fewer labelled rows unseen by both candidate and champion: rejected. Scaled to small data:
    # min(this, max(30, holdout_fraction x window rows / 2)) (retraining.windows.required_holdout_rows).
    min_holdout_rows: Count = Field(200, description="fewer holdout rows unseen by candidate and champion: rejected")
    keep_versions: Annotated[StrictInt, Field(ge=2)] = Field(5, description="model versions kept (>= 2)")
    shadow: StrictBool = Field(False, description="score the latest rejected/pending candidate beside the champion")
    realized_lookback_days: Days = Field(30, description="realized performance recomputed for intervals this recent")
    promotion: Literal["auto", "manual"] = Field("auto", description="manual: a person approves in the Airflow UI")
    approval_timeout_hours: Hours = Field(72.0, description="manual: no answer by then = rejected")


@dataclass(frozen=True, config=SETTINGS)
class Safeguards:
    """[safeguards]: what score_batch does when the model or its output cannot be trusted."""

    fallback: StrictBool = Field(True, description="champion unloadable: score with the newest earlier one that loads")
    min_score_std_ratio: Annotated[Fraction | None, BeforeValidator(checks.off_when_false)] = Field(
        0.25, description="scores' std below this x the reference std: collapsed (false: off)"
    )
    max_majority_share: Annotated[Fraction | None, BeforeValidator(checks.off_when_false)] = Field(
        None, description="binary: one predicted class above this share: collapsed (false: off)"
    )
    min_rows_for_distribution_check: Annotated[StrictInt, Field(ge=2)] = Field(
        500, description="fewer scored rows: the distribution check is skipped"
    )
    review_band: Annotated[tuple[float, float] | None, BeforeValidator(checks.pair)] = Field(
        None, description="[low, high]: scores in it are listed for human review ([]: off)"
    )
    score_range: Annotated[tuple[float, float] | None, BeforeValidator(checks.pair)] = Field(
        None, description="regression: valid score range (binary: always [0, 1])"
    )


@dataclass(frozen=True, config=SETTINGS)
class AlertSettings:
    """[alerts]: where alerts go besides <schema>.alerts and the task log, and the scoring deadline."""

    smtp_conn_id: ConnId = Field(None, description="Airflow SMTP connection (extra: driftline[smtp])")
    smtp_to: Annotated[tuple[StrictStr, ...], BeforeValidator(checks.emails)] = Field(
        (), description="e-mail recipients"
    )
    slack_webhook_conn_id: ConnId = Field(None, description="Airflow Slack incoming-webhook connection")
    scoring_deadline_hours: Hours | None = Field(
        None, description="DeadlineAlert: interval not scored this long after its end"
    )

    @model_validator(mode="after")
    def _recipients(self) -> AlertSettings:
        if self.smtp_conn_id and not self.smtp_to:
            raise Whole("'alerts.smtp_conn_id' is set but 'alerts.smtp_to' lists no recipient")
        return self

    @property
    def channels(self) -> list[str]:
        """Optional channels by name, in delivery order."""
        return [name for name, conn in (("smtp", self.smtp_conn_id), ("slack", self.slack_webhook_conn_id)) if conn]


@dataclass(frozen=True, config=SETTINGS)
class MonitoringSettings:
    """[monitoring]: per-segment monitoring (segment_performance): each listed categorical feature is
    split into its top_n values in the model's reference (training) sample plus "other"."""

    segments: tuple[StrictStr, ...] = Field((), description="categorical features monitored per segment")
    # every value is a row of segment_performance per interval and a line of the trends page
    top_n: Annotated[StrictInt, Field(ge=1, le=MAX_TOP_N)] = Field(
        10, description="values kept per feature, the rest is other"
    )
    min_segment_rows: Count = Field(100, description="a segment's drift test needs this many rows on both sides")

    @field_validator("segments")
    @classmethod
    def _once(cls, segments: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(segments)) != len(segments):
            raise ValueError(f"lists a feature twice: {list(segments)!r}")
        return segments


@dataclass(frozen=True, config=SETTINGS)
class ExplainSettings:
    """[explain]: store the top-k TreeSHAP reasons of the rows people will look at (opt-in).

    Exactly one of min_score (rows scoring at least this) or top_fraction (the highest-scoring
    fraction of each scored chunk; 1.0 explains every row) chooses the rows, so the cost stays bounded.
    """

    top_k: Count = Field(3, description="reasons stored per explained row")
    min_score: Number | None = Field(None, description="explain rows scoring at least this")
    top_fraction: Annotated[StrictFloat, checks.within(0, 1, low_open=True)] | None = Field(
        None, description="explain the highest-scoring fraction of each chunk (1.0: every row)"
    )

    @model_validator(mode="after")
    def _one_choice(self) -> ExplainSettings:
        chosen = [key for key in ("min_score", "top_fraction") if getattr(self, key) is not None]
        if len(chosen) != 1:
            raise Whole(
                "[explain] needs exactly one of 'min_score' (explain rows scoring at least this) or "
                f"'top_fraction' (explain the highest-scoring fraction; 1.0 = every row), got {chosen or 'neither'}"
            )
        return self


NonNegative = Annotated[StrictFloat, Field(ge=0.0)]


@dataclass(frozen=True, config=SETTINGS)
class DriftPolicy:
    """When drift is a breach, and when a breach starts retrain_model ([drift.trigger])."""

    drifted_share: Fraction = Field(description="breach when the share of counted drifted features >= this")
    prediction_drift: NonNegative = Field(description="... or when the prediction drift statistic >= this")
    effect_size_floor: NonNegative = Field(description="a drifted feature counts only when its effect size >= this")
    breaches: Count = Field(description="trigger when >= this many of the last `window` intervals breached")
    window: Count = Field(description="monitored intervals looked back over")
    cooldown_hours: Annotated[StrictFloat, Field(ge=0.0, le=MAX_HOURS)] = Field(
        description="no trigger within this many hours after the last retrain"
    )
    # Estimated performance (estimation.py, binary): also a breach when the interval's estimated
    # metric is below the floor, or has dropped this much below the champion's holdout value.
    estimated_metric: Literal["auc", "accuracy", "precision", "recall", "f1"] = Field(
        "auc", description="estimated metric (binary): auc | accuracy | precision | recall | f1"
    )
    estimated_metric_floor: Fraction | None = Field(None, description="breach when the estimate is below this")
    estimated_metric_drop: Fraction | None = Field(None, description="breach when this far below the holdout value")
    # ... or below the alert band from the data: mean - this many standard deviations of the metric over
    # ten chunks of the holdout (estimation.chunk_spread, stored at registration); 0 turns it off.
    estimated_metric_std: NonNegative = Field(
        3.0, description="breach below mean - this many std of the holdout chunks (0: off)"
    )

    @model_validator(mode="after")
    def _breaches_fit_window(self) -> DriftPolicy:
        if self.breaches > self.window:
            raise Whole(
                f"'drift.trigger.breaches' ({self.breaches}) cannot exceed 'drift.trigger.window' ({self.window})"
            )
        return self


def _under_root(value: Any, info: Any) -> Any:
    """Relative paths are resolved against the project root (the load context's root)."""
    root = (info.context or {}).get("root")
    return root / value if root is not None and isinstance(value, str) else value


RootPath = Annotated[Path, BeforeValidator(_under_root)]


@dataclass(frozen=True, config=SETTINGS)
class DriftSettings:
    """How monitor_drift samples and compares an interval ([drift])."""

    reports_dir: Annotated[RootPath, BeforeValidator(checks.text)] = Field(description="one HTML report per interval")
    # Not required in the file: the config fills in <model.registry_dir>/reference, since a reference
    # belongs to one model version (config/file.py).
    reference_dir: Annotated[RootPath, BeforeValidator(checks.text)] = Field(
        json_schema_extra={"default": "<model.registry_dir>/reference"},
        description="reference samples of each model version",
    )
    trigger: DriftPolicy = Field(description="[drift.trigger]: when drift is a breach and starts retraining")
    sample_rows: Annotated[StrictInt, Field(ge=100)] = Field(
        50_000, description="rows sampled from interval and training data"
    )
    seed: StrictInt = Field(42, description="sampling seed")
    numeric_method: Literal[NUMERIC_DRIFT_METHODS] = Field("ks", description="Evidently method for numeric columns")  # type: ignore[valid-type]
    categorical_method: Literal[CATEGORICAL_DRIFT_METHODS] = Field(
        "chisquare", description="... for categorical columns"
    )  # type: ignore[valid-type]
    numeric_threshold: NonNegative | None = Field(None, description="none: Evidently's default for the method")
    categorical_threshold: NonNegative | None = Field(None, description="none: Evidently's default for the method")
    prediction_method: Literal[PREDICTION_DRIFT_METHODS] = Field(
        "wasserstein", description="distance method on the model score"
    )  # type: ignore[valid-type]


@dataclass(frozen=True, config=SETTINGS)
class SourceSettings:
    """How input files are read ([source] besides input/labels/history): the reading contract's options."""

    encoding: Annotated[StrictStr, AfterValidator(checks.encoding)] = Field(
        "utf-8", description="text encoding of CSV files (ASCII-compatible: utf-8, latin-1, cp1252, ...)"
    )
    null_values: Annotated[tuple[StrictStr, ...], BeforeValidator(checks.null_values)] = Field(
        (), description='cell texts read as missing besides the empty cell (e.g. ["NA", "null"])'
    )
    max_record_bytes: Annotated[StrictInt, Field(ge=64)] = Field(
        DEFAULT_MAX_RECORD_BYTES, description="a longer CSV line is quarantined as malformed_record"
    )
    storage_conn_id: ConnId = Field(
        None, description="Airflow connection of object storage inputs (none: the worker's default credentials)"
    )


@dataclass(frozen=True, config=SETTINGS)
class SqlInput:
    """[source] input as a PostgreSQL query: `{ conn_id | url, query }` (the query takes
    %(interval_start)s and %(interval_end)s) or `{ conn_id | url, table, event_time }`."""

    conn_id: StrictStr | None = Field(None, description="an Airflow connection (credentials live there)")
    url: Annotated[StrictStr | None, AfterValidator(checks.no_password)] = Field(
        None, description="a postgresql:// URL without password"
    )
    query: StrictStr | None = None
    table: StrictStr | None = Field(None, description='"schema.table" or "table"')
    event_time: StrictStr | None = Field(None, description="the table's event-time column")
    # the [source] key it came from: input, history or labels (for messages); set by the loader
    key: StrictStr = Field("input", json_schema_extra={"key": False})

    @model_validator(mode="after")
    def _one_way(self) -> SqlInput:
        checks.sql_input(self)
        return self

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
