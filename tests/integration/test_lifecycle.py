"""Issue 17: a lifecycle you can trust, against real Postgres, real LightGBM and real processes.

Fair shared holdout, compare-and-swap decisions under concurrency, the scoring hash over the
manifest, staged artifacts under a kill, append-only evaluations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from driftline import db, registry
from driftline.config import load_config
from driftline.retraining.lifecycle import decide_promotion, train_candidate, validate_candidate
from tests.helpers import REPO, config_variant, db_url, fetch, make_project, write_text
from tests.integration.scenarios import (
    ALL_LABELS,
    LATER,
    WINDOW_END,
    add_second_champion,
    alerts,
    artifact,
    champion,
    clean_rows,
    frame_csv,
    new_schema,
    register_weak_champion,
    retrain,
    score_both_intervals,
    variant,
)

OCTOBER = datetime(2026, 10, 1, tzinfo=timezone.utc)


def trained_until(path: Path, version: int) -> pd.Timestamp:
    ((end,),) = fetch(
        path, "SELECT manifest->'training_window'->>'end' FROM {s}.model_versions WHERE version = %s", (version,)
    )
    return pd.Timestamp(end)


def champion_on_full_window(scored_project) -> tuple[Path, int]:
    """A schema whose champion trained on [Oct 1, WINDOW_END): its training ends on the second interval day."""
    path = new_schema(scored_project)
    register_weak_champion(path)
    score_both_intervals(path)  # the scored rows whose labels arrived join the window
    candidate = train_candidate(str(path), "first", OCTOBER, WINDOW_END, ALL_LABELS)
    validation = validate_candidate(str(path), candidate)
    assert decide_promotion(str(path), validation, "first", "run_0", actor="retrain_model")["decision"] == "promoted"
    return path, candidate["version"]


# -- fair shared holdout ------------------------------------------------------------------------------


def test_champion_is_never_scored_on_rows_it_trained_on(scored_project):
    """The leak: a candidate whose own holdout starts before the champion's training end."""
    path, champion_version = champion_on_full_window(scored_project)
    champion_end = trained_until(path, champion_version)
    # A window ending half a day earlier: different rows, a different model, and an own holdout (its
    # newest rows) that starts hours before the champion's training end.
    candidate = train_candidate(str(path), "leak", None, WINDOW_END - pd.Timedelta(hours=12), ALL_LABELS)
    own_holdout_start = pd.Timestamp(candidate_manifest(path, candidate["version"])["training_window"]["holdout_start"])
    assert own_holdout_start < champion_end  # the situation of the issue

    validation = validate_candidate(str(path), candidate)
    holdout = validation["holdout"]
    assert pd.Timestamp(holdout["start"]) > champion_end  # no row the champion trained on
    assert holdout["after"] == champion_end.isoformat()
    assert f"after champion v{champion_version}'s training end" in holdout["reason"]
    assert 200 <= holdout["rows"] < candidate["rows"]["holdout"]
    # The record says so, in its own row.
    ((start, rows, reason),) = fetch(
        path,
        "SELECT holdout_start, holdout_rows, holdout_reason FROM {s}.model_evaluations WHERE evaluation_id = %s",
        (validation["evaluation_id"],),
    )
    assert (pd.Timestamp(start), rows, reason) == (pd.Timestamp(holdout["start"]), holdout["rows"], holdout["reason"])


def candidate_manifest(path: Path, version: int) -> dict:
    ((manifest,),) = fetch(path, "SELECT manifest FROM {s}.model_versions WHERE version = %s", (version,))
    return manifest


def test_too_few_unseen_rows_rejects_without_comparing(scored_project):
    path, champion_version = champion_on_full_window(scored_project)
    # The candidate's window ends before the champion's training end: the champion saw every row of it.
    candidate = train_candidate(str(path), "stale", None, WINDOW_END - pd.Timedelta(hours=36), ALL_LABELS)
    assert pd.Timestamp(candidate["window_end"]) < trained_until(path, champion_version)
    validation = validate_candidate(str(path), candidate)
    assert not validation["passed"]
    assert validation["failures"][0].startswith("no fair holdout: 0 rows after the champion's training end")
    assert validation["champion"]["metrics"] == {} and validation["candidate"]["metrics"] == {}
    decision = decide_promotion(str(path), validation, "stale", "run_1", actor="retrain_model")
    assert decision["decision"] == "rejected" and champion(path) == champion_version
    ((reason,),) = fetch(path, "SELECT reason FROM {s}.promotion_events WHERE to_version = %s", (candidate["version"],))
    assert "no fair holdout: 0 rows after the champion's training end" in reason


