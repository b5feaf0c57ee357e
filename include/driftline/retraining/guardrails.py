"""retrain_model's guardrails, pure: whether a candidate beats the champion on the same holdout, by
how much, with sane predictions and no segment or metric regressing. Plain values in, reasons out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.config import METRIC_DIRECTIONS, DatasetConfig
from driftline.training import evaluate


def better_by(metric: str, candidate: float, champion: float) -> float:
    """How much better the candidate is (positive) or worse (negative), whatever the metric's direction."""
    return candidate - champion if METRIC_DIRECTIONS[metric] == "higher" else champion - candidate


def prediction_problems(config: DatasetConfig, scores: np.ndarray) -> list[str]:
    """Sanity of the candidate's holdout predictions: finite, in range, not constant."""
    problems = []
    if not np.all(np.isfinite(scores)):
        problems.append(f"{int(np.sum(~np.isfinite(scores)))} holdout predictions are NaN or infinite")
    elif config.task == "binary" and (scores.min() < 0 or scores.max() > 1):
        problems.append(f"holdout predictions outside [0, 1]: min {scores.min():.4g}, max {scores.max():.4g}")
    if len(scores) and np.all(np.isfinite(scores)) and np.ptp(scores) == 0:
        problems.append(f"all holdout predictions are the same value {scores[0]:.4g}")
    return problems


def segment_metrics(config: DatasetConfig, holdout: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """Primary metric per value of retraining.segment, for segments with enough holdout rows."""
    policy = config.retraining
    if policy.segment is None:
        return {}
    result = {}
    labels = holdout[config.target].to_numpy()
    segments = holdout[policy.segment].astype("string").fillna("<missing>").to_numpy()
    for value in sorted(set(segments)):
        mask = segments == value
        if mask.sum() < policy.min_segment_rows:
            continue
        metrics = evaluate(config, labels[mask], scores[mask])
        if policy.metric in metrics:  # auc needs both classes in the segment
            result[str(value)] = metrics[policy.metric]
    return result


def guardrail_failures(
    config: DatasetConfig,
    training_rows: int,
    candidate: dict,
    champion: dict | None,
    candidate_scores: np.ndarray,
) -> list[str]:
    """Every reason not to promote; empty means the candidate wins and passes all guardrails.

    candidate / champion: {"version", "metrics", "segments"} evaluated on the same holdout.
    """
    policy = config.retraining
    metric = policy.metric
    failures = []
    if training_rows < policy.min_training_rows:
        failures.append(
            f"only {training_rows} training rows (retraining.min_training_rows = {policy.min_training_rows})"
        )
    value = candidate["metrics"].get(metric)
    if value is None:
        undefined = (
            "undefined: the holdout predictions are not all finite"
            if not np.all(np.isfinite(candidate_scores))
            else metric_text(candidate["metrics"], metric)
        )
        failures.append(f"{metric} is {undefined}")
        return failures + prediction_problems(config, candidate_scores)
    if policy.min_metric is not None and better_by(metric, value, policy.min_metric) < 0:
        failures.append(f"{metric} {value:.4f} does not reach retraining.min_metric {policy.min_metric}")
    failures.extend(prediction_problems(config, candidate_scores))
    if champion is None:
        return failures
    if candidate["version"] == champion["version"]:
        failures.append(f"candidate is the champion v{champion['version']} itself (same sha256: same data and seed)")
        return failures
    champion_value = champion["metrics"].get(metric)  # undefined when the champion's own scores are not finite
    if champion_value is not None and better_by(metric, value, champion_value) <= policy.min_improvement:
        failures.append(
            f"{metric} {value:.4f} does not beat champion v{champion['version']} {champion_value:.4f} "
            f"by more than retraining.min_improvement {policy.min_improvement}"
        )
    for other, theirs in champion["metrics"].items():
        ours = candidate["metrics"].get(other)
        if other != metric and ours is not None and better_by(other, ours, theirs) < -policy.max_regression:
            failures.append(
                f"{other} {ours:.4f} is worse than champion {theirs:.4f} by more than retraining.max_regression "
                f"{policy.max_regression}"
            )
    for segment, theirs in champion["segments"].items():
        ours = candidate["segments"].get(segment)
        if ours is not None and better_by(metric, ours, theirs) < -policy.max_regression:
            failures.append(
                f"segment {policy.segment}={segment}: {metric} {ours:.4f} is worse than champion {theirs:.4f} "
                f"by more than retraining.max_regression {policy.max_regression}"
            )
    return failures


def metric_text(metrics: dict, metric: str) -> str:
    """A metric for a reason text: its value, or what is missing that leaves it undefined (never "nan")."""
    value = metrics.get(metric)
    if value is not None and np.isfinite(value):
        return f"{value:.4f}"
    if not metrics:
        return "not evaluated (no fair holdout, or non-finite predictions)"
    if metric == "auc":
        return "undefined: the holdout has one class only (auc needs both)"
    return "undefined on the holdout"


def verdict_text(validation: dict) -> str:
    """One line for the promotion event: both models' primary metric on the shared holdout."""
    metric = validation["metric"]
    text = f"candidate v{validation['version']} {metric} {metric_text(validation['candidate']['metrics'], metric)}"
    champion = validation["champion"]
    if champion:
        text += f" vs champion v{champion['version']} {metric_text(champion['metrics'], metric)}"
    holdout = validation["holdout"]
    if not holdout["rows"]:
        return text + " (no fair holdout rows)"
    return text + f" on shared holdout {holdout['start'][:16]}..{holdout['end'][:16]} ({holdout['rows']} rows)"
