"""The pure parts of issue 17: which rows make a fair shared holdout, and what the scoring hash covers."""

from __future__ import annotations

import dataclasses

import pandas as pd

from driftline.config import load_config
from driftline.registry import scoring_digest
from driftline.retraining.windows import HOLDOUT_FLOOR, fair_holdout, required_holdout_rows
from tests.helpers import REPO


def _config(min_holdout_rows: int):
    config = load_config(REPO / "config" / "demo.toml")
    return dataclasses.replace(
        config, retraining=dataclasses.replace(config.retraining, min_holdout_rows=min_holdout_rows)
    )


def _rows(config, hours: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        {config.event_time: [pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(hours=h) for h in hours]}
    )


def _at(hour: int) -> pd.Timestamp:
    return pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(hours=hour)


def test_holdout_starts_after_the_later_training_end():
    config = _config(2)
    rows = _rows(config, [1, 2, 3, 4, 5])
    # The champion trained on newer rows than the candidate: only rows after the champion's end.
    holdout, bounds, failure = fair_holdout(config, rows, 3, _at(2), 2, _at(3))
    assert failure is None and list(holdout[config.event_time]) == [_at(4), _at(5)]
    assert bounds["after"] == _at(3).isoformat() and "after champion v2's training end" in bounds["reason"]
    # The candidate trained on newer rows: its own holdout.
    holdout, bounds, failure = fair_holdout(config, rows, 3, _at(3), 2, _at(1))
    assert failure is None and len(holdout) == 2 and "after candidate v3's training end" in bounds["reason"]
    # No champion: the candidate's own holdout, and the record says why.
    _, bounds, _ = fair_holdout(config, rows, 1, _at(3), None, None)
    assert "no champion" in bounds["reason"]


def test_too_few_unseen_rows_or_an_unknown_training_end_is_no_fair_holdout():
    config = _config(3)
    rows = _rows(config, [1, 2, 3, 4, 5])
    _, bounds, failure = fair_holdout(config, rows, 3, _at(2), 2, _at(3))
    assert failure.startswith("no fair holdout: 2 rows after the champion's training end") and bounds["rows"] == 2
    holdout, _, failure = fair_holdout(config, rows, 3, _at(2), 2, None)
    assert "records no training window" in failure and holdout.empty


def test_the_holdout_minimum_scales_with_the_data():
    config = _config(200)  # the default; holdout_fraction 0.2
    assert required_holdout_rows(config, 569) == 57  # a 569-row dataset can be retrained
    assert required_holdout_rows(config, 100_000) == 200  # big data keeps the configured minimum
    assert required_holdout_rows(config, 100) == HOLDOUT_FLOOR  # never below the floor ...
    assert required_holdout_rows(_config(10), 100) == 10  # ... unless configured lower
    rows = _rows(config, list(range(569)))
    holdout, _, failure = fair_holdout(config, rows, 2, _at(455), None, None)
    assert failure is None and len(holdout) == 113
    _, _, failure = fair_holdout(config, rows, 2, _at(530), None, None)
    assert "38 rows after the candidate's training end" in failure and "57 needed" in failure
    assert "scaled to the window's 569 labelled rows" in failure


def test_scoring_hash_covers_order_of_features_and_categories_not_key_order():
    manifest = {
        "task": "binary",
        "sha256": "ab",
        "score_reference": {"std": 0.1},
        "features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "categorical"}],
        "categories": {"b": ["x", "y"]},
        "metrics": {"auc": 0.8},
        "decisions": [],
    }
    digest = scoring_digest(manifest)
    assert scoring_digest(dict(reversed(list(manifest.items())))) == digest
    assert scoring_digest({**manifest, "metrics": {}, "decisions": [{"action": "promote"}]}) == digest
    assert scoring_digest({**manifest, "categories": {"b": ["y", "x"]}}) != digest
    assert scoring_digest({**manifest, "features": manifest["features"][::-1]}) != digest
    assert scoring_digest({**manifest, "score_reference": {"std": 0.2}}) != digest


def test_scoring_hash_covers_the_calibration_map_once_a_version_has_one():
    manifest = {"task": "binary", "sha256": "ab", "score_reference": {"std": 0.1}, "features": [], "categories": {}}
    calibrated = {**manifest, "calibration": {"method": "isotonic", "x": [0.0, 1.0], "y": [0.1, 0.9]}}
    # A version registered before calibration existed keeps the digest it was registered with...
    assert scoring_digest(manifest) == scoring_digest({**manifest, "metrics": {}})
    # ... and once present, changing or removing the map changes the digest.
    assert scoring_digest(calibrated) != scoring_digest(manifest)
    tampered = {**calibrated, "calibration": {**calibrated["calibration"], "y": [0.1, 0.5]}}
    assert scoring_digest(tampered) != scoring_digest(calibrated)
