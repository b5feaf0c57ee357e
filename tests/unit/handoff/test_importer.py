"""import-model's own evaluation rows (handoff/importer.py): a broken history is an error, not a
silently skipped holdout; only "no labelled row after the training end" goes on, and says so."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from driftline.labelled import TrainingError
from tests.unit.handoff.models import rows


def _config(tmp_path, history: pd.DataFrame):
    from driftline.config import load_config
    from tests.helpers import config_copy

    path = tmp_path / "history.parquet"
    history.to_parquet(path)
    return load_config(config_copy(tmp_path, keys={"history": f'"{path}"'}))


def test_too_few_labelled_rows_in_the_history_is_an_error_not_an_empty_holdout(tmp_path):
    from driftline.handoff.importer import unseen_rows

    config = _config(tmp_path, rows(40))
    with pytest.raises(TrainingError, match="only 40 usable labelled rows"):
        unseen_rows(config, pd.Timestamp("2026-01-01", tz="UTC"))


def test_a_history_without_the_target_column_is_an_error(tmp_path):
    from driftline.handoff.importer import unseen_rows

    config = _config(tmp_path, rows(200).drop(columns=["is_fraud"]))
    with pytest.raises(TrainingError, match="lacks column"):
        unseen_rows(config, pd.Timestamp("2026-01-01", tz="UTC"))


def test_no_row_after_the_training_end_is_empty_and_the_reason_says_what_is_missing(tmp_path):
    from driftline.handoff.importer import no_holdout_reason, unseen_rows

    config = _config(tmp_path, rows(200))
    until = pd.Timestamp(datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert len(unseen_rows(config, until)) == 0
    reason = no_holdout_reason(until)
    assert "2100-01-01" in reason and "no holdout metrics and no calibration" in reason
