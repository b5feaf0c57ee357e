"""Rescoring a past interval with a pinned model version: score_batch's interval_start / interval_end
Params, through dag.test() against a real Postgres (a new run, so no logical date clashes)."""

from __future__ import annotations

import pytest

from driftline.errors import BadConfig
from driftline.intervals import requested_interval
from tests.helpers import SMALL_PLAN, fetch, interval_contents
from tests.integration.scenarios import add_second_champion

FIRST, SECOND = SMALL_PLAN.interval_bounds()
PROJECT_OVERRIDES = {"engine": '"compiled"'}


def _published_events(dag_run) -> list[tuple[str, dict]]:
    """(partition key, extra) of the predictions Asset events the run emitted."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).filter_by(source_run_id=dag_run.run_id, source_dag_id=dag_run.dag_id)
        return [(event.partition_key, dict(event.extra or {})) for event in events]


def test_pinned_version_rescores_a_past_interval_in_place(score_batch_dag, project):
    # The interval as a backfill scored it: the champion of its time, v1; then v2 is registered.
    assert str(score_batch_dag.test(logical_date=FIRST[1], run_conf={"config": str(project)}).state) == "success"
    before = interval_contents(project, FIRST)
    assert {row[3] for row in before["predictions"]} == {1}
    assert add_second_champion(project) == 2
    # A new run of today names the past interval and pins v2 (a run id of its own: no logical date clash).
    conf = {
        "config": str(project),
        "interval_start": FIRST[0].isoformat(),
        "interval_end": FIRST[1].isoformat(),
        "model_version": 2,
    }
    dag_run = score_batch_dag.test(run_conf=conf)
    assert str(dag_run.state) == "success"
    after = interval_contents(project, FIRST)
    keys = [row[0] for row in after["predictions"]]
    assert len(keys) == len(set(keys)) == len(before["predictions"])  # replaced, not added to
    assert {row[3] for row in after["predictions"]} == {2}
    assert [row[0] for row in before["predictions"]] == keys
    # Two attempts of the interval, one published; the run's own data interval scored nothing.
    assert fetch(
        project,
        "SELECT count(*), count(*) FILTER (WHERE published) FROM {s}.run_summary WHERE interval_start = %s",
        (FIRST[0],),
    ) == [(2, 1)]
    assert fetch(project, "SELECT count(*) FROM {s}.run_summary WHERE interval_start <> ALL(%s)", ([FIRST[0]],)) == [
        (0,)
    ]
    # monitor_drift is told about that interval.
    ((partition, extra),) = _published_events(dag_run)
    assert partition == f"{FIRST[0].isoformat()}/{FIRST[1].isoformat()}"
    assert (extra["interval_start"], extra["interval_end"]) == (FIRST[0].isoformat(), FIRST[1].isoformat())


def test_a_requested_interval_off_the_schedule_fails_at_once(score_batch_dag, project):
    conf = {"config": str(project), "interval_start": FIRST[0].isoformat(), "interval_end": SECOND[1].isoformat()}
    dag_run = score_batch_dag.test(run_conf=conf)
    assert str(dag_run.state) == "failed"
    tries = {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    assert tries["plan_partitions"] == ("failed", 1)  # BadConfig: no retry


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2026-11-01T00:00:00+00:00", None, "go together"),
        (None, "2026-11-02T00:00:00+00:00", "go together"),
        ("yesterday", "2026-11-02T00:00:00+00:00", "interval_start"),
        ("2026-11-01T00:00:00+00:00", "2026-11-03T00:00:00+00:00", "2026-11-02T00:00:00"),
        ("2026-11-01T06:00:00+00:00", "2026-11-02T06:00:00+00:00", "2026-11-02T00:00:00"),
    ],
)
def test_requested_interval_must_be_one_of_the_schedule(start, end, message):
    with pytest.raises(BadConfig, match=message):
        requested_interval("0 0 * * *", "UTC", start, end)
