"""retrain_model's lifecycle: train a candidate on the labelled window, validate it against the
champion on the fair shared holdout, decide its promotion, roll back, prune; and `retrain`, the same
steps in one process.

The candidate is registered before it is judged, but the champion alias only moves when every
guardrail passes; a losing candidate is kept as `rejected` with its reasons. Each evaluation is its
own row in model_evaluations; the promotion is a compare-and-swap against the champion it was
validated with.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db, registry
from driftline.config import DatasetConfig, load_config
from driftline.intervals import utc
from driftline.labelled import data_checksum, holdout_split, labelled_rows
from driftline.registry.mlflow_mirror import move_alias
from driftline.retraining.errors import RetrainingError
from driftline.retraining.guardrails import guardrail_failures, segment_metrics, verdict_text
from driftline.retraining.recipe import train_like_champion
from driftline.retraining.windows import (
    connect,
    fair_holdout,
    labelled_window,
    newest_labelled_event,
    resolve_window,
    trained_until,
    trigger_interval_end,
)
from driftline.scoring.engine import predict
from driftline.scoring.features import FeatureMismatch
from driftline.training import evaluate

log = logging.getLogger(__name__)


def train_candidate(
    config_path: str,
    reason: str,
    window_start: datetime | str | None = None,
    window_end: datetime | str | None = None,
    labels_as_of: datetime | str | None = None,
    trigger_interval: Any = None,
) -> dict:
    """Train on the window's labelled rows and register the result as a candidate (champion untouched)."""
    config = load_config(config_path)
    as_of = utc(labels_as_of) or datetime.now(timezone.utc)
    with connect(config) as conn:
        end = utc(window_end) or trigger_interval_end(trigger_interval)
        anchor = "given" if window_end else "the trigger interval's end" if end else "the newest labelled event"
        if end is None:
            end = newest_labelled_event(conn, config, as_of)
            if end is None:
                raise RetrainingError(
                    f"no labelled rows: {config.resolve_location(config.history_uri)} is empty or missing and no scored "
                    f"interval has a label observed by {as_of:%Y-%m-%d %H:%M}; pass --window-end or wait for labels"
                )
        start, end = resolve_window(config, window_start, end)
        rows = labelled_window(conn, config, start, end, as_of)
        if len(rows) < 100:
            raise RetrainingError(
                f"only {len(rows)} labelled rows between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} "
                f"(window end: {anchor}; labels observed by {as_of:%Y-%m-%d %H:%M}); widen the training window "
                "or wait for labels"
            )
        trained = train_like_champion(conn, config, rows)  # the champion's recipe (imported models keep theirs)
        manifest = {
            **trained.manifest,
            "retraining": {
                "reason": reason,
                "window": {"start": start.isoformat(), "end": end.isoformat(), "end_from": anchor},
                "labels_as_of": as_of.isoformat(),
            },
            # Which rows it saw: validation's fair holdout starts after training_window.end.
            "row_selection": {
                "source": "history file and scored intervals, labels joined by entity key",
                "event_time_from": start.isoformat(),
                "event_time_before": end.isoformat(),
                "labels_observed_by": as_of.isoformat(),
                "split": trained.manifest["split"]["description"],
            },
        }
        version, created = registry.register_candidate(
            conn, config.db_schema, config.registry_dir, trained.model_text, manifest
        )
    summary = {
        "version": version,
        "new_version": created,
        "sha256": registry.sha256_bytes(registry.artifact_bytes(trained.model_text)),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "labels_as_of": as_of.isoformat(),
        "data_checksum": trained.manifest["data_checksum"],
        "rows": trained.manifest["rows"],
        "holdout_metrics": trained.manifest["metrics"],
    }
    log.info("candidate v%s (%s): %s", version, "new" if created else "already registered", json.dumps(summary))
    return summary


def _evaluate_version(conn, config: DatasetConfig, version: int, holdout: pd.DataFrame) -> tuple[dict, np.ndarray]:
    model = registry.load_model(conn, config.db_schema, version, pinned_pickles=config.handoff.pickle_sha256)
    scores = predict(model, holdout, config)
    if not np.all(np.isfinite(scores)):  # metrics are undefined; prediction_problems names the cause
        return {"version": version, "metrics": {}, "segments": {}}, scores
    labels = holdout[config.target].to_numpy()
    return {
        "version": version,
        "metrics": evaluate(config, labels, scores),
        "segments": segment_metrics(config, holdout, scores),
    }, scores


