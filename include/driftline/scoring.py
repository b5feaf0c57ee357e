"""Turn typed rows into model inputs and scores. Shared by training, scoring and offline checks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import DatasetConfig


def model_frame(frame: pd.DataFrame, config: DatasetConfig, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Feature columns in config order; categoricals use the model's training categories.

    Values never seen in training become missing, which LightGBM routes like a missing value.
    """
    data = {}
    for feature in config.features:
        column = frame[feature.name]
        if feature.type == "categorical":
            data[feature.name] = pd.Categorical(column, categories=categories[feature.name])
        else:
            data[feature.name] = column.astype("float64", copy=False)
    return pd.DataFrame(data, index=frame.index)


def predict(booster, frame: pd.DataFrame, config: DatasetConfig, categories: dict[str, list[str]]) -> np.ndarray:
    """Scores for typed rows: probability of the positive class (binary) or the value (regression)."""
    if frame.empty:
        return np.empty(0, dtype="float64")
    threads = int(config.lightgbm_params.get("num_threads", 0))
    return np.asarray(booster.predict(model_frame(frame, config, categories), num_threads=threads), dtype="float64")


def predicted_class(scores: np.ndarray, config: DatasetConfig) -> np.ndarray | None:
    """0/1 by the configured threshold for binary tasks; None for regression."""
    if config.task != "binary":
        return None
    return (scores >= config.threshold).astype("int16")
