"""Output checks: refuse scores that must not be written (per chunk) or an interval whose scores collapsed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftline.config import DatasetConfig
from driftline.errors import BadModel


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
            {
                "scores": len(scores),
                "outside_range": outside,
                "min": float(scores.min()),
                "max": float(scores.max()),
                "range": [low, high],
            },
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

    def merge(self, other: ScoreStats) -> None:
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
            skipped.append(
                f"majority rule skipped: the reference majority share {reference['majority_share']:.2%} exceeds it"
            )
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
