"""Parsers of the structured sections ([features], [source] reading options, [retraining],
[safeguards], [explain], [alerts], [drift]): every key checked, ranges enforced, defaults filled."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from driftline.config.checks import MAX_DAYS, check_keys, choice, expect, hours, settings_keys
from driftline.config.model import (
    CATEGORICAL_DRIFT_METHODS,
    ESTIMATED_METRICS,
    FEATURE_TYPES,
    NUMERIC_DRIFT_METHODS,
    PREDICTION_DRIFT_METHODS,
    PROMOTION_MODES,
    TASK_METRICS,
    AlertSettings,
    ConfigError,
    DriftPolicy,
    DriftSettings,
    ExplainSettings,
    Feature,
    RetrainingPolicy,
    Safeguards,
    SourceSettings,
    SqlInput,
)


def load_features(path: Path, table: Any) -> tuple[Feature, ...]:
    expect(path, "features", table, dict)
    if not table:
        raise ConfigError(f"{path}: '[features]' must list at least one feature column")
    features = []
    for name, spec in table.items():
        _model_feature_name(path, name)
        where = f"features.{name}"
        if isinstance(spec, str):  # shorthand: <column> = "numeric"
            spec = {"type": spec}
        expect(path, where, spec, dict)
        check_keys(path, where, spec, *settings_keys(Feature))
        ftype = spec["type"]
        if ftype not in FEATURE_TYPES:
            raise ConfigError(f"{path}: '{where}.type' must be one of {FEATURE_TYPES}, got {ftype!r}")
        categories = spec.get("categories")
        if categories is not None:
            if ftype != "categorical":
                raise ConfigError(f"{path}: '{where}.categories' only applies to categorical features")
            expect(path, f"{where}.categories", categories, list)
            categories = tuple(str(c) for c in categories)
        for bound in ("min", "max"):
            if bound in spec:
                if ftype != "numeric":
                    raise ConfigError(f"{path}: '{where}.{bound}' only applies to numeric features")
                expect(path, f"{where}.{bound}", spec[bound], (int, float))
        features.append(
            Feature(
                name=name,
                type=ftype,
                nullable=expect(path, f"{where}.nullable", spec.get("nullable", True), bool),
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
            '(it refuses the JSON special characters " , : [ ] { } and control characters). Rename the '
            "column in the export (and in [features]) to one without them."
        )


def source_settings(path: Path, table: dict) -> SourceSettings:
    """[source] encoding / null_values / max_record_bytes, checked so reading never meets a bad option."""
    import codecs

    defaults = SourceSettings()
    encoding = expect(path, "source.encoding", table.get("encoding", defaults.encoding), str)
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(
            f'{path}: \'source.encoding\' names no known encoding: {encoding!r} (e.g. "utf-8", "latin-1")'
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
    null_values = expect(path, "source.null_values", table.get("null_values", []), list)
    if not all(isinstance(token, str) and token for token in null_values):
        raise ConfigError(
            f"{path}: 'source.null_values' must be a list of non-empty strings (the empty cell is always missing)"
        )
    max_record_bytes = expect(
        path, "source.max_record_bytes", table.get("max_record_bytes", defaults.max_record_bytes), int
    )
    if max_record_bytes < 64:
        raise ConfigError(f"{path}: 'source.max_record_bytes' must be at least 64, got {max_record_bytes}")
    return SourceSettings(
        encoding="utf-8" if name in ("utf-8", "utf-8-sig") else name,
        null_values=tuple(null_values),
        max_record_bytes=max_record_bytes,
        storage_conn_id=storage_conn_id(path, table),
    )


def sql_input(path: Path, table: Any, key: str = "input") -> SqlInput:
    """[source] input (or history, labels) as a table: a PostgreSQL query or table (sources/sql.py);
    input selects one interval, history and labels are read whole."""
    from driftline.secrets import has_password

    where = f"source.{key}"
    interval = key == "input"
    expect(path, where, table, (str, dict))
    check_keys(path, where, table, set(), {"conn_id", "url", "query", "table", "event_time"})
    text = {name: expect(path, f"{where}.{name}", table[name], str) for name in table}
    if ("conn_id" in text) == ("url" in text):
        raise ConfigError(
            f"{path}: '{where}' needs exactly one of 'conn_id' (an Airflow connection to the database) or 'url' "
            "(postgresql://host/db, no password)"
        )
    if "url" in text and has_password(text["url"]):
        raise ConfigError(
            f"{path}: '{where}.url' contains a password; config files are committed, so use 'conn_id' (an Airflow "
            "connection) instead"
        )
    if ("query" in text) == ("table" in text):
        raise ConfigError(f"{path}: '{where}' needs exactly one of 'query' or 'table'")
    placeholders = set(re.findall(r"%\((\w+)\)s", text.get("query", "")))
    if "table" in text:
        parts = text["table"].split(".")
        if len(parts) > 2 or not all(p.strip() for p in parts):
            raise ConfigError(f'{path}: \'{where}.table\' must be "table" or "schema.table", got {text["table"]!r}')
        if interval and "event_time" not in text:
            raise ConfigError(f"{path}: '{where}' with 'table' needs 'event_time' naming its event-time column")
    elif "event_time" in text:
        raise ConfigError(f"{path}: '{where}.event_time' goes with 'table'; a 'query' selects its rows itself")
    elif interval and (not placeholders or placeholders - {"interval_start", "interval_end"}):
        raise ConfigError(
            f"{path}: '{where}.query' must select one interval with %(interval_start)s and %(interval_end)s "
            f"(the only placeholders), got {sorted(placeholders) or 'none'}"
        )
    elif not interval and placeholders:
        raise ConfigError(f"{path}: '{where}.query' is read whole and takes no placeholder, got {sorted(placeholders)}")
    return SqlInput(**text, key=key)


def storage_conn_id(path: Path, table: dict) -> str | None:
    """[source] storage_conn_id: the Airflow connection of object storage inputs. Credentials live in that
    connection only: a URL with user info (s3://key:secret@bucket/..., s3://conn@bucket/...) is refused."""
    from urllib.parse import urlsplit

    conn_id = expect(path, "source.storage_conn_id", table.get("storage_conn_id"), (str, type(None)))
    if conn_id is not None and not conn_id.strip():
        raise ConfigError(f"{path}: 'source.storage_conn_id' is empty; name an Airflow connection or leave it out")
    for key in ("input", "labels", "history"):
        value = table.get(key)
        if isinstance(value, str) and "://" in value and "@" in urlsplit(value).netloc:
            raise ConfigError(
                f"{path}: 'source.{key}' carries credentials or a connection in its URL (user info before '@'); "
                "config files are committed: put the credentials in an Airflow connection and name it in "
                "'source.storage_conn_id'"
            )
    return conn_id


def retraining_policy(path: Path, table: dict, task: str, features: tuple[Feature, ...]) -> RetrainingPolicy:
    """[retraining] is optional; every key present is checked, defaults fill the rest."""
    defaults = RetrainingPolicy(metric=TASK_METRICS[task][0])

    def get(key: str, kind) -> Any:
        return expect(path, f"retraining.{key}", table.get(key, getattr(defaults, key)), kind)

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
        promotion=choice(path, "retraining.promotion", table.get("promotion", defaults.promotion), PROMOTION_MODES),
        approval_timeout_hours=hours(
            path,
            "retraining.approval_timeout_hours",
            table.get("approval_timeout_hours", defaults.approval_timeout_hours),
        ),
    )
    for key in ("training_days", "realized_lookback_days"):  # timedelta(days=...) from interval ends
        if getattr(policy, key) > MAX_DAYS:
            raise ConfigError(f"{path}: 'retraining.{key}' must be <= {MAX_DAYS} days, got {getattr(policy, key)}")
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


