"""monitor_drift's drift statistics, computed from the two samples themselves (no Evidently report).

Each column's statistic, threshold and verdict are the ones Evidently's ValueDrift gives for the
same method and threshold (its legacy stattests: same cleaning, same formulas, same comparison), so
the drift decision does not wait for the HTML report, which monitor_drift renders in its own task
(drift.html). The default methods (ks, chisquare, wasserstein) are computed here with scipy (~0.3
CPU-s for 50k vs 50k rows); any other configured method is Evidently's own function, which imports
Evidently (seconds) only when such a method is configured. tests/unit/drift/test_statistics.py
holds each to Evidently's verdict.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig
from driftline.drift.errors import DriftError
from driftline.drift.policy import FeatureResult, counts_as_drift, effect_size

# The model's score travels beside the features in both samples, under this column name.
SCORE_COLUMN = "model_score"

# Evidently's default threshold per method (its StatTest.default_threshold; 0.1 for the others).
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "mannw": 0.05, "t_test": 0.05}


def _ks(reference: pd.Series, current: pd.Series, threshold: float) -> tuple[float, bool]:
    from scipy.stats import ks_2samp

    p_value = float(ks_2samp(reference, current)[1])
    return p_value, p_value <= threshold


def _chisquare(reference: pd.Series, current: pd.Series, threshold: float) -> tuple[float, bool]:
    from scipy.stats import chisquare

    ref_counts, cur_counts = reference.value_counts(), current.value_counts()
    keys = list(pd.Index(cur_counts.index).union(ref_counts.index, sort=False))
    expected = ref_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64") * (len(current) / len(reference))
    observed = cur_counts.reindex(keys, fill_value=0).to_numpy(dtype="float64")
    p_value = float(chisquare(observed, expected)[1])
    return p_value, p_value < threshold


def _wasserstein(reference: pd.Series, current: pd.Series, threshold: float) -> tuple[float, bool]:
    from scipy.stats import wasserstein_distance

    value = float(wasserstein_distance(reference, current) / max(float(np.std(reference)), 0.001))
    return value, value >= threshold


_NATIVE: dict[str, Callable[[pd.Series, pd.Series, float], tuple[float, bool]]] = {
    "ks": _ks,
    "chisquare": _chisquare,
    "wasserstein": _wasserstein,
}


def default_threshold(method: str) -> float:
    """Evidently's threshold for the method when the config leaves it out."""
    return DEFAULT_THRESHOLDS.get(method, 0.1)


def column_drift(
    reference: pd.Series, current: pd.Series, column_type: str, method: str, threshold: float | None
) -> tuple[float, float, bool]:
    """(statistic, threshold, drifted) of one column, as Evidently's ValueDrift computes them:
    infinities and missing values left out; an empty side is a DriftError naming the column."""
    threshold = default_threshold(method) if threshold is None else float(threshold)
    ref = reference.replace([-np.inf, np.inf], np.nan).dropna()
    cur = current.replace([-np.inf, np.inf], np.nan).dropna()
    if ref.empty or cur.empty:
        side = "reference" if ref.empty else "interval"
        raise DriftError(f"column {reference.name!r} has no values in the {side} sample: no drift statistic for it")
    native = _NATIVE.get(method)
    if native is not None:
        statistic, drifted = native(ref, cur, threshold)
    else:
        statistic, drifted = _evidently(ref, cur, column_type, method, threshold)
    return float(statistic), threshold, bool(drifted)


def _evidently(ref: pd.Series, cur: pd.Series, column_type: str, method: str, threshold: float) -> tuple[float, bool]:
    """A method this module does not compute: Evidently's own stattest function (imports Evidently)."""
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    kind = ColumnType.Numerical if column_type == "numeric" else ColumnType.Categorical
    result = get_stattest(ref, cur, kind, method)(ref, cur, kind, threshold)
    return float(result.drift_score), bool(result.drifted)


def column_methods(config: DatasetConfig) -> list[tuple[str, str, str, float | None]]:
    """(column, type, method, configured threshold or None) of each feature."""
    settings = config.drift
    return [
        (f.name, f.type, settings.numeric_method, settings.numeric_threshold)
        if f.type == "numeric"
        else (f.name, f.type, settings.categorical_method, settings.categorical_threshold)
        for f in config.features
    ]


def drift_results(
    config: DatasetConfig, reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[list[FeatureResult], FeatureResult]:
    """Per-feature results (with effect sizes) and the prediction drift of the two samples
    (drift.report.evidently_frame columns plus SCORE_COLUMN)."""
    floor = config.drift.trigger.effect_size_floor
    features = []
    for name, column_type, method, configured in column_methods(config):
        statistic, threshold, drifted = column_drift(reference[name], current[name], column_type, method, configured)
        effect = effect_size(reference[name], current[name], column_type)
        features.append(
            FeatureResult(
                name,
                column_type,
                method,
                _finite(statistic),
                _finite(threshold),
                drifted,
                effect,
                counts_as_drift(drifted, effect, floor),
            )
        )
    settings = config.drift
    statistic, _, drifted = column_drift(
        reference[SCORE_COLUMN],
        current[SCORE_COLUMN],
        "numeric",
        settings.prediction_method,
        settings.trigger.prediction_drift,
    )
    finite = _finite(statistic)
    prediction = FeatureResult(
        SCORE_COLUMN,
        "numeric",
        settings.prediction_method,
        0.0 if finite is None else finite,
        settings.trigger.prediction_drift,
        drifted,
        finite,
        drifted,
    )
    return features, prediction


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
