"""The manifest of an imported model: what it is (kind, hashes, trusted types, libraries, feature
contract), how it was proven (parity), and what scoring compares it with later (score reference,
calibration and metrics on the labelled rows after its training ended)."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig
from driftline.handoff.files import ModelFile

_LIBRARIES = ("lightgbm", "scikit-learn", "skops", "pandas", "numpy", "mlflow-skinny", "mlflow")


def libraries() -> dict[str, str]:
    """Versions of the libraries that read and score the model here (absent ones are left out)."""
    found = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            found[name] = package_version(name)
        except PackageNotFoundError:
            continue
    return found


def recipe(model_file: ModelFile) -> dict:
    """How retraining rebuilds it (retraining/recipe.py): LightGBM's recorded parameters, or clone() of the estimator."""
    if model_file.kind == "lightgbm":
        booster = model_file.model
        params = {k: v for k, v in booster.params.items() if isinstance(v, (int, float, str, bool, list))}
        return {
            "how": "lightgbm.train with the model file's parameters",
            "params": params,
            "num_boost_round": int(booster.current_iteration()),
        }
    estimator = model_file.model
    steps = [f"{type(s).__module__}.{type(s).__name__}" for _, s in getattr(estimator, "steps", [])] or [
        f"{type(estimator).__module__}.{type(estimator).__name__}"
    ]
    return {"how": "sklearn.base.clone(champion) fitted on the training window", "steps": steps}


def imported_manifest(
    config: DatasetConfig,
    model_file: ModelFile,
    categories: dict[str, list[str]],
    trained_until: pd.Timestamp,
    origin: dict,
) -> dict:
    """The manifest fields that do not depend on scoring (add_evaluation adds those that do)."""
    from driftline.handoff.contract import model_features

    names, types = model_features(model_file.model, model_file.kind), {f.name: f.type for f in config.features}
    manifest: dict[str, Any] = {
        "dataset": config.name,
        "task": config.task,
        "kind": model_file.kind,
        # In the model's own column order: what scoring binds the config's columns to, by name.
        "features": [{"name": name, "type": types[name]} for name in names],
        "categories": categories,
        "feature_contract": {"features": names, "categories": categories},
        "recipe": recipe(model_file),
        "origin": {**origin, "sha256": model_file.sha256},
        # validation's fair holdout starts after it; the notebook's own split is not known to driftline
        "training_window": {"end": trained_until.isoformat()},
        "libraries": libraries(),
    }
    if model_file.kind != "lightgbm":
        manifest["trusted_types"] = list(model_file.trusted_types)
        manifest["positive_label"] = config.positive_label
    if model_file.kind == "lightgbm":
        manifest["params"] = manifest["recipe"]["params"]
        manifest["num_boost_round"] = manifest["recipe"]["num_boost_round"]
    return manifest


def add_evaluation(
    config: DatasetConfig, manifest: dict, unseen: pd.DataFrame, unseen_scores: np.ndarray, sample_scores: np.ndarray
) -> dict:
    """Metrics, score reference and calibration from the labelled rows after the training end
    (unseen), or the score reference of the parity sample when there are none."""
    from driftline.scoring.safeguards import score_reference
    from driftline.training import evaluate

    if len(unseen) == 0:
        return {
            **manifest,
            "metrics": {},
            "score_reference": score_reference(config, sample_scores),
            "rows": {"holdout": 0},
        }
    labels = unseen[config.target].to_numpy()
    manifest = {
        **manifest,
        "metrics": evaluate(config, labels, unseen_scores),
        "score_reference": score_reference(config, unseen_scores),
        "rows": {"holdout": int(len(unseen))},
    }
    manifest["training_window"] = {
        **manifest["training_window"],
        "holdout_start": unseen[config.event_time].min().isoformat(),
        "holdout_end": unseen[config.event_time].max().isoformat(),
    }
    if config.task == "binary":
        from driftline.estimation import calibration_uncertainty, fit_calibration, realized_binary

        calibration = fit_calibration(unseen_scores, labels)
        if calibration is not None:
            calibration["reference"] = realized_binary(labels, unseen_scores, config.threshold)
            calibration["uncertainty"] = calibration_uncertainty(unseen_scores, labels, config.threshold)
            manifest["calibration"] = calibration
    return manifest
