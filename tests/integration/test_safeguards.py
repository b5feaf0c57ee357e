"""Degrade safely and say so: fallback model, output sanity, review band, run health, alerts.

Each test uses its own schema (a config variant of the module's project), a real Postgres and real
LightGBM artifacts: the broken models are built by rewriting a trained model's leaf values.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from driftline.batch import check_interval, score_interval
from driftline.config import load_config
from driftline.registry import ModelLoadError, load_model, register_candidate
from driftline.scoring.safeguards import OutputSanityError
from tests.helpers import SMALL_PLAN, config_copy, config_variant, db_url, fetch, write_text
from tests.integration.scenarios import LATER, add_second_champion, alerts, artifact, clean_rows, frame_csv, variant

INTERVAL = SMALL_PLAN.interval_bounds()[0]


def tamper(config_path: Path, version: int) -> None:
    path = artifact(config_path, version)
    path.write_bytes(path.read_bytes() + b"\n")


def connect():
    return psycopg.connect(db_url(), autocommit=True)


def broken_model(config_path: Path, leaf_value: str) -> int:
    """Register (not promote) a real LightGBM model whose every leaf is leaf_value, with v1's manifest."""
    config = load_config(config_path)
    with connect() as conn:
        champion = load_model(conn, config.db_schema, 1)
        text = champion.booster.model_to_string()
        text = re.sub(r"^tree_sizes=.*\n", "", text, flags=re.M)  # sizes change with the leaves
        text = re.sub(
            r"^leaf_value=(.*)$",
            lambda m: "leaf_value=" + " ".join([leaf_value] * len(m.group(1).split())),
            text,
            flags=re.M,
        )
        manifest = {k: v for k, v in champion.manifest.items() if k not in ("sha256", "artifact", "version")}
        version, created = register_candidate(conn, config.db_schema, config.registry_dir, text, manifest)
    assert created
    return version


def contents(config_path: Path, interval=INTERVAL) -> list[tuple]:
    return fetch(
        config_path,
        "SELECT entity_key, score, model_version, run_id FROM {s}.predictions WHERE interval_start = %s ORDER BY entity_key",
        (interval[0],),
    )


def test_tampered_champion_is_scored_by_the_previous_version(project):
    path = variant(project)
    add_second_champion(path)
    tamper(path, 2)
    write_text(Path(load_config(path).input_location(*LATER)), frame_csv(clean_rows(LATER[0], rows=600)))

    summary = score_interval(str(path), *LATER, run_id="fallback")

    assert (summary["model_version"], summary["requested_version"], summary["fallback"]) == (1, 2, True)
    assert "sha256 mismatch" in summary["fallback_reason"] and "fell back to v1" in summary["fallback_reason"]
    ((fallback, reason, version, requested),) = fetch(
        path, "SELECT fallback, fallback_reason, model_version, requested_version FROM {s}.run_health"
    )
    assert (fallback, version, requested) == (True, 1, 2) and "sha256 mismatch" in reason
    [(message, numbers, severity)] = alerts(path, "fallback")
    assert severity == "warning" and numbers == {"requested_version": 2, "used_version": 1}
    assert "v2" in message
    published = check_interval(str(path), *LATER)
    assert published["model_version"] == 1 and published["rows_scored"] == 600


def test_no_loadable_version_fails_naming_each_version_and_writes_nothing(project):
    path = variant(project)
    add_second_champion(path)
    tamper(path, 2)
    tamper(path, 1)
    write_text(Path(load_config(path).input_location(*LATER)), frame_csv(clean_rows(LATER[0], rows=600)))

    with pytest.raises(ModelLoadError) as failure:
        score_interval(str(path), *LATER, run_id="nothing-loads")

    message = str(failure.value)
    assert "no kept model version could be loaded" in message
    assert re.search(r"v2: model version 2: sha256 mismatch.*v1: model version 1: sha256 mismatch", message)
    assert contents(path, LATER) == []
    assert fetch(path, "SELECT status, published FROM {s}.run_health") == [("failed", False)]