def test_evaluations_are_appended_never_overwritten(scored_project):
    path = new_schema(scored_project)
    weak = register_weak_champion(path)
    candidate, first, decision = retrain(path)
    assert decision["decision"] == "promoted"
    # The same data again: the same artifact, now the champion itself. A new verdict, in a new row.
    again, second, decision = retrain(path)
    assert again["version"] == candidate["version"] and decision["decision"] == "unchanged"
    rows = fetch(
        path,
        "SELECT evaluation_id, candidate_version, champion_version, passed, failures FROM {s}.model_evaluations ORDER BY 1",
    )
    assert [r[1:4] for r in rows] == [
        (candidate["version"], weak, True),
        (candidate["version"], candidate["version"], False),
    ]
    assert rows[0][4] == [] and "candidate is the champion" in rows[1][4][0]
    ((event_evaluation,),) = fetch(
        path,
        "SELECT evaluation_id FROM {s}.promotion_events WHERE action = 'promote' AND to_version = %s",
        (candidate["version"],),
    )
    assert event_evaluation == first["evaluation_id"] == rows[0][0]
    # model_versions.validation is no longer written (it was overwritten by each validation).
    assert fetch(path, "SELECT count(*) FROM {s}.model_versions WHERE validation IS NOT NULL") == [(0,)]

    # The registry page labels which figure is which: own holdout vs shared holdout at promotion.
    from driftline.airflow.ui.queries import registry_overview
    from driftline.airflow.ui.templates import render

    config = load_config(path)
    with db.connect(db_url()) as conn:
        overview = registry_overview(conn, config.db_schema)
    assert overview["shared"][candidate["version"]]["evaluation_id"] == first["evaluation_id"]
    assert overview["shared"][candidate["version"]]["metrics"] == first["candidate"]["metrics"]
    html = render(
        "registry", title="Model registry", config=config, base="/driftline", metric_names=["auc"], **overview
    )
    assert "own holdout" in html and "shared holdout at promotion" in html
    # The champion's global importance (gain from its verified model text), every feature, shares summing to 1.
    importance = overview["importance"]
    assert {f["feature"] for f in importance["features"]} == set(
        config.feature_names
    ) and "global feature importance" in html
    assert abs(sum(f["share"] for f in importance["features"]) - 1) < 1e-9 and importance["features"][0]["gain"] > 0
    assert f"{first['candidate']['metrics']['auc']:.4f}"[:5] in html and "candidate is the champion" in html


# -- compare-and-swap under real concurrency ---------------------------------------------------------------


def _spawn(code: str) -> subprocess.Popen:
    env = {**os.environ, "DRIFTLINE_DB_URL": db_url()}
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _waiting_for_registry_lock(conn, schema: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT l.granted AND n.nspname = %s AND c.relname = 'model_versions'",
        (schema,),
    ).fetchone()[0]


def run_in_order(schema: str, codes: list[str]) -> list[subprocess.CompletedProcess]:
    """Start each process while the test holds the registry lock, each once the previous one waits on
    it (Postgres grants a lock to its waiters in order), then release: a deterministic interleaving
    in which every process read the registry before any of them could change it."""
    with psycopg.connect(db_url(), autocommit=True) as holder, psycopg.connect(db_url(), autocommit=True) as watcher:
        processes = []
        with holder.transaction():
            holder.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(db.table(schema, "model_versions")))
            for number, code in enumerate(codes, start=1):
                processes.append(_spawn(code))
                deadline = time.monotonic() + 120
                while _waiting_for_registry_lock(watcher, schema) < number:
                    assert time.monotonic() < deadline, [p.poll() for p in processes]
                    assert all(p.poll() is None for p in processes), [
                        p.communicate() for p in processes if p.poll() is not None
                    ]
                    time.sleep(0.1)
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return results