def safeguards(path: Path, table: dict, task: str) -> Safeguards:
    """[safeguards] is optional; a key set to false/omitted where noted turns that check off."""
    defaults = Safeguards()

    def fraction(key: str) -> float | None:
        value = table.get(key, getattr(defaults, key))
        if value is None or value is False:  # `min_score_std_ratio = false` turns the rule off
            return None
        value = float(expect(path, f"safeguards.{key}", value, (int, float)))
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{path}: 'safeguards.{key}' must be a fraction in [0, 1] (or false), got {value}")
        return value

    def pair(key: str) -> tuple[float, float] | None:
        value = table.get(key)
        if value is None or value == []:  # [] turns it off
            return None
        expect(path, f"safeguards.{key}", value, list)
        if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{path}: 'safeguards.{key}' must be [low, high] numbers, got {value!r}")
        if value[0] > value[1]:
            raise ConfigError(f"{path}: 'safeguards.{key}' low must not exceed high, got {value!r}")
        return float(value[0]), float(value[1])

    if "score_range" in table and task == "binary":
        raise ConfigError(f"{path}: 'safeguards.score_range' applies to regression; binary scores are always [0, 1]")
    min_rows = expect(
        path,
        "safeguards.min_rows_for_distribution_check",
        table.get("min_rows_for_distribution_check", defaults.min_rows_for_distribution_check),
        int,
    )
    if min_rows < 2:
        raise ConfigError(f"{path}: 'safeguards.min_rows_for_distribution_check' must be at least 2, got {min_rows}")
    return Safeguards(
        fallback=expect(path, "safeguards.fallback", table.get("fallback", defaults.fallback), bool),
        min_score_std_ratio=fraction("min_score_std_ratio"),
        max_majority_share=fraction("max_majority_share") if task == "binary" else None,
        min_rows_for_distribution_check=min_rows,
        review_band=pair("review_band"),
        score_range=pair("score_range"),
    )


