"""CBPE math on small synthetic arrays: calibration, expected metrics, bands, the estimated-metric rule."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.estimation import (
    calibrate,
    calibration_uncertainty,
    estimate_binary,
    estimated_breach,
    expected_auc,
    fit_calibration,
    realized_binary,
)


def _by_metric(estimates):
    return {e.metric: e for e in estimates}


def test_confusion_matrix_is_the_sum_of_calibrated_probabilities_on_each_side_of_the_threshold():
    p = np.array([0.9, 0.6, 0.2, 0.1])
    got = _by_metric(estimate_binary(p, p, threshold=0.5))
    assert got["tp"].value == pytest.approx(1.5)
    assert got["fp"].value == pytest.approx(0.5)
    assert got["fn"].value == pytest.approx(0.3)
    assert got["tn"].value == pytest.approx(1.7)
    assert got["accuracy"].value == pytest.approx(3.2 / 4)
    assert got["precision"].value == pytest.approx(0.75)
    assert got["recall"].value == pytest.approx(1.5 / 1.8)
    assert got["f1"].value == pytest.approx(3.0 / (3.0 + 0.5 + 0.3))
    for estimate in got.values():
        assert estimate.low <= estimate.value <= estimate.high


def test_expected_auc_is_the_realized_auc_when_probabilities_are_certain():
    labels = np.array([1, 0, 1, 0, 0, 1])
    scores = np.array([0.8, 0.7, 0.6, 0.3, 0.2, 0.1])
    assert expected_auc(labels.astype(float), scores) == pytest.approx(realized_binary(labels, scores, 0.5)["auc"])
    assert expected_auc(np.zeros(3), np.array([0.1, 0.2, 0.3])) is None  # no positive expected


def test_metrics_without_a_denominator_are_left_out():
    p = np.array([0.1, 0.2, 0.3])
    names = {e.metric for e in estimate_binary(p, p, threshold=0.5)}
    assert "precision" not in names  # nothing predicted positive
    assert {"auc", "accuracy", "recall", "tp", "tn"} <= names


def test_isotonic_calibration_maps_scores_to_label_rates_and_is_json_ready():
    rng = np.random.default_rng(3)
    true_p = rng.uniform(0, 1, 20_000)
    labels = rng.random(20_000) < true_p
    scores = true_p**3  # a monotone but badly calibrated score
    calibration = fit_calibration(scores, labels)
    assert calibration["method"] == "isotonic" and len(calibration["x"]) == len(calibration["y"])
    assert np.abs(calibrate(calibration, scores) - true_p).mean() < 0.03
    assert fit_calibration(scores, np.zeros(len(scores))) is None  # one class: nothing to calibrate


@pytest.mark.parametrize("rows", [500, 3000])
def test_realized_metric_falls_in_the_band_most_of_the_time(rows):
    """Labels drawn from calibrated scores: the realized metric is inside the 95% band in >= 85% of 100 draws."""
    rng = np.random.default_rng(rows)
    inside = {name: 0 for name in ("auc", "accuracy", "precision", "recall", "f1")}
    trials = 100
    for trial in range(trials):
        p = rng.beta(0.6, 2.0, rows)
        labels = (rng.random(rows) < p).astype(int)
        estimates = _by_metric(estimate_binary(p, p, threshold=0.4, seed=trial))
        realized = realized_binary(labels, p, 0.4)
        for name in inside:
            inside[name] += estimates[name].low <= realized[name] <= estimates[name].high
    rates = {name: count / trials for name, count in inside.items()}
    assert min(rates.values()) >= 0.85, rates


def test_a_calibrated_then_shifted_interval_shows_the_estimate_drop():
    """Holdout scores spread out; an interval whose rows move to uncertain scores estimates lower AUC and accuracy."""
    rng = np.random.default_rng(11)
    holdout_p = rng.beta(0.5, 0.5, 5000)
    holdout_labels = rng.random(5000) < holdout_p
    calibration = fit_calibration(holdout_p, holdout_labels)
    before = _by_metric(estimate_binary(calibrate(calibration, holdout_p), holdout_p, 0.5))
    shifted_p = rng.beta(8, 8, 5000)  # same model, same calibration, rows near 0.5
    after = _by_metric(estimate_binary(calibrate(calibration, shifted_p), shifted_p, 0.5))
    assert after["auc"].high < before["auc"].low
    assert after["accuracy"].high < before["accuracy"].low
    # And the realized values of the shifted rows agree with the estimate.
    realized = realized_binary(rng.random(5000) < shifted_p, shifted_p, 0.5)
    assert abs(realized["auc"] - after["auc"].value) < 0.05


def test_estimated_breach_names_floor_or_drop():
    assert estimated_breach("auc", 0.70, 0.80, floor=0.75, drop=None) == "estimated auc 0.700 below floor 0.75"
    assert "dropped 0.100 from holdout 0.800" in estimated_breach("auc", 0.70, 0.80, floor=None, drop=0.1)
    assert estimated_breach("auc", 0.76, 0.80, floor=0.75, drop=0.05) is None
    assert estimated_breach("auc", None, 0.80, floor=0.75, drop=0.05) is None  # no estimate: no breach


def test_band_with_calibration_uncertainty_covers_a_map_fitted_on_a_small_holdout():
    """Rare positives, the map fitted on a finite holdout: its own error is in the band too (>= 85% of 30 intervals)."""
    rng = np.random.default_rng(5)

    def draw(rows):
        p = 1 / (1 + np.exp(-rng.normal(-3.5, 1.0, rows)))
        return p, (rng.random(rows) < p).astype(int)

    inside, trials = {name: 0 for name in ("auc", "accuracy", "recall")}, 30
    for trial in range(trials):
        holdout_p, holdout_labels = draw(5000)
        calibration = fit_calibration(holdout_p, holdout_labels)
        spread = calibration_uncertainty(holdout_p, holdout_labels, 0.2, resamples=20, seed=trial)
        assert all(value > 0 for value in spread.values())
        p, labels = draw(5000)
        estimates = _by_metric(estimate_binary(calibrate(calibration, p), p, 0.2, seed=trial, calibration_sd=spread))
        realized = realized_binary(labels, p, 0.2)
        for name in inside:
            inside[name] += estimates[name].low <= realized[name] <= estimates[name].high
        assert estimates["accuracy"].high - estimates["accuracy"].low < 0.03  # wider, still a usable band
    assert min(count / trials for count in inside.values()) >= 0.85, inside


def test_stated_band_coverage_holds_with_a_small_holdout_over_200_draws():
    """A fresh 300-row holdout and a 1,000-row interval per draw, labels from known probabilities, the
    model's scores badly calibrated: the realized metric is inside the 95% band within a binomial
    tolerance (3 standard errors over 200 draws: 90.4% to 99.6%). The sampling band alone covers ~65%."""
    rng = np.random.default_rng(2026)
    trials, stated = 200, 0.95
    tolerance = 3 * np.sqrt(stated * (1 - stated) / trials)

    def draw(rows):
        truth = 1 / (1 + np.exp(-rng.normal(-1.0, 1.5, rows)))
        return truth**0.6, (rng.random(rows) < truth).astype(int)

    inside = {name: 0 for name in ("auc", "accuracy", "precision", "recall", "f1")}
    for trial in range(trials):
        holdout_scores, holdout_labels = draw(300)
        calibration = fit_calibration(holdout_scores, holdout_labels)
        spread = calibration_uncertainty(holdout_scores, holdout_labels, 0.5, resamples=20, seed=trial)
        scores, labels = draw(1000)
        estimates = _by_metric(
            estimate_binary(
                calibrate(calibration, scores), scores, 0.5, seed=trial, calibration_sd=spread, simulations=1000
            )
        )
        realized = realized_binary(labels, scores, 0.5)
        for name in inside:
            inside[name] += estimates[name].low <= realized[name] <= estimates[name].high
    rates = {name: count / trials for name, count in inside.items()}
    assert all(abs(rate - stated) <= tolerance for rate in rates.values()), rates
