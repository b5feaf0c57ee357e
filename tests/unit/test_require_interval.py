"""A score_batch run without a data interval fails at once, saying how to trigger one that has it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from driftline.airflow.tasks import require_interval
from driftline.errors import BadConfig


@pytest.mark.parametrize("start, end", [(None, None), (datetime(2026, 11, 1, tzinfo=timezone.utc), None)])
def test_no_data_interval_is_bad_config_naming_a_trigger_that_works(start, end):
    with pytest.raises(BadConfig, match="no data interval") as raised:
        require_interval(start, end)
    assert "logical_date" in str(raised.value) and "dags trigger -l" in str(raised.value)


def test_an_interval_passes():
    require_interval(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))
