"""score_batch through Airflow's dag.test() against a real Postgres."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import psycopg
import pytest

from driftline.config import load_config
from driftline.registry import champion_version
from driftline.scoring.engine import COMPILED_TOLERANCE
from driftline.scoring.features import FeatureBinding, model_frame
from tests.helpers import SMALL_PLAN, db_url, fetch, interval_contents, load_dag

FIRST, SECOND = SMALL_PLAN.interval_bounds()
# The demo config scores its small intervals with LightGBM; the production default is compiled.
PROJECT_OVERRIDES = {"engine": '"compiled"'}


def run(dag, config_path: Path, interval: tuple[datetime, datetime], **conf):
    """A manual dag.test() run at logical date D covers [D - 1 day, D): pass the interval's end."""
    dag_run = dag.test(logical_date=interval[1], run_conf={"config": str(config_path), **conf})
    return str(dag_run.state)


def test_interval_scored_twice_is_identical_and_not_duplicated(score_batch_dag, project):
    assert run(score_batch_dag, project, FIRST) == "success"
    first = interval_contents(project, FIRST)
    assert run(score_batch_dag, project, FIRST) == "success"
    second = interval_contents(project, FIRST)

    assert first == second
    keys = [row[0] for row in second["predictions"]]
    assert len(keys) == len(set(keys)) > 0
    ((rows_in, rows_scored, rows_quarantined, status),) = second["summary"]
    assert status == "succeeded"
    # Every input row is either scored or quarantined: 3000 generated rows + 1 malformed line.
    assert rows_in == SMALL_PLAN.rows_per_interval + 1
    assert rows_in == rows_scored + rows_quarantined
    assert (rows_scored, rows_quarantined) == (len(second["predictions"]), len(second["quarantine"]))
    # Two attempts recorded, one published.
    attempts = fetch(
        project,
        "SELECT count(*), count(*) FILTER (WHERE published) FROM {s}.run_summary WHERE interval_start = %s",
        (FIRST[0],),
    )
    assert attempts == [(2, 1)]


def test_quarantine_reasons_name_the_failed_expectation(score_batch_dag, project):
    assert run(score_batch_dag, project, SECOND) == "success"
    quarantine = interval_contents(project, SECOND)["quarantine"]
    reasons = Counter(code for row in quarantine for code in row[2])
    # demo._inject_bad_rows plants 10 rows of each kind.
    assert reasons["expect_column_values_to_be_between:amount"] == 10
    assert reasons["expect_column_values_to_be_in_set:merchant_category"] == 10
    assert reasons["expect_column_values_to_be_between:hour_of_day"] == 10
    assert reasons["not_a_number:amount"] == 10
    assert reasons["outside_interval:event_time"] == 10
    assert reasons["expect_column_values_to_not_be_null:amount"] >= 10
    assert reasons["malformed_record"] == 1
    text_rows = [row for row in quarantine if "not_a_number:amount" in row[2]]
    assert all(row[3]["amount"] == "twelve" for row in text_rows)  # raw value kept as read


def test_online_scores_equal_offline_predict(score_batch_dag, project):
    """The stored score equals LightGBM's own predict on the same rows, within 1e-9 (the default
    compiled engine sums the trees in its own order; the lightgbm engine is bit-identical)."""
    assert run(score_batch_dag, project, FIRST) == "success"
    config = load_config(project)
    ((uri,),) = fetch(project, "SELECT artifact_uri FROM {s}.model_versions WHERE status = 'champion'")
    booster = lgb.Booster(model_file=uri.removeprefix("file://"))
    manifest_categories = fetch(
        project, "SELECT manifest->'categories' FROM {s}.model_versions WHERE status = 'champion'"
    )[0][0]

    frame = pd.read_csv(config.input_location(*FIRST), on_bad_lines="skip", dtype={"transaction_id": str})
    quarantined = {row[1] for row in interval_contents(project, FIRST)["quarantine"]}
    clean = frame[~frame["transaction_id"].isin(quarantined)].reset_index(drop=True)
    offline = booster.predict(model_frame(clean, FeatureBinding.of_config(config, manifest_categories)))

    stored = dict((key, score) for key, score, _, _ in interval_contents(project, FIRST)["predictions"])
    online = np.array([stored[key] for key in clean["transaction_id"]])
    assert len(online) == len(clean) > 2_000
    engines = fetch(project, "SELECT DISTINCT scoring_engine FROM {s}.run_summary WHERE published")
    assert engines == [("compiled",)]  # the default engine, not a silent fallback to LightGBM
    assert np.max(np.abs(online - offline)) <= COMPILED_TOLERANCE


