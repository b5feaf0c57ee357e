"""The segments from the rows monitor_interval keeps while it streams the interval (drift.segments.
IntervalRows) equal, row for row and bit for bit, what they were when they re-read the interval into
one pandas frame: the old code is kept here as the oracle."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.config import load_config
from driftline.drift.interval_rows import IntervalRows
from driftline.drift.segments import segment_rows, top_values
from tests.helpers import DEMO_CONFIG
from tests.segments_before import frame_before, rows_before, same

START, END = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc)
NUMERIC = ["amount", "account_age_days", "transactions_last_24h", "distance_from_home_km", "hour_of_day"]


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 700),
    cuts=st.lists(st.integers(0, 700), max_size=4),
    sample_rows=st.integers(100, 160),
    min_segment_rows=st.integers(1, 120),
    two_columns=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_segment_rows_from_the_kept_rows_equal_the_re_read_ones(
    n, cuts, sample_rows, min_segment_rows, two_columns, seed
):
    """Any interval (keys repeated, parse failures, chunks of any size, segments above and below
    sample_rows and min_segment_rows, scores and labels for some keys in any order): the same rows."""
    base = load_config(DEMO_CONFIG)
    segments = ("merchant_category", "channel") if two_columns else ("merchant_category",)
    config = dataclasses.replace(
        base,
        drift=dataclasses.replace(base.drift, sample_rows=sample_rows, seed=seed),
        monitoring=dataclasses.replace(base.monitoring, segments=segments, top_n=2, min_segment_rows=min_segment_rows),
    )
    key = config.entity_key
    rng = np.random.default_rng(seed)
    pool = max(1, int(n * 0.9))  # keys repeat: the last row of a key counts
    amount = rng.normal(100, 10, n)
    amount[rng.random(n) < 0.05] = np.nan
    category = rng.choice(["grocery", "travel", "other", "fuel", "", "-"], n, p=[0.4, 0.3, 0.1, 0.1, 0.05, 0.05])
    category = np.where(category == "-", None, category.astype(object))  # missing: the remainder
    table = pa.table(
        {
            key: pa.array([f"k{k}" for k in rng.integers(0, pool, n)], pa.string()),
            "merchant_category": pa.array(category, pa.string()),
            "channel": pa.array(rng.choice(["online", "card_present"], n), pa.string()),
            "amount": pa.array(amount),
            **{name: pa.array(rng.normal(size=n)) for name in NUMERIC[1:]},
        }
    )
    parsed = rng.random(n) > 0.03  # the rest: parse failures, never scored
    bounds = sorted({0, n, *(c for c in cuts if c < n)})
    kept_rows, before = IntervalRows(config), []
    for a, b in zip(bounds, bounds[1:]):  # the stream's chunks
        chunk, keep = table.slice(a, b - a), parsed[a:b]
        kept_rows.add(chunk, keep)
        before.append(chunk.select([key, *config.feature_names]).filter(pa.array(keep)))
    # Scores in Postgres's (any) order, some for keys this input no longer has.
    scored = rng.permutation(pool + 5)[: int(pool * 0.9)]
    predictions = pd.DataFrame({"entity_key": [f"k{k}" for k in scored], "score": rng.random(len(scored))})
    predictions = predictions.astype({"entity_key": "string"})
    labelled = rng.permutation(pool + 5)[: pool // 2]
    labels = pd.DataFrame(
        {key: pd.array([f"k{k}" for k in labelled], dtype="string"), config.target: rng.integers(0, 2, len(labelled))}
    )
    reference = pd.DataFrame(
        {
            "merchant_category": rng.choice(["grocery", "travel", "other", "fuel"], 400),
            "channel": rng.choice(["online", "card_present"], 400),
            **{name: rng.normal(size=400) for name in NUMERIC},
        }
    )
    kept = {c: [v for v, _ in top_values(reference[c], config.monitoring.top_n)] for c in segments}
    ctx = {"start": START, "end": END, "version": 1, "run_id": "run", "predictions": predictions}
    ctx |= {"reference": reference, "labels": labels, "calibration": {"x": [0.0, 1.0], "y": [0.05, 0.9]}}

    expected = rows_before(config, ctx, kept, frame_before(config, before, predictions))
    got = segment_rows(config, {**ctx, "rows": kept_rows}, kept)
    for got_rows, expected_rows in zip(got, expected):
        assert len(got_rows) == len(expected_rows)
        for g, e in zip(got_rows, expected_rows):
            assert len(g) == len(e) and all(same(x, y) for x, y in zip(g, e)), (g, e)
