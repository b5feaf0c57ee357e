"""Training splits by event time when the rows have a time order at the split point, else a seeded
split stratified by label, and says which one it used and why (#26). Tiny frames, no database."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.config import load_config
from driftline.labelled import holdout_split

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "config" / "demo.toml")  # holdout_fraction = 0.2


def rows(times, labels) -> pd.DataFrame:
    """labelled_rows-shaped rows: sorted by event time, then key."""
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i:03d}" for i in range(len(times))],
            "event_time": pd.to_datetime(times, utc=True),
            "is_fraud": np.asarray(labels, dtype="float64"),
        }
    )


def test_distinct_times_split_oldest_80_percent_by_event_time(config):
    frame = rows(pd.date_range("2026-10-01", periods=10, freq="h"), [0, 1] * 5)
    train, holdout, split = holdout_split(config, frame)
    assert list(train.index) == list(range(8)) and list(holdout.index) == [8, 9]
    assert split["method"] == "event_time"
    assert split["description"] == "oldest 80% by event time trained on, newest 20% own holdout"


def test_a_tie_at_the_cut_moves_the_cut_to_where_the_time_changes(config):
    # 10 rows; rows 7, 8 and 9 share a time, so a cut at 8 would put one of them on each side.
    times = [f"2026-10-01T0{i}:00Z" for i in range(7)] + ["2026-10-01T09:00Z"] * 3
    train, holdout, split = holdout_split(config, rows(times, [0, 1] * 5))
    assert split["method"] == "event_time" and "cut moved" in split["description"]
    assert train["event_time"].max() < holdout["event_time"].min()
    assert len(holdout) == 3


@pytest.mark.parametrize("task_labels", [[0] * 80 + [1] * 20, [1, 0, 0, 0, 0] * 20])
def test_one_shared_event_time_uses_a_seeded_stratified_split_and_says_so(config, task_labels, caplog):
    frame = rows(["2026-10-01T00:00Z"] * 100, task_labels)
    with caplog.at_level(logging.WARNING, logger="driftline.labelled"):
        train, holdout, split = holdout_split(config, frame)
    assert split["method"] == "seeded_random" and split["stratified"] and split["seed"] == 42
    assert "no time order at the split point" in split["reason"]
    assert split["description"].startswith("seeded random split")
    assert len(holdout) == 20 and len(train) == 80 and set(train.index).isdisjoint(holdout.index)
    assert holdout["is_fraud"].mean() == pytest.approx(0.2)  # the label's share, not whatever sorts last
    assert train["is_fraud"].mean() == pytest.approx(0.2)
    again = holdout_split(config, frame)[1]
    assert list(again.index) == list(holdout.index)  # seeded: the same split every time
    logged = [r.getMessage() for r in caplog.records if "no time order" in r.getMessage()]
    assert logged and not any("t0" in line for line in logged)  # said, without row data (keys)


def test_ties_too_wide_to_move_the_cut_fall_back_to_the_seeded_split(config):
    # Two times only: 50 rows at each; no cut where the time changes leaves a holdout of 10-40%.
    frame = rows(["2026-10-01T00:00Z"] * 50 + ["2026-10-02T00:00Z"] * 50, [0, 1] * 50)
    assert holdout_split(config, frame)[2]["method"] == "seeded_random"