def _decide_code(path: Path, validation: dict, run_id: str) -> str:
    return (
        "import json; from driftline.retraining.lifecycle import decide_promotion; "
        f"print(json.dumps(decide_promotion({str(path)!r}, json.loads({json.dumps(validation, default=str)!r}), 'race', {run_id!r}, actor='retrain_model')))"
    )


def _rollback_cli(path: Path) -> str:
    return f"import sys; from driftline.cli import main; sys.exit(main(['rollback', '--config', {str(path)!r}, '--reason', 'race']))"


def test_two_concurrent_decisions_promote_once(scored_project):
    path = new_schema(scored_project)
    weak = register_weak_champion(path)
    schema = load_config(path).db_schema
    other = config_variant(path, schema, f"{schema}_other", num_leaves="7")
    validations = []
    for config_path in (path, other):
        candidate = train_candidate(str(config_path), "race", None, WINDOW_END, ALL_LABELS)
        validations.append(validate_candidate(str(config_path), candidate))
    assert all(v["passed"] and v["champion_version"] == weak for v in validations)
    first, second = (v["version"] for v in validations)

    results = run_in_order(
        schema, [_decide_code(path, validations[0], "run_a"), _decide_code(path, validations[1], "run_b")]
    )
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    decisions = [json.loads(r.stdout.strip().splitlines()[-1]) for r in results]
    assert [d["decision"] for d in decisions] == ["promoted", "rejected"]
    assert f"champion changed from v{weak} to v{first} during validation" in decisions[1]["reason"]
    assert champion(path) == first
    events = fetch(path, "SELECT action, from_version, to_version FROM {s}.promotion_events ORDER BY event_id")
    assert events[1:] == [("promote", weak, first), ("reject", first, second)]


def test_two_concurrent_rollbacks_roll_back_once(scored_project):
    path = new_schema(scored_project)
    weak = register_weak_champion(path)
    _, _, decision = retrain(path)
    promoted = decision["champion_version"]
    schema = load_config(path).db_schema

    results = run_in_order(schema, [_rollback_cli(path), _rollback_cli(path)])
    assert results[0].returncode == 0, results[0].stderr[-2000:]
    assert results[1].returncode == 1 and "rollback not applied" in results[1].stderr
    assert f"the champion is v{weak}, not v{promoted}" in results[1].stderr and "nothing changed" in results[1].stderr
    assert champion(path) == weak
    assert fetch(path, "SELECT from_version, to_version FROM {s}.promotion_events WHERE action = 'rollback'") == [
        (promoted, weak)
    ]

    # Started after the first one finished, a rollback to "previous" would undo it: refused as well.
    from driftline.cli import main

    assert main(["rollback", "--config", str(path), "--reason", "again"]) == 1
    assert champion(path) == weak
    # Deliberately naming the version still works.
    assert main(["rollback", "--config", str(path), "--to", str(promoted), "--reason", "back again"]) == 0
    assert champion(path) == promoted


def champion_previous_and_a_validated_candidate(project) -> tuple[Path, int, int, dict]:
    """A schema with champion and previous, and a candidate validated against that champion:
    (config, previous, champion, validation marked passed: whatever the figures, the race is the point)."""
    path = new_schema(project)
    weak = register_weak_champion(path)
    _, _, decision = retrain(path)
    current = decision["champion_version"]
    schema = load_config(path).db_schema
    stronger = config_variant(path, schema, f"{schema}_stronger", num_boost_round="120")
    candidate = train_candidate(str(stronger), "race", None, WINDOW_END, ALL_LABELS)
    validation = validate_candidate(str(stronger), candidate)
    assert validation["champion_version"] == current and candidate["version"] not in (weak, current)
    return path, weak, current, {**validation, "passed": True, "failures": []}


def test_rollback_during_validation_turns_the_promotion_into_a_reject(scored_project):
    path, weak, current, validation = champion_previous_and_a_validated_candidate(scored_project)
    candidate = {"version": validation["version"]}
    schema = load_config(path).db_schema

    results = run_in_order(schema, [_rollback_cli(path), _decide_code(path, validation, "run_c")])
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    decision = json.loads(results[1].stdout.strip().splitlines()[-1])
    assert decision["decision"] == "rejected" and champion(path) == weak
    assert f"champion changed from v{current} to v{weak} during validation" in decision["reason"]
    ((status,),) = fetch(path, "SELECT status FROM {s}.model_versions WHERE version = %s", (candidate["version"],))
    assert status == "rejected"


