"""monitor_drift through Airflow's dag.test() against a real Postgres: undrifted vs drifted intervals."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from driftline.config import load_config
from driftline.devtools.demo_data import _inject_bad_rows, transactions
from tests.helpers import DEMO_DATASET, REPO, SMALL_PLAN, edit_config, fetch, load_dag, make_project

UNDRIFTED = SMALL_PLAN.interval_bounds()[0]
# A day far from the demo's own, with a strong shift in amounts, velocity and channel mix.
DRIFTED = (datetime(2026, 11, 20, tzinfo=timezone.utc), datetime(2026, 11, 21, tzinfo=timezone.utc))
RETRAIN_DEPLOYED = (REPO / "dags" / "retrain_model.py").exists()
RETRAIN_DAG = f"{DEMO_DATASET}__retrain_model"  # what the dataset's monitor_drift passes as the retrain DAG
_FLOOR = "estimated_metric_floor = 0.99\n"  # the undrifted day's estimated AUC is under it: a breach


@pytest.fixture(scope="module")
def drift_project(tmp_path_factory, database_url, monkeypatch_module, airflow_db) -> Path:
    """A trained project (small samples, trigger on one breach) with an undrifted and a drifted interval scored."""
    from driftline.training import train_champion

    monkeypatch_module.setenv("DRIFTLINE_DB_URL", database_url)
    path = make_project(
        tmp_path_factory.mktemp("drift_project"),
        f"drift_{uuid.uuid4().hex[:8]}",
        chunk_rows="1000",
        sample_rows="2000",
        breaches="1",
        window="1",
    )
    config = load_config(path)
    rng = np.random.default_rng(11)
    day = transactions(rng, DRIFTED[0], SMALL_PLAN.rows_per_interval, "drifted", drift=1.0)
    _inject_bad_rows(day.drop(columns=["is_fraud"]), rng, DRIFTED[0]).to_csv(
        config.input_location(*DRIFTED), index=False
    )
    train_champion(str(path))
    score_batch = load_dag("score_batch")
    for interval in (UNDRIFTED, DRIFTED):
        assert str(score_batch.test(logical_date=interval[1], run_conf={"config": str(path)}).state) == "success"
    return path


@pytest.fixture(scope="module")
def monitored(drift_project) -> dict:
    """monitor_drift run once per interval (Evidently's import and report dominate: keep runs few)."""
    ((path,),) = fetch(drift_project, "SELECT path FROM {s}.drift_references")
    built_at = Path(path).stat().st_mtime_ns  # at registration, by train_champion
    states = {interval: run(drift_project, interval) for interval in (UNDRIFTED, DRIFTED)}
    return {"states": states, "reference_built_at": built_at}


def run(config_path: Path, interval) -> dict:
    from driftline.devtools.demo_steps import monitor_conf

    dag_run = load_dag("monitor_drift").test(run_conf=monitor_conf(str(config_path), *interval))
    return {"state": str(dag_run.state), **{ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}}


def stored(config_path: Path, interval) -> dict:
    features = fetch(
        config_path,
        "SELECT column_name, method, statistic, threshold, drifted, effect_size, counted FROM {s}.drift_features "
        "WHERE interval_start = %s ORDER BY column_name",
        (interval[0],),
    )
    summary = fetch(
        config_path,
        "SELECT drifted_share, prediction_drift, breach, current_rows, reference_rows, report_path, trigger, reason "
        "FROM {s}.drift_summary WHERE interval_start = %s",
        (interval[0],),
    )
    return {"features": features, "summary": summary}


def test_undrifted_interval_is_not_a_breach(drift_project, monitored):
    states = monitored["states"][UNDRIFTED]
    assert states["state"] == "success"
    assert states["trigger_retrain"] == "skipped"
    result = stored(drift_project, UNDRIFTED)
    config = load_config(drift_project)
    assert [row[0] for row in result["features"]] == sorted(config.feature_names)
    assert not any(row[6] for row in result["features"])  # nothing counted as drift
    ((share, prediction, breach, current_rows, reference_rows, report, trigger, reason),) = result["summary"]
    assert (share, breach, trigger) == (0.0, False, False)
    assert prediction < config.drift.trigger.prediction_drift
    assert current_rows == 2000 and reference_rows == 2000
    assert reason.startswith("no breach")


def test_drifted_interval_breaches_and_decides_to_retrain(drift_project, monitored):
    states = monitored["states"][DRIFTED]
    assert states["state"] == "success"
    result = stored(drift_project, DRIFTED)
    counted = {row[0] for row in result["features"] if row[6]}
    # demo.transactions(drift=1.0) shifts exactly these three.
    assert counted == {"amount", "transactions_last_24h", "channel"}
    methods = {row[0]: row[1] for row in result["features"]}
    assert methods["amount"] == "ks" and methods["channel"] == "chisquare"
    ((share, prediction, breach, *_, report, trigger, reason),) = result["summary"]
    assert share == pytest.approx(3 / 7)
    assert breach is True
    if RETRAIN_DEPLOYED:
        assert trigger is True and reason.startswith("retrain:")
        assert states["trigger_retrain"] == "success"
    else:
        assert trigger is False and "not deployed" in reason
        assert states["trigger_retrain"] == "skipped"
    # The HTML report exists and opens with driftline's summary: the decision, its reason and the
    # per-feature table (counted or not, and why), before Evidently's panels.
    html = Path(report).read_text(encoding="utf-8")
    assert Path(report).parent == load_config(drift_project).drift.reports_dir
    import re
    from html import escape

    from driftline.drift.summary import END, START

    assert re.search(r"<body[^>]*>" + re.escape(START), html), "the summary is not the first thing in the body"
    assert html.count(START) == 1  # rewritten in place by decide_retrain, not added twice
    head = html[html.index(START) : html.index(END)]
    assert escape(reason, quote=True) in head
    assert ("retrain triggered" if trigger else "no retrain") in head
    assert f"{DRIFTED[0]:%Y-%m-%d %H:%M} to {DRIFTED[1]:%Y-%m-%d %H:%M} UTC" in head
    for name, *_, is_counted in result["features"]:
        row = re.search(rf"<tr><td>{name}</td>(.*?)</tr>", head).group(1)
        verdict = "<td>yes</td>" if is_counted else "<td>no</td>"
        assert verdict in row and ("&gt;= floor" if is_counted else "not") in row, row


def test_rerun_replaces_metrics_and_logs_a_new_decision(drift_project, monitored):
    first = stored(drift_project, DRIFTED)
    decisions_before = fetch(
        drift_project, "SELECT count(*) FROM {s}.drift_decisions WHERE interval_start = %s", (DRIFTED[0],)
    )
    assert run(drift_project, DRIFTED)["state"] == "success"
    second = stored(drift_project, DRIFTED)
    assert first["features"] == second["features"]  # seeded samples: same numbers
    counts = fetch(
        drift_project,
        "SELECT (SELECT count(*) FROM {s}.drift_features WHERE interval_start = %s), "
        "(SELECT count(*) FROM {s}.drift_intervals WHERE interval_start = %s), "
        "(SELECT count(*) FROM {s}.drift_decisions WHERE interval_start = %s)",
        (DRIFTED[0],) * 3,
    )
    assert counts == [(7, 1, decisions_before[0][0] + 1)]


def test_reference_is_built_once_per_model_version(drift_project, monitored):
    ((version, path, rows),) = fetch(drift_project, "SELECT model_version, path, rows FROM {s}.drift_references")
    assert Path(path).stat().st_mtime_ns == monitored["reference_built_at"]  # runs reused it
    assert fetch(drift_project, "SELECT count(*) FROM {s}.drift_references") == [(1,)]
    assert rows == 2000 and Path(path).name == f"v{version:04d}.parquet"


def test_trigger_decision_with_retrain_deployed_and_cooldown(drift_project, monitored):
    """The policy path that starts retrain_model, then the cooldown that follows it (no Airflow needed)."""
    from driftline.airflow.tasks import retrain_run_id
    from driftline.drift.decision import RetrainState
    from driftline.drift.decision import decide_retrain as decide

    def decide_retrain(*args, **kwargs):
        return decide(*args, **kwargs, retrain_run_id=retrain_run_id)

    now = datetime.now(timezone.utc) + timedelta(days=30)  # past any cooldown from earlier tests
    first = decide_retrain(str(drift_project), *DRIFTED, "test_trigger", RetrainState(RETRAIN_DAG), now=now)
    assert first["trigger"] is True
    from driftline.airflow.tasks import retrain_conf

    conf = retrain_conf(str(drift_project), first)
    assert conf["interval"] == {"start": DRIFTED[0].isoformat(), "end": DRIFTED[1].isoformat()}
    assert set(conf["drifted_features"]) == {"amount", "transactions_last_24h", "channel"}
    assert first["retrain_run_id"] == f"drift__{DRIFTED[1].isoformat()}"
    # retrain_model's strict conf accepts everything the trigger sends, and its Params validate it.
    from driftline.airflow.tasks import check_conf_keys

    retrain_params = load_dag("retrain_model").params
    check_conf_keys(conf, list(retrain_params))
    for key, value in conf.items():
        retrain_params.get_param(key).resolve(value)

    # Deciding the same interval again keeps its one trigger: the same run id, which the
    # TriggerDagRunOperator (skip_when_already_exists) starts once.
    again = decide_retrain(
        str(drift_project), *DRIFTED, "test_trigger_again", RetrainState(RETRAIN_DAG), now=now + timedelta(hours=1)
    )
    assert again["trigger"] is True and again["retrain_run_id"] == first["retrain_run_id"]
    running = decide_retrain(
        str(drift_project),
        *DRIFTED,
        "test_running",
        RetrainState(RETRAIN_DAG, running=1),
        now=now + timedelta(days=9),
    )
    # ... whatever the retrain DAG is doing now: the trigger stands, nothing new is started.
    assert running["trigger"] is True and running["retrain_run_id"] == first["retrain_run_id"]
    assert "trigger stands" in running["reason"] and running["retrains"] == []


def test_cooldown_counts_in_data_time_not_on_the_wall_clock(drift_project, monitored):
    """A 30-day cooldown, and an estimate floor under which the undrifted day breaches too: its trigger
    (data to 11-02) puts the drifted day (11-21) in cooldown however far the wall clock moves on."""
    from driftline.airflow.tasks import retrain_run_id
    from driftline.drift.decision import RetrainState
    from driftline.drift.decision import decide_retrain as decide

    def decide_retrain(*args, **kwargs):
        return decide(*args, **kwargs, retrain_run_id=retrain_run_id)

    slow = drift_project.parent / "slow.toml"
    # [drift.trigger] is the config's last table.
    slow.write_text(edit_config(drift_project.read_text(), keys={"cooldown_hours": "720"}, append=_FLOOR))
    # Without the trigger the test above recorded for the drifted day: a recorded retrain puts the
    # intervals within the cooldown before it in cooldown too (drift.order), and this test starts earlier.
    fetch(drift_project, "DELETE FROM {s}.drift_decisions WHERE trigger RETURNING 1")
    first = decide_retrain(str(slow), *UNDRIFTED, "test_cooldown_first", RetrainState(RETRAIN_DAG))
    assert first["trigger"] is True
    for wall_clock in (datetime.now(timezone.utc), datetime.now(timezone.utc) + timedelta(days=400)):
        later = decide_retrain(str(slow), *DRIFTED, "test_cooldown_later", RetrainState(RETRAIN_DAG), now=wall_clock)
        assert later["trigger"] is False and "in cooldown" in later["reason"]
        assert f"covered data up to {UNDRIFTED[1]:%Y-%m-%d %H:%M} UTC" in later["reason"]


def test_interval_not_scored_fails_clearly(drift_project):
    from driftline.drift.errors import IntervalNotScoredError
    from driftline.drift.monitor import monitor_interval

    day = (datetime(2027, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 2, tzinfo=timezone.utc))
    with pytest.raises(IntervalNotScoredError, match="score_batch has not scored it"):
        monitor_interval(str(drift_project), *day, "test_not_scored")


def test_a_retrain_waiting_on_a_paused_dag_is_in_the_decision_and_an_alert(drift_project, monitored):
    from driftline.airflow.tasks import retrain_run_id
    from driftline.drift.decision import RetrainState
    from driftline.drift.decision import decide_retrain as decide

    def decide_retrain(*args, **kwargs):
        return decide(*args, **kwargs, retrain_run_id=retrain_run_id)

    now = datetime.now(timezone.utc) + timedelta(days=60)  # past any cooldown from earlier tests
    decision = decide_retrain(
        str(drift_project), *DRIFTED, "test_paused", RetrainState(RETRAIN_DAG, paused=True, queued=1), now
    )
    assert decision["trigger"] is False
    assert f"{RETRAIN_DAG} is paused: the run triggered on" in decision["reason"]
    ((message,),) = fetch(
        drift_project, "SELECT message FROM {s}.alerts WHERE kind = 'retrain_waiting' AND run_id = 'test_paused'"
    )
    assert message.startswith(f"{RETRAIN_DAG} is paused: the run triggered on")


@pytest.mark.parametrize("role, conf_key", [("score_batch", "modelversion"), ("monitor_drift", "intervalstart")])
def test_unknown_conf_keys_fail_the_first_task_without_retries(drift_project, role, conf_key):
    when = {"logical_date": DRIFTED[1] + timedelta(days=3)} if role == "score_batch" else {}
    dag_run = load_dag(role).test(run_conf={"config": str(drift_project), conf_key: 2}, **when)
    run_id = dag_run.run_id
    states = {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}
    assert str(dag_run.state) == "failed"
    assert states["prepare_database"] == ("failed", 1), states
    ((message,),) = fetch(
        drift_project,
        "SELECT message FROM {s}.alerts WHERE kind = 'task_failure' AND run_id = %s AND task_id = 'prepare_database'",
        (run_id,),
    )
    assert f"unknown conf key '{conf_key}'; known: config" in message


def test_estimated_performance_is_stored_per_interval_and_compared_when_labels_arrive(drift_project, monitored):
    """monitor_drift's estimate_performance: CBPE rows for every metric; the labelled interval gets its realized values."""
    for interval in (UNDRIFTED, DRIFTED):
        assert monitored["states"][interval]["estimate_performance"] == "success"
    rows = fetch(
        drift_project,
        "SELECT metric, estimate, band_low, band_high, rows, realized, realized_rows, error, within_band "
        "FROM {s}.estimated_vs_realized WHERE interval_start = %s ORDER BY metric",
        (UNDRIFTED[0],),
    )
    by_metric = {row[0]: row for row in rows}
    assert {"auc", "accuracy", "tp", "fp", "fn", "tn"} <= set(by_metric)
    ((predicted,),) = fetch(
        drift_project, "SELECT count(*) FROM {s}.predictions WHERE interval_start = %s", (UNDRIFTED[0],)
    )
    for _metric, estimate, low, high, count, realized, realized_rows, error, _ in rows:
        assert low <= estimate <= high and count == predicted
        assert realized_rows == predicted  # the demo's labels for this day have all arrived
        assert error == pytest.approx(estimate - realized)
    assert sum(by_metric[name][1] for name in ("tp", "fp", "fn", "tn")) == pytest.approx(predicted)
    assert by_metric["auc"][8] and by_metric["accuracy"][8]  # the realized values fell in the band
    # The drifted day has no labels yet: an estimate, no realized value.
    drifted = fetch(
        drift_project,
        "SELECT realized, realized_rows FROM {s}.estimated_performance WHERE interval_start = %s AND metric = 'auc'",
        (DRIFTED[0],),
    )
    assert drifted == [(None, 0)]


def test_estimated_metric_floor_breaches_and_names_itself(drift_project, monitored):
    """[drift.trigger] estimated_metric_floor: an undrifted interval whose estimated AUC is under the floor breaches."""
    from driftline.airflow.tasks import retrain_run_id
    from driftline.drift.decision import RetrainState
    from driftline.drift.decision import decide_retrain as decide

    def decide_retrain(*args, **kwargs):
        return decide(*args, **kwargs, retrain_run_id=retrain_run_id)

    strict = drift_project.parent / "strict.toml"
    strict.write_text(drift_project.read_text() + "estimated_metric_floor = 0.99\n")  # [drift.trigger] is last
    # A retrain "already running": the rule's reason is recorded, nothing is triggered for later tests.
    # (An earlier test's trigger for this interval would stand instead of the rule: start without it.)
    fetch(
        drift_project,
        "DELETE FROM {s}.drift_decisions WHERE trigger AND interval_end = %s RETURNING 1",
        (UNDRIFTED[1],),
    )
    decision = decide_retrain(
        str(strict),
        *UNDRIFTED,
        "test_estimated_floor",
        RetrainState(RETRAIN_DAG, running=1),
        now=datetime.now(timezone.utc) + timedelta(days=60),
    )
    assert decision["breach"] is True and decision["trigger"] is False
    assert "already active" in decision["reason"] and "below floor 0.99" in decision["reason"]
    assert "estimated auc" in decision["reason"]
    lenient = decide_retrain(str(drift_project), *UNDRIFTED, "test_no_floor", RetrainState(RETRAIN_DAG, running=1))
    assert lenient["breach"] is False and "estimated" not in lenient["reason"]


def test_the_alert_band_from_the_holdout_is_stored_and_breaches_the_decision(drift_project, monitored):
    """Each estimate carries the band learnt from the holdout's chunks (performance_alerts); the decision
    reads the band of the model that scored the interval, and an estimate below it breaches by name."""
    import json

    from psycopg.types.json import Jsonb

    from driftline.airflow.tasks import retrain_run_id
    from driftline.drift.decision import RetrainState
    from driftline.drift.decision import decide_retrain as decide

    def decide_retrain(*args, **kwargs):
        return decide(*args, **kwargs, retrain_run_id=retrain_run_id)

    rows = fetch(
        drift_project,
        "SELECT metric, estimate, alert_low, alert_high, estimate_alert, model_version FROM {s}.performance_alerts "
        "WHERE interval_start = %s",
        (UNDRIFTED[0],),
    )
    assert {"auc", "accuracy"} <= {row[0] for row in rows}
    for _, estimate, low, high, alert, _ in rows:
        assert 0 <= low <= high <= 1 and alert == (estimate < low or estimate > high)
    version = rows[0][5]
    ((manifest,),) = fetch(drift_project, "SELECT manifest FROM {s}.model_versions WHERE version = %s", (version,))
    assert manifest["calibration"]["thresholds"]["auc"]["chunks"] == 10
    # A holdout whose AUC chunks all sat at 0.99: this interval's estimate is far below the band.
    tight = json.dumps({"mean": 0.99, "std": 0.001, "chunks": 10, "chunk_rows": 100})
    fetch(
        drift_project,
        "UPDATE {s}.model_versions SET manifest = jsonb_set(manifest, %s::text[], %s::jsonb) "
        "WHERE version = %s RETURNING version",
        (["calibration", "thresholds", "auc"], tight, version),
    )
    # An earlier test's trigger for this interval would stand instead of the rule: start without it.
    fetch(
        drift_project,
        "DELETE FROM {s}.drift_decisions WHERE trigger AND interval_end = %s RETURNING 1",
        (UNDRIFTED[1],),
    )
    try:
        decision = decide_retrain(
            str(drift_project), *UNDRIFTED, "test_alert_band", RetrainState(RETRAIN_DAG, running=1)
        )
        off = drift_project.parent / "band_off.toml"
        off.write_text(drift_project.read_text() + "estimated_metric_std = 0\n")  # [drift.trigger] is last
        quiet = decide_retrain(str(off), *UNDRIFTED, "test_alert_band_off", RetrainState(RETRAIN_DAG, running=1))
    finally:
        fetch(
            drift_project,
            "UPDATE {s}.model_versions SET manifest = %s WHERE version = %s RETURNING version",
            (Jsonb(manifest), version),
        )
    assert decision["breach"] is True and "below the holdout's alert band [0.987, 0.993]" in decision["reason"]
    assert quiet["breach"] is False and "alert band" not in quiet["reason"]


def test_realized_performance_fills_the_estimates_with_the_labels_it_sees(drift_project, monitored):
    """update_realized_performance (score_batch, retrain_model, `driftline realized`) records the estimate's error."""
    from driftline.retraining.realized import update_realized_performance

    query = "SELECT realized_rows, realized IS NULL FROM {s}.estimated_performance WHERE interval_start = %s AND metric = 'auc'"
    segments = (
        "SELECT sum(realized_rows), bool_and(realized IS NULL) FROM {s}.segment_performance "
        "WHERE interval_start = %s AND metric = 'accuracy'"
    )
    update_realized_performance(str(drift_project), UNDRIFTED[0])  # before any label was observed
    assert fetch(drift_project, query, (UNDRIFTED[0],)) == [(0, True)]
    assert fetch(drift_project, segments, (UNDRIFTED[0],)) == [(None, True)]
    update_realized_performance(str(drift_project), None)  # every label observed by now
    ((predicted,),) = fetch(
        drift_project, "SELECT count(*) FROM {s}.predictions WHERE interval_start = %s", (UNDRIFTED[0],)
    )
    assert fetch(drift_project, query, (UNDRIFTED[0],)) == [(predicted, False)]
    assert fetch(drift_project, segments, (UNDRIFTED[0],)) == [(predicted, False)]  # the segments add up


def test_attribution_drift_is_stored_per_interval(drift_project, monitored):
    config = load_config(drift_project)
    rows = {
        start: (ndcg, attribution)
        for start, ndcg, attribution in fetch(
            drift_project,
            "SELECT s.interval_start, s.attribution_ndcg, d.attribution FROM {s}.drift_summary s "
            "JOIN {s}.drift_intervals d USING (interval_start, interval_end)",
        )
    }
    for interval in (UNDRIFTED, DRIFTED):
        ndcg, attribution = rows[interval[0]]
        assert 0.0 < float(ndcg) <= 1.0
        assert attribution["features"] == config.feature_names
        assert len(attribution["reference"]) == len(attribution["current"]) == len(config.feature_names)
        assert max(attribution["reference"]) > 0
    # The same distribution ranks the features the same way (up to sampling noise at the top).
    assert float(rows[UNDRIFTED[0]][0]) >= 0.9


def test_segments_add_up_to_the_interval_and_carry_estimates(drift_project, monitored):
    """[monitoring] segments: per segment value rows and prediction mean add up to the interval's
    published predictions; estimates for every segment, realized values where labels arrived."""
    config = load_config(drift_project)
    for interval in (UNDRIFTED, DRIFTED):
        ((rows, mean),) = fetch(
            drift_project,
            "SELECT count(*), avg(score) FROM {s}.predictions WHERE interval_start = %s",
            (interval[0],),
        )
        segments = fetch(
            drift_project,
            "SELECT segment_column, segment_value, rows, prediction_mean, drifted_features, drift_note "
            "FROM {s}.segment_intervals WHERE interval_start = %s",
            (interval[0],),
        )
        assert {column for column, *_ in segments} == set(config.monitoring.segments)
        assert sum(r for _, _, r, *_ in segments) == rows
        assert sum(r * m for _, _, r, m, *_ in segments) / rows == pytest.approx(mean)
        kept = {v for (v,) in fetch(drift_project, "SELECT segment_value FROM {s}.segment_values")}
        assert {value for _, value, *_ in segments} <= kept | {"other"}
        assert len(kept) <= config.monitoring.top_n
        for *_, drifted, note in segments:
            assert (drifted is None) == (note is not None)
    view = fetch(
        drift_project,
        "SELECT segment_value, metric, estimate, estimate_low, estimate_high, realized FROM {s}.segment_performance "
        "WHERE interval_start = %s AND metric = 'accuracy'",
        (UNDRIFTED[0],),
    )
    assert view and all(low <= estimate <= high for _, _, estimate, low, high, _ in view)
    assert all(realized is not None for *_, realized in view)  # the undrifted day's labels have all arrived
    drifted = fetch(
        drift_project,
        "SELECT count(*) FILTER (WHERE realized IS NOT NULL) FROM {s}.segment_performance WHERE interval_start = %s",
        (DRIFTED[0],),
    )
    assert drifted == [(0,)]


def test_stored_segment_rows_equal_the_ones_from_re_reading_the_interval(drift_project, monitored):
    """monitor_interval takes the segments' rows from the read that draws its drift sample; what it
    stored equals, value for value, what the segments gave when they re-read the interval's input and
    joined it with the published scores (the code before, kept in tests/segments_before.py)."""
    import pandas as pd
    import psycopg
    import pyarrow as pa

    from driftline.labelled import interval_predictions, read_labels
    from driftline.sources import read_interval
    from tests.helpers import db_url
    from tests.segments_before import frame_before, rows_before, same

    config = load_config(drift_project)
    for start, end in (UNDRIFTED, DRIFTED):
        ((version, run_id),) = fetch(
            drift_project,
            "SELECT DISTINCT model_version, run_id FROM {s}.segment_intervals WHERE interval_start = %s",
            (start,),
        )
        ((reference_path,),) = fetch(
            drift_project, "SELECT path FROM {s}.drift_references WHERE model_version = %s", (version,)
        )
        ((calibration,),) = fetch(
            drift_project, "SELECT manifest -> 'calibration' FROM {s}.model_versions WHERE version = %s", (version,)
        )
        kept = {
            column: [
                v
                for (v,) in fetch(
                    drift_project,
                    "SELECT segment_value FROM {s}.segment_values WHERE model_version = %s AND segment_column = %s "
                    "ORDER BY rank",
                    (version, column),
                )
            ]
            for column in config.monitoring.segments
        }
        tables = []
        for chunk in read_interval(config.input_location(start, end), config, start, end):
            keep = np.ones(chunk.typed.num_rows, dtype=bool)
            keep[list(chunk.failures)] = False
            tables.append(chunk.typed.select([config.entity_key, *config.feature_names]).filter(pa.array(keep)))
        with psycopg.connect(db_url()) as conn:
            predictions = interval_predictions(conn, config.db_schema, start, end)
        ctx = {"start": start, "end": end, "version": version, "run_id": run_id, "calibration": calibration}
        ctx |= {"reference": pd.read_parquet(reference_path), "labels": read_labels(config, datetime.now(timezone.utc))}
        intervals, estimates = rows_before(config, ctx, kept, frame_before(config, tables, predictions))
        stored_intervals = fetch(
            drift_project,
            "SELECT interval_start, interval_end, model_version, run_id, segment_column, segment_value, segment_other, "
            "rows, prediction_mean, drifted_features, drift_note FROM {s}.segment_intervals WHERE interval_start = %s",
            (start,),
        )
        stored_estimates = fetch(
            drift_project,
            "SELECT interval_start, interval_end, segment_column, segment_value, segment_other, metric, estimate, "
            "band_low, band_high, realized, realized_rows FROM {s}.segment_estimates WHERE interval_start = %s",
            (start,),
        )
        assert intervals and estimates
        for expected, got, key in ((intervals, stored_intervals, 7), (estimates, stored_estimates, 6)):
            plain = [tuple(float(v) if isinstance(v, np.floating) else v for v in row) for row in expected]
            assert len(plain) == len(got)
            by_key = {row[:key]: row for row in got}
            for row in plain:
                assert all(same(a, b) for a, b in zip(row, by_key[row[:key]], strict=True)), (row, by_key[row[:key]])