def test_budget_exceeded_keeps_previous_predictions_and_records_quarantine(score_batch_dag, project, tmp_path):
    assert run(score_batch_dag, project, FIRST) == "success"
    before = interval_contents(project, FIRST)
    config = load_config(project)
    source = Path(config.input_location(*FIRST))
    original = source.read_bytes()
    frame = pd.read_csv(source, dtype=str, on_bad_lines="skip")
    frame.loc[: len(frame) // 2, "merchant_category"] = "unknown_merchant"
    try:
        frame.to_csv(source, index=False)
        assert run(score_batch_dag, project, FIRST) == "failed"
    finally:
        source.write_bytes(original)

    after = interval_contents(project, FIRST)
    assert after["predictions"] == before["predictions"]  # readers still see the last good run
    ((status, message, rows_in, rows_scored, rows_quarantined),) = fetch(
        project,
        "SELECT status, message, rows_in, rows_scored, rows_quarantined FROM {s}.run_summary "
        "WHERE interval_start = %s ORDER BY run_key DESC LIMIT 1",
        (FIRST[0],),
    )
    assert status == "failed"
    assert "quarantine budget exceeded" in message and "expect_column_values_to_be_in_set:merchant_category" in message
    assert rows_in == rows_scored + rows_quarantined
    assert rows_quarantined > rows_in / 2
    # The quarantine rows of the failed attempt are kept for inspection, beside those of the run
    # that is still published, which still adds up.
    ((stored,),) = fetch(
        project,
        "SELECT count(*) FROM {s}.quarantine_rows q JOIN {s}.scored_intervals i USING (interval_id) "
        "WHERE i.interval_start = %s AND q.run_key <> i.current_run_key",
        (FIRST[0],),
    )
    assert stored == rows_quarantined
    assert after["quarantine"] == before["quarantine"]
    from driftline.batch import check_interval

    assert check_interval(str(project), *FIRST)["rows_quarantined"] == len(before["quarantine"])


def test_missing_column_fails_with_a_message_naming_it(project):
    from driftline.batch import score_interval
    from driftline.sources import InputError

    config = load_config(project)
    day = (datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2026, 12, 2, tzinfo=timezone.utc))
    path = Path(config.input_location(*day))
    frame = pd.read_csv(config.input_location(*FIRST), dtype=str, on_bad_lines="skip")
    frame.rename(columns={"amount": "amount_usd"}).to_csv(path, index=False)
    with pytest.raises(InputError) as error:
        score_interval(str(project), *day, run_id="test_missing_column")
    assert "'amount'" in str(error.value) and "amount_usd" in str(error.value) and str(path) in str(error.value)
    ((status, message),) = fetch(
        project,
        "SELECT status, message FROM {s}.run_summary WHERE interval_start = %s",
        (day[0],),
    )
    assert status == "failed" and "amount" in message


def test_pinned_model_version_param_is_recorded(score_batch_dag, project):
    from airflow.sdk.exceptions import ParamValidationError

    config = load_config(project)
    with psycopg.connect(db_url()) as conn:
        version = champion_version(conn, config.db_schema)
    assert run(score_batch_dag, project, SECOND, model_version=version) == "success"
    versions = {row[3] for row in interval_contents(project, SECOND)["predictions"]}
    assert versions == {version}
    with pytest.raises(ParamValidationError, match="model_version"):
        score_batch_dag.test(
            logical_date=SECOND[1] + timedelta(days=30), run_conf={"config": str(project), "model_version": "latest"}
        )


def _dag_with_quick_retries(monkeypatch, config_path: Path):
    """score_batch built from config_path (the notifier's fallback config), every task allowed one
    immediate retry, so the test sees whether a failure is retried or fails at once."""
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(config_path))
    quick = load_dag("score_batch")
    for task in quick.tasks:
        task.retries, task.retry_delay, task.retry_exponential_backoff = 1, timedelta(0), False
    return quick


def _tries(dag_run) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}


def _failure_alerts(config_path: Path, start: datetime) -> list[tuple[str, str]]:
    return fetch(
        config_path,
        "SELECT task_id, message FROM {s}.alerts WHERE kind = 'task_failure' AND interval_start = %s ORDER BY alert_id",
        (start,),
    )


def test_bad_input_fails_at_once_and_alerts_while_missing_input_is_retried(project, airflow_db, monkeypatch):
    quick = _dag_with_quick_retries(monkeypatch, project)
    config = load_config(project)

    # Bad input (a header-only file): no retry, one task_failure alert naming the file.
    bad = (datetime(2026, 12, 20, tzinfo=timezone.utc), datetime(2026, 12, 21, tzinfo=timezone.utc))
    source = Path(config.input_location(*bad))
    source.write_text(",".join(config.input_columns) + "\n")
    dag_run = quick.test(logical_date=bad[1], run_conf={"config": str(project)})
    assert "failed" in str(dag_run.state)
    assert _tries(dag_run)["score_interval"] == ("failed", 1)
    [(task_id, message)] = _failure_alerts(project, bad[0])
    assert task_id == "score_interval" and "failed after 1 attempt(s)" in message and str(source) in message

    # Input not landed yet: retried (two tries), then the alert says it was not there.
    missing = (datetime(2026, 12, 22, tzinfo=timezone.utc), datetime(2026, 12, 23, tzinfo=timezone.utc))
    assert not Path(config.input_location(*missing)).exists()
    dag_run = quick.test(logical_date=missing[1], run_conf={"config": str(project)})
    assert "failed" in str(dag_run.state)
    assert _tries(dag_run)["score_interval"] == ("failed", 2)
    [(task_id, message)] = _failure_alerts(project, missing[0])
    assert task_id == "score_interval" and "failed after 2 attempt(s)" in message and "InputMissingError" in message


def test_a_config_param_pointing_nowhere_fails_at_once_and_still_alerts(project, airflow_db, monkeypatch, tmp_path):
    quick = _dag_with_quick_retries(monkeypatch, project)
    interval = (datetime(2026, 12, 24, tzinfo=timezone.utc), datetime(2026, 12, 25, tzinfo=timezone.utc))
    nowhere = tmp_path / "no-such-config.toml"
    dag_run = quick.test(logical_date=interval[1], run_conf={"config": str(nowhere)})
    assert "failed" in str(dag_run.state)
    assert _tries(dag_run)["prepare_database"] == ("failed", 1)  # BadConfig: not retried
    # Stored with the DAG's own config, saying why.
    [(task_id, message)] = _failure_alerts(project, interval[0])
    assert task_id == "prepare_database"
    assert (
        "config file not found" in message
        and str(nowhere) in message
        and "alert stored with the DAG's config" in message
    )
