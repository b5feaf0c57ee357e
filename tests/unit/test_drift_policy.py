"""Drift policy on tiny inputs: thresholds, effect-size floor, k of n, cooldown; sampling; config keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from driftline.config import ConfigError, DriftPolicy, load_config
from driftline.drift.policy import RetrainState, counts_as_drift, decide, effect_size, is_breach
from driftline.drift.report import sample_tables
from tests.helpers import config_copy

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
POLICY = DriftPolicy(
    drifted_share=0.3, prediction_drift=0.1, effect_size_floor=0.1, breaches=2, window=3, cooldown_hours=24
)
NUMBERS = {"drifted_share": 0.43, "prediction_drift": 0.02}
RETRAIN = RetrainState("retrain_model")


def test_breach_thresholds_are_inclusive_and_either_one_suffices():
    assert is_breach(POLICY, 0.3, 0.0)
    assert not is_breach(POLICY, 0.29, 0.099)
    assert is_breach(POLICY, 0.0, 0.1)


def test_effect_size_floor_drops_statistically_significant_trivia():
    rng = np.random.default_rng(0)
    reference = pd.Series(rng.normal(0, 1, 20_000))
    nudged = pd.Series(rng.normal(0.03, 1, 20_000))  # a p-value test flags this at n=20k
    shifted = pd.Series(rng.normal(1.0, 1, 20_000))
    small, large = effect_size(reference, nudged, "numeric"), effect_size(reference, shifted, "numeric")
    assert small < 0.1 < 0.9 < large < 1.1  # in units of the reference's standard deviation
    assert not counts_as_drift(True, small, POLICY.effect_size_floor)
    assert counts_as_drift(True, large, POLICY.effect_size_floor)
    assert not counts_as_drift(False, large, POLICY.effect_size_floor)
    assert not counts_as_drift(True, None, POLICY.effect_size_floor)


def test_categorical_effect_size_is_jensen_shannon_distance():
    same = pd.Series(["a", "b", "c"] * 100)
    assert effect_size(same, same.sample(frac=1, random_state=1), "categorical") == pytest.approx(0.0)
    assert effect_size(pd.Series(["a"] * 10), pd.Series(["b"] * 10), "categorical") == pytest.approx(1.0)
    with_missing = pd.Series(["a", None] * 50)
    assert effect_size(pd.Series(["a"] * 100), with_missing, "categorical") > 0.4  # missing is a category
    assert effect_size(pd.Series([], dtype=float), pd.Series([1.0]), "numeric") is None


def test_no_breach_never_triggers():
    decision = decide(POLICY, False, [False, True, True], None, NOW, RETRAIN, numbers=NUMBERS)
    assert (decision.breach, decision.trigger) == (False, False)
    assert decision.reason.startswith("no breach")


@pytest.mark.parametrize(
    "recent, trigger",
    [
        ([True], False),  # first interval ever: 1 of 3
        ([True, False, False], False),
        ([True, False, True], True),
        ([True, True], True),
        ([True, False, False, True, True], False),  # only the last `window` intervals count
    ],
)
def test_breach_must_persist_k_of_the_last_n_intervals(recent, trigger):
    decision = decide(POLICY, True, recent, None, NOW, RETRAIN, numbers=NUMBERS)
    assert decision.trigger is trigger
    assert decision.numbers["breaches_in_window"] == sum(recent[:3])
    if not trigger:
        assert "not persistent" in decision.reason


@pytest.mark.parametrize("hours_ago, trigger", [(1, False), (23.9, False), (24.1, True)])
def test_no_trigger_within_the_cooldown_after_the_last_retrain(hours_ago, trigger):
    decision = decide(POLICY, True, [True, True, True], NOW - timedelta(hours=hours_ago), NOW, RETRAIN, numbers=NUMBERS)
    assert decision.trigger is trigger
    if not trigger:
        assert "cooldown" in decision.reason


def test_no_trigger_while_a_retrain_runs_or_when_retrain_model_is_missing():
    running = decide(POLICY, True, [True, True], None, NOW, RetrainState("retrain_model", running=1), numbers=NUMBERS)
    assert (running.breach, running.trigger) == (True, False) and "already active" in running.reason
    missing = decide(
        POLICY, True, [True, True], None, NOW, RetrainState("retrain_model", deployed=False), numbers=NUMBERS
    )
    assert (missing.breach, missing.trigger) == (True, False) and "not deployed" in missing.reason
    go = decide(POLICY, True, [True, True], None, NOW, RETRAIN, numbers=NUMBERS)
    assert go.trigger and go.reason.startswith("retrain:") and "0.43" in go.reason


def test_sample_is_seeded_uniform_and_independent_of_chunking():
    values = np.arange(10_000, dtype="float64")  # sorted: a sample biased to any chunk shows in its mean
    whole = pa.table({"x": values})
    chunks = [whole.slice(offset, 1_000) for offset in range(0, 10_000, 1_000)]
    sample, seen = sample_tables(chunks, 1_000, seed=3)
    assert seen == 10_000 and sample.num_rows == 1_000
    assert sample.equals(sample_tables([whole], 1_000, seed=3)[0])
    assert not sample.equals(sample_tables(chunks, 1_000, seed=4)[0])
    picked = sample["x"].to_numpy()
    assert np.all(np.diff(picked) > 0)  # stream order kept, no row twice
    assert abs(picked.mean() - values.mean()) < 300  # ~3.5 standard errors of a uniform sample mean
    small, seen = sample_tables([pa.table({"x": values[:10]})], 1_000, seed=3)
    assert small.num_rows == seen == 10


def test_demo_drift_section_loads():
    drift = load_config(REPO / "config" / "demo.toml").drift
    assert drift.reports_dir == REPO / "reports" / "demo_transactions"
    assert (drift.numeric_method, drift.categorical_method, drift.sample_rows) == ("ks", "chisquare", 50_000)
    assert (drift.trigger.breaches, drift.trigger.window, drift.trigger.cooldown_hours) == (2, 3, 24)
    # The estimated-metric rule is off unless a floor or a drop is set.
    assert (
        drift.trigger.estimated_metric,
        drift.trigger.estimated_metric_floor,
        drift.trigger.estimated_metric_drop,
    ) == ("auc", None, None)


def test_estimated_metric_rule_keys_load(tmp_path):
    path = config_copy(
        tmp_path, append='estimated_metric = "f1"\nestimated_metric_floor = 0.4\nestimated_metric_drop = 0.05\n'
    )
    trigger = load_config(path).drift.trigger
    assert (trigger.estimated_metric, trigger.estimated_metric_floor, trigger.estimated_metric_drop) == (
        "f1",
        0.4,
        0.05,
    )


def test_an_estimated_breach_is_named_in_the_decision_reason():
    numbers = {**NUMBERS, "estimated_breach": "estimated auc 0.700 below floor 0.75"}
    decision = decide(POLICY, True, [True, True], None, NOW, RETRAIN, numbers=numbers)
    assert decision.trigger and decision.reason.endswith("; estimated auc 0.700 below floor 0.75)")
    assert "estimated" not in decide(POLICY, True, [True, True], None, NOW, RETRAIN, numbers=NUMBERS).reason


@pytest.mark.parametrize(
    "edits, message",
    [
        ({"replace": [("window = 3\n", "")]}, "missing required key 'drift.trigger.window'"),
        ({"replace": [("window = 3", "window = 3\nwindows = 3")]}, "unknown key 'drift.trigger.windows'"),
        ({"replace": [("sample_rows = 50000", "sample = 10")]}, "unknown key 'drift.sample'"),
        ({"replace": [('reports_dir = "reports/demo_transactions"', "")]}, "missing required key 'drift.reports_dir'"),
        ({"replace": [('numeric_method = "ks"', 'numeric_method = "chisquare"')]}, "'drift.numeric_method'"),
        ({"replace": [('prediction_method = "wasserstein"', 'prediction_method = "ks"')]}, "'drift.prediction_method'"),
        ({"replace": [("breaches = 2", "breaches = 4")]}, "'drift.trigger.breaches' (4) cannot exceed"),
        ({"replace": [("drifted_share = 0.3", "drifted_share = 30")]}, "'drift.trigger.drifted_share'"),
        ({"replace": [("cooldown_hours = 24", 'cooldown_hours = "1d"')]}, "'drift.trigger.cooldown_hours'"),
        ({"sections": {"drift": None, "drift.trigger": None}}, "missing required section '[drift]'"),
        ({"append": 'estimated_metric = "log_loss"\n'}, "'drift.trigger.estimated_metric' must be one of"),
        ({"append": "estimated_metric_floor = 1.5\n"}, "'drift.trigger.estimated_metric_floor' must be in"),
        ({"append": 'estimated_metric_drop = "a lot"\n'}, "'drift.trigger.estimated_metric_drop' must be"),
        ({"append": "estimated_metric_ceiling = 0.5\n"}, "unknown key 'drift.trigger.estimated_metric_ceiling'"),
    ],
)
def test_bad_drift_config_names_key_and_file(tmp_path, edits, message):
    path = config_copy(tmp_path, **edits)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value) and str(path) in str(error.value)
