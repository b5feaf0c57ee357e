from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.config import load_config
from driftline.scoring.features import FeatureBinding, model_frame
from driftline.scoring.safeguards import predicted_class
from driftline.validation import TableValidationError, Validator, build_suite

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "config" / "demo.toml")


def frame(**overrides) -> pd.DataFrame:
    rows = {
        "transaction_id": ["a", "b", "c", "d"],
        "event_time": pd.to_datetime(["2026-11-01T01:00:00Z"] * 4, utc=True),
        "amount": [10.0, -1.0, np.nan, 20.0],
        "account_age_days": [1.0, 2.0, 3.0, 4.0],
        "transactions_last_24h": [1.0, 1.0, 1.0, 1.0],
        "distance_from_home_km": [1.0, np.nan, 1.0, float("inf")],
        "hour_of_day": [1.0, 2.0, 3.0, 30.0],
        "merchant_category": ["grocery", "grocery", "casino", "fuel"],
        "channel": ["online", "online", "online", None],
    }
    rows.update(overrides)
    return pd.DataFrame(rows)


def test_committed_suite_matches_the_config(config):
    committed = json.loads(config.suite_path.read_text())
    generated = build_suite(config)
    assert [e["type"] for e in committed["expectations"]] == [e["type"] for e in generated["expectations"]]


def test_row_failures_carry_the_expectation_and_column(config):
    failures = Validator(config).row_failures(frame(), "unit.csv")
    assert {row: sorted(codes) for row, codes in failures.items()} == {
        1: ["expect_column_values_to_be_between:amount"],
        2: ["expect_column_values_to_be_in_set:merchant_category", "expect_column_values_to_not_be_null:amount"],
        3: [
            "expect_column_values_to_be_between:distance_from_home_km",
            "expect_column_values_to_be_between:hour_of_day",
            "expect_column_values_to_not_be_null:channel",
        ],
    }


def test_table_level_expectation_failure_raises(config, tmp_path):
    suite = build_suite(config)
    suite["expectations"].append({"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}})
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    with pytest.raises(TableValidationError) as error:
        Validator(replace(config, suite_path=path)).row_failures(frame(), "unit.csv")
    assert "expect_table_row_count_to_be_between" in str(error.value) and "unit.csv" in str(error.value)


def test_unseen_category_is_missing_for_the_model(config):
    features = model_frame(
        frame(), FeatureBinding.of_config(config, {"merchant_category": ["grocery", "fuel"], "channel": ["online"]})
    )
    assert features["merchant_category"].isna().tolist() == [False, False, True, False]
    assert list(features.columns) == config.feature_names


def test_predicted_class_uses_the_threshold(config):
    assert predicted_class(np.array([0.1, 0.5, 0.9]), config).tolist() == [0, 1, 1]
    assert predicted_class(np.array([0.1]), replace(config, task="regression")) is None


def random_frame(rng, rows: int) -> pd.DataFrame:
    """Rows with every kind of value the suite's expectations look at: nulls, NaN, inf, out of range, unseen."""
    base = frame()
    data = {column: rng.choice(base[column].to_numpy(), rows) for column in base.columns if column != "event_time"}
    data["event_time"] = pd.to_datetime(["2026-11-01T01:00:00Z"] * rows, utc=True)
    for column in ("amount", "hour_of_day", "account_age_days"):
        values = rng.choice([np.nan, np.inf, -np.inf, -5.0, 0.0, 1.0, 23.0, 24.0, 50000.0, 50000.5], rows)
        data[column] = values
    data["merchant_category"] = rng.choice(["grocery", "fuel", "casino", None, ""], rows)
    return pd.DataFrame(data)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vectorized_engine_agrees_with_great_expectations(config, seed):
    """The Arrow evaluator must flag exactly the rows GE's own engine flags, with the same codes."""
    rows = random_frame(np.random.default_rng(seed), 400)
    fast = Validator(config, engine="auto")
    reference = Validator(config, engine="great_expectations")
    assert len(fast.vectorized) == len(json.loads(config.suite_path.read_text())["expectations"])
    assert reference.vectorized == []
    expected = {row: sorted(codes) for row, codes in reference.row_failures(rows, "x").items()}
    actual = {row: sorted(codes) for row, codes in fast.row_failures(rows, "x").items()}
    assert actual == expected
    assert len(actual) > 100  # the frame really exercises the expectations


def test_score_sanity_check_refuses_nan_and_out_of_range(config):
    from driftline.scoring.safeguards import OutputSanityError, check_scores

    check_scores(np.array([0.0, 0.5, 1.0]), config)
    with pytest.raises(OutputSanityError, match="1 of 3 scores are NaN or infinite"):
        check_scores(np.array([0.1, np.nan, 0.2]), config)
    with pytest.raises(OutputSanityError, match=r"outside \[0, 1\]"):
        check_scores(np.array([0.1, 1.5]), config)
    check_scores(np.array([-3.0, 12.0]), replace(config, task="regression"))


def test_learned_categories_become_in_set_expectations(config):
    from dataclasses import replace as with_changes

    learned_only = with_changes(
        config, features=tuple(with_changes(f, categories=None) if f.name == "channel" else f for f in config.features)
    )
    suite = build_suite(learned_only)
    manifest = {
        "categories": {"channel": ["online", "card_present"], "merchant_category": ["ignored: from the config"]}
    }
    from driftline.validation import add_learned_categories

    updated = add_learned_categories(suite, learned_only, manifest, version=3)
    in_set = {
        e["kwargs"]["column"]: e for e in updated["expectations"] if e["type"] == "expect_column_values_to_be_in_set"
    }
    assert in_set["channel"]["kwargs"]["value_set"] == ["card_present", "online"]
    assert in_set["channel"]["meta"] == {"generated_by": "driftline suite --from-model", "model_version": 3}
    assert in_set["merchant_category"] == next(
        e
        for e in suite["expectations"]
        if e["kwargs"].get("column") == "merchant_category" and "value_set" in e["kwargs"]
    )  # categories given in the config stay the config's
    assert len(updated["expectations"]) == len(suite["expectations"]) + 1
    again = add_learned_categories(updated, learned_only, {"categories": {"channel": ["online"]}}, version=4)
    replaced = [
        e for e in again["expectations"] if e["kwargs"].get("column") == "channel" and "value_set" in e["kwargs"]
    ]
    assert [e["kwargs"]["value_set"] for e in replaced] == [["online"]]  # updated in place, not added twice
