"""Turn typed rows into model inputs and scores. Shared by training, scoring and offline checks."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig
from driftline.errors import BadModel

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
        self.model = model
        self.explainer = None  # set by the pipeline when [explain] is on
        self._compiled = None
        self.engine = "lightgbm"
        self.compile_seconds = 0.0
        if config.scoring_engine == "compiled":
            self._compile(model)

    def _compile(self, model) -> None:
        from driftline.scoring.compiled import CompileError, compile_model

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


class OutputSanityError(BadModel):
    """The model produced scores that must not be written (NaN, infinite, out of range, collapsed).

    `numbers` carries the figures behind the verdict; they go into the alert.
    """

    def __init__(self, message: str, numbers: dict | None = None):
        super().__init__(message)
        self.numbers = numbers or {}
        self.alert_id: int | None = None


def check_scores(scores: np.ndarray, config: DatasetConfig) -> None:
    """Refuse to write nonsense confidently: every score finite and inside the task's valid range."""
    not_finite = int(np.count_nonzero(~np.isfinite(scores)))
    if not_finite:
        raise OutputSanityError(
            f"{not_finite} of {len(scores)} scores are NaN or infinite; nothing was written for this interval",
            {"scores": len(scores), "not_finite": not_finite},
        )
    if not len(scores):
        return
    low, high = (0.0, 1.0) if config.task == "binary" else (config.safeguards.score_range or (-np.inf, np.inf))
    if scores.min() < low or scores.max() > high:
        outside = int(np.count_nonzero((scores < low) | (scores > high)))
        raise OutputSanityError(
            f"{outside} of {len(scores)} scores outside [{low:g}, {high:g}] (min {scores.min():.6g}, max "
            f"{scores.max():.6g}); nothing was written for this interval",
            {"scores": len(scores), "outside_range": outside, "min": float(scores.min()), "max": float(scores.max()),
             "range": [low, high]},
        )


@dataclass
class ScoreStats:
    """Running mean/variance (Chan et al.'s pairwise merge) and class counts over an interval's chunks."""

    rows: int = 0
    mean: float = 0.0
    m2: float = 0.0
    positives: int = 0

    def add(self, scores: np.ndarray, classes: np.ndarray | None) -> None:
        n = len(scores)
        if n == 0:
            return
        chunk_mean = float(scores.mean())
        chunk_m2 = float(((scores - chunk_mean) ** 2).sum())
        total = self.rows + n
        delta = chunk_mean - self.mean
        self.m2 += chunk_m2 + delta * delta * self.rows * n / total
        self.mean += delta * n / total
        self.rows = total
        if classes is not None:
            self.positives += int(np.count_nonzero(classes))

    def merge(self, other: "ScoreStats") -> None:
        """Fold another interval part's stats into this one (the same pairwise formula as add)."""
        if other.rows == 0:
            return
        total = self.rows + other.rows
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta * delta * self.rows * other.rows / total
        self.mean += delta * other.rows / total
        self.rows = total
        self.positives += other.positives

    def state(self) -> dict:
        """Everything merge needs, JSON-safe (kept per partition in Postgres)."""
        return {"rows": self.rows, "mean": self.mean, "m2": self.m2, "positives": self.positives}

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.rows)) if self.rows else 0.0

    def summary(self, config: DatasetConfig) -> dict:
        result = {"rows": self.rows, "mean": self.mean, "std": self.std}
        if config.task == "binary" and self.rows:
            result["positive_share"] = self.positives / self.rows
            result["majority_share"] = max(self.positives, self.rows - self.positives) / self.rows
        return result


def score_reference(config: DatasetConfig, scores: np.ndarray) -> dict:
    """The model's own score distribution on its holdout: what an interval's scores are compared with."""
    stats = ScoreStats()
    stats.add(np.asarray(scores, dtype="float64"), predicted_class(np.asarray(scores), config))
    return stats.summary(config)


def check_distribution(stats: ScoreStats, reference: dict | None, config: DatasetConfig) -> str:
    """Refuse an interval whose scores collapsed compared with the model's reference distribution.

    Returns what was checked (or why not); raises OutputSanityError with the numbers otherwise.
    """
    rules = config.safeguards
    current = stats.summary(config)
    if stats.rows < rules.min_rows_for_distribution_check:
        return f"skipped: {stats.rows} scored rows < safeguards.min_rows_for_distribution_check"
    problems, skipped = [], []
    numbers = {"interval": current, "reference": reference}
    if rules.min_score_std_ratio is not None:
        if not reference or not reference.get("std"):
            skipped.append("std rule skipped: the model manifest has no score reference")
        else:
            ratio = current["std"] / reference["std"]
            numbers["std_ratio"] = ratio
            if ratio < rules.min_score_std_ratio:
                problems.append(
                    f"score standard deviation {current['std']:.4g} is {ratio:.1%} of the model's reference "
                    f"{reference['std']:.4g} (safeguards.min_score_std_ratio = {rules.min_score_std_ratio:g})"
                )
    if rules.max_majority_share is not None and "majority_share" in current:
        bound = rules.max_majority_share
        if not reference or "majority_share" not in reference:
            skipped.append("majority rule skipped: the model manifest has no score reference")
        elif reference["majority_share"] > bound:
            # The model already predicts one class this often on its holdout: not a collapse signal.
            skipped.append(f"majority rule skipped: the reference majority share {reference['majority_share']:.2%} exceeds it")
        elif current["majority_share"] > bound:
            problems.append(
                f"{current['majority_share']:.2%} of rows get the same predicted class "
                f"(safeguards.max_majority_share = {bound:g}; reference {reference['majority_share']:.2%})"
            )
    if problems:
        raise OutputSanityError(
            "score distribution collapsed: " + "; ".join(problems) + "; the interval keeps its previous contents",
            numbers,
        )
    return "; ".join(["passed", *skipped])


def predicted_class(scores: np.ndarray, config: DatasetConfig) -> np.ndarray | None:
    """0/1 by the configured threshold for binary tasks; None for regression."""
    if config.task != "binary":
        return None
    return (scores >= config.threshold).astype("int16")