def _registered_manifest(conn, schema: str, version: int) -> dict:
    row = conn.execute(
        sql.SQL("SELECT manifest FROM {} WHERE version = %s").format(db.table(schema, "model_versions")), (version,)
    ).fetchone()
    if row is None:
        raise RetrainingError(f"model version {version} is not registered in schema {schema!r}")
    return row[0]


def validate_candidate(config_path: str, candidate: dict, run_id: str | None = None) -> dict:
    """Evaluate candidate and champion on the fair shared holdout, apply the guardrails, and append
    the verdict to model_evaluations (one row per evaluation; nothing earlier is overwritten)."""
    config = load_config(config_path)
    version = candidate["version"]
    schema = config.db_schema
    with connect(config) as conn:
        rows = labelled_window(
            conn, config, utc(candidate["window_start"]), utc(candidate["window_end"]), utc(candidate["labels_as_of"])
        )
        rows = labelled_rows(config, rows)
        if (
            data_checksum(rows[[config.entity_key, config.event_time, config.target, *config.feature_names]])
            != candidate["data_checksum"]
        ):
            raise RetrainingError(
                f"the labelled rows of the window changed since candidate v{version} was trained; rerun retrain_model"
            )
        training_rows, _, _ = holdout_split(config, rows)
        # The champion this evaluation is against: decide_promotion only promotes if it still is.
        champion_version = registry.champion_version(conn, schema)
        champion_manifest = None if champion_version is None else _registered_manifest(conn, schema, champion_version)
        candidate_until = trained_until(_registered_manifest(conn, schema, version))
        if candidate_until is None:  # every candidate is trained by training.train, which records it
            candidate_until = training_rows[config.event_time].max()
        holdout, bounds, no_fair_holdout = fair_holdout(
            config, rows, version, candidate_until, champion_version, trained_until(champion_manifest)
        )
        champion, champion_error = None, None
        if no_fair_holdout:
            failures = [no_fair_holdout]
            challenger = {"version": version, "metrics": {}, "segments": {}}
            if champion_version is not None:
                champion = {"version": champion_version, "metrics": {}, "segments": {}}
        else:
            challenger, scores = _evaluate_version(conn, config, version, holdout)
            if champion_version is not None:
                try:
                    champion, _ = _evaluate_version(conn, config, champion_version, holdout)
                except (registry.ModelLoadError, FeatureMismatch) as exc:  # e.g. trained on other [features]
                    champion_error = str(exc)
            failures = guardrail_failures(config, len(training_rows), challenger, champion, scores)
            if champion_error:
                failures.append(f"champion v{champion_version} could not be evaluated: {champion_error}")
        result = {
            "version": version,
            "champion_version": champion_version,
            "passed": not failures,
            "failures": failures,
            "metric": config.retraining.metric,
            "candidate": challenger,
            "champion": champion,
            "holdout": bounds,
            "training_rows": int(len(training_rows)),
        }
        result["evaluation_id"] = conn.execute(
            sql.SQL(
                "INSERT INTO {} (candidate_version, champion_version, holdout_start, holdout_end, holdout_rows, "
                "holdout_reason, passed, failures, result, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING evaluation_id"
            ).format(db.table(schema, "model_evaluations")),
            (
                version,
                champion_version,
                bounds["start"],
                bounds["end"],
                bounds["rows"],
                bounds["reason"],
                not failures,
                Jsonb(failures),
                Jsonb(result),
                run_id,
            ),
        ).fetchone()[0]
    log.info("validation of candidate v%s: %s", version, json.dumps(result))
    return result


