"""Alert thresholds from the data (estimation.chunk_spread / alert_band, NannyML's default): on synthetic
data with a covariate-driven performance drop, the estimate and the realized metric are flagged after
the drop and not before, over several seeds."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.estimation import (
    alert_band,
    calibrate,
    chunk_spread,
    estimate_binary,
    estimated_breach,
    fit_calibration,
    realized_binary,
)

THRESHOLD = 0.5


def draw(rng, rows: int, shifted: bool):
    """(scores, labels) of a fixed model. Labels ~ Bernoulli(sigmoid(logit)); the model scores
    sigmoid(logit) ** 0.6 (right order, badly calibrated: the calibration has work to do). The shift
    moves a third of the rows close to the decision boundary, where the model is unsure: performance
    drops although the relation between features and label is unchanged (covariate shift)."""
    x1 = rng.normal(0, 1.6, rows)
    if shifted:
        moved = rng.random(rows) < 0.35
        x1[moved] = rng.normal(0, 0.3, moved.sum())
    logit = 1.8 * x1 + 0.6 * rng.normal(0, 1, rows) - 0.3
    truth = 1 / (1 + np.exp(-logit))
    return truth**0.6, (rng.random(rows) < truth).astype(int)


@pytest.mark.parametrize("seed", range(5))
def test_the_data_band_flags_a_covariate_driven_drop_and_is_quiet_before(seed):
    rng = np.random.default_rng(seed)
    holdout_scores, holdout_labels = draw(rng, 10_000, shifted=False)
    calibration = fit_calibration(holdout_scores, holdout_labels)
    spread = chunk_spread(holdout_labels, holdout_scores, THRESHOLD)  # ten chunks of 1,000 rows
    before, after = 6, 5
    realized_flags = {metric: [] for metric in ("auc", "accuracy")}
    for interval in range(before + after):
        scores, labels = draw(rng, 1_000, shifted=interval >= before)  # intervals the size of a chunk
        estimates = {e.metric: e for e in estimate_binary(calibrate(calibration, scores), scores, THRESHOLD)}
        realized = realized_binary(labels, scores, THRESHOLD)
        for metric in ("auc", "accuracy"):
            band = alert_band(spread[metric])
            flagged = estimated_breach(metric, estimates[metric].value, None, None, None, band) is not None
            assert flagged == (interval >= before), (metric, interval, estimates[metric].value, band)
            realized_flags[metric].append(bool(realized[metric] < band[0]))
    # The realized metric carries the labels' sampling noise on top: at most one slip per metric and seed.
    for metric, flags in realized_flags.items():
        assert sum(flags[:before]) <= 1 and sum(flags[before:]) >= after - 1, (metric, flags)


def test_chunk_spread_is_nannymls_mean_and_population_std_over_ten_chunks():
    rng = np.random.default_rng(0)
    scores, labels = draw(rng, 1_005, shifted=False)
    spread = chunk_spread(labels, scores, THRESHOLD)
    chunks = [
        realized_binary(labels[i : i + 100], scores[i : i + 100], THRESHOLD)["accuracy"] for i in range(0, 1000, 100)
    ]
    assert spread["accuracy"] == {
        "mean": pytest.approx(np.mean(chunks)),
        "std": pytest.approx(np.std(chunks)),
        "chunks": 10,
        "chunk_rows": 100,  # the last 5 rows make no chunk
    }
    low, high = alert_band(spread["accuracy"])
    assert (low, high) == (
        pytest.approx(np.mean(chunks) - 3 * np.std(chunks)),
        pytest.approx(min(1.0, np.mean(chunks) + 3 * np.std(chunks))),
    )
    assert alert_band(spread["accuracy"], 0) is None and alert_band(None) is None  # off, or a model without it
    assert alert_band({"mean": 0.99, "std": 0.01}) == (pytest.approx(0.96), 1.0)  # clipped to the metric's range
    assert chunk_spread(labels[:5], scores[:5], THRESHOLD) == {}  # too few rows for two chunks


def test_above_the_band_is_no_breach_and_the_reason_names_the_band():
    assert estimated_breach("auc", 0.95, None, None, None, (0.80, 0.90)) is None
    assert estimated_breach("auc", 0.75, None, None, None, (0.80, 0.90)) == (
        "estimated auc 0.750 below the holdout's alert band [0.800, 0.900]"
    )


def test_registration_calibrates_and_derives_thresholds_on_holdout_rows_only():
    """The calibration and the alert band come from the holdout's scores, never the training rows'
    (in-sample scores are too good: an estimate calibrated on them would be silently biased up)."""
    from datetime import datetime, timedelta, timezone

    import pandas as pd

    from driftline.config import load_config
    from driftline.devtools.demo_data import transactions
    from driftline.training import train
    from tests.helpers import DEMO_CONFIG

    config = load_config(DEMO_CONFIG)
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    history = pd.concat(
        [transactions(np.random.default_rng(day), start + timedelta(days=day), 800, f"d{day}") for day in range(8)],
        ignore_index=True,
    )
    manifest = train(config, history).manifest
    calibration = manifest["calibration"]
    assert calibration["holdout_rows"] == manifest["rows"]["holdout"] < len(history)
    spread = calibration["thresholds"]["accuracy"]
    assert spread["chunks"] == 10 and spread["chunk_rows"] == manifest["rows"]["holdout"] // 10
    assert calibration["reference"]["accuracy"] == pytest.approx(spread["mean"], abs=3 * spread["std"] + 1e-9)
