"""Per-segment monitoring on tiny frames: top values, "other", totals that add up, config errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.config import ConfigError, load_config
from driftline.drift.segments import OTHER, assign, drifted_count, segment_totals, top_values
from tests.helpers import DEMO_CONFIG, config_copy


def test_top_values_are_the_most_frequent_ties_by_value_and_the_rest_is_other():
    values = pd.Series(["b", "a", "a", "c", "c", "d", None])
    assert top_values(values, 2) == [("a", 2), ("c", 2)]
    assert assign(values, ["a", "c"]).tolist() == [OTHER, "a", "a", "c", "c", OTHER, OTHER]


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
    assert set(totals.index) <= {*kept, OTHER}


def test_segment_drift_counts_the_shifted_feature_only():
    config = load_config(DEMO_CONFIG)
    rng = np.random.default_rng(0)

    def frame(shift):
        n = 2000
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

    assert drifted_count(config, frame(0), frame(0), skip="merchant_category") <= 1  # 5% false alarms per test
    assert drifted_count(config, frame(30), frame(0), skip="merchant_category") >= 1


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
    with pytest.raises(ConfigError, match="'monitoring.top_n' must be a whole number >= 1"):
        load_config(path)