def explain_settings(path: Path, table: dict) -> ExplainSettings:
    top_k = expect(path, "explain.top_k", table.get("top_k", ExplainSettings.top_k), int)
    if top_k < 1:
        raise ConfigError(f"{path}: 'explain.top_k' must be at least 1, got {top_k}")
    chosen = [key for key in ("min_score", "top_fraction") if key in table]
    if len(chosen) != 1:
        raise ConfigError(
            f"{path}: [explain] needs exactly one of 'min_score' (explain rows scoring at least this) or "
            f"'top_fraction' (explain the highest-scoring fraction; 1.0 = every row), got {chosen or 'neither'}"
        )
    key = chosen[0]
    value = float(expect(path, f"explain.{key}", table[key], (int, float)))
    if key == "top_fraction" and not 0.0 < value <= 1.0:
        raise ConfigError(f"{path}: 'explain.top_fraction' must be in (0, 1], got {value}")
    return ExplainSettings(top_k=top_k, **{key: value})


def alert_settings(path: Path, table: dict) -> AlertSettings:
    """[alerts] is optional: without it alerts go to <schema>.alerts and the task log only."""
    to = expect(path, "alerts.smtp_to", table.get("smtp_to", []), list)
    if not all(isinstance(address, str) and "@" in address for address in to):
        raise ConfigError(f"{path}: 'alerts.smtp_to' must be a list of e-mail addresses, got {to!r}")
    smtp = expect(path, "alerts.smtp_conn_id", table.get("smtp_conn_id"), (str, type(None)))
    if smtp and not to:
        raise ConfigError(f"{path}: 'alerts.smtp_conn_id' is set but 'alerts.smtp_to' lists no recipient")
    deadline = table.get("scoring_deadline_hours")
    if deadline is not None:
        deadline = hours(path, "alerts.scoring_deadline_hours", deadline)
    return AlertSettings(
        smtp_conn_id=smtp,
        smtp_to=tuple(to),
        slack_webhook_conn_id=expect(
            path, "alerts.slack_webhook_conn_id", table.get("slack_webhook_conn_id"), (str, type(None))
        ),
        scoring_deadline_hours=deadline,
    )


def drift_settings(path: Path, root: Path, drift: dict, registry_dir: str) -> DriftSettings:
    """[drift] and its [drift.trigger] policy: every key checked, ranges enforced."""
    trigger = expect(path, "drift.trigger", drift["trigger"], dict)
    check_keys(path, "drift.trigger", trigger, *settings_keys(DriftPolicy))

    def number(where: str, value: Any, low: float, high: float | None = None) -> float:
        value = float(expect(path, where, value, (int, float)))
        if value < low or (high is not None and value > high):
            bounds = f"[{low}, {high}]" if high is not None else f">= {low}"
            raise ConfigError(f"{path}: '{where}' must be in {bounds}, got {value}")
        return value

    def count(where: str, value: Any) -> int:
        if expect(path, where, value, int) < 1:
            raise ConfigError(f"{path}: '{where}' must be a positive integer, got {value}")
        return value

    def method(key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = expect(path, f"drift.{key}", drift.get(key, default), str)
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
        cooldown_hours=hours(path, "drift.trigger.cooldown_hours", trigger["cooldown_hours"], exclusive=False),
        estimated_metric=choice(
            path, "drift.trigger.estimated_metric", trigger.get("estimated_metric", "auc"), ESTIMATED_METRICS
        ),
        estimated_metric_floor=optional("estimated_metric_floor"),
        estimated_metric_drop=optional("estimated_metric_drop"),
        estimated_metric_std=number(
            "drift.trigger.estimated_metric_std", trigger.get("estimated_metric_std", 3.0), 0.0
        ),
    )
    if policy.breaches > policy.window:
        raise ConfigError(
            f"{path}: 'drift.trigger.breaches' ({policy.breaches}) cannot exceed 'drift.trigger.window' ({policy.window})"
        )
    sample_rows = expect(path, "drift.sample_rows", drift.get("sample_rows", 50_000), int)
    if sample_rows < 100:
        raise ConfigError(f"{path}: 'drift.sample_rows' must be at least 100, got {sample_rows}")
    return DriftSettings(
        reports_dir=root / expect(path, "drift.reports_dir", drift["reports_dir"], str),
        # Default: beside the model artifacts, since a reference belongs to one model version.
        reference_dir=root
        / expect(path, "drift.reference_dir", drift.get("reference_dir", f"{registry_dir}/reference"), str),
        trigger=policy,
        sample_rows=sample_rows,
        seed=expect(path, "drift.seed", drift.get("seed", 42), int),
        numeric_method=method("numeric_method", "ks", NUMERIC_DRIFT_METHODS),
        categorical_method=method("categorical_method", "chisquare", CATEGORICAL_DRIFT_METHODS),
        numeric_threshold=threshold("numeric_threshold"),
        categorical_threshold=threshold("categorical_threshold"),
        prediction_method=method("prediction_method", "wasserstein", PREDICTION_DRIFT_METHODS),
    )
