"""[drift] and [drift.trigger] in a dataset config: the demo's values, the estimated-metric keys, and bad
values as config errors naming the key and the file."""

from __future__ import annotations

import pytest

from driftline.config import ConfigError, load_config
from tests.helpers import DEMO_CONFIG, REPO, config_copy


def test_demo_drift_section_loads():
    drift = load_config(DEMO_CONFIG).drift
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
        ({"append": "estimated_metric_floor = 1.5\n"}, "'drift.trigger.estimated_metric_floor' must be a fraction"),
        ({"append": 'estimated_metric_drop = "a lot"\n'}, "'drift.trigger.estimated_metric_drop' must be"),
        ({"append": "estimated_metric_ceiling = 0.5\n"}, "unknown key 'drift.trigger.estimated_metric_ceiling'"),
    ],
)
def test_bad_drift_config_names_key_and_file(tmp_path, edits, message):
    path = config_copy(tmp_path, **edits)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value) and str(path) in str(error.value)
