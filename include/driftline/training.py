"""Train a LightGBM model on labelled history with a time-based holdout, and describe it."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from dataclasses import dataclass
from importlib.metadata import version as package_version

import logging

import numpy as np
import pandas as pd

from .config import DatasetConfig
from .scoring import model_frame, score_reference

log = logging.getLogger(__name__)


class TrainingError(ValueError):
    """Labelled data unusable for training; the message says what is missing."""


@dataclass
class TrainedModel:
    model_text: str
    manifest: dict


def read_table(location: str, config: DatasetConfig | None = None) -> pd.DataFrame:
    """Read a whole (small) labelled table (CSV, CSV.gz or Parquet) under the reading contract of
    sources.read_table: the config's columns typed as for scoring, its [source] encoding and
    null_values applied. Rows that fail reading (malformed lines, unparseable cells) are left out and
    counted in `frame.attrs["reading"]` (rows_in, left_out by reason code); no row data is logged.
    Without a config (ad-hoc use) the default reading options apply and every column is typed
    auto: numbers where every cell is one, else text."""
    from .sources import InputMissingError, local_path
    from .sources import read_table as read_whole_table

    path = local_path(location)
    if not path.exists():
        raise TrainingError(f"labelled data not found: {path}")
    try:
        read = read_whole_table(location, config)
    except InputMissingError as exc:
        raise TrainingError(f"labelled data not found: {path}") from exc
    frame = read.clean()
    left_out = {code: count for code, count in read.reasons.items()}
    if left_out:
        log.warning("%s: %d of %d rows left out while reading: %s", path, read.rows_in - len(frame), read.rows_in,
                    ", ".join(f"{code} x{count}" for code, count in sorted(left_out.items())))
    frame.attrs["reading"] = {"rows_in": read.rows_in, "left_out": left_out}
    return frame


def data_checksum(frame: pd.DataFrame) -> str:
    """sha256 over the rows' content, independent of file format."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _git_commit(directory) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def evaluate(config: DatasetConfig, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Holdout metrics for the task type."""
    from sklearn import metrics

    if config.task == "binary":
        clipped = np.clip(scores, 1e-15, 1 - 1e-15)
        result = {
            "log_loss": float(metrics.log_loss(labels, clipped, labels=[0, 1])),
            "accuracy": float(metrics.accuracy_score(labels, scores >= config.threshold)),
        }
        if len(np.unique(labels)) == 2:
            result["auc"] = float(metrics.roc_auc_score(labels, scores))
        return result
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(labels, scores))),
        "mae": float(metrics.mean_absolute_error(labels, scores)),
    }


def labelled_rows(config: DatasetConfig, history: pd.DataFrame) -> pd.DataFrame:
    """Typed labelled rows in a stable order (event time, then key), so a split is reproducible."""
    required = [config.event_time, config.target, *config.feature_names]
    missing = [c for c in required if c not in history.columns]
    if missing:
        raise TrainingError(f"labelled history lacks column(s) {missing} required by {config.path.name}")
    history = history.dropna(subset=[config.target]).copy()
    if len(history) < 100:
        raise TrainingError(f"only {len(history)} labelled rows; need at least 100 to train")
    history[config.event_time] = pd.to_datetime(history[config.event_time], utc=True)
    for name in config.categorical_features:
        history[name] = history[name].astype("string")
    return history.sort_values([config.event_time, config.entity_key], kind="stable").reset_index(drop=True)


def time_split(config: DatasetConfig, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows to fit on, newest holdout_fraction of rows to evaluate on) of labelled_rows output."""
    cut = int(len(rows) * (1 - config.holdout_fraction))
    return rows.iloc[:cut], rows.iloc[cut:]


def train(config: DatasetConfig, history: pd.DataFrame) -> TrainedModel:
    """Fit on the older rows, evaluate on the newest holdout_fraction of them (by event time)."""
    import lightgbm as lgb

    required = [config.event_time, config.target, *config.feature_names]
    history = labelled_rows(config, history)
    train_rows, holdout_rows = time_split(config, history)

    categories = {
        f.name: list(f.categories) if f.categories else sorted(train_rows[f.name].dropna().unique())
        for f in config.features
        if f.type == "categorical"
    }
    train_x = model_frame(train_rows, config, categories)
    params = {"seed": 42, "deterministic": True, "verbose": -1, **config.lightgbm_params}
    dataset = lgb.Dataset(train_x, label=train_rows[config.target].to_numpy(), free_raw_data=True)
    booster = lgb.train(params, dataset, num_boost_round=config.num_boost_round)
    holdout_scores = booster.predict(model_frame(holdout_rows, config, categories))
    metrics = evaluate(config, holdout_rows[config.target].to_numpy(), holdout_scores)

    manifest = {
        "dataset": config.name,
        "task": config.task,
        "features": [{"name": f.name, "type": f.type} for f in config.features],
        "categories": categories,
        "params": params,
        "num_boost_round": config.num_boost_round,
        "metrics": metrics,
        # The holdout's score distribution: score_batch's collapse check compares each interval with it.
        "score_reference": score_reference(config, holdout_scores),
        "data_checksum": data_checksum(history[[config.entity_key, *required]]),
        "training_window": {
            "start": train_rows[config.event_time].min().isoformat(),
            "end": train_rows[config.event_time].max().isoformat(),
            "holdout_start": holdout_rows[config.event_time].min().isoformat(),
            "holdout_end": holdout_rows[config.event_time].max().isoformat(),
        },
        "rows": {"train": int(len(train_rows)), "holdout": int(len(holdout_rows))},
        "git_commit": _git_commit(config.root),
        "libraries": {
            "python": platform.python_version(),
            **{name: package_version(name) for name in ("lightgbm", "pandas", "numpy", "scikit-learn")},
        },
    }
    return TrainedModel(model_text=booster.model_to_string(), manifest=manifest)
