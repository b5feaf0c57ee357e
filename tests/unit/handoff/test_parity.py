"""The parity gate's arithmetic: what counts as a difference, and what a failure says (counts only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.handoff.parity import compare

TOLERANCE = 1e-6


def _expected(keys, scores) -> pd.DataFrame:
    return pd.DataFrame({"key": keys, "score": scores})


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.floats(0, 1), min_size=1, max_size=40),
    gaps=st.lists(st.floats(-1e-3, 1e-3) | st.sampled_from([0.0, TOLERANCE, -TOLERANCE]), min_size=40, max_size=40),
)
def test_a_row_differs_exactly_when_its_gap_exceeds_the_tolerance(scores, gaps):
    ours = np.array(scores)
    theirs = ours + np.array(gaps[: len(ours)])
    keys = [f"secret-{i}" for i in range(len(ours))]
    result = compare(np.array(keys), ours, _expected(keys, theirs), TOLERANCE)
    gap = np.abs(ours - theirs)
    assert result.rows_compared == len(ours) and result.rows_not_scored == 0
    assert result.rows_differ == int((gap > TOLERANCE).sum())
    assert result.passed == (result.rows_differ == 0)
    assert result.max_abs_diff == gap.max()
    assert result.median_abs_diff == np.median(gap)
    message = result.failure() or ""
    assert not any(key in message for key in keys)  # counts and sizes, never a key


def test_order_of_rows_does_not_matter_and_keys_bind_by_value():
    keys = np.array(["a", "b", "c"])
    result = compare(keys, np.array([0.1, 0.2, 0.3]), _expected(["c", "a", "b"], [0.3, 0.1, 0.2]), TOLERANCE)
    assert result.passed and result.rows_compared == 3


def test_notebook_rows_driftline_did_not_score_fail_the_gate():
    result = compare(np.array(["a"]), np.array([0.1]), _expected(["a", "b"], [0.1, 0.5]), TOLERANCE)
    assert not result.passed and result.rows_not_scored == 1
    assert "1 of 2 notebook rows were not scored" in result.failure()


def test_nan_on_either_side_is_a_difference_and_no_overlap_fails():
    result = compare(np.array(["a", "b"]), np.array([np.nan, 0.2]), _expected(["a", "b"], [0.1, np.nan]), TOLERANCE)
    assert result.rows_differ == 2 and not result.passed
    nothing = compare(np.array(["x"]), np.array([0.1]), _expected(["a"], [0.1]), TOLERANCE)
    assert not nothing.passed and "no notebook prediction matched" in nothing.failure()
