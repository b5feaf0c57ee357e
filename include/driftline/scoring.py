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


def model_matrix(table, config: DatasetConfig, categories: dict[str, list[str]]) -> np.ndarray:
    """The float64 matrix LightGBM builds from model_frame(), built straight from Arrow columns.

    Categoricals become their index in the training categories (missing or unseen -> NaN), which is
    what LightGBM does internally with a pandas categorical, so the scores are bit-identical.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    matrix = np.empty((table.num_rows, len(config.features)), dtype="float64")
    for position, feature in enumerate(config.features):
        column = table[feature.name]
        if feature.type == "categorical":
            column = pc.index_in(column, value_set=pa.array(categories[feature.name], type=pa.string()))
        matrix[:, position] = pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy(zero_copy_only=False)
    return matrix


def predict(booster, rows, config: DatasetConfig, categories: dict[str, list[str]]) -> np.ndarray:
    """Scores for typed rows (a pandas DataFrame or an Arrow table): probability of the positive
    class (binary) or the value (regression)."""
    if len(rows) == 0:
        return np.empty(0, dtype="float64")
    threads = int(config.lightgbm_params.get("num_threads", 0))
    features = model_frame(rows, config, categories) if isinstance(rows, pd.DataFrame) else model_matrix(rows, config, categories)
    return np.asarray(booster.predict(features, num_threads=threads), dtype="float64")


class OutputSanityError(RuntimeError):
    """The model produced scores that must not be written (NaN, infinite, out of range)."""


def check_scores(scores: np.ndarray, config: DatasetConfig) -> None:
    """Refuse to write nonsense confidently: every score finite, probabilities inside [0, 1]."""
    not_finite = int(np.count_nonzero(~np.isfinite(scores)))
    if not_finite:
        raise OutputSanityError(
            f"{not_finite} of {len(scores)} scores are NaN or infinite; nothing was written for this interval"
        )
    if config.task == "binary" and len(scores) and (scores.min() < 0.0 or scores.max() > 1.0):
        raise OutputSanityError(
            f"scores outside [0, 1] (min {scores.min():.6g}, max {scores.max():.6g}); nothing was written"
        )


def predicted_class(scores: np.ndarray, config: DatasetConfig) -> np.ndarray | None:
    """0/1 by the configured threshold for binary tasks; None for regression."""
    if config.task != "binary":
        return None
    return (scores >= config.threshold).astype("int16")
