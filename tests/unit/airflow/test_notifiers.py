"""The scoring deadline: the interval's length plus the configured hours, none without alerts."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from driftline.config import AlertSettings, load_config
from tests.helpers import config_copy


def config_with(tmp_path, replace: dict[str, str] | None = None):
    return load_config(config_copy(tmp_path, (replace or {}).items()))


def test_scoring_deadline_is_interval_length_plus_configured_hours(tmp_path):
    from driftline.airflow.notifiers import scoring_deadline

    config = config_with(tmp_path)
    deadline = scoring_deadline(config)
    assert deadline.interval == timedelta(days=1, hours=6)
    assert deadline.callback.path == "driftline.airflow.notifiers.scoring_deadline_missed"
    assert deadline.callback.kwargs == {"config_path": str(config.path), "deadline_hours": 6.0}
    hourly = config_with(tmp_path, {'cron = "0 0 * * *"': 'cron = "0 * * * *"'})
    assert scoring_deadline(hourly).interval == timedelta(hours=7)
    off = dataclasses.replace(config, alerts=AlertSettings())
    assert scoring_deadline(off) is None
