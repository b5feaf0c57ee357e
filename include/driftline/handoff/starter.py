"""`driftline init-config`: a starting dataset config from a model and a history file, so a newcomer
edits a config that already binds the model's features rather than writing one from nothing.

Features come from the model, in its order; a feature is categorical when the model encodes it so
(LightGBM categorical_feature, an encoder in a scikit-learn pipeline) or its history column is text;
categories are the model's levels (else the history's values); nothing else is guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from driftline.errors import BadInput
from driftline.handoff.contract import model_features, model_levels
from driftline.handoff.files import read_model_file

_MAX_LEVELS = 100  # more distinct text values than this: listed without categories (review them)


def _history(path: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{path}: cannot read the history file: {type(exc).__name__}") from exc


def feature_tables(model, kind: str, history: pd.DataFrame) -> list[tuple[str, dict]]:
    """(name, [features.<name>] keys) per model feature, in the model's order."""
    levels = model_levels(model, kind)
    tables = []
    for name in model_features(model, kind):
        column = history[name] if name in history.columns else None
        learned = levels.get(name)
        text = column is not None and not pd.api.types.is_numeric_dtype(column)
        if (learned and any(isinstance(v, str) for v in learned)) or text or (kind == "lightgbm" and name in levels):
            seen = column.dropna().unique() if column is not None else []
            values = [str(v) for v in learned] if learned else sorted(map(str, seen))
            keys: dict[str, Any] = {"type": "categorical"}
            if len(values) <= _MAX_LEVELS:
                keys["categories"] = values
        else:
            keys = {"type": "numeric"}
        if column is not None and not column.isna().any():
            keys["nullable"] = False
        tables.append((name, keys))
    return tables


def starting_config(model_path: str, history_path: str, options) -> str:
    """The TOML text of a starting config (options: name, entity_key, event_time, target, task, input,
    labels; relative paths resolve against the project root, the parent of the config's folder)."""
    model_file = read_model_file(model_path)
    history = _history(history_path)
    for role in ("entity_key", "event_time", "target"):
        if getattr(options, role) not in history.columns:
            raise BadInput(f"{history_path}: no column {getattr(options, role)!r} (--{role.replace('_', '-')})")
    name = options.name
    lines = [
        f"# Starting config written by `driftline init-config` from {Path(model_path).name} and {Path(history_path).name}.",
        "# Review every key, then commit it. Relative paths resolve against the parent of this file's folder.",
        "",
        "[dataset]",
        f"name = {json.dumps(name)}",
        f"task = {json.dumps(options.task)}",
        f"entity_key = {json.dumps(options.entity_key)}",
        f"event_time = {json.dumps(options.event_time)}",
        f"target = {json.dumps(options.target)}",
        "",
        "# The model's features, in the model's order (the feature contract import-model checks).",
    ]
    for feature, keys in feature_tables(model_file.model, model_file.kind, history):
        lines.append(f"[features.{json.dumps(feature)}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in keys.items())
        lines.append("")
    lines += [
        "[source]",
        f"input = {json.dumps(options.input or f'data/{name}/input/{{interval_start:%Y-%m-%d}}.csv')}",
        f"labels = {json.dumps(options.labels or f'data/{name}/labels.parquet')}",
        f"history = {json.dumps(history_path)}",
        "",
        "[schedule]",
        'cron = "0 0 * * *"',
        "",
        "[database]",
        f'schema = "{name}"',
        "",
        "[validation]",
        f'suite = "expectations/{name}.json"',
        "quarantine_budget = 0.05",
        "",
        "[model]",
        f'registry_dir = "models/{name}"',
        "",
        "[drift]",
        f'reports_dir = "reports/{name}"',
        f'reference_dir = "models/{name}/reference"',
        "",
        "[drift.trigger]",
        "drifted_share = 0.3             # breach: share of drifted features >= this ...",
        "prediction_drift = 0.1          # ... or prediction drift >= this",
        "effect_size_floor = 0.1",
        "breaches = 2                    # retrain when 2 of the last 3 monitored intervals breached",
        "window = 3",
        "cooldown_hours = 24",
        "",
        "[retraining]",
        f'metric = "{"auc" if options.task == "binary" else "rmse"}"',
        "",
    ]
    return "\n".join(lines)


def write_starting_config(model_path: str, history_path: str, output: str, options, overwrite: bool = False) -> Path:
    path = Path(output)
    if path.exists() and not overwrite:
        raise BadInput(f"{path} exists; pass --overwrite to replace it")
    text = starting_config(model_path, history_path, options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
