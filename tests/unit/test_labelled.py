"""Targets, labels and unusable history rows after reading: positive_label, label_column, and the
rows left out of training with counted reasons (tiny frames, no database)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.config import load_config
from driftline.labelled import TrainingError, target_values, usable_rows

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "config" / "demo.toml")


def history(rows: int = 120, **columns) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(rows)],
            "event_time": [f"2026-10-01T00:{i % 60:02d}:00Z" for i in range(rows)],
            "amount": [str(10.0 + i) for i in range(rows)],
            "account_age_days": ["5"] * rows,
            "transactions_last_24h": ["1"] * rows,
            "distance_from_home_km": ["2.5"] * rows,
            "hour_of_day": ["3"] * rows,
            "merchant_category": ["grocery"] * rows,
            "channel": ["online"] * rows,
            "is_fraud": ["0", "1"] * (rows // 2),
        },
        dtype=object,
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def test_binary_targets_map_to_0_1(config):
    values = pd.Series(["1", "0", "true", "FALSE", 1, 0.0, True, " ", None, "maybe"], dtype=object)
    mapped, reasons = target_values(config, values)
    assert mapped.tolist()[:7] == [1, 0, 1, 0, 1, 0, 1]
    assert mapped[7:].isna().all()
    assert reasons.tolist()[7:] == ["missing:is_fraud", "missing:is_fraud", "not_a_label:is_fraud"]
    assert reasons[:7].isna().all()

    yes_no = replace(config, positive_label="Yes")
    mapped, reasons = target_values(yes_no, pd.Series(["Yes", "No", " Yes ", "", 1.0, 0.0], dtype=object))
    assert mapped.tolist()[:3] == [1, 0, 1] and np.isnan(mapped[3]) and mapped.tolist()[4:] == [1, 0]
    assert reasons.tolist()[3] == "missing:is_fraud"


def test_yes_no_target_needs_positive_label_and_says_so(config):
    frame = history(is_fraud=["Yes", "No"] * 60)
    with pytest.raises(TrainingError, match=r"set \[dataset\] positive_label in demo.toml"):
        usable_rows(config, frame)
    rows, excluded = usable_rows(replace(config, positive_label="Yes"), frame)
    assert len(rows) == 120 and excluded == {"total": 0, "reasons": {}}
    assert rows["is_fraud"].sum() == 60
    with pytest.raises(TrainingError, match="positive_label = 'yes' in demo.toml never occurs"):
        usable_rows(replace(config, positive_label="yes"), frame)


def test_blank_and_unparseable_cells_follow_the_scoring_rules_and_are_counted(config):
    frame = history()
    frame.loc[0, "distance_from_home_km"] = " "  # nullable numeric, blank: missing, row kept
    frame.loc[1, "amount"] = " "  # non-nullable numeric, blank: row left out
    frame.loc[2, "account_age_days"] = "twelve"  # not a number: row left out
    frame.loc[3, "is_fraud"] = " "  # no label: row left out
    frame.loc[4, "event_time"] = "yesterday"
    frame.loc[5, "merchant_category"] = None  # non-nullable categorical, missing: row left out
    frame.loc[6, "channel"] = " "  # a category of spaces is a category, as when scoring
    rows, excluded = usable_rows(config, frame)
    assert excluded == {
        "total": 5,
        "reasons": {
            "missing:amount": 1,
            "missing:is_fraud": 1,
            "missing:merchant_category": 1,
            "not_a_number:account_age_days": 1,
            "unparseable_timestamp:event_time": 1,
        },
    }
    kept = rows.set_index("transaction_id")
    assert len(rows) == 115 and not {"t1", "t2", "t3", "t4", "t5"} & set(kept.index)
    assert np.isnan(kept.loc["t0", "distance_from_home_km"]) and kept.loc["t0", "amount"] == 10.0
    assert kept.loc["t6", "channel"] == " "
    assert str(rows["event_time"].dtype).startswith("datetime64") and rows["amount"].dtype == "float64"


def test_too_few_usable_rows_names_the_reasons(config):
    frame = history(amount=[" "] * 120)
    with pytest.raises(TrainingError, match=r"only 0 usable labelled rows \(120 left out: \{'missing:amount': 120\}\)"):
        usable_rows(config, frame)