def test_fallback_off_or_pinned_version_fails_instead(project):
    path = variant(project, fallback="false")
    add_second_champion(path)
    tamper(path, 2)
    write_text(Path(load_config(path).input_location(*LATER)), frame_csv(clean_rows(LATER[0], rows=600)))
    with pytest.raises(ModelLoadError, match="no fallback because safeguards.fallback is off"):
        score_interval(str(path), *LATER, run_id="fallback-off")

    pinned = variant(project)
    add_second_champion(pinned)
    tamper(pinned, 2)
    with pytest.raises(ModelLoadError, match="no fallback because the version is pinned"):
        score_interval(str(pinned), *INTERVAL, run_id="pinned", model_version=2)
    assert contents(path, LATER) == [] and contents(pinned) == []


@pytest.mark.parametrize(
    ("leaf_value", "expected"),
    [("0", "score distribution collapsed: score standard deviation 0 is 0.0%"), ("nan", "scores are NaN or infinite")],
)
def test_broken_model_fails_sanity_and_keeps_previous_contents(project, leaf_value, expected):
    path = variant(project)
    score_interval(str(path), *INTERVAL, run_id="good")
    before = contents(path)
    broken = broken_model(path, leaf_value)

    with pytest.raises(OutputSanityError, match=re.escape(expected)) as failure:
        score_interval(str(path), *INTERVAL, run_id="broken", model_version=broken)

    assert contents(path) == before  # the published interval is untouched
    assert failure.value.alert_id is not None
    [(message, numbers, severity)] = alerts(path, "output_sanity")
    assert severity == "critical" and expected in message
    if leaf_value == "0":
        assert numbers["std_ratio"] == 0 and numbers["interval"]["std"] == 0
        assert numbers["reference"]["std"] > 0.01 and numbers["interval"]["rows"] >= 500
    else:
        assert numbers["not_finite"] == numbers["scores"] > 0
    health = fetch(path, "SELECT run_id, status, published, model_version FROM {s}.run_health ORDER BY run_key")
    assert health == [("good", "succeeded", True, 1), ("broken", "failed", False, broken)]


def test_majority_share_rule_uses_the_configured_bound(project):
    """At threshold 0.05 the holdout has both classes; a constant 0.5 model puts every row in one."""
    path = variant(project, threshold="0.05", max_majority_share="0.99", min_score_std_ratio="false")
    broken = broken_model(path, "0")
    with pytest.raises(
        OutputSanityError,
        match=r"100.00% of rows get the same predicted class \(safeguards.max_majority_share = 0.99; reference",
    ):
        score_interval(str(path), *INTERVAL, run_id="majority", model_version=broken)
    assert contents(path) == []
    summary = score_interval(str(path), *INTERVAL, run_id="healthy")  # the real model passes the same rule
    assert summary["distribution_check"] == "passed"


def test_review_band_lists_the_uncertain_predictions(project):
    path = variant(project, review_band="[0.1, 0.5]")
    score_interval(str(path), *INTERVAL, run_id="review")
    review = fetch(path, "SELECT entity_key, score, review_low, review_high FROM {s}.predictions_for_review")
    expected = [(key, score) for key, score, *_ in contents(path) if 0.1 <= score <= 0.5]
    assert 0 < len(review) == len(expected)
    assert sorted((key, score) for key, score, *_ in review) == sorted(expected)
    assert {(low, high) for *_, low, high in review} == {(0.1, 0.5)}


