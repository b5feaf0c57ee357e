"""Estimated performance without labels (binary): confidence-based performance estimation (CBPE).

At registration the champion's scores are calibrated on its holdout (isotonic regression); the map
is stored in the manifest, covered by the scoring hash. For a scored interval, the calibrated score
p_i of each row is the probability that its label is positive, so at the model threshold the
expected confusion matrix is E[TP] = sum of p_i over rows predicted positive, E[FP] = sum of
1 - p_i over them, and E[FN], E[TN] likewise over rows predicted negative; accuracy, precision,
recall and F1 follow, and the expected ROC curve (positives and negatives counted fractionally,
rows in descending score order) gives the expected AUC. The band is where the realized metric of
the same rows falls 95% of the time if labels really are drawn from the calibrated scores: TP and
FN are sums of independent Bernoulli(p_i) (normal approximation, simulated), the AUC's from the
Hanley-McNeil standard error, widened by the calibration's own error (calibration_uncertainty, a
bootstrap of the holdout). Nothing estimated without labels can see a concept shift (the same
features now meaning another label rate). Alert thresholds come from the data (chunk_spread).

Pure math on arrays (numpy; no database): drift.performance stores the estimates per interval and
fills in the realized values as labels arrive. Regression gets drift only (see the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("auc", "accuracy", "precision", "recall", "f1")
COUNTS = ("tp", "fp", "fn", "tn")
BAND_Z = 1.959964  # 95% two-sided
SIMULATIONS = 4000
# Alert thresholds from the data, as NannyML's defaults: the realized metric over CHUNKS consecutive
# chunks of the reference (here the holdout, in time order), mean +- STD_MULTIPLIER standard deviations
# (StandardDeviationThreshold(std_lower_multiplier=3, std_upper_multiplier=3), DefaultChunker: 10 chunks).
CHUNKS = 10
STD_MULTIPLIER = 3.0


@dataclass(frozen=True)
class Estimate:
    metric: str
    value: float
    low: float
    high: float


# -- calibration (pure) -----------------------------------------------------------------------------


def fit_calibration(scores: np.ndarray, labels: np.ndarray) -> dict | None:
    """Isotonic map from score to P(label = 1) fitted on holdout rows, as JSON-ready knots; None when
    the holdout holds one class only (nothing to calibrate against)."""
    # sklearn's isotonic_regression on the tie-averaged points, as IsotonicRegression.fit does, minus
    # its input validation, which cost 2/3 of calibration_uncertainty's 50 refits.
    from sklearn.isotonic import isotonic_regression

    scores, labels = np.asarray(scores, dtype="float64"), np.asarray(labels, dtype="float64")
    if len(scores) == 0 or len(np.unique(labels)) < 2:
        return None
    x, tie, weight = np.unique(scores, return_inverse=True, return_counts=True)
    y = isotonic_regression(np.bincount(tie, weights=labels) / weight, sample_weight=weight, y_min=0.0, y_max=1.0)
    keep = np.ones(len(x), dtype=bool)  # knots inside a flat stretch change nothing in the interpolation
    keep[1:-1] = (y[1:-1] != y[:-2]) | (y[1:-1] != y[2:])
    return {
        "method": "isotonic",
        "x": [float(v) for v in x[keep]],
        "y": [float(v) for v in y[keep]],
        "holdout_rows": int(len(scores)),
    }


def calibration_uncertainty(
    scores: np.ndarray, labels: np.ndarray, threshold: float, resamples: int = 50, seed: int = 42
) -> dict[str, float]:
    """Error of each estimate (metrics; counts as shares of the rows) that comes from the calibration
    itself, as a root mean square: the bootstrap's analogue of the calibration error. The holdout
    stands for the population: the map is refitted on resamples of it, the holdout's scores estimated
    with each, and each estimate compared with the holdout's *realized* metric. So the error of an
    isotonic map fitted in-sample on few rows (too confident, estimates too high) is counted, not only
    its spread. estimate_binary adds it to the sampling band: small holdouts get wide bands."""
    scores, labels = np.asarray(scores, dtype="float64"), np.asarray(labels, dtype="float64")
    realized = realized_binary(labels, scores, threshold)
    rng = np.random.default_rng(seed)
    errors: dict[str, list[float]] = {}
    for _ in range(resamples):
        pick = rng.integers(0, len(scores), len(scores))
        refitted = fit_calibration(scores[pick], labels[pick])
        if refitted is None:
            continue
        for e in estimate_binary(calibrate(refitted, scores), scores, threshold, simulations=0):
            if e.metric in realized:
                share = len(scores) if e.metric in COUNTS else 1.0
                errors.setdefault(e.metric, []).append((e.value - realized[e.metric]) / share)
    return {metric: float(np.sqrt(np.mean(np.square(v)))) for metric, v in errors.items() if len(v) > 1}


def chunk_spread(labels: np.ndarray, scores: np.ndarray, threshold: float, chunk_rows: int | None = None) -> dict:
    """Mean and standard deviation of each realized metric over consecutive chunks of the holdout
    (rows in time order; chunk_rows default: a tenth of them, a last partial chunk left out), as
    JSON-ready {metric: {mean, std, chunks, chunk_rows}}; a metric defined in fewer than 2 chunks is
    left out. Stored in the manifest at registration: alert_band turns it into thresholds."""
    labels, scores = np.asarray(labels, dtype="float64"), np.asarray(scores, dtype="float64")
    size = int(chunk_rows or len(scores) // CHUNKS)
    if size < 1:
        return {}
    values: dict[str, list[float]] = {}
    for start in range(0, len(scores) - size + 1, size):
        realized = realized_binary(labels[start : start + size], scores[start : start + size], threshold)
        for metric in METRICS:
            if metric in realized:
                values.setdefault(metric, []).append(realized[metric])
    return {
        metric: {"mean": float(np.mean(v)), "std": float(np.std(v)), "chunks": len(v), "chunk_rows": size}
        for metric, v in values.items()
        if len(v) >= 2
    }


def alert_band(spread: dict | None, multiplier: float = STD_MULTIPLIER) -> tuple[float, float] | None:
    """(low, high) alert thresholds of one metric from its chunk_spread entry: mean +- multiplier
    standard deviations, clipped to [0, 1]; None without a spread or with multiplier 0 (off)."""
    if not spread or multiplier <= 0:
        return None
    half = multiplier * spread["std"]
    return max(0.0, spread["mean"] - half), min(1.0, spread["mean"] + half)


def calibrate(calibration: dict, scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of scores (piecewise linear between knots, clipped at the ends)."""
    return np.interp(np.asarray(scores, dtype="float64"), calibration["x"], calibration["y"])


