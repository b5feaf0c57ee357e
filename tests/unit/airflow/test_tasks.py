"""The task functions' guards: a run without a data interval fails at once, saying how to trigger one that has
it; unknown trigger-conf keys are refused naming the known ones."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from driftline.airflow.tasks import check_conf_keys, require_interval
from driftline.errors import BadConfig


@pytest.mark.parametrize("start, end", [(None, None), (datetime(2026, 11, 1, tzinfo=timezone.utc), None)])
def test_no_data_interval_is_bad_config_naming_a_trigger_that_works(start, end):
    with pytest.raises(BadConfig, match="no data interval") as raised:
        require_interval(start, end)
    assert "logical_date" in str(raised.value) and "dags trigger -l" in str(raised.value)
    assert "logical date" in str(raised.value)


def test_an_interval_passes():
    require_interval(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))


def test_unknown_conf_keys_are_refused_with_the_known_ones():
    with pytest.raises(BadConfig, match=r"unknown conf key 'modelversion'; known: config, model_version"):
        check_conf_keys({"config": "x", "modelversion": 2}, ["model_version", "config"])
    check_conf_keys({"model_version": 2}, ["model_version", "config"])  # a subset is fine
