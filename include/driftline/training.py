"""Train a LightGBM model on labelled history with a time-based holdout, describe it, and register
the first champion (`driftline train`)."""

from __future__ import annotations

import logging
import platform
import subprocess
from dataclasses import dataclass
from importlib.metadata import version as package_version

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig, load_config
from driftline.labelled import data_checksum, holdout_split, usable_rows
from driftline.scoring.features import FeatureBinding, model_frame
from driftline.scoring.safeguards import score_reference

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    model_text: str
    manifest: dict


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


def train(config: DatasetConfig, history: pd.DataFrame) -> TrainedModel:
    """Fit on the older rows, evaluate on the newest holdout_fraction of them (by event time; a seeded
    split when the rows have no time order at the split point: labelled.holdout_split)."""
    import lightgbm as lgb

    history, excluded = usable_rows(config, history)
    train_rows, holdout_rows, split = holdout_split(config, history)

    categories = {
        f.name: list(f.categories) if f.categories else sorted(train_rows[f.name].dropna().unique())
        for f in config.features
        if f.type == "categorical"
    }
    binding = FeatureBinding.of_config(config, categories)
    train_x = model_frame(train_rows, binding)
    params = {"seed": 42, "deterministic": True, "verbose": -1, **config.lightgbm_params}
    dataset = lgb.Dataset(train_x, label=train_rows[config.target].to_numpy(), free_raw_data=True)
    booster = lgb.train(params, dataset, num_boost_round=config.num_boost_round)
    holdout_scores = booster.predict(model_frame(holdout_rows, binding))
    manifest = {
        "dataset": config.name,
        "task": config.task,
        **binding.manifest_fields(),  # what scoring binds the config's columns to, by name
        "params": params,
        "num_boost_round": config.num_boost_round,
        **describe_fit(config, history, train_rows, holdout_rows, holdout_scores, excluded, split),
    }
    return TrainedModel(model_text=booster.model_to_string(), manifest=manifest)


def describe_fit(
    config: DatasetConfig,
    history: pd.DataFrame,
    train_rows: pd.DataFrame,
    holdout_rows: pd.DataFrame,
    holdout_scores: np.ndarray,
    excluded: dict,
    split: dict,
) -> dict:
    """The manifest fields of any fit on a holdout split (driftline's LightGBM, or an imported model's
    recipe): holdout metrics, score reference, calibration, data checksum, windows, libraries."""
    required = [config.event_time, config.target, *config.feature_names]
    metrics = evaluate(config, holdout_rows[config.target].to_numpy(), holdout_scores)
    calibration = None
    if config.task == "binary":
        from driftline.estimation import calibration_uncertainty, chunk_spread, fit_calibration, realized_binary

        # Estimated performance (drift.performance) reads scores through this map; the holdout's own
        # metrics at the threshold are what estimated_metric_drop compares with.
        calibration = fit_calibration(holdout_scores, holdout_rows[config.target].to_numpy())
        if calibration is not None:
            holdout_labels = holdout_rows[config.target].to_numpy()
            calibration["reference"] = realized_binary(holdout_labels, holdout_scores, config.threshold)
            calibration["uncertainty"] = calibration_uncertainty(holdout_scores, holdout_labels, config.threshold)
            # The alert band's raw numbers: each metric's spread over ten time-ordered chunks of the holdout.
            in_time = np.argsort(holdout_rows[config.event_time].to_numpy(), kind="stable")
            calibration["thresholds"] = chunk_spread(holdout_labels[in_time], holdout_scores[in_time], config.threshold)

    return {
        "metrics": metrics,
        # The holdout's score distribution: score_batch's collapse check compares each interval with it.
        "score_reference": score_reference(config, holdout_scores),
        **({"calibration": calibration} if calibration is not None else {}),
        "data_checksum": data_checksum(history[[config.entity_key, *required]]),
        "training_window": {
            "start": train_rows[config.event_time].min().isoformat(),
            "end": train_rows[config.event_time].max().isoformat(),
            "holdout_start": holdout_rows[config.event_time].min().isoformat(),
            "holdout_end": holdout_rows[config.event_time].max().isoformat(),
        },
        "rows": {"train": int(len(train_rows)), "holdout": int(len(holdout_rows))},
        "split": split,  # which split was used, and why
        # Rows of the labelled data left out, by reason code (column names, never values).
        "rows_excluded": excluded,
        "git_commit": _git_commit(config.root),
        "libraries": {
            "python": platform.python_version(),
            **{name: package_version(name) for name in ("lightgbm", "pandas", "numpy", "scikit-learn")},
        },
    }


def train_champion(config_path: str, reason: str = "initial model from `driftline train`") -> dict:
    """Train on the labelled history and register the result as champion (idempotent)."""
    from driftline import db, errors
    from driftline.drift.reference import ensure_reference
    from driftline.labelled import read_table
    from driftline.registry import load_model, register_champion

    config = load_config(config_path)
    history = config.resolve_location(config.history_uri)
    with errors.reading(history):
        trained = train(config, read_table(history, config))
    # Which rows it saw (validation's fair holdout starts after its training_window.end).
    manifest = {
        **trained.manifest,
        "row_selection": {
            "source": "the whole [source] history file",
            "split": trained.manifest["split"]["description"],
        },
    }
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        version, created = register_champion(
            conn, config.db_schema, config.registry_dir, trained.model_text, manifest, reason
        )
        ensure_reference(
            conn, config, load_model(conn, config.db_schema, version, pinned_pickles=config.handoff.pickle_sha256)
        )  # drift reference, once per version
    return {
        "version": version,
        "new_version": created,
        "metrics": trained.manifest["metrics"],
        "rows": trained.manifest["rows"],
        "rows_excluded": trained.manifest["rows_excluded"],
        "registry_dir": str(config.registry_dir),
    }