def test_promotion_before_a_rollback_makes_the_rollback_a_no_op(scored_project):
    path, _, current, validation = champion_previous_and_a_validated_candidate(scored_project)
    candidate = {"version": validation["version"]}
    schema = load_config(path).db_schema

    results = run_in_order(schema, [_decide_code(path, validation, "run_d"), _rollback_cli(path)])
    assert (
        results[0].returncode == 0 and json.loads(results[0].stdout.strip().splitlines()[-1])["decision"] == "promoted"
    )
    assert (
        results[1].returncode == 1 and f"the champion is v{candidate['version']}, not v{current}" in results[1].stderr
    )
    assert champion(path) == candidate["version"]


# -- integrity of what scoring reads ------------------------------------------------------------------------


def test_tampered_manifest_falls_back_and_alerts_like_a_tampered_artifact(project):
    from driftline.batch import score_interval

    path = variant(project)
    add_second_champion(path)
    manifest_file = artifact(path, 2).parent / registry.MANIFEST_FILE
    manifest = json.loads(manifest_file.read_text())
    name, values = next(iter(manifest["categories"].items()))
    manifest["categories"][name] = values[::-1]  # reordered codes; the sha256 field untouched
    manifest_file.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    with db.connect(db_url()) as conn:
        with pytest.raises(registry.ModelLoadError, match="scoring hash mismatch"):
            registry.load_model(conn, load_config(path).db_schema, 2)
    write_text(Path(load_config(path).input_location(*LATER)), frame_csv(clean_rows(LATER[0], rows=600)))

    summary = score_interval(str(path), *LATER, run_id="manifest")

    assert (summary["model_version"], summary["requested_version"], summary["fallback"]) == (1, 2, True)
    assert "scoring hash mismatch" in summary["fallback_reason"]
    [(message, numbers, severity)] = alerts(path, "fallback")
    assert severity == "warning" and numbers == {"requested_version": 2, "used_version": 1} and "v2" in message


# -- artifacts appear only with their row ----------------------------------------------------------------------


