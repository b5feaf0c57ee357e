"""decide_retrain against a real Postgres: any monitoring order of a backfill triggers the retrains
of monitoring it in data order (the window, cooldown and trigger lookups are SQL)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import config_copy, fetch

DAY0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
RULES = [(2, 3, 24), (1, 1, 60), (2, 2, 0)]  # (breaches, window, cooldown_hours)


@pytest.fixture(scope="module")
def configs(tmp_path_factory, database_url, monkeypatch_module) -> dict:
    """One schema, a config per rule set (same schema: each example empties its tables)."""
    import psycopg

    from driftline.db.schema import ensure_schema

    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    schema = f"order_{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("order_project")
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_schema(conn, schema)
    return {
        rules: str(
            config_copy(
                root,
                name=f"rules_{i}.toml",
                keys={
                    "schema": f'"{schema}"',
                    "breaches": str(rules[0]),
                    "window": str(rules[1]),
                    "cooldown_hours": str(rules[2]),
                },
            )
        )
        for i, rules in enumerate(RULES)
    }


def in_order(rules: tuple[int, int, int], flags: list[bool]) -> set[str]:
    """The reference: one interval a day monitored in data order, as the scheduler does."""
    breaches, window, cooldown = rules
    triggered, last = set(), None
    for day, breach in enumerate(flags):
        end = DAY0 + timedelta(days=day + 1)
        if breach and sum(flags[max(0, day - window + 1) : day + 1]) >= breaches:
            if last is None or end - last >= timedelta(hours=cooldown):
                triggered.add(f"drift__{end.isoformat()}")
                last = end
    return triggered


def reset(config: str, days: int) -> None:
    """Empty the decision tables; every interval of the backfill known (score_batch started on it)."""
    for name in ("drift_decisions", "drift_intervals", "scoring_runs", "scored_intervals", "alerts"):
        fetch(config, f"DELETE FROM {{s}}.{name} RETURNING 1")
    for day in range(days):
        fetch(
            config,
            "INSERT INTO {s}.scored_intervals (interval_id, interval_start, interval_end) VALUES (%s, %s, %s) RETURNING 1",
            (day + 1, DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1)),
        )


def monitored(config: str, day: int, breach: bool, start: datetime | None = None) -> None:
    """What monitor_interval stores for the day (its numbers do not matter here, its breach does)."""
    fetch(
        config,
        "INSERT INTO {s}.drift_intervals (interval_start, interval_end, model_version, run_id, rows_scored, "
        "current_rows, reference_rows, features, drifted_features, counted_features, drifted_share, "
        "prediction_method, prediction_drift, breach, report_path, stage_seconds, monitored_at) VALUES "
        "(%s, %s, 1, 'test', 10, 10, 10, 7, 0, 0, %s, 'psi', 0, %s, '/nonexistent/report.html', '{{}}', now()) "
        "RETURNING 1",
        (start or DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1), 0.5 if breach else 0.0, breach),
    )


@st.composite
def backfills(draw):
    flags = draw(st.lists(st.booleans(), min_size=2, max_size=6))
    busy = draw(st.lists(st.booleans(), min_size=len(flags), max_size=len(flags)))
    return draw(st.sampled_from(RULES)), flags, draw(st.permutations(range(len(flags)))), busy


def deciding():
    from driftline.airflow.tasks import retrain_run_id
    from driftline.drift.decision import decide_retrain as decide

    def decide_retrain(*args, **kwargs):
        return decide(*args, **kwargs, retrain_run_id=retrain_run_id)

    return decide_retrain


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=backfills())
def test_any_monitoring_order_triggers_the_retrains_of_data_order(configs, case):
    """Also while the retrain DAG is busy (a run active) for some of the runs: a trigger it cannot take
    is held and started by a later run, and the cooldown counts from retrains that started only."""
    from driftline.drift.decision import RetrainState

    decide_retrain = deciding()
    rules, flags, order, busy = case
    config = configs[rules]
    reset(config, len(flags))
    issued: list[str] = []

    def run(day: int, state: RetrainState) -> None:
        decision = decide_retrain(config, DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1), f"m{day}", state)
        new = [r["retrain_run_id"] for r in decision["retrains"] if r["retrain_run_id"] not in issued]
        assert len(set(new)) == len(new)
        issued.extend(new)

    for day, busy_now in zip(order, busy):
        monitored(config, day, flags[day])
        run(day, RetrainState("retrain", running=int(busy_now)))
    run(order[-1], RetrainState("retrain"))  # the next monitor_drift run, once the retrain DAG is free
    assert sorted(issued) == sorted(in_order(rules, flags))
    recorded = fetch(config, "SELECT DISTINCT retrain_run_id FROM {s}.drift_decisions WHERE trigger")
    assert {run for (run,) in recorded} == set(issued)


def test_the_brief_repro_a_trigger_held_by_a_running_retrain_is_started_later(configs):
    """Cooldown 24 h, window 1: day 0 triggers; day 2 breaches while a retrain runs (held, not lost);
    day 3 is in day 2's cooldown; the next run with the DAG free starts day 2's retrain."""
    from driftline.drift.decision import RetrainState

    decide_retrain = deciding()
    config = configs[(1, 1, 60)]
    reset(config, 6)
    flags = [True, False, False, True, True, False]
    bounds = [(DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1)) for day in range(6)]
    for day in (0, 1, 2):
        monitored(config, day, flags[day])
    first = decide_retrain(config, *bounds[0], "a", RetrainState("retrain"))
    assert first["trigger"]
    monitored(config, 3, flags[3])  # 72 h after day 0: out of its cooldown
    held = decide_retrain(config, *bounds[3], "b", RetrainState("retrain", running=1))
    assert not held["trigger"] and "held" in held["reason"] and held["retrains"] == []
    monitored(config, 5, flags[5])
    again = decide_retrain(config, *bounds[5], "c", RetrainState("retrain", running=1))
    assert again["retrains"] == []  # still held: no new decision row for day 3 (same outcome)
    rows = fetch(config, "SELECT count(*) FROM {s}.drift_decisions WHERE interval_end = %s", (bounds[3][1],))
    assert rows == [(1,)]
    monitored(config, 4, flags[4])
    later = decide_retrain(config, *bounds[4], "d", RetrainState("retrain"))
    assert not later["trigger"] and "in cooldown" in later["reason"]  # day 4 is in day 3's cooldown
    assert [r["interval"]["end"] for r in later["retrains"]] == [bounds[3][1].isoformat()]


def test_an_interval_monitored_again_keeps_its_recorded_trigger_instead_of_a_hold(configs):
    """A backfill rerun republishes a triggered interval while its retrain run still waits: the new
    decision says the trigger stands (one per interval, the same run id, nothing new started), not
    that it is held."""
    from driftline.drift.decision import RetrainState

    decide_retrain = deciding()
    config = configs[(1, 1, 60)]
    reset(config, 1)
    monitored(config, 0, True)
    bounds = (DAY0, DAY0 + timedelta(days=1))
    first = decide_retrain(config, *bounds, "a", RetrainState("retrain"))
    assert first["trigger"]
    again = decide_retrain(config, *bounds, "b", RetrainState("retrain", paused=True, queued=1))
    assert again["trigger"] and again["retrain_run_id"] == first["retrain_run_id"]
    assert again["retrains"] == []  # nothing new to start: its run was asked for when it was recorded
    assert "trigger stands" in again["reason"] and "held" not in again["reason"]
    runs = fetch(config, "SELECT count(DISTINCT retrain_run_id) FROM {s}.drift_decisions WHERE trigger")
    assert runs == [(1,)]  # two decision rows (appended, never overwritten), one retrain run


def test_an_interval_whose_scoring_failed_and_never_published_holds_nothing(configs):
    """Day 0 is known but its only scoring attempt failed: day 1 does not wait for it forever."""
    from driftline.drift.decision import RetrainState

    decide_retrain = deciding()
    config = configs[(1, 1, 60)]
    reset(config, 2)
    fetch(
        config,
        "INSERT INTO {s}.scoring_runs (interval_id, run_id, status, started_at) VALUES (1, 'failed', 'failed', now()) "
        "RETURNING 1",
    )
    monitored(config, 1, True)
    decision = decide_retrain(config, DAY0 + timedelta(days=1), DAY0 + timedelta(days=2), "m1", RetrainState("r"))
    assert decision["trigger"], decision["reason"]


@pytest.mark.parametrize("longer_first", [True, False])
def test_two_monitored_intervals_with_one_end_are_read_as_one_in_any_insertion_order(configs, longer_first):
    """A manual run over two days and the daily interval end together: the one starting first speaks
    for the end, in the window and in the decision's numbers, whichever was stored first."""
    from driftline.drift.decision import RetrainState

    decide_retrain = deciding()
    config = configs[(1, 1, 60)]
    reset(config, 2)
    monitored(config, 0, False)
    rows = [(True, DAY0), (False, DAY0 + timedelta(days=1))]  # two days, breached; the last day, did not
    for breach, start in rows if longer_first else rows[::-1]:
        monitored(config, 1, breach, start=start)
    decision = decide_retrain(config, DAY0 + timedelta(days=1), DAY0 + timedelta(days=2), "m", RetrainState("r"))
    assert decision["trigger"] and decision["interval"]["start"] == DAY0.isoformat(), decision["reason"]
