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
    for name in ("drift_decisions", "drift_intervals", "scored_intervals", "alerts"):
        fetch(config, f"DELETE FROM {{s}}.{name} RETURNING 1")
    for day in range(days):
        fetch(
            config,
            "INSERT INTO {s}.scored_intervals (interval_id, interval_start, interval_end) VALUES (%s, %s, %s) RETURNING 1",
            (day + 1, DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1)),
        )


def monitored(config: str, day: int, breach: bool) -> None:
    """What monitor_interval stores for the day (its numbers do not matter here, its breach does)."""
    fetch(
        config,
        "INSERT INTO {s}.drift_intervals (interval_start, interval_end, model_version, run_id, rows_scored, "
        "current_rows, reference_rows, features, drifted_features, counted_features, drifted_share, "
        "prediction_method, prediction_drift, breach, report_path, stage_seconds, monitored_at) VALUES "
        "(%s, %s, 1, 'test', 10, 10, 10, 7, 0, 0, %s, 'psi', 0, %s, '/nonexistent/report.html', '{{}}', now()) "
        "RETURNING 1",
        (DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1), 0.5 if breach else 0.0, breach),
    )


@st.composite
def backfills(draw):
    flags = draw(st.lists(st.booleans(), min_size=2, max_size=6))
    return draw(st.sampled_from(RULES)), flags, draw(st.permutations(range(len(flags))))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=backfills())
def test_any_monitoring_order_triggers_the_retrains_of_data_order(configs, case):
    from driftline.airflow.tasks import retrain_run_id
    from driftline.drift.decision import RetrainState
    from driftline.drift.decision import decide_retrain as decide

    def decide_retrain(*args, **kwargs):
        return decide(*args, **kwargs, retrain_run_id=retrain_run_id)

    rules, flags, order = case
    config = configs[rules]
    reset(config, len(flags))
    issued: list[str] = []
    for day in order:
        monitored(config, day, flags[day])
        decision = decide_retrain(
            config, DAY0 + timedelta(days=day), DAY0 + timedelta(days=day + 1), f"m{day}", RetrainState("retrain")
        )
        retrains = decision.get("retrains", [decision] if decision["trigger"] else [])  # main: no list
        new = [r["retrain_run_id"] for r in retrains if r["retrain_run_id"] not in issued]
        assert len(set(new)) == len(new)
        issued += new
    assert sorted(issued) == sorted(in_order(rules, flags))
    recorded = fetch(config, "SELECT DISTINCT retrain_run_id FROM {s}.drift_decisions WHERE trigger")
    assert {run for (run,) in recorded} == set(issued)