def decide_promotion(
    config_path: str,
    validation: dict,
    trigger_reason: str,
    run_id: str | None = None,
    review: dict | None = None,
    *,
    actor: str,
) -> dict:
    """Promote the candidate if it passed (and, with promotion = "manual", a person approved it), else
    record it as rejected; returns the run's summary. The promotion is a compare-and-swap: if the
    champion is no longer validation["champion_version"], it is recorded as a reject saying so.

    review: the reviewer's answer when a person was asked (approval_request): approved (bool), reviewer
    (None: nobody answered in time), reviewer_id, comment, responded_at, timed_out; else None.
    actor: who promotion_events names for a decision no person took (the orchestrator's pipeline).
    """
    config = load_config(config_path)
    version = validation["version"]
    verdict = verdict_text(validation)
    timeout_hours = config.retraining.approval_timeout_hours
    decision_record = None if review is None else {"mode": "manual", **review, "timeout_hours": timeout_hours}
    auto = {"mode": config.retraining.promotion, "reviewer": None, "comment": None}
    # The champion it was validated against: the promotion is a compare-and-swap on it (registry.promote).
    expected = validation["champion_version"]
    evaluation_id = validation.get("evaluation_id")
    with connect(config) as conn:
        champion = registry.champion_version(conn, config.db_schema)
        outcome = None
        if version == champion:
            decision, reason = "unchanged", f"{verdict}: the candidate is the current champion (same artifact)"
        elif validation["passed"]:
            if config.retraining.promotion == "manual" and decision_record is None:
                raise RetrainingError(
                    f"retraining.promotion is manual but no approval was recorded for candidate v{version}; "
                    "rerun retrain_model (its approve_promotion task asks a reviewer)"
                )
            if decision_record is None:
                reason = f"{verdict}: all guardrails passed; trigger: {trigger_reason}"
                outcome = registry.promote(
                    conn,
                    config.db_schema,
                    version,
                    reason,
                    run_id,
                    actor,
                    {**auto, "reason": reason},
                    expected,
                    evaluation_id,
                )
            elif decision_record["approved"]:
                reviewer, comment = decision_record["reviewer"], decision_record["comment"]
                reason = f"{verdict}: all guardrails passed; approved by {reviewer}: {comment or '(no comment)'}; trigger: {trigger_reason}"
                outcome = registry.promote(
                    conn,
                    config.db_schema,
                    version,
                    reason,
                    run_id,
                    reviewer,
                    {**decision_record, "reason": reason},
                    expected,
                    evaluation_id,
                )
            else:
                if decision_record["timed_out"]:
                    why = f"no answer within {config.retraining.approval_timeout_hours:g} h (retraining.approval_timeout_hours): rejected"
                    who = actor
                else:
                    why = f"rejected by {decision_record['reviewer']}: {decision_record['comment'] or '(no comment)'}"
                    who = decision_record["reviewer"]
                reason = f"{verdict}: all guardrails passed; {why}; trigger: {trigger_reason}"
                outcome = registry.reject(
                    conn,
                    config.db_schema,
                    version,
                    reason,
                    run_id,
                    who,
                    {**decision_record, "reason": reason},
                    evaluation_id,
                )
        else:
            reason = f"{verdict}: " + "; ".join(validation["failures"]) + f"; trigger: {trigger_reason}"
            outcome = registry.reject(
                conn,
                config.db_schema,
                version,
                reason,
                run_id,
                actor,
                {**auto, "reason": reason},
                evaluation_id,
            )
        if outcome is not None:
            decision = "promoted" if outcome.action == "promote" else "rejected"
            reason = outcome.reason
        now_champion = registry.champion_version(conn, config.db_schema)
        # [handoff] mlflow_register_as: the MLflow alias follows the champion
        if decision == "promoted" and now_champion is not None:
            move_alias(config, _registered_manifest(conn, config.db_schema, now_champion)["sha256"])
    summary = {"decision": decision, "candidate_version": version, "champion_version": now_champion, "reason": reason}
    if evaluation_id is not None:
        summary["evaluation_id"] = evaluation_id
    if decision_record is not None:
        summary.update(
            reviewer=decision_record["reviewer"],
            comment=decision_record["comment"],
            timed_out=decision_record["timed_out"],
        )
    log.info("retrain_model decision: %s v%s -> champion v%s. %s", decision.upper(), version, now_champion, reason)
    return summary


def rollback_champion(
    config_path: str,
    reason: str,
    to_version: int | None = None,
    run_id: str | None = None,
    actor: str | None = None,
    expected_champion: int | None = None,
) -> dict:
    """Make an earlier champion (default: the previous one) champion again, audited with a reason.

    expected_champion: the champion to replace (default: the champion when this call starts). If
    another change committed first, nothing changes and registry.RollbackConflict says so.
    """
    config = load_config(config_path)
    with connect(config) as conn:
        if expected_champion is None:
            expected_champion = registry.champion_version(conn, config.db_schema)
        outcome = registry.rollback(
            conn, config.db_schema, reason, to_version, run_id, actor, expected_champion, config.handoff.pickle_sha256
        )
    summary = {
        "decision": "rolled_back",
        "from_version": outcome.from_version,
        "champion_version": outcome.champion,
        "event_id": outcome.event_id,
        "reason": reason,
    }
    log.info("rollback: champion v%s -> v%s (%s)", outcome.from_version, outcome.champion, reason)
    return summary


def apply_retention(config_path: str) -> dict:
    """Prune artifacts beyond retraining.keep_versions (never the champion or previous)."""
    config = load_config(config_path)
    with connect(config) as conn:
        pruned = registry.prune_versions(conn, config.db_schema, config.retraining.keep_versions)
    return {"pruned_versions": pruned, "keep_versions": config.retraining.keep_versions}
