"""drift.statistics gives Evidently's statistic and verdict for every configurable method, so the
decision computed without the report is the decision the report gave."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.config import load_config
from driftline.config.model import CATEGORICAL_DRIFT_METHODS, NUMERIC_DRIFT_METHODS
from driftline.drift.errors import DriftError
from driftline.drift.statistics import SCORE_COLUMN, column_drift, drift_results
from tests.helpers import DEMO_CONFIG


def _evidently(reference: pd.Series, current: pd.Series, column_type: str, method: str, threshold: float | None):
    """Evidently's ValueDrift on the two columns: (drift score, threshold, drift detected)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    numeric = column_type == "numeric"
    definition = DataDefinition(
        numerical_columns=["x"] if numeric else [], categorical_columns=[] if numeric else ["x"]
    )
    snapshot = Report([ValueDrift(column="x", method=method, threshold=threshold)], include_tests=True).run(
        current_data=Dataset.from_pandas(pd.DataFrame({"x": current}), data_definition=definition),
        reference_data=Dataset.from_pandas(pd.DataFrame({"x": reference}), data_definition=definition),
    )
    content = snapshot.dict()
    metric = content["metrics"][0]
    return float(metric["value"]), metric["config"].get("threshold"), content["tests"][0]["status"] == "FAIL"


def _both(reference: pd.Series, current: pd.Series, column_type: str, method: str, threshold: float | None):
    """(ours, Evidently's), or None for both when Evidently's own test cannot run on the samples
    (g_test with a category on one side only): then ours must fail as well."""
    try:
        expected = _evidently(reference, current, column_type, method, threshold)
    except ValueError:
        with pytest.raises(ValueError):
            column_drift(reference.rename("x"), current.rename("x"), column_type, method, threshold)
        return None
    return column_drift(reference.rename("x"), current.rename("x"), column_type, method, threshold), expected


def _numeric(draw, size: int) -> pd.Series:
    shift = draw(st.sampled_from([0.0, 0.05, 0.3, 1.0]))
    ties = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).normal(shift, 1.0, size)
    if ties:
        values = np.round(values, 1)
    values[:: draw(st.integers(5, 50))] = np.nan  # missing values are left out by both
    return pd.Series(values, dtype="float64")


@st.composite
def numeric_pair(draw):
    return _numeric(draw, draw(st.integers(30, 400))), _numeric(draw, draw(st.integers(30, 400)))


@st.composite
def categorical_pair(draw):
    def one():
        weights = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=4, max_size=4)))
        seed = draw(st.integers(0, 2**16))
        picked = np.random.default_rng(seed).choice(list("abcd"), draw(st.integers(30, 400)), p=weights / weights.sum())
        return pd.Series(picked, dtype="object")

    return one(), one()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=numeric_pair(), method=st.sampled_from(NUMERIC_DRIFT_METHODS), threshold=st.sampled_from([None, 0.01, 0.2]))
def test_numeric_statistic_and_verdict_are_evidentlys(pair, method, threshold):
    found = _both(*pair, "numeric", method, threshold)
    if found is None:
        return
    (statistic, used, drifted), (expected, expected_threshold, expected_drifted) = found
    assert statistic == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert used == pytest.approx(expected_threshold)
    assert drifted == expected_drifted


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pair=categorical_pair(),
    method=st.sampled_from(CATEGORICAL_DRIFT_METHODS),
    threshold=st.sampled_from([None, 0.01, 0.2]),
)
def test_categorical_statistic_and_verdict_are_evidentlys(pair, method, threshold):
    found = _both(*pair, "categorical", method, threshold)
    if found is None:
        return
    (statistic, used, drifted), (expected, expected_threshold, expected_drifted) = found
    assert statistic == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert used == pytest.approx(expected_threshold)
    assert drifted == expected_drifted


def test_drift_results_on_the_demo_features_match_the_report():
    from driftline.drift.report import run_report

    config = load_config(DEMO_CONFIG)
    rng = np.random.default_rng(1)

    def frame(shift: float) -> pd.DataFrame:
        data = {}
        for feature in config.features:
            if feature.type == "numeric":
                data[feature.name] = rng.normal(shift, 1.0, 500)
            else:
                data[feature.name] = pd.Series(rng.choice(["a", "b", "c"], 500), dtype="object")
        data[SCORE_COLUMN] = rng.beta(2, 5 + 10 * shift, 500)
        return pd.DataFrame(data)

    reference, current = frame(0.0), frame(0.4)
    features, prediction = drift_results(config, reference, current)
    content = run_report(config, reference, current).dict()
    verdicts = {
        test["metric_config"]["params"]["column"]: test["status"] == "FAIL"
        for test in content["tests"]
        if test["metric_config"]["params"].get("type") == "evidently:metric_v2:ValueDrift"
    }
    assert {f.column_name: f.drifted for f in features} == {k: v for k, v in verdicts.items() if k != SCORE_COLUMN}
    assert prediction.drifted == verdicts[SCORE_COLUMN]
    assert any(f.drifted for f in features) and not all(f.drifted for f in features)


def test_an_empty_side_names_the_column():
    with pytest.raises(DriftError, match="'amount'.*interval"):
        column_drift(pd.Series([1.0, 2.0], name="amount"), pd.Series([np.nan], name="amount"), "numeric", "ks", None)
