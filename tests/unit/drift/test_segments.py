"""Per-segment monitoring on tiny frames: top values, the remainder bucket, totals that add up, config errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.config import ConfigError, load_config
from driftline.drift.segments import (
    OTHER,
    P_VALUE_THRESHOLD,
    assign,
    drifted_count,
    in_segment,
    p_value_thresholds,
    segment_totals,
    stored,
    top_values,
)
from tests.helpers import DEMO_CONFIG, config_copy


def test_top_values_are_the_most_frequent_ties_by_value_and_the_rest_is_other():
    values = pd.Series(["b", "a", "a", "c", "c", "d", None])
    assert top_values(values, 2) == [("a", 2), ("c", 2)]
    assert assign(values, ["a", "c"]).tolist() == [None, "a", "a", "c", "c", None, None]  # None: the remainder
    assert stored(None) == (OTHER, True) and stored(OTHER) == (OTHER, False)


def test_a_real_value_named_other_is_its_own_segment_not_the_remainder():
    values = pd.Series([OTHER, OTHER, OTHER, "a", "b", None])
    kept = [v for v, _ in top_values(values, 1)]
    assert kept == [OTHER]
    totals = segment_totals(assign(values, kept), np.arange(6, dtype=float))
    assert totals.loc[OTHER, "rows"] == 3 and totals.loc[None, "rows"] == 3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["x", "y", "z", "w", None]), st.floats(0, 1, allow_nan=False)),
        min_size=1,
        max_size=200,
    ),
    st.integers(1, 4),
)
def test_any_split_into_segments_adds_up_to_the_interval(rows, top_n):
    values = pd.Series([v for v, _ in rows], dtype=object)
    scores = np.array([s for _, s in rows])
    kept = [v for v, _ in top_values(values, top_n)]
    totals = segment_totals(assign(values, kept), scores)
    assert totals["rows"].sum() == len(rows)
    weighted = (totals["rows"] * totals["prediction_mean"]).sum() / totals["rows"].sum()
    assert weighted == pytest.approx(scores.mean(), abs=1e-9)
    assert set(totals.index) <= {*kept, None}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from([OTHER, "Other", "other ", ""]), st.text(max_size=6)), max_size=60),
    st.integers(1, 5),
)
def test_no_category_name_collides_with_the_remainder(values, top_n):
    """Whatever the names (one literally "other", empty, unicode), each kept value's segment holds exactly
    its own rows, the remainder exactly the rest, and the stored (value, flag) keys are all distinct."""
    series = pd.Series(values, dtype=object)
    kept = [v for v, _ in top_values(series, top_n)]
    segments = assign(series, kept)
    for value in kept:
        expected = np.array([v is not None and str(v) == value for v in values], dtype=bool)
        assert (in_segment(segments, value) == expected).all()
    rest = np.array([v is None or str(v) not in kept for v in values], dtype=bool)
    assert (in_segment(segments, None) == rest).all()
    totals = segment_totals(segments, np.zeros(len(values)))
    keys = [stored(value) for value in totals.index]
    assert len(set(keys)) == len(keys) and totals["rows"].sum() == len(values)


def test_segment_drift_counts_the_shifted_feature_only():
    config = load_config(DEMO_CONFIG)
    rng = np.random.default_rng(0)
    same = drifted_count(config, _frame(rng, 2000), _frame(rng, 2000), skip="merchant_category")
    assert same <= 1  # 5% false alarms per test
    assert drifted_count(config, _frame(rng, 2000, shift=30), _frame(rng, 2000), skip="merchant_category") >= 1


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ('["nope"]', "'monitoring.segments' lists 'nope', which is not a feature"),
        ('["amount"]', "a numeric feature: segments must be categorical"),
        ('["channel", "channel"]', "lists a feature twice"),
        ('"channel"', "'monitoring.segments'"),
    ],
)
def test_bad_segments_name_key_and_file(tmp_path, segments, message):
    path = config_copy(tmp_path, [('segments = ["merchant_category"]', f"segments = {segments}")])
    with pytest.raises(ConfigError, match="dataset.toml") as raised:
        load_config(path)
    assert message in str(raised.value)


def test_top_n_must_be_positive(tmp_path):
    path = config_copy(tmp_path, [("top_n = 5", "top_n = 0")])
    with pytest.raises(ConfigError, match="'monitoring.top_n' must be at least 1, got 0"):
        load_config(path)


def _frame(rng, n, shift=0.0):
    return pd.DataFrame(
        {
            "amount": rng.normal(100 + shift, 10, n),
            "account_age_days": rng.normal(500, 50, n),
            "transactions_last_24h": rng.poisson(3, n).astype(float),
            "distance_from_home_km": rng.normal(20, 5, n),
            "hour_of_day": rng.integers(0, 24, n).astype(float),
            "merchant_category": "grocery",
            "channel": rng.choice(["online", "card_present"], n),
        }
    )


# Every [drift] key the README marks optional, and [monitoring]'s: left out, the segment tests still run.
OPTIONAL_KEYS = [
    ("drift", key)
    for key in (
        "numeric_threshold",
        "categorical_threshold",
        "numeric_method",
        "categorical_method",
        "sample_rows",
        "seed",
        "prediction_method",
        "reference_dir",
    )
] + [("monitoring", "top_n"), ("monitoring", "min_segment_rows")]


@pytest.mark.parametrize(("section", "key"), OPTIONAL_KEYS)
def test_segment_drift_runs_with_each_optional_key_left_out(tmp_path, section, key):
    text = DEMO_CONFIG.read_text()
    body = re.search(rf"(?ms)^\[{section}\][ \t]*\n(.*?)(?=^\[|\Z)", text).group(1)
    assert re.search(rf"(?m)^{key} = ", body), key  # the demo sets it: leaving it out is what is tested
    config = load_config(config_copy(tmp_path, sections={section: re.sub(rf"(?m)^{key} = .*\n", "", body)}))
    rng = np.random.default_rng(1)
    assert drifted_count(config, _frame(rng, 500, shift=30), _frame(rng, 500), skip="merchant_category") >= 1


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({}, (0.05, 0.05)),
        ({"numeric_threshold": "0.01", "categorical_threshold": "0.2"}, (0.01, 0.2)),
        # A distance threshold is not a p-value: the segments' KS / chi-square keep their default.
        ({"numeric_method": '"wasserstein"', "numeric_threshold": "0.3"}, (P_VALUE_THRESHOLD, 0.05)),
        ({"categorical_method": '"jensenshannon"', "categorical_threshold": "0.2"}, (0.05, P_VALUE_THRESHOLD)),
    ],
)
def test_segment_p_value_thresholds_follow_drift_only_for_the_same_tests(tmp_path, edits, expected):
    config = load_config(config_copy(tmp_path, keys=edits) if edits else DEMO_CONFIG)
    assert p_value_thresholds(config) == expected
