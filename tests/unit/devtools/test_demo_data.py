"""The demo's concept shift changes the labels only: same rows, same features, same random stream."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from driftline.devtools.demo_data import transactions

START = datetime(2026, 11, 4, tzinfo=timezone.utc)


def test_concept_shift_keeps_features_and_the_random_stream_and_changes_labels():
    plain_rng, shifted_rng = np.random.default_rng(7), np.random.default_rng(7)
    plain = transactions(plain_rng, START, 5_000, "d")
    shifted = transactions(shifted_rng, START, 5_000, "d", concept_shift=True)
    features = [c for c in plain.columns if c != "is_fraud"]
    pd.testing.assert_frame_equal(plain[features], shifted[features])
    assert plain_rng.random() == shifted_rng.random()  # later days and bad rows draw the same numbers
    by_merchant = pd.DataFrame({"m": plain["merchant_category"], "p": plain["is_fraud"], "s": shifted["is_fraud"]})
    rates = by_merchant.groupby("m")[["p", "s"]].mean()
    assert (
        rates.loc["jewelry", "s"] < rates.loc["jewelry", "p"] and rates.loc["grocery", "s"] > rates.loc["grocery", "p"]
    )
