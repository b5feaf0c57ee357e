"""The scoring run object without a database: where the COPY is, counts always present, the budget rule."""

from __future__ import annotations

import ast
import inspect
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from driftline import batch, partitions
from driftline.attempt import Counts
from driftline.run import ScoringRun


def _calls(function) -> set[str]:
    """Dotted names of everything `function` calls (attribute chains like run.write)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_the_copy_is_two_hops_from_the_task():
    # airflow/tasks.score_interval -> batch.score_interval -> ScoringRun.write, which holds the COPY.
    assert "run.write" in _calls(batch.score_interval)
    assert "run.write" in _calls(partitions.score_partition)
    assert "db.BackgroundCopy" in _calls(ScoringRun.write)
    assert "run.publish" in _calls(batch.score_interval) and "run.publish" in _calls(partitions.publish_partitions)


def test_counts_are_there_from_the_start():
    now = datetime(2026, 11, 2, tzinfo=timezone.utc)
    run = ScoringRun(None, SimpleNamespace(db_schema="s"), now, now, "r", "in.csv")  # type: ignore[arg-type]
    assert isinstance(run.counts, Counts) and run.summary()["rows_in"] == 0
    assert not run.counting  # a failure before the model is chosen is recorded without counts


@given(
    rows_in=st.integers(1, 10_000),
    share=st.floats(0, 1),
    budget=st.floats(0, 1),
    reasons=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 9)),
)
def test_over_budget_exactly_when_more_than_the_budget_is_quarantined(rows_in, share, budget, reasons):
    counts = Counts(rows_in=rows_in, rows_quarantined=int(rows_in * share))
    counts.reasons.update(reasons)
    config = SimpleNamespace(quarantine_budget=budget, path=Path("/x/dataset.toml"))
    message = counts.over_budget(config, "in.csv")  # type: ignore[arg-type]
    assert (message is not None) == (counts.rows_quarantined > budget * rows_in)
    if message is not None:
        assert "validation.quarantine_budget in dataset.toml" in message and "in.csv" in message