# -- estimation (pure) ------------------------------------------------------------------------------


def expected_auc(probabilities: np.ndarray, scores: np.ndarray) -> float | None:
    """AUC of the expected ROC curve: each row counts p as a positive and 1 - p as a negative; tied
    scores move together (one trapezoid), as in sklearn's roc_auc_score."""
    p, s = np.asarray(probabilities, dtype="float64"), np.asarray(scores, dtype="float64")
    positives, negatives = p.sum(), (1 - p).sum()
    if positives <= 0 or negatives <= 0:
        return None
    order = np.argsort(-s, kind="stable")
    s, p = s[order], p[order]
    last_of_tie = np.r_[np.diff(s) != 0, True]
    tpr = np.r_[0.0, np.cumsum(p)[last_of_tie] / positives]
    fpr = np.r_[0.0, np.cumsum(1 - p)[last_of_tie] / negatives]
    return float(np.trapezoid(tpr, fpr))


def _auc_band(auc: float, positives: float, negatives: float) -> tuple[float, float]:
    """Hanley & McNeil (1982) standard error of an AUC with these class counts."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / max(
        positives * negatives, 1e-12
    )
    half = BAND_Z * float(np.sqrt(max(variance, 0.0)))
    return max(0.0, auc - half), min(1.0, auc + half)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def estimate_binary(
    probabilities: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    seed: int = 0,
    calibration_sd: dict[str, float] | None = None,
    simulations: int = SIMULATIONS,
) -> list[Estimate]:
    """Expected confusion matrix (tp, fp, fn, tn) and metrics at the threshold, each with its 95% band.

    The band is the realized value's sampling band given the probabilities, widened by
    calibration_sd (calibration_uncertainty) when given; simulations = 0 skips the bands (values
    only). A metric with no defined value (precision when nothing is predicted positive, recall or
    AUC when no positive is expected) is left out.
    """
    p = np.asarray(probabilities, dtype="float64")
    predicted = np.asarray(scores, dtype="float64") >= threshold
    rows = len(p)
    if rows == 0:
        return []
    called, not_called = int(predicted.sum()), int(rows - predicted.sum())
    mean_tp, mean_fn = p[predicted].sum(), p[~predicted].sum()
    var_tp = (p[predicted] * (1 - p[predicted])).sum()
    var_fn = (p[~predicted] * (1 - p[~predicted])).sum()
    # TP and FN are sums of independent Bernoulli over disjoint rows: independent, near normal.
    rng = np.random.default_rng(seed)
    tp = np.clip(rng.normal(mean_tp, np.sqrt(var_tp), simulations), 0, called)
    fn = np.clip(rng.normal(mean_fn, np.sqrt(var_fn), simulations), 0, not_called)
    expected = {
        "tp": (mean_tp, tp),
        "fp": (called - mean_tp, called - tp),
        "fn": (mean_fn, fn),
        "tn": (not_called - mean_fn, not_called - fn),
    }
    metric_of = {
        "accuracy": lambda t, f: (t + (not_called - f)) / rows,
        "precision": lambda t, f: _ratio(t, np.full_like(t, called)),
        "recall": lambda t, f: _ratio(t, t + f),
        "f1": lambda t, f: _ratio(2 * t, 2 * t + (called - t) + f),
    }
    results = []
    for name, function in metric_of.items():
        value = float(function(np.array([mean_tp]), np.array([mean_fn]))[0])
        if np.isnan(value):
            continue
        draws = function(tp, fn)
        draws = draws[~np.isnan(draws)]
        low, high = np.quantile(draws, [0.025, 0.975]) if len(draws) else (value, value)
        results.append(Estimate(name, value, float(min(low, value)), float(max(high, value))))
    auc = expected_auc(p, scores)
    if auc is not None:
        results.insert(0, Estimate("auc", auc, *_auc_band(auc, p.sum(), (1 - p).sum())))
    for name in COUNTS:
        value, draws = expected[name]
        low, high = np.quantile(draws, [0.025, 0.975]) if len(draws) else (value, value)
        results.append(Estimate(name, float(value), float(min(low, value)), float(max(high, value))))
    if calibration_sd:
        results = [
            _widen(e, calibration_sd.get(e.metric, 0.0) * (rows if e.metric in COUNTS else 1.0)) for e in results
        ]
    return results


def _widen(estimate: Estimate, sd: float) -> Estimate:
    """Add a calibration standard deviation to each side of the sampling band (independent errors)."""
    extra = (BAND_Z * sd) ** 2
    low = estimate.value - np.sqrt((estimate.value - estimate.low) ** 2 + extra)
    high = estimate.value + np.sqrt((estimate.high - estimate.value) ** 2 + extra)
    high = high if estimate.metric in COUNTS else min(high, 1.0)  # counts have no upper bound of 1
    return Estimate(estimate.metric, estimate.value, float(max(low, 0.0)), float(high))


def realized_binary(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """The same metrics and counts measured on labelled rows (what each estimate is compared with)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype="float64") == 1
    predicted = np.asarray(scores, dtype="float64") >= threshold
    if len(y) == 0:
        return {}
    tp, fp = float((y & predicted).sum()), float((~y & predicted).sum())
    fn, tn = float((y & ~predicted).sum()), float((~y & ~predicted).sum())
    result = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "accuracy": (tp + tn) / len(y)}
    if tp + fp:
        result["precision"] = tp / (tp + fp)
    if tp + fn:
        result["recall"] = tp / (tp + fn)
    if 2 * tp + fp + fn:
        result["f1"] = 2 * tp / (2 * tp + fp + fn)
    if 0 < y.sum() < len(y):
        result["auc"] = float(roc_auc_score(y, scores))
    return result


def estimated_breach(
    metric: str,
    estimate: float | None,
    reference: float | None,
    floor: float | None,
    drop: float | None,
    band: tuple[float, float] | None = None,
) -> str | None:
    """Why an interval's estimated metric is a breach, or None: below the data's alert band (alert_band,
    [drift.trigger] estimated_metric_std), below estimated_metric_floor, or estimated_metric_drop under
    the holdout value. Above the band is no breach: the metric improved (NannyML alerts on both sides)."""
    if estimate is None:
        return None
    if band is not None and estimate < band[0]:
        return f"estimated {metric} {estimate:.3f} below the holdout's alert band [{band[0]:.3f}, {band[1]:.3f}]"
    if floor is not None and estimate < floor:
        return f"estimated {metric} {estimate:.3f} below floor {floor:g}"
    if drop is not None and reference is not None and reference - estimate >= drop:
        return (
            f"estimated {metric} {estimate:.3f} dropped {reference - estimate:.3f} from holdout "
            f"{reference:.3f} (drop {drop:g})"
        )
    return None
