"""Turn typed rows into model inputs and scores. Shared by training, scoring and offline checks."""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pandas as pd

from .config import DatasetConfig

log = logging.getLogger(__name__)

# Compiled scores must equal LightGBM's within this; checked on a sample of every chunk.
COMPILED_TOLERANCE = 1e-9
PARITY_SAMPLE_ROWS = 256


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


_BLOCK_ROWS = 4096


def model_matrix(table, config: DatasetConfig, categories: dict[str, list[str]]) -> np.ndarray:
    """The float64 matrix LightGBM builds from model_frame(), built straight from Arrow columns.

    Categoricals become their index in the training categories (missing or unseen -> NaN), which is
    what LightGBM does internally with a pandas categorical, so the scores are bit-identical.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for feature in config.features:
        column = table[feature.name]
        if feature.type == "categorical":
            column = pc.index_in(column, value_set=pa.array(categories[feature.name], type=pa.string()))
        columns.append(pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy(zero_copy_only=False))
    # Filled in blocks of rows so each block of the row-major matrix stays in cache while every
    # column is written into it (3x faster than writing whole strided columns).
    matrix = np.empty((table.num_rows, len(columns)), dtype="float64")
    for first in range(0, table.num_rows, _BLOCK_ROWS):
        block = matrix[first : first + _BLOCK_ROWS]
        for position, values in enumerate(columns):
            block[:, position] = values[first : first + _BLOCK_ROWS]
    return matrix


def predict(booster, rows, config: DatasetConfig, categories: dict[str, list[str]]) -> np.ndarray:
    """Scores for typed rows (a pandas DataFrame or an Arrow table): probability of the positive
    class (binary) or the value (regression)."""
    if len(rows) == 0:
        return np.empty(0, dtype="float64")
    features = model_frame(rows, config, categories) if isinstance(rows, pd.DataFrame) else model_matrix(rows, config, categories)
    return np.asarray(booster.predict(features, num_threads=_threads(config)), dtype="float64")


def _threads(config: DatasetConfig) -> int:
    return int(config.lightgbm_params.get("num_threads", 0))


class Scorer:
    """Scores Arrow rows with one loaded model through the configured engine ([scoring] engine).

    "compiled" predicts with the trees compiled by lleaves; if compiling fails, or the compiled
    scores on a sample of a chunk differ from LightGBM's by more than COMPILED_TOLERANCE, it logs
    a warning and scores with LightGBM from then on, so the scores written are always LightGBM's
    within the tolerance.
    """

    def __init__(self, model, config: DatasetConfig):
        self._booster = model.booster
        self._categories = model.manifest["categories"]
        self._config = config
        self._compiled = None
        self.engine = "lightgbm"
        self.compile_seconds = 0.0
        if config.scoring_engine == "compiled":
            self._compile(model)

    def _compile(self, model) -> None:
        from .compiled import CompileError, compile_model

        started = time.perf_counter()
        try:
            if model.text is None or model.sha256 is None:
                raise CompileError("the model was not loaded through the registry (no verified text)")
            self._compiled = compile_model(model.text, model.sha256)
            self.engine = "compiled"
        except CompileError as exc:
            log.warning(
                "model version %s: compiled scoring unavailable (%s); scoring with LightGBM instead "
                "(slower, same scores). Set [scoring] engine = \"lightgbm\" to silence this.",
                model.version,
                exc,
            )
        self.compile_seconds = time.perf_counter() - started

    def predict(self, rows) -> np.ndarray:
        """Scores for typed Arrow rows."""
        if rows.num_rows == 0:
            return np.empty(0, dtype="float64")
        matrix = model_matrix(rows, self._config, self._categories)
        if self._compiled is None:
            return np.asarray(self._booster.predict(matrix, num_threads=_threads(self._config)), dtype="float64")
        scores = np.asarray(self._compiled.predict(matrix, n_jobs=_threads(self._config) or os.cpu_count()), dtype="float64")
        sample = np.unique(np.linspace(0, len(matrix) - 1, min(len(matrix), PARITY_SAMPLE_ROWS)).astype(np.int64))
        expected = np.asarray(self._booster.predict(matrix[sample], num_threads=1), dtype="float64")
        gap = float(np.max(np.abs(scores[sample] - expected), initial=0.0))
        if not gap <= COMPILED_TOLERANCE:  # NaN counts as a mismatch too
            log.warning(
                "compiled scores differ from LightGBM's by %.3g (> %.0e) on a sample; scoring with LightGBM "
                "from now on. Please report this with the model artifact.",
                gap,
                COMPILED_TOLERANCE,
            )
            self._compiled, self.engine = None, "lightgbm"
            return np.asarray(self._booster.predict(matrix, num_threads=_threads(self._config)), dtype="float64")
        return scores


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
