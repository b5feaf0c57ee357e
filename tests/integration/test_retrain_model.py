"""retrain_model against real Postgres: promote, reject, guardrails, rollback, backfill, realized performance.

Each test gets its own schema and registry folder (a config variant over the module's project data),
so the registry history a test asserts is exactly the one it made.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from driftline import db, registry
from driftline.airflow.approval import review_answer
from driftline.airflow.tasks import AUTOMATIC_ACTOR as ACTOR
from driftline.batch import score_interval
from driftline.cli import main as cli_main
from driftline.config import load_config
from driftline.errors import Skipped
from driftline.retraining.errors import RetrainingError
from driftline.retraining.guardrails import guardrail_failures, prediction_problems, segment_metrics
from driftline.retraining.lifecycle import decide_promotion, rollback_champion, train_candidate, validate_candidate
from driftline.retraining.realized import update_realized_performance
from driftline.retraining.review import approval_request
from driftline.retraining.shadow import score_shadow
from driftline.retraining.windows import labelled_window
from driftline.training import train
from tests.helpers import config_variant, db_url, fetch
from tests.integration.scenarios import (
    ALL_LABELS,
    FIRST,
    SECOND,
    WINDOW_END,
    champion,
    new_schema,
    promoted_over_weak_champion,
    register_weak_champion,
    retrain,
    score_both_intervals,
)


@pytest.fixture(scope="module")
def weak_champion_schema(scored_project) -> Path:
    """A schema whose champion is weak, with both intervals scored (by the weak champion)."""
    path = new_schema(scored_project)
    register_weak_champion(path)
    score_both_intervals(path)
    return path


def test_guardrail_failures_reject_then_same_candidate_is_promoted(weak_champion_schema, scored_project):
    schema = load_config(weak_champion_schema).db_schema
    strict = config_variant(
        weak_champion_schema, schema, f"{schema}_strict", min_training_rows="10000000", min_metric="0.999"
    )
    before = champion(weak_champion_schema)
    candidate, validation, decision = retrain(strict, "strict guardrails")
    assert decision["decision"] == "rejected" and decision["champion_version"] == before == champion(strict)
    assert any("retraining.min_training_rows" in failure for failure in validation["failures"])
    assert any("retraining.min_metric 0.999" in failure for failure in validation["failures"])
    # The candidate beat the champion: only the guardrails stopped it.
    assert validation["candidate"]["metrics"]["auc"] > validation["champion"]["metrics"]["auc"]
    ((status,),) = fetch(
        weak_champion_schema, "SELECT status FROM {s}.model_versions WHERE version = %s", (candidate["version"],)
    )
    assert status == "rejected"

    # Default guardrails: the same data and seed give the same artifact (no new version), now promoted.
    again, validation, decision = retrain(weak_champion_schema, "drift breach")
    assert (again["sha256"], again["version"], again["new_version"]) == (
        candidate["sha256"],
        candidate["version"],
        False,
    )
    assert validation["passed"], validation["failures"]
    assert decision["decision"] == "promoted" and champion(weak_champion_schema) == candidate["version"]
    events = fetch(
        weak_champion_schema,
        "SELECT action, from_version, to_version, reason FROM {s}.promotion_events ORDER BY event_id",
    )
    assert [e[:3] for e in events] == [
        ("promote", None, before),
        ("reject", before, candidate["version"]),
        ("promote", before, candidate["version"]),
    ]
    assert (
        "min_training_rows" in events[1][3]
        and "all guardrails passed" in events[2][3]
        and "drift breach" in events[2][3]
    )
    aliases = dict(fetch(weak_champion_schema, "SELECT alias, version FROM {s}.model_aliases"))
    assert aliases == {"champion": candidate["version"], "previous": before}


def test_worse_candidate_is_rejected_and_champion_unchanged(scored_project):
    path = new_schema(scored_project)
    from driftline.training import train_champion

    strong = train_champion(str(path))["version"]
    score_both_intervals(path)
    schema = load_config(path).db_schema
    stump = config_variant(path, schema, f"{schema}_stump", num_boost_round="1", num_leaves="2")
    candidate, validation, decision = retrain(stump, "try a stump")
    assert candidate["version"] != strong
    assert decision["decision"] == "rejected" and champion(path) == strong
    assert any("does not beat champion" in failure for failure in validation["failures"])
    assert fetch(path, "SELECT status FROM {s}.model_versions ORDER BY version") == [("champion",), ("rejected",)]
    ((action, reason),) = fetch(
        path, "SELECT action, reason FROM {s}.promotion_events WHERE to_version = %s", (candidate["version"],)
    )
    assert action == "reject" and "does not beat champion" in reason


def test_training_is_deterministic(scored_project):
    config = load_config(scored_project)
    with db.connect(db_url()) as conn:
        rows = labelled_window(conn, config, WINDOW_END - timedelta(days=30), WINDOW_END, ALL_LABELS)
    # The window holds history rows and the scored interval rows whose late labels arrived.
    assert rows[config.event_time].max() >= FIRST[0] and rows[config.event_time].min() < FIRST[0]
    first, second = train(config, rows), train(config, rows.sample(frac=1.0, random_state=3))
    assert registry.sha256_bytes(first.model_text.encode()) == registry.sha256_bytes(second.model_text.encode())
    # Labels not yet observed do not enter the training set.
    with db.connect(db_url()) as conn:
        early = labelled_window(conn, config, WINDOW_END - timedelta(days=30), WINDOW_END, FIRST[0])
    assert early[config.event_time].max() < FIRST[0]


def test_rollback_restores_previous_champion_and_is_in_history(scored_project, capsys):
    path, weak, promoted = promoted_over_weak_champion(scored_project)
    assert cli_main(["rollback", "--config", str(path), "--reason", "candidate misbehaves in production"]) == 0
    assert champion(path) == weak
    last = fetch(
        path,
        "SELECT action, from_version, to_version, reason, actor FROM {s}.promotion_events ORDER BY event_id DESC LIMIT 1",
    )
    assert last[0][:4] == ("rollback", promoted, weak, "candidate misbehaves in production") and last[0][4].startswith(
        "cli:"
    )
    assert dict(fetch(path, "SELECT alias, version FROM {s}.model_aliases")) == {"champion": weak, "previous": promoted}
    # An unknown version is refused with a message, no traceback.
    assert cli_main(["rollback", "--config", str(path), "--to", "99", "--reason", "x"]) == 1
    assert "not registered" in capsys.readouterr().err
    # Roll forward again with --to; the history keeps every step.
    assert cli_main(["rollback", "--config", str(path), "--to", str(promoted), "--reason", "fixed upstream"]) == 0
    assert champion(path) == promoted
    assert [row[0] for row in fetch(path, "SELECT action FROM {s}.promotion_events ORDER BY event_id")][-2:] == [
        "rollback",
        "rollback",
    ]


def test_rollback_to_tampered_artifact_is_refused_and_champion_stays(scored_project):
    path, weak, current = promoted_over_weak_champion(scored_project)
    ((uri,),) = fetch(path, "SELECT artifact_uri FROM {s}.model_versions WHERE version = %s", (weak,))
    artifact = Path(uri.removeprefix("file://"))
    artifact.write_bytes(artifact.read_bytes().replace(b"shrinkage=", b"shrinkage=9", 1))
    with pytest.raises(registry.ModelLoadError, match="sha256 mismatch"):
        rollback_champion(str(path), "back to the old one")
    assert champion(path) == current
    assert fetch(path, "SELECT count(*) FROM {s}.promotion_events WHERE action = 'rollback'") == [(0,)]


def test_backfill_of_an_old_interval_uses_the_then_champion(scored_project):
    path, old, new = promoted_over_weak_champion(scored_project)
    # Put the promotions on the data timeline: `old` from mid-October, `new` from midway through SECOND.
    with psycopg.connect(db_url(), autocommit=True) as conn:
        events = db.table(load_config(path).db_schema, "promotion_events")
        conn.execute(
            sql.SQL("UPDATE {} SET created_at = %s WHERE to_version = %s AND action = 'promote'").format(events),
            (datetime(2026, 10, 15, tzinfo=timezone.utc), old),
        )
        conn.execute(
            sql.SQL("UPDATE {} SET created_at = %s WHERE to_version = %s AND action = 'promote'").format(events),
            (SECOND[0] + timedelta(hours=12), new),
        )
        assert registry.version_for_interval(conn, load_config(path).db_schema, FIRST[1]) == old
        # Before any promotion: the first champion, not whatever is champion today, so a backfill of
        # old history gives the same version every time.
        assert (
            registry.version_for_interval(conn, load_config(path).db_schema, datetime(2026, 9, 1, tzinfo=timezone.utc))
            == old
        )
    score_both_intervals(path)
    versions = dict(fetch(path, "SELECT interval_start, min(model_version) FROM {s}.predictions GROUP BY 1"))
    assert versions == {FIRST[0]: old, SECOND[0]: new}
    score_interval(str(path), *SECOND, run_id="pinned", model_version=old)  # the Param still pins
    assert fetch(
        path, "SELECT DISTINCT model_version FROM {s}.predictions WHERE interval_start = %s", (SECOND[0],)
    ) == [(old,)]


def test_realized_performance_appears_and_updates_as_labels_arrive(scored_project):
    path = new_schema(scored_project)
    register_weak_champion(path)
    score_both_intervals(path)
    query = "SELECT interval_start, rows_predicted, rows_labelled, metrics, model_version FROM {s}.realized_performance ORDER BY 1"

    update_realized_performance(str(path), FIRST[0] + timedelta(days=1))  # no label observed yet
    assert [(r[2], r[3]) for r in fetch(path, query)] == [(0, {}), (0, {})]

    update_realized_performance(str(path), FIRST[0] + timedelta(days=3, hours=12))  # half of FIRST
    partly = fetch(path, query)
    assert 0 < partly[0][2] < partly[0][1] and partly[1][2] == 0
    assert set(partly[0][3]) == {"auc", "log_loss", "accuracy"}

    update_realized_performance(str(path), ALL_LABELS)
    final = fetch(path, query)
    assert len(final) == 2  # replaced, not appended
    assert [r[2] for r in final] == [r[1] for r in final]  # every scored row labelled
    assert final[0][3] != partly[0][3] and all(r[4] == 1 for r in final)
    # Intervals older than retraining.realized_lookback_days keep their last row.
    schema = load_config(path).db_schema
    short = config_variant(path, schema, f"{schema}_short", realized_lookback_days="1")
    assert update_realized_performance(str(short), ALL_LABELS + timedelta(days=60)) == []
    assert fetch(path, query) == final


def test_guardrail_checks_on_tiny_inputs(scored_project):
    import numpy as np
    import pandas as pd

    config = load_config(scored_project)
    assert prediction_problems(config, np.array([0.1, np.nan, 0.3])) == ["1 holdout predictions are NaN or infinite"]
    assert "outside [0, 1]" in prediction_problems(config, np.array([0.1, 1.5]))[0]
    assert "same value" in prediction_problems(config, np.array([0.2, 0.2]))[0]
    candidate = {
        "version": 2,
        "metrics": {"auc": 0.80, "log_loss": 0.30, "accuracy": 0.9},
        "segments": {"a": 0.6, "b": 0.9},
    }
    holder = {
        "version": 1,
        "metrics": {"auc": 0.78, "log_loss": 0.20, "accuracy": 0.9},
        "segments": {"a": 0.7, "b": 0.8},
    }
    failures = guardrail_failures(config, 5000, candidate, holder, np.array([0.1, 0.9]))
    assert len(failures) == 2
    assert "log_loss 0.3000 is worse than champion 0.2000" in failures[0]
    assert "segment merchant_category=a" in failures[1]
    assert guardrail_failures(config, 5000, candidate, None, np.array([0.1, 0.9])) == []
    broken = {"version": 3, "metrics": {}, "segments": {}}  # what _evaluate_version gives for NaN scores
    assert guardrail_failures(config, 10, broken, holder, np.array([np.nan, 0.5])) == [
        "only 10 training rows (retraining.min_training_rows = 1000)",
        "auc is undefined: the holdout predictions are not all finite",
        "1 holdout predictions are NaN or infinite",
    ]
    holdout = pd.DataFrame({"merchant_category": ["x"] * 1200 + ["y"] * 10, config.target: [0, 1] * 605})
    segments = segment_metrics(config, holdout, np.linspace(0, 1, 1210))
    assert list(segments) == ["x"]  # y has fewer than min_segment_rows


def test_dag_promotes_then_rolls_back(retrain_dag, scored_project):
    path = new_schema(scored_project)
    weak = register_weak_champion(path)
    score_both_intervals(path)
    conf = {
        "config": str(path),
        "reason": "monitor_drift: breach in 2 of the last 3 intervals",
        "interval": {"start": SECOND[0].isoformat(), "end": SECOND[1].isoformat()},
        "labels_as_of": ALL_LABELS.isoformat(),
        "drifted_share": 0.5,  # monitor_drift adds figures of its own
    }
    run = retrain_dag.test(run_conf=conf)
    assert str(run.state) == "success"
    promoted = champion(path)
    assert promoted != weak
    ((reason,),) = fetch(
        path, "SELECT reason FROM {s}.promotion_events WHERE action = 'promote' AND to_version = %s", (promoted,)
    )
    assert "monitor_drift: breach" in reason
    ((window,),) = fetch(
        path, "SELECT manifest->'retraining'->'window' FROM {s}.model_versions WHERE version = %s", (promoted,)
    )
    assert window["end"] == SECOND[1].isoformat()  # the window ends with the breaching interval
    assert fetch(path, "SELECT count(*) FROM {s}.realized_performance WHERE rows_labelled > 0") == [(2,)]

    run = retrain_dag.test(run_conf={"config": str(path), "action": "rollback", "reason": "pager at 3am"})
    assert str(run.state) == "success"
    assert champion(path) == weak
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["train_candidate"].endswith("skipped") and states["rollback_champion"].endswith("success")

    # A rollback that expects a champion which is no longer champion changes nothing and fails.
    stale = {
        "config": str(path),
        "action": "rollback",
        "reason": "stale page",
        "rollback_to_version": promoted,
        "rollback_expect_champion": promoted,
    }
    run = retrain_dag.test(run_conf=stale)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["rollback_champion"].endswith("failed") and champion(path) == weak
    assert fetch(path, "SELECT count(*) FROM {s}.promotion_events WHERE action = 'rollback'") == [(1,)]


def test_dag_rejects_a_bad_param(retrain_dag):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="action"):
        retrain_dag.test(run_conf={"action": "explode", "reason": "test"})


def test_shadow_scores_the_rejected_candidate_beside_the_champion(scored_project):
    path = new_schema(scored_project, shadow="true")
    register_weak_champion(path)
    score_both_intervals(path)
    with pytest.raises(Skipped, match="^no candidate"):
        score_shadow(str(path), *FIRST, run_id="shadow")
    schema = load_config(path).db_schema
    stump = config_variant(
        path, schema, f"{schema}_stump", shadow="true", num_boost_round="1", num_leaves="2", min_metric="0.999"
    )
    candidate, _, decision = retrain(stump)
    assert decision["decision"] == "rejected"
    for _ in range(2):  # a rerun replaces the interval's shadow rows
        result = score_shadow(str(path), *FIRST, run_id="shadow")
    assert result == {"shadow_version": candidate["version"], "rows": result["rows"]}
    compared = fetch(
        path,
        "SELECT count(*), count(DISTINCT s.model_version), count(*) FILTER (WHERE s.score <> p.score) "
        "FROM {s}.shadow_predictions s JOIN {s}.predictions p USING (interval_start, entity_key) WHERE s.interval_start = %s",
        (FIRST[0],),
    )
    ((published,),) = fetch(path, "SELECT count(*) FROM {s}.predictions WHERE interval_start = %s", (FIRST[0],))
    assert compared[0][:2] == (published, 1) == (result["rows"], 1)
    assert compared[0][2] > 0  # a different model: its scores differ from the champion's
    off = config_variant(path, schema, f"{schema}_off", shadow="false")
    with pytest.raises(Skipped, match="off"):
        score_shadow(str(off), *FIRST, run_id="shadow")


def _review(option: str, user: str | None, comment: str = "") -> dict:
    """What approve_promotion pushes as XCom `review` for an answer, or for the timeout default (no responder),
    read by the adapter into the plain answer decide_promotion takes."""
    return review_answer(
        {
            "chosen_options": [option],
            "params_input": {"comment": comment},
            "responded_at": datetime.now(timezone.utc).isoformat(),
            "responded_by_user": {"id": user, "name": user} if user else None,
        }
    )


def test_manual_promotion_records_who_decided_in_events_and_manifest(scored_project):
    import json

    path = new_schema(scored_project, promotion='"manual"', approval_timeout_hours="0.5")
    weak = register_weak_champion(path)
    candidate = train_candidate(str(path), "drift breach", None, WINDOW_END, ALL_LABELS)
    validation = validate_candidate(str(path), candidate)
    assert validation["passed"], validation["failures"]
    version = candidate["version"]

    # What the reviewer sees: the comparison on the shared holdout and the guardrails, figures only.
    request = approval_request(str(path), validation)
    assert request["subject"] == f"demo_transactions: promote candidate v{version} over champion v{weak}?"
    body = request["body"]
    assert f"| metric | candidate v{version} | champion v{weak} | candidate better by |" in body
    assert (
        f"| auc (primary) | {validation['candidate']['metrics']['auc']:.4f} | {validation['champion']['metrics']['auc']:.4f} |"
        in body
    )
    assert "Guardrails (all passed)" in body and "retraining.min_training_rows 1000" in body
    assert "No answer within 0.5 h rejects the candidate" in body
    # Auto mode, or a candidate that failed a guardrail: nobody is asked.
    schema = load_config(path).db_schema
    auto = config_variant(path, schema, f"{schema}_auto", promotion='"auto"')
    assert approval_request(str(auto), validation) is None
    assert approval_request(str(path), {**validation, "passed": False, "failures": ["x"]}) is None

    # Manual mode never promotes without an answer.
    with pytest.raises(RetrainingError, match="no approval was recorded"):
        decide_promotion(str(path), validation, "drift breach", "run_0", None, actor=ACTOR)
    assert champion(path) == weak

    timed_out = decide_promotion(str(path), validation, "drift breach", "run_1", _review("Reject", None), actor=ACTOR)
    assert timed_out["decision"] == "rejected" and timed_out["timed_out"] and champion(path) == weak
    rejected = decide_promotion(
        str(path),
        validation,
        "drift breach",
        "run_2",
        _review("Reject", "bob", "holdout too recent to trust"),
        actor=ACTOR,
    )
    assert rejected["decision"] == "rejected" and rejected["reviewer"] == "bob" and champion(path) == weak
    approved = decide_promotion(
        str(path),
        validation,
        "drift breach",
        "run_3",
        _review("Approve", "alice", "checked the segments, ship it"),
        actor=ACTOR,
    )
    assert approved["decision"] == "promoted" and champion(path) == version

    events = fetch(
        path,
        "SELECT action, to_version, actor, reviewer, review_comment, reason, run_id FROM {s}.promotion_events "
        "WHERE to_version = %s ORDER BY event_id",
        (version,),
    )
    assert [e[:5] for e in events] == [
        ("reject", version, "retrain_model", None, None),
        ("reject", version, "bob", "bob", "holdout too recent to trust"),
        ("promote", version, "alice", "alice", "checked the segments, ship it"),
    ]
    assert "no answer within 0.5 h" in events[0][5] and "rejected by bob: holdout too recent to trust" in events[1][5]
    assert (
        "approved by alice: checked the segments, ship it" in events[2][5] and "trigger: drift breach" in events[2][5]
    )

    # The manifest (registry row and manifest.json beside the artifact) lists every decision.
    ((manifest, uri),) = fetch(
        path, "SELECT manifest, artifact_uri FROM {s}.model_versions WHERE version = %s", (version,)
    )
    decisions = manifest["decisions"]
    assert [(d["action"], d["reviewer"], d["comment"], d["timed_out"], d["run_id"]) for d in decisions] == [
        ("reject", None, None, True, "run_1"),
        ("reject", "bob", "holdout too recent to trust", False, "run_2"),
        ("promote", "alice", "checked the segments, ship it", False, "run_3"),
    ]
    assert [d["event_id"] for d in decisions] == [
        row[0]
        for row in fetch(
            path, "SELECT event_id FROM {s}.promotion_events WHERE to_version = %s ORDER BY event_id", (version,)
        )
    ]
    on_disk = json.loads((registry.artifact_path(uri).parent / registry.MANIFEST_FILE).read_text())
    assert on_disk == manifest
    with db.connect(db_url()) as conn:  # the artifact's hash still verifies
        assert registry.load_model(conn, schema, version).manifest["decisions"][-1]["reviewer"] == "alice"


def test_auto_decisions_are_in_the_manifest_too(scored_project):
    path, _, promoted = promoted_over_weak_champion(scored_project)
    ((decisions,),) = fetch(
        path, "SELECT manifest->'decisions' FROM {s}.model_versions WHERE version = %s", (promoted,)
    )
    assert [(d["action"], d["mode"], d["reviewer"]) for d in decisions] == [("promote", "auto", None)]
    assert "all guardrails passed" in decisions[0]["reason"]
