"""intervals.utc: what Airflow runs and trigger confs carry, read as UTC; anything else is bad input."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from driftline.errors import BadInput
from driftline.intervals import utc


def test_utc_reads_what_runs_and_confs_carry():
    assert utc(None) is None and utc("") is None
    assert utc(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert utc("2026-01-01T02:00:00+02:00") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert utc("2026-01-01T00:00:00Z").tzinfo == timezone.utc
    with pytest.raises(BadInput, match="not an ISO 8601 date or time: 'tomorrow'"):
        utc("tomorrow")