def test_killed_between_artifact_write_and_commit_leaves_no_orphan(tmp_path, database_url):
    schema = f"kill_{os.getpid()}_{int(time.time())}"
    with db.connect(database_url, autocommit=True) as conn:
        db.ensure_schema(conn, schema)
    registry_dir = tmp_path / "models"
    code = (
        "import os, signal; from driftline import db; from driftline.registry import versions as registry\n"
        "original = registry.write_artifact\n"
        "def write_then_die(*args, **kwargs):\n"
        "    original(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)  # after the files, before the row commits\n"
        "registry.write_artifact = write_then_die\n"
        f"with db.connect({database_url!r}, autocommit=True) as conn:\n"
        f"    registry.register_candidate(conn, {schema!r}, __import__('pathlib').Path({str(registry_dir)!r}), 'tree\\nkilled\\n', {{'metrics': {{}}}})\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert any(registry_dir.iterdir())  # the write happened

    with db.connect(database_url, autocommit=True) as conn:
        version, created = registry.register_candidate(conn, schema, registry_dir, "tree\nsurvivor\n", {"metrics": {}})
        (uri,) = conn.execute(
            sql.SQL("SELECT artifact_uri FROM {} WHERE version = %s").format(db.table(schema, "model_versions")),
            (version,),
        ).fetchone()
    assert (version, created) == (1, True)
    claims = [json.loads(f.read_text())["version"] for f in registry_dir.glob("*/manifest.json")]
    assert claims == [1]  # one folder claims v1: the registered one
    folder = registry.artifact_path(uri).parent
    assert [p.name for p in registry_dir.iterdir()] == [folder.name]
    assert (folder / registry.MODEL_FILE).read_bytes() == b"tree\nsurvivor\n"


# -- data-anchored windows and the CLI ------------------------------------------------------------------------


def test_historical_deployment_from_the_cli_without_window_flags(tmp_path, database_url, monkeypatch, capsys):
    """Data from 2024: drift, retraining and realized performance run from the CLI with no dates but
    the intervals', on the same functions and tables as the DAGs."""
    from driftline.cli import main
    from driftline.devtools.demo_data import DemoPlan, write_demo_data

    monkeypatch.setenv("DRIFTLINE_DB_URL", database_url)
    monkeypatch.setenv("DRIFTLINE_CACHE_DIR", str(tmp_path / "cache"))
    path = make_project(
        tmp_path / "project", f"hist_{os.getpid()}_{int(time.time())}", chunk_rows="1000", num_boost_round="60"
    )
    plan = DemoPlan(
        history_start=datetime(2024, 3, 1, tzinfo=timezone.utc),
        history_days=10,
        history_rows_per_day=1_500,
        first_interval=datetime(2024, 4, 1, tzinfo=timezone.utc),
        intervals=2,
        rows_per_interval=3_000,
    )
    write_demo_data(load_config(path), plan)  # replaces the history and labels with 2024 data
    config = str(path)
    assert main(["train", "--config", config]) == 0
    capsys.readouterr()
    assert main(["models", "--config", config]) == 0
    assert "(empty) no interval has been published yet" in capsys.readouterr().out

    for start, end in plan.interval_bounds():
        assert main(["score", "--config", config, "--start", start.isoformat(), "--end", end.isoformat()]) == 0
    capsys.readouterr()
    assert main(["models", "--config", config]) == 0
    # `driftline score` runs score_batch's steps, update_realized_performance included (as the DAG does).
    assert "realized performance has not been computed" not in capsys.readouterr().out

    for start, end in plan.interval_bounds():
        assert (
            main(
                ["monitor", "--config", config, "--start", start.isoformat(), "--end", end.isoformat(), "--no-retrain"]
            )
            == 0
        )
    assert len(fetch(path, "SELECT 1 FROM {s}.drift_summary WHERE reason IS NOT NULL")) == 2  # monitor_drift's tables
    capsys.readouterr()

    assert main(["retrain", "--config", config, "--labels-as-of", "2024-04-10"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert '"train_candidate"' in out and '"decide_promotion"' in out
    ((window, run_id),) = fetch(
        path,
        "SELECT v.manifest->'retraining'->'window', e.run_id FROM {s}.model_versions v "
        "JOIN {s}.model_evaluations e ON e.candidate_version = v.version",
    )
    # The window ends at the newest labelled event (the second interval's end), not at today.
    assert (window["end"], window["end_from"]) == (
        plan.interval_bounds()[-1][1].isoformat(),
        "the newest labelled event",
    )
    assert run_id.startswith("cli__")
    realized = fetch(path, "SELECT rows_labelled FROM {s}.realized_performance ORDER BY interval_start")
    assert len(realized) == 2 and all(labelled > 0 for (labelled,) in realized)

    # Without any date at all (labels as of now): the same anchors.
    assert main(["realized", "--config", config]) == 0
    assert len(fetch(path, "SELECT 1 FROM {s}.realized_performance WHERE rows_labelled > 0")) == 2
    capsys.readouterr()
    assert main(["models", "--config", config]) == 0
    shown = capsys.readouterr().out
    assert "own holdout auc" in shown and "shared holdout auc" in shown and "(empty)" not in shown


def test_version_registered_before_the_scoring_hash_is_checked_against_its_row(project):
    """A row without scoring_sha256 (registered by an older driftline): the registry row's manifest is the reference."""
    path = variant(project)
    schema = load_config(path).db_schema
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE {} SET scoring_sha256 = NULL").format(db.table(schema, "model_versions")))
    with db.connect(db_url()) as conn:
        assert registry.load_model(conn, schema, 1).version == 1  # untouched: loads
    manifest_file = artifact(path, 1).parent / registry.MANIFEST_FILE
    manifest = json.loads(manifest_file.read_text())
    manifest["features"] = manifest["features"][::-1]
    manifest_file.write_text(json.dumps(manifest))
    with db.connect(db_url()) as conn:
        with pytest.raises(registry.ModelLoadError, match="scoring hash mismatch"):
            registry.load_model(conn, schema, 1)