def test_run_health_has_a_row_per_run_and_per_stage(project):
    path = variant(project)
    score_interval(str(path), *INTERVAL, run_id="first")
    score_interval(str(path), *INTERVAL, run_id="second")
    rows = fetch(
        path,
        "SELECT run_id, status, published, rows_in, rows_scored, rows_quarantined, rows_failed, duration_seconds, "
        "rows_per_second, freshness_seconds, score_stats FROM {s}.run_health ORDER BY run_key",
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [("first", "succeeded", False), ("second", "succeeded", True)]
    for _, _, _, rows_in, scored, quarantined, failed, duration, per_second, freshness, stats in rows:
        assert rows_in == scored + quarantined and failed == 0 and quarantined > 0
        assert duration > 0 and per_second == pytest.approx(rows_in / duration)
        expected_freshness = (datetime.now(timezone.utc) - INTERVAL[1]).total_seconds()
        assert freshness == pytest.approx(expected_freshness, abs=600)
        assert stats["rows"] == scored and 0 < stats["std"] < 1
    stages = fetch(
        path, "SELECT run_id, stage, seconds, rows_per_second FROM {s}.run_stage_health WHERE run_id = 'second'"
    )
    names = {stage for _, stage, _, _ in stages}
    assert {"read", "validate", "predict", "write_predictions", "check_distribution"} <= names
    assert all(seconds >= 0 for _, _, seconds, _ in stages)


def test_alert_destination_failure_is_recorded_and_does_not_raise(project, monkeypatch):
    """SMTP to a closed port: the alert row keeps the delivery failure, the caller carries on."""
    from driftline.airflow.connections import install
    from driftline.alerts import raise_alert

    install()  # the channels are Airflow notifiers, registered by the adapter (as in a task or the CLI)

    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_CLOSED",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": 1,
                "extra": {"from_email": "driftline@example.com", "disable_ssl": True, "timeout": 5},
            }
        ),
    )
    path = variant(project)
    closed = [("[alerts]\n", '[alerts]\nsmtp_conn_id = "smtp_closed"\nsmtp_to = ["oncall@example.com"]\n')]
    path = config_copy(path.parent.parent, closed, base=path, name=path.name)
    alert_id = raise_alert(load_config(path), "test", "info", "delivery check", {"value": 1})
    [(kind, deliveries)] = fetch(path, "SELECT kind, deliveries FROM {s}.alerts WHERE alert_id = %s", (alert_id,))
    assert kind == "test"
    assert list(deliveries) == ["smtp:smtp_closed"] and deliveries["smtp:smtp_closed"].startswith("failed:")


def test_missed_deadline_callback_writes_an_alert_for_scheduled_runs_only(project):
    from driftline.airflow.notifiers import record_missed_deadline

    path = variant(project)
    run = {
        "dag_id": "demo_transactions__score_batch",
        "dag_run_id": "scheduled__2026-11-01",
        "run_type": "scheduled",
        "state": "running",
        "data_interval_start": "2026-11-01T00:00:00Z",
        "data_interval_end": "2026-11-02T00:00:00Z",
        "queued_at": "2026-11-02T00:00:04Z",
    }
    context = {"dag_run": run, "deadline": {"id": "x", "deadline_time": "2026-11-02T06:00:00Z"}}
    assert record_missed_deadline(str(path), 6, context) is not None
    assert record_missed_deadline(str(path), 6, {**context, "dag_run": {**run, "run_type": "backfill"}}) is None
    # The first unpause (catchup = false) creates the run after its deadline had passed: no alert.
    unpaused = {**run, "dag_run_id": "scheduled__2026-11-01b", "queued_at": "2026-11-02T14:00:00Z"}
    assert record_missed_deadline(str(path), 6, {**context, "dag_run": unpaused}) is None
    [(message, numbers, severity)] = alerts(path, "deadline_missed")
    assert severity == "critical" and "not scored within 6 h" in message and numbers["deadline_hours"] == 6
    ((start, end),) = fetch(path, "SELECT interval_start, interval_end FROM {s}.alerts WHERE kind = 'deadline_missed'")
    assert (start, end) == (datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc))


def test_failed_task_alerts_once_through_the_airflow_notifier(project, score_batch_dag):
    """Through Airflow: bad input -> one task_failure alert from the notifier; a sanity failure ->
    the pipeline's output_sanity alert only (the notifier sees its id and does not alert twice)."""
    path = variant(project)
    broken = broken_model(path, "0")
    run = score_batch_dag.test(logical_date=INTERVAL[1], run_conf={"config": str(path), "model_version": broken})
    assert "failed" in str(run.state)
    assert len(alerts(path, "output_sanity")) == 1 and alerts(path, "task_failure") == []

    empty = config_variant(
        path, load_config(path).db_schema, name="empty_input", input='"data/empty/{interval_start:%Y-%m-%d}.csv"'
    )
    target = Path(load_config(empty).input_location(*INTERVAL))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("")
    run = score_batch_dag.test(logical_date=INTERVAL[1], run_conf={"config": str(empty)})
    assert "failed" in str(run.state)
    [(message, numbers, severity)] = alerts(path, "task_failure")
    assert severity == "critical" and numbers["try_number"] == 1
    assert (
        "demo_transactions__score_batch.score_interval failed after 1 attempt(s)" in message
        and "input file is empty" in message
    )
    ((dag_id, task_id, start),) = fetch(
        path, "SELECT dag_id, task_id, interval_start FROM {s}.alerts WHERE kind = 'task_failure'"
    )
    assert (dag_id, task_id, start) == ("demo_transactions__score_batch", "score_interval", INTERVAL[0])
