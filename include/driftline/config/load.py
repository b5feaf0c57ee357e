"""load_config: read one dataset's TOML file and build its validated DatasetConfig."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from driftline.config.checks import (
    REQUIRED_SECTIONS,
    SECTIONS,
    check_keys,
    choice,
    column,
    expect,
    non_negative,
    plain_numbers,
)
from driftline.config.handoff import handoff_settings
from driftline.config.model import (
    IDENTIFIER,
    SCORING_ENGINES,
    TASK_TYPES,
    VALIDATION_ENGINES,
    ConfigError,
    DatasetConfig,
)
from driftline.config.monitoring import monitoring_settings
from driftline.config.names import owned_name
from driftline.config.schedule import schedule_settings
from driftline.config.sections import (
    alert_settings,
    drift_settings,
    explain_settings,
    load_features,
    retraining_policy,
    safeguards,
    source_settings,
    sql_input,
)

MAX_CONFIG_BYTES = 1_000_000  # read at every DAG parse: a few kB in practice


def load_config(path: str | os.PathLike) -> DatasetConfig:
    """Load and validate one dataset config file."""
    path = Path(path)
    raw = _read_toml(path)

    plain_numbers(path, raw)
    for section in raw:
        if section not in SECTIONS:
            raise ConfigError(f"{path}: unknown section '[{section}]' (allowed: {', '.join(SECTIONS)})")
    for section in sorted(REQUIRED_SECTIONS):
        if section not in raw:
            raise ConfigError(f"{path}: missing required section '[{section}]'")
    for section, (required, optional) in SECTIONS.items():
        if section != "features":
            check_keys(path, section, raw.get(section, {}), required, optional)

    dataset = raw["dataset"]
    name = expect(path, "dataset.name", dataset["name"], str)
    if not IDENTIFIER.match(name):
        raise ConfigError(f"{path}: 'dataset.name' must be lower_snake_case (got {name!r})")
    task = expect(path, "dataset.task", dataset.get("task", "binary"), str)
    if task not in TASK_TYPES:
        raise ConfigError(f"{path}: 'dataset.task' must be one of {TASK_TYPES}, got {task!r}")
    entity_key = column(path, "dataset.entity_key", dataset["entity_key"])
    event_time = column(path, "dataset.event_time", dataset["event_time"])
    target = column(path, "dataset.target", dataset["target"])
    positive_label = dataset.get("positive_label")
    if positive_label is not None:
        if task != "binary":
            raise ConfigError(f"{path}: 'dataset.positive_label' applies to binary targets; dataset.task is {task!r}")
        if (
            isinstance(positive_label, bool)
            or not isinstance(positive_label, (str, int))
            or not str(positive_label).strip()
        ):
            raise ConfigError(
                f"{path}: 'dataset.positive_label' must be the target value of the positive class as text or an "
                f'integer (e.g. "Yes"), got {positive_label!r}'
            )
        positive_label = str(positive_label).strip()
    label_column = column(path, "source.label_column", raw["source"].get("label_column", target))
    if label_column in (entity_key, "observed_at"):
        raise ConfigError(
            f"{path}: 'source.label_column' is {label_column!r}, which the labels file uses for the "
            "entity key or observed_at; name the column that holds the label"
        )

    features = load_features(path, raw["features"])
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

    timing = schedule_settings(path, schedule)
    schema = owned_name(path, "database.schema", database["schema"])

    budget = float(expect(path, "validation.quarantine_budget", validation["quarantine_budget"], (int, float)))
    if not 0.0 <= budget <= 1.0:
        raise ConfigError(f"{path}: 'validation.quarantine_budget' must be a fraction in [0, 1], got {budget}")

    holdout = float(expect(path, "model.holdout_fraction", model.get("holdout_fraction", 0.2), (int, float)))
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"{path}: 'model.holdout_fraction' must be in (0, 1), got {holdout}")
    chunk_rows = expect(path, "scoring.chunk_rows", scoring.get("chunk_rows", 200_000), int)
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
        input_uri=source["input"] if isinstance(source["input"], str) else sql_input(path, source["input"]),
        labels_uri=source["labels"]
        if isinstance(source["labels"], str)
        else sql_input(path, source["labels"], "labels"),
        history_uri=source["history"]
        if isinstance(source["history"], str)
        else sql_input(path, source["history"], "history"),
        **timing,
        db_url=_db_url(path, database.get("url")),
        db_conn_id=expect(path, "database.conn_id", database.get("conn_id"), (str, type(None))),
        db_schema=schema,
        analyst_role=_analyst_role(path, database.get("analyst_role")),
        suite_path=root / expect(path, "validation.suite", validation["suite"], str),
        quarantine_budget=budget,
        validation_engine=choice(path, "validation.engine", validation.get("engine", "auto"), VALIDATION_ENGINES),
        registry_dir=root / expect(path, "model.registry_dir", model["registry_dir"], str),
        threshold=float(expect(path, "model.threshold", model.get("threshold", 0.5), (int, float))),
        holdout_fraction=holdout,
        num_boost_round=expect(path, "model.num_boost_round", model.get("num_boost_round", 200), int),
        lightgbm_params=dict(expect(path, "model.params", model.get("params", {}), dict)),
        chunk_rows=chunk_rows,
        files_per_partition=non_negative(path, "scoring.files_per_partition", scoring.get("files_per_partition", 0)),
        scoring_engine=choice(path, "scoring.engine", scoring.get("engine", "compiled"), SCORING_ENGINES),
        retraining=retraining_policy(path, raw.get("retraining", {}), task, features),
        safeguards=safeguards(path, raw.get("safeguards", {}), task),
        alerts=alert_settings(path, raw.get("alerts", {})),
        explain=explain_settings(path, raw["explain"]) if "explain" in raw else None,
        monitoring=monitoring_settings(path, raw.get("monitoring", {}), features),
        drift=drift_settings(path, root, raw["drift"], model["registry_dir"]),
        positive_label=positive_label,
        label_column=label_column,
        source=source_settings(path, source),
        handoff=handoff_settings(path, raw.get("handoff", {})),
    )


def _read_toml(path: Path) -> dict:
    """The file's TOML table; ConfigError naming the file for anything that stops it being one: missing,
    unreadable, not UTF-8 (with the line of the first bad byte), not TOML."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except OSError as exc:  # a folder, no permission
        raise ConfigError(f"{path}: config file cannot be read ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; a dataset config is a few kB of TOML")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}, line {line}); save the file as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError as exc:  # arrays or inline tables nested thousands deep
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from exc


def _project_root(config_path: Path) -> Path:
    """Relative paths are resolved against the project root: the parent of the config folder."""
    env_root = os.environ.get("DRIFTLINE_HOME")
    if env_root:
        return Path(env_root).resolve()
    return config_path.resolve().parent.parent


def _db_url(path: Path, value: Any) -> str | None:
    """[database] url may name a server, never hold its password: config files are committed."""
    from driftline.secrets import has_password

    expect(path, "database.url", value, (str, type(None)))
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
    return owned_name(path, "database.analyst_role", value)


def default_config_path() -> Path:
    """The config a command uses when none is given: $DRIFTLINE_CONFIG, else demo.toml in the configs
    folder ($DRIFTLINE_CONFIGS, else config/ in this checkout)."""
    env = os.environ.get("DRIFTLINE_CONFIG")
    if env:
        return Path(env)
    return default_configs_dir() / "demo.toml"


def default_configs_dir() -> Path:
    """The configs folder of a deployment: $DRIFTLINE_CONFIGS, else config/ in this checkout."""
    env = os.environ.get("DRIFTLINE_CONFIGS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "config"
