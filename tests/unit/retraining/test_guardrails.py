"""retrain_model's guardrails on tiny inputs, without Postgres: better_by in both metric directions,
prediction sanity, per-segment metrics, and every reason not to promote."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from driftline.config import RetrainingPolicy
from driftline.retraining.guardrails import (
    better_by,
    guardrail_failures,
    prediction_problems,
    segment_metrics,
    verdict_text,
)

POLICY = RetrainingPolicy(
    min_training_rows=100, min_improvement=0.01, max_regression=0.02, segment="channel", min_segment_rows=3
)
BINARY = SimpleNamespace(task="binary", target="label", threshold=0.5, retraining=POLICY)
FINE = np.array([0.1, 0.4, 0.9])


def _model(version: int, auc: float | None, log_loss: float = 0.3, segments: dict | None = None) -> dict:
    metrics = {"log_loss": log_loss, **({} if auc is None else {"auc": auc})}
    return {"version": version, "metrics": metrics, "segments": segments or {}}


@pytest.mark.parametrize(
    "metric, candidate, champion, better",
    [("auc", 0.8, 0.7, 0.1), ("auc", 0.7, 0.8, -0.1), ("log_loss", 0.2, 0.3, 0.1), ("rmse", 5.0, 4.0, -1.0)],
)
def test_better_by_follows_the_metric_direction(metric, candidate, champion, better):
    assert better_by(metric, candidate, champion) == pytest.approx(better)


def test_prediction_problems_name_each_kind():
    assert prediction_problems(BINARY, FINE) == []
    assert prediction_problems(BINARY, np.array([0.1, np.inf, np.nan])) == ["2 holdout predictions are NaN or infinite"]
    assert prediction_problems(BINARY, np.array([-0.5, 0.5])) == [
        "holdout predictions outside [0, 1]: min -0.5, max 0.5"
    ]
    assert prediction_problems(BINARY, np.array([0.3, 0.3, 0.3])) == ["all holdout predictions are the same value 0.3"]
    regression = SimpleNamespace(task="regression", retraining=POLICY)
    assert prediction_problems(regression, np.array([-3.0, 250.0])) == []  # no range for regression scores


def test_a_candidate_that_wins_everywhere_has_no_failures():
    assert guardrail_failures(BINARY, 500, _model(2, 0.82), _model(1, 0.80), FINE) == []
    assert guardrail_failures(BINARY, 500, _model(2, 0.60), None, FINE) == []  # nothing to beat


def test_too_few_rows_and_too_small_an_improvement_both_fail():
    failures = guardrail_failures(BINARY, 50, _model(2, 0.805), _model(1, 0.80), FINE)
    assert failures == [
        "only 50 training rows (retraining.min_training_rows = 100)",
        "auc 0.8050 does not beat champion v1 0.8000 by more than retraining.min_improvement 0.01",
    ]


def test_min_metric_is_a_floor_in_the_metric_direction():
    strict = SimpleNamespace(**{**vars(BINARY), "retraining": RetrainingPolicy(min_training_rows=100, min_metric=0.9)})
    assert guardrail_failures(strict, 500, _model(2, 0.85), None, FINE) == [
        "auc 0.8500 does not reach retraining.min_metric 0.9"
    ]


def test_an_undefined_primary_metric_stops_the_comparison_and_names_the_predictions():
    failures = guardrail_failures(BINARY, 500, _model(2, None), _model(1, 0.8), np.array([np.nan, 0.5]))
    assert failures == [
        "auc is undefined: the holdout predictions are not all finite",
        "1 holdout predictions are NaN or infinite",
    ]


def test_a_one_class_holdout_says_so_and_no_reason_says_nan():
    failures = guardrail_failures(BINARY, 500, _model(2, None), _model(1, None), FINE)
    assert failures == ["auc is undefined: the holdout has one class only (auc needs both)"]
    validation = {
        "version": 2,
        "metric": "auc",
        "candidate": _model(2, None),
        "champion": _model(1, None),
        "holdout": {"rows": 0},
    }
    verdict = verdict_text(validation)
    assert "nan" not in verdict.lower() and "one class only" in verdict
    assert verdict_text({**validation, "candidate": _model(2, 0.81)}).startswith("candidate v2 auc 0.8100 vs champion")
    assert "not evaluated" in verdict_text({**validation, "candidate": {"version": 2, "metrics": {}, "segments": {}}})


def test_the_champion_itself_is_not_a_candidate():
    failures = guardrail_failures(BINARY, 500, _model(4, 0.9), _model(4, 0.9), FINE)
    assert failures == ["candidate is the champion v4 itself (same sha256: same data and seed)"]


def test_other_metrics_and_segments_may_not_regress_beyond_max_regression():
    candidate = _model(2, 0.90, log_loss=0.40, segments={"online": 0.70, "store": 0.95})
    champion = _model(1, 0.80, log_loss=0.30, segments={"online": 0.75, "store": 0.90, "phone": 0.9})
    assert guardrail_failures(BINARY, 500, candidate, champion, FINE) == [
        "log_loss 0.4000 is worse than champion 0.3000 by more than retraining.max_regression 0.02",
        "segment channel=online: auc 0.7000 is worse than champion 0.7500 by more than retraining.max_regression 0.02",
    ]


def test_a_champion_without_the_metric_is_not_compared_on_it():
    assert guardrail_failures(BINARY, 500, _model(2, 0.7), _model(1, None), FINE) == []


def test_segment_metrics_skip_small_and_one_class_segments():
    holdout = pd.DataFrame(
        {"channel": ["a", "a", "a", "a", "b", "b", "c", "c", "c"], "label": [0, 1, 0, 1, 0, 1, 1, 1, 1]}
    )
    scores = np.array([0.1, 0.9, 0.2, 0.8, 0.5, 0.5, 0.7, 0.8, 0.9])
    assert segment_metrics(BINARY, holdout, scores) == {"a": pytest.approx(1.0)}  # b: 2 rows; c: one class
    assert segment_metrics(SimpleNamespace(**{**vars(BINARY), "retraining": RetrainingPolicy()}), holdout, scores) == {}
