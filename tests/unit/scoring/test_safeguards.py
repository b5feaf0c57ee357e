"""The output checks (scoring.safeguards) on a few scores each: no Postgres, no model (their config:
tests/unit/config/test_safeguards_alerts.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from driftline.config import Safeguards, load_config
from driftline.errors import BadModel
from driftline.scoring.safeguards import (
    OutputSanityError,
    ScoreStats,
    check_distribution,
    check_scores,
    predicted_class,
    score_reference,
)
from tests.helpers import DEMO_CONFIG

DEMO = load_config(DEMO_CONFIG)


def config(task: str = "binary", threshold: float = 0.5, **safeguards):
    rules = dataclasses.replace(Safeguards(), **{"min_rows_for_distribution_check": 3, **safeguards})
    return dataclasses.replace(DEMO, task=task, threshold=threshold, safeguards=rules)


def stats(scores: list[float], cfg) -> ScoreStats:
    result = ScoreStats()
    values = np.array(scores, dtype="float64")
    result.add(values, predicted_class(values, cfg))
    return result


# --- check_scores: every score finite and in range ------------------------------------------------


def test_binary_scores_in_the_unit_interval_pass():
    check_scores(np.array([0.0, 0.3, 1.0]), config())


def test_no_scores_pass():
    check_scores(np.array([], dtype="float64"), config())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_score_that_is_not_finite_is_refused_with_its_count(bad):
    with pytest.raises(OutputSanityError, match="1 of 3 scores are NaN or infinite") as raised:
        check_scores(np.array([0.1, bad, 0.2]), config())
    assert raised.value.numbers == {"scores": 3, "not_finite": 1}
    assert isinstance(raised.value, BadModel)  # fail now, no retry


def test_a_binary_score_outside_zero_one_is_refused():
    with pytest.raises(OutputSanityError, match=r"2 of 3 scores outside \[0, 1\]") as raised:
        check_scores(np.array([-0.1, 0.5, 1.2]), config())
    assert raised.value.numbers["outside_range"] == 2
    assert raised.value.numbers["min"] == pytest.approx(-0.1) and raised.value.numbers["max"] == pytest.approx(1.2)


def test_regression_scores_are_checked_against_the_configured_range_only():
    check_scores(np.array([-50.0, 1e6]), config(task="regression"))  # no range: any finite value
    with pytest.raises(OutputSanityError, match=r"1 of 2 scores outside \[0, 100\]"):
        check_scores(np.array([5.0, 101.0]), config(task="regression", score_range=(0.0, 100.0)))
    with pytest.raises(OutputSanityError, match=r"outside \[0, 100\]"):
        check_scores(np.array([-1.0, 5.0]), config(task="regression", score_range=(0.0, 100.0)))


# --- predicted_class and ScoreStats -----------------------------------------------------------------


def test_predicted_class_uses_the_threshold_inclusively_and_is_none_for_regression():
    scores = np.array([0.2, 0.7, 0.7001])
    assert predicted_class(scores, config(threshold=0.7)).tolist() == [0, 1, 1]
    assert predicted_class(scores, config(task="regression")) is None


def test_stats_merged_from_parts_equal_stats_of_the_whole():
    cfg = config()
    whole = stats([0.1, 0.4, 0.9, 0.6, 0.2], cfg)
    merged = stats([0.1, 0.4], cfg)
    merged.merge(stats([0.9, 0.6, 0.2], cfg))
    assert merged.rows == whole.rows == 5 and merged.positives == whole.positives == 2
    assert merged.mean == pytest.approx(whole.mean) and merged.std == pytest.approx(whole.std)
    assert merged.summary(cfg)["majority_share"] == pytest.approx(0.6)


def test_stats_added_chunk_by_chunk_equal_numpy_on_the_whole():
    rng = np.random.default_rng(7)
    scores = rng.beta(2, 5, 10_001)
    result = ScoreStats()
    for chunk in np.array_split(scores, 7):
        result.add(chunk, (chunk >= 0.5).astype("int16"))
    assert result.rows == len(scores)
    assert result.mean == pytest.approx(scores.mean(), rel=1e-12)
    assert result.std == pytest.approx(scores.std(), rel=1e-10)
    assert result.positives == int((scores >= 0.5).sum())


# --- check_distribution: collapse against the model's reference ------------------------------------


def test_too_few_rows_skip_the_distribution_check():
    cfg = config(min_rows_for_distribution_check=10)
    assert check_distribution(stats([0.5, 0.5, 0.5], cfg), {"std": 0.3}, cfg).startswith("skipped: 3 scored rows")


def test_scores_spread_like_the_reference_pass():
    cfg = config()
    reference = score_reference(cfg, np.array([0.1, 0.5, 0.9, 0.3]))
    assert check_distribution(stats([0.2, 0.8, 0.4, 0.6], cfg), reference, cfg) == "passed"


def test_collapsed_spread_is_refused_with_the_numbers():
    cfg = config(min_score_std_ratio=0.25)
    reference = {"rows": 4, "mean": 0.5, "std": 0.3}
    with pytest.raises(OutputSanityError, match="score standard deviation") as raised:
        check_distribution(stats([0.50, 0.51, 0.50, 0.51], cfg), reference, cfg)
    assert raised.value.numbers["std_ratio"] < 0.25
    assert raised.value.numbers["reference"] == reference


def test_no_reference_skips_the_spread_rule_and_says_so():
    cfg = config()
    assert check_distribution(stats([0.5, 0.5, 0.5], cfg), None, cfg) == (
        "passed; std rule skipped: the model manifest has no score reference"
    )


def test_one_predicted_class_for_almost_every_row_is_refused():
    cfg = config(min_score_std_ratio=None, max_majority_share=0.9)
    reference = {"std": 0.3, "majority_share": 0.6}
    with pytest.raises(OutputSanityError, match=r"100.00% of rows get the same predicted class"):
        check_distribution(stats([0.9, 0.8, 0.95, 0.7], cfg), reference, cfg)


def test_majority_rule_is_skipped_when_the_model_already_predicts_one_class_that_often():
    cfg = config(min_score_std_ratio=None, max_majority_share=0.9)
    reference = {"std": 0.3, "majority_share": 0.95}
    result = check_distribution(stats([0.9, 0.8, 0.95, 0.7], cfg), reference, cfg)
    assert result.startswith("passed; majority rule skipped: the reference majority share 95.00%")


def test_the_majority_rule_does_not_apply_to_regression():
    cfg = config(task="regression", min_score_std_ratio=None, max_majority_share=0.9)
    assert check_distribution(stats([3.0, 3.0, 3.0], cfg), {"std": 1.0}, cfg) == "passed"


def test_collapse_message_names_the_ratio_against_the_reference_of_the_holdout_scores():
    cfg = config()
    reference = score_reference(cfg, np.linspace(0, 1, 1000))
    collapsed = stats(list(np.full(1000, 0.3) + np.linspace(0, 0.01, 1000)), cfg)
    with pytest.raises(
        OutputSanityError, match=r"score standard deviation 0.0\d+ is \d+\.\d% of the model's reference"
    ) as raised:
        check_distribution(collapsed, reference, cfg)
    assert raised.value.numbers["reference"]["std"] == pytest.approx(np.linspace(0, 1, 1000).std())
    assert check_distribution(stats(list(np.linspace(0.1, 0.9, 1000)), cfg), reference, cfg) == "passed"


def test_majority_share_of_the_reference_comes_from_its_scores():
    cfg = config(min_score_std_ratio=None, max_majority_share=0.95)
    all_low = stats(list(np.linspace(0.0, 0.45, 1000)), cfg)
    with pytest.raises(OutputSanityError, match=r"100.00% of rows get the same predicted class"):
        check_distribution(all_low, score_reference(cfg, np.linspace(0, 1, 1000)), cfg)
    assert "majority rule skipped" in check_distribution(all_low, score_reference(cfg, np.linspace(0, 0.4, 1000)), cfg)
