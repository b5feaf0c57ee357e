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


# -- a whole history as the sample: the same key at many event times ------------------------------

DAY = np.datetime64("2026-10-01T00:00:00", "ns")


def test_a_key_repeated_at_other_times_matches_on_key_and_event_time():
    keys = np.array(["c1", "c1", "c2"])
    times = np.array([DAY, DAY + np.timedelta64(1, "D"), DAY])
    expected = pd.DataFrame(
        {
            "key": ["c1", "c2", "c1"],
            "score": [0.7, 0.3, 0.1],
            "event_time": pd.to_datetime([DAY + np.timedelta64(1, "D"), DAY, DAY], utc=True),
        }
    )
    result = compare(keys, np.array([0.1, 0.7, 0.3]), expected, TOLERANCE, times=times)
    assert result.passed and result.rows_compared == 3 and result.rows_differ == 0


@settings(max_examples=50, deadline=None)
@given(repeats=st.lists(st.integers(1, 4), min_size=1, max_size=8))
def test_a_repeated_key_without_event_times_is_refused_with_the_count_never_the_key(repeats):
    import pytest

    from driftline.errors import BadInput

    keys = np.array([f"secret-{i}" for i, count in enumerate(repeats) for _ in range(count)])
    expected = _expected([f"secret-{i}" for i in range(len(repeats))], [0.5] * len(repeats))
    duplicated = sum(count - 1 for count in repeats)
    if not duplicated:
        assert compare(keys, np.full(len(keys), 0.5), expected, TOLERANCE).passed
        return
    with pytest.raises(BadInput, match=rf"sample.csv: {duplicated} rows repeat an entity key.*--sample") as refused:
        compare(keys, np.full(len(keys), 0.5), expected, TOLERANCE, where="sample.csv")
    assert "secret-" not in str(refused.value)


def test_fewer_rows_than_the_minimum_fail_the_gate_and_say_how_to_fix_it():
    result = compare(np.array(["a"]), np.array([0.1]), _expected(["a"], [0.1]), TOLERANCE, min_rows=100)
    assert not result.passed and result.rows_differ == 0
    assert "only 1 rows were compared" in result.failure() and "parity_min_rows" in result.failure()
    assert compare(np.array(["a"]), np.array([0.1]), _expected(["a"], [0.1]), TOLERANCE, min_rows=1).passed


# -- the predictions file ------------------------------------------------------------------------


def _config(tmp_path):
    from driftline.config import load_config
    from tests.helpers import config_copy

    return load_config(config_copy(tmp_path))


def test_a_predictions_csv_without_a_header_names_no_key_and_no_score(tmp_path):
    import pytest

    from driftline.errors import BadInput
    from driftline.handoff.parity import read_predictions

    path = tmp_path / "predictions.csv"
    path.write_text("secret-key-17,0.123456789\nsecret-key-18,0.5\n")
    with pytest.raises(BadInput, match="needs a header row.*it has 2 columns, none named as expected") as refused:
        read_predictions(str(path), _config(tmp_path))
    assert "secret-key-17" not in str(refused.value) and "0.123456789" not in str(refused.value)


def test_predictions_with_the_event_time_column_carry_it_and_repeat_keys_at_other_times(tmp_path):
    from driftline.handoff.parity import read_predictions

    config = _config(tmp_path)
    path = tmp_path / "predictions.csv"
    path.write_text(
        f"{config.entity_key},{config.event_time},score\n"
        "k1,2026-10-01T00:00:00Z,0.1\nk1,2026-10-02T00:00:00+00:00,0.2\n"
    )
    frame = read_predictions(str(path), config)
    assert list(frame.columns) == ["key", "score", "event_time"] and len(frame) == 2
