"""retrain_model as plain functions: labelled window -> candidate -> champion/challenger check -> decision.

The candidate is registered before it is judged, but the champion alias only moves when every
guardrail passes; a losing candidate is kept as `rejected` with its reasons. Candidate and champion
are scored on a fair shared holdout: the window's labelled rows after both models' training ends,
which neither trained on (too few of them rejects the candidate). Each evaluation is its own row in
model_evaluations; the promotion is a compare-and-swap against the champion it was validated with.
Windows are anchored in the data (the trigger interval's end, the newest labelled event or label),
never the wall clock. Realized performance joins late labels to published predictions per interval
and is recomputed as labels arrive.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db, registry
from driftline.config import METRIC_DIRECTIONS, DatasetConfig, load_config
from driftline.errors import BadInput
from driftline.estimation import record_realized
from driftline.scoring.engine import predict
from driftline.scoring.safeguards import predicted_class
from driftline.training import TrainingError, data_checksum, evaluate, labelled_rows, read_table, target_values, time_split, train

log = logging.getLogger(__name__)


class RetrainingError(BadInput):
    """A retrain or rollback request that cannot proceed as asked; the message says why."""


# -- time and inputs ----------------------------------------------------------------------------


def _utc(moment: datetime | str | None) -> datetime | None:
    if moment is None or moment == "":
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError as exc:
            raise RetrainingError(f"not an ISO 8601 date or time: {moment!r}") from exc
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def trigger_interval_end(interval: Any) -> datetime | None:
    """The end of the interval a trigger (monitor_drift conf) names: {"end": ...}, [start, end] or an ISO string."""
    if isinstance(interval, dict):
        return _utc(interval.get("end") or interval.get("interval_end"))
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        return _utc(interval[1])
    if isinstance(interval, (str, datetime)):
        return _utc(interval)
    return None


def resolve_window(
    config: DatasetConfig, start: datetime | str | None, end: datetime | str | None, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """[start, end) of labelled rows to train on: given, else the retraining.training_days before end.

    train_candidate always passes an end anchored in the data (given, the trigger interval's end or
    newest_labelled_event), so a deployment on 2024 data trains on 2024 rows without flags; `now`
    is only the fallback of a caller that has none."""
    end = _utc(end) or now or datetime.now(timezone.utc)
    start = _utc(start) or end - timedelta(days=config.retraining.training_days)
    if start >= end:
        raise RetrainingError(f"training window start {start.isoformat()} is not before its end {end.isoformat()}")
    return start, end


def newest_labelled_event(conn, config: DatasetConfig, as_of: datetime) -> datetime | None:
    """Just after the newest event with a label observed by as_of: the history source's newest row, or
    the end of the newest published interval with a labelled prediction. None when there is no data."""
    newest = None
    try:
        history = read_table(config.resolve_location(config.history_uri))
    except TrainingError:
        history = None
    if history is not None and config.event_time in history.columns and len(history):
        times = pd.to_datetime(history[config.event_time], utc=True).dropna()
        if len(times):
            newest = times.max().to_pydatetime() + timedelta(microseconds=1)  # the window's end is exclusive
    labels = read_labels(config, as_of)
    if len(labels):
        keys = set(labels[config.entity_key])
        for start, end, _, _ in reversed(_published_intervals(conn, config.db_schema)):
            if newest is not None and end <= newest:
                break
            if keys & set(_interval_predictions(conn, config.db_schema, start, end)["entity_key"]):
                newest = end
                break
    return newest


def read_labels(config: DatasetConfig, as_of: datetime) -> pd.DataFrame:
    """Labels observed by as_of, the latest observation per entity key: (key, target, observed_at)."""
    columns = [config.entity_key, config.labels_target_column, "observed_at"]
    try:
        labels = read_table(config.resolve_location(config.labels_uri), config)
    except TrainingError:
        return pd.DataFrame(columns=[config.entity_key, config.target, "observed_at"])  # no label has arrived yet
    missing = [c for c in columns if c not in labels.columns]
    if missing:
        raise RetrainingError(
            f"labels file {config.resolve_location(config.labels_uri)} lacks column(s) {missing} "
            f"([source] labels in {config.path.name} needs the entity key, the label column ([source] label_column, "
            "default: the target's name) and observed_at)"
        )
    # The label under the target's name, as 0/1 (binary, [dataset] positive_label) or a number; a
    # blank or unparseable label counts as not arrived.
    labels = labels[columns].rename(columns={config.labels_target_column: config.target})
    labels[config.target] = target_values(config, labels[config.target])[0]
    labels[config.entity_key] = labels[config.entity_key].astype("string")
    labels["observed_at"] = pd.to_datetime(labels["observed_at"], utc=True)
    labels = labels[labels["observed_at"] <= pd.Timestamp(as_of)].dropna(subset=[config.target])
    labels = labels.sort_values("observed_at", kind="stable").drop_duplicates(config.entity_key, keep="last")
    return labels.reset_index(drop=True)


def _published_intervals(conn, schema: str, start: datetime | None = None, end: datetime | None = None) -> list[tuple]:
    """(interval_start, interval_end, model_version, run_id) of published intervals overlapping [start, end)."""
    return conn.execute(
        sql.SQL(
            "SELECT i.interval_start, i.interval_end, r.model_version, r.run_id FROM {} i "
            "JOIN {} r ON r.run_key = i.current_run_key "
            "WHERE (%s::timestamptz IS NULL OR i.interval_end > %s) AND (%s::timestamptz IS NULL OR i.interval_start < %s) "
            "ORDER BY i.interval_start"
        ).format(db.table(schema, "scored_intervals"), db.table(schema, "scoring_runs")),
        (start, start, end, end),
    ).fetchall()


def _interval_predictions(conn, schema: str, start: datetime, end: datetime) -> pd.DataFrame:
    rows = conn.execute(
        sql.SQL("SELECT entity_key, score FROM {} WHERE interval_start = %s AND interval_end = %s").format(
            db.table(schema, "predictions")
        ),
        (start, end),
    ).fetchall()
    return pd.DataFrame(rows, columns=["entity_key", "score"]).astype({"entity_key": "string", "score": "float64"})


def _scored_input_rows(conn, config: DatasetConfig, start: datetime, end: datetime) -> pd.DataFrame:
    """The interval's input rows that were scored (typed, without label): quarantined rows have no prediction."""
    from driftline.sources import read_interval

    scored = set(_interval_predictions(conn, config.db_schema, start, end)["entity_key"])
    frames = []
    for chunk in read_interval(config.input_location(start, end), config, start, end):
        frames.append(chunk.frame[chunk.frame[config.entity_key].isin(scored)])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=config.input_columns)


def labelled_window(conn, config: DatasetConfig, start: datetime, end: datetime, as_of: datetime) -> pd.DataFrame:
    """Labelled rows with event time in [start, end): the history source plus scored inputs whose labels arrived."""
    history = read_table(config.resolve_location(config.history_uri), config)
    history[config.event_time] = pd.to_datetime(history[config.event_time], utc=True)
    history[config.entity_key] = history[config.entity_key].astype("string")
    parts = [history]
    labels = read_labels(config, as_of)
    for interval_start, interval_end, _, _ in _published_intervals(conn, config.db_schema, start, end):
        rows = _scored_input_rows(conn, config, interval_start, interval_end)
        labelled = rows.merge(labels[[config.entity_key, config.target]], on=config.entity_key, how="inner")
        if len(labelled):
            parts.append(labelled)
    frame = pd.concat(parts, ignore_index=True)
    times = frame[config.event_time]
    frame = frame[(times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))]
    # A row both in history and in a scored input counts once (the scored copy carries the late label).
    frame = frame.drop_duplicates(config.entity_key, keep="last")
    return frame[[config.entity_key, config.event_time, config.target, *config.feature_names]].reset_index(drop=True)


def _connect(config: DatasetConfig, autocommit: bool = True):
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    conn = db.connect(url, autocommit=autocommit)
    try:
        db.ensure_schema(conn, config.db_schema)
    except BaseException:
        conn.close()
        raise
    return conn


# -- train ----------------------------------------------------------------------------------------


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
    as_of = _utc(labels_as_of) or datetime.now(timezone.utc)
    with _connect(config) as conn:
        end = _utc(window_end) or trigger_interval_end(trigger_interval)
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
        trained = train(config, rows)
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
                "split": f"oldest {1 - config.holdout_fraction:.0%} by event time trained on, newest {config.holdout_fraction:.0%} own holdout",
            },
        }
        version, created = registry.register_candidate(
            conn, config.db_schema, config.registry_dir, trained.model_text, manifest
        )
    summary = {
        "version": version,
        "new_version": created,
        "sha256": registry.sha256_bytes(trained.model_text.encode("utf-8")),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "labels_as_of": as_of.isoformat(),
        "data_checksum": trained.manifest["data_checksum"],
        "rows": trained.manifest["rows"],
        "holdout_metrics": trained.manifest["metrics"],
    }
    log.info("candidate v%s (%s): %s", version, "new" if created else "already registered", json.dumps(summary))
    return summary


# -- validate -------------------------------------------------------------------------------------


def better_by(metric: str, candidate: float, champion: float) -> float:
    """How much better the candidate is (positive) or worse (negative), whatever the metric's direction."""
    return candidate - champion if METRIC_DIRECTIONS[metric] == "higher" else champion - candidate


def prediction_problems(config: DatasetConfig, scores: np.ndarray) -> list[str]:
    """Sanity of the candidate's holdout predictions: finite, in range, not constant."""
    problems = []
    if not np.all(np.isfinite(scores)):
        problems.append(f"{int(np.sum(~np.isfinite(scores)))} holdout predictions are NaN or infinite")
    elif config.task == "binary" and (scores.min() < 0 or scores.max() > 1):
        problems.append(f"holdout predictions outside [0, 1]: min {scores.min():.4g}, max {scores.max():.4g}")
    if len(scores) and np.all(np.isfinite(scores)) and np.ptp(scores) == 0:
        problems.append(f"all holdout predictions are the same value {scores[0]:.4g}")
    return problems


def segment_metrics(config: DatasetConfig, holdout: pd.DataFrame, scores: np.ndarray) -> dict[str, float]:
    """Primary metric per value of retraining.segment, for segments with enough holdout rows."""
    policy = config.retraining
    if policy.segment is None:
        return {}
    result = {}
    labels = holdout[config.target].to_numpy()
    segments = holdout[policy.segment].astype("string").fillna("<missing>").to_numpy()
    for value in sorted(set(segments)):
        mask = segments == value
        if mask.sum() < policy.min_segment_rows:
            continue
        metrics = evaluate(config, labels[mask], scores[mask])
        if policy.metric in metrics:  # auc needs both classes in the segment
            result[str(value)] = metrics[policy.metric]
    return result


def guardrail_failures(
    config: DatasetConfig,
    training_rows: int,
    candidate: dict,
    champion: dict | None,
    candidate_scores: np.ndarray,
) -> list[str]:
    """Every reason not to promote; empty means the candidate wins and passes all guardrails.

    candidate / champion: {"version", "metrics", "segments"} evaluated on the same holdout.
    """
    policy = config.retraining
    metric = policy.metric
    failures = []
    if training_rows < policy.min_training_rows:
        failures.append(f"only {training_rows} training rows (retraining.min_training_rows = {policy.min_training_rows})")
    value = candidate["metrics"].get(metric)
    if value is None:
        failures.append(f"{metric} is undefined on the holdout (one class only, or non-finite predictions)")
        return failures + prediction_problems(config, candidate_scores)
    if policy.min_metric is not None and better_by(metric, value, policy.min_metric) < 0:
        failures.append(f"{metric} {value:.4f} does not reach retraining.min_metric {policy.min_metric}")
    failures.extend(prediction_problems(config, candidate_scores))
    if champion is None:
        return failures
    if candidate["version"] == champion["version"]:
        failures.append(f"candidate is the champion v{champion['version']} itself (same sha256: same data and seed)")
        return failures
    champion_value = champion["metrics"].get(metric)  # undefined when the champion's own scores are not finite
    if champion_value is not None and better_by(metric, value, champion_value) <= policy.min_improvement:
        failures.append(
            f"{metric} {value:.4f} does not beat champion v{champion['version']} {champion_value:.4f} "
            f"by more than retraining.min_improvement {policy.min_improvement}"
        )
    for other, theirs in champion["metrics"].items():
        ours = candidate["metrics"].get(other)
        if other != metric and ours is not None and better_by(other, ours, theirs) < -policy.max_regression:
            failures.append(
                f"{other} {ours:.4f} is worse than champion {theirs:.4f} by more than retraining.max_regression "
                f"{policy.max_regression}"
            )
    for segment, theirs in champion["segments"].items():
        ours = candidate["segments"].get(segment)
        if ours is not None and better_by(metric, ours, theirs) < -policy.max_regression:
            failures.append(
                f"segment {policy.segment}={segment}: {metric} {ours:.4f} is worse than champion {theirs:.4f} "
                f"by more than retraining.max_regression {policy.max_regression}"
            )
    return failures


def _evaluate_version(conn, config: DatasetConfig, version: int, holdout: pd.DataFrame) -> tuple[dict, np.ndarray]:
    model = registry.load_model(conn, config.db_schema, version)
    scores = predict(model.booster, holdout, config, model.manifest["categories"])
    if not np.all(np.isfinite(scores)):  # metrics are undefined; prediction_problems names the cause
        return {"version": version, "metrics": {}, "segments": {}}, scores
    labels = holdout[config.target].to_numpy()
    return {"version": version, "metrics": evaluate(config, labels, scores), "segments": segment_metrics(config, holdout, scores)}, scores


def _trained_until(manifest: dict | None) -> pd.Timestamp | None:
    """The newest event time a model trained on (its manifest's training_window.end), or None."""
    end = ((manifest or {}).get("training_window") or {}).get("end")
    return pd.Timestamp(end).tz_convert("UTC") if end else None


def fair_holdout(
    config: DatasetConfig,
    rows: pd.DataFrame,
    candidate_version: int,
    candidate_trained_until: pd.Timestamp,
    champion_version: int | None,
    champion_trained_until: pd.Timestamp | None,
) -> tuple[pd.DataFrame, dict, str | None]:
    """The labelled rows neither model trained on: event time after both training ends.

    rows: labelled_rows output of the candidate's window. Returns (holdout, bounds with the reason
    they were chosen, failure or None); the failure says why there is no fair comparison, and then
    nothing should be compared on seen rows.
    """
    times = rows[config.event_time]
    candidate_at = f"{candidate_trained_until:%Y-%m-%d %H:%M:%S}"
    if champion_version is not None and champion_trained_until is None:
        failure = (
            f"no fair holdout: champion v{champion_version}'s manifest records no training window, so the rows it "
            "trained on cannot be told apart"
        )
        return rows.iloc[:0], {"rows": 0, "start": None, "end": None, "after": None, "reason": failure}, failure
    if champion_version is None or champion_trained_until <= candidate_trained_until:
        cut, whose = candidate_trained_until, f"candidate v{candidate_version}'s training end"
        why = f"rows after {whose} {candidate_at}" + (
            " (no champion to compare with)"
            if champion_version is None
            else f"; champion v{champion_version} trained until {champion_trained_until:%Y-%m-%d %H:%M:%S}, earlier"
        )
    else:
        cut, whose = champion_trained_until, f"champion v{champion_version}'s training end"
        why = (
            f"rows after {whose} {champion_trained_until:%Y-%m-%d %H:%M:%S}, later than candidate "
            f"v{candidate_version}'s {candidate_at}"
        )
    holdout = rows[times > cut]
    bounds = {
        "rows": int(len(holdout)),
        "start": holdout[config.event_time].min().isoformat() if len(holdout) else None,
        "end": holdout[config.event_time].max().isoformat() if len(holdout) else None,
        "after": cut.isoformat(),
        "reason": why + ": neither model trained on them",
    }
    minimum = config.retraining.min_holdout_rows
    if len(holdout) < minimum:
        failure = (
            f"no fair holdout: {len(holdout)} rows after the {'champion' if whose.startswith('champion') else 'candidate'}'s "
            f"training end ({whose} {cut:%Y-%m-%d %H:%M:%S}; retraining.min_holdout_rows = {minimum}); "
            "not compared on rows a model trained on. Retrain with a later window end once labels arrive"
        )
        return holdout, bounds, failure
    return holdout, bounds, None


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
    with _connect(config) as conn:
        rows = labelled_window(
            conn, config, _utc(candidate["window_start"]), _utc(candidate["window_end"]), _utc(candidate["labels_as_of"])
        )
        rows = labelled_rows(config, rows)
        if data_checksum(rows[[config.entity_key, config.event_time, config.target, *config.feature_names]]) != candidate["data_checksum"]:
            raise RetrainingError(
                f"the labelled rows of the window changed since candidate v{version} was trained; rerun retrain_model"
            )
        training_rows, _ = time_split(config, rows)
        # The champion this evaluation is against: decide_promotion only promotes if it still is.
        champion_version = registry.champion_version(conn, schema)
        champion_manifest = None if champion_version is None else _registered_manifest(conn, schema, champion_version)
        candidate_until = _trained_until(_registered_manifest(conn, schema, version))
        if candidate_until is None:  # every candidate is trained by training.train, which records it
            candidate_until = training_rows[config.event_time].max()
        holdout, bounds, no_fair_holdout = fair_holdout(
            config, rows, version, candidate_until, champion_version, _trained_until(champion_manifest)
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
                except registry.ModelLoadError as exc:
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
            (version, champion_version, bounds["start"], bounds["end"], bounds["rows"], bounds["reason"],
             not failures, Jsonb(failures), Jsonb(result), run_id),
        ).fetchone()[0]
    log.info("validation of candidate v%s: %s", version, json.dumps(result))
    return result


# -- decide ---------------------------------------------------------------------------------------


def _verdict_text(validation: dict) -> str:
    metric = validation["metric"]
    candidate = validation["candidate"]
    text = f"candidate v{validation['version']} {metric} {candidate['metrics'].get(metric, float('nan')):.4f}"
    if validation["champion"]:
        champion = validation["champion"]
        text += f" vs champion v{champion['version']} {champion['metrics'].get(metric, float('nan')):.4f}"
    holdout = validation["holdout"]
    if not holdout["rows"]:
        return text + " (no fair holdout rows)"
    return text + f" on shared holdout {holdout['start'][:16]}..{holdout['end'][:16]} ({holdout['rows']} rows)"


APPROVE, REJECT = "Approve", "Reject"  # the options of Airflow's ApprovalOperator


def _guardrail_lines(config: DatasetConfig, validation: dict) -> list[str]:
    """Each guardrail with its threshold and the candidate's figure, for the reviewer."""
    policy, metric = config.retraining, validation["metric"]
    candidate, champion = validation["candidate"]["metrics"], (validation["champion"] or {}).get("metrics", {})
    lines = [f"training rows {validation['training_rows']} >= retraining.min_training_rows {policy.min_training_rows}"]
    if policy.min_metric is not None:
        lines.append(f"{metric} {candidate[metric]:.4f} reaches retraining.min_metric {policy.min_metric}")
    lines.append("holdout predictions finite, in range and not constant")
    if champion:
        lines.append(f"{metric} beats the champion by more than retraining.min_improvement {policy.min_improvement}")
        lines.append(f"no other metric and no segment worse than the champion by more than retraining.max_regression {policy.max_regression}")
    return lines


def approval_request(config_path: str, validation: dict) -> dict | None:
    """With retraining.promotion = "manual", what the reviewer sees for a candidate that passed every
    guardrail: {"subject", "body"} (Markdown). None when nobody needs asking (auto mode, a failed
    guardrail, or the candidate already is the champion): decide_promotion then decides alone.

    Figures only (metrics, versions, row counts, holdout bounds): no rows, no entity keys.
    """
    config = load_config(config_path)
    if config.retraining.promotion != "manual" or not validation["passed"]:
        return None
    version, metric = validation["version"], validation["metric"]
    champion = validation["champion"]
    if champion and champion["version"] == version:
        return None
    holdout = validation["holdout"]
    rows = [f"| metric | candidate v{version} | " + (f"champion v{champion['version']} | candidate better by |" if champion else "")]
    rows.append("|---|---|" + ("---|---|" if champion else ""))
    for name, value in sorted(validation["candidate"]["metrics"].items()):
        line = f"| {name}{' (primary)' if name == metric else ''} | {value:.4f} |"
        if champion and name in champion["metrics"]:
            line += f" {champion['metrics'][name]:.4f} | {better_by(name, value, champion['metrics'][name]):+.4f} |"
        rows.append(line)
    segments = validation["candidate"].get("segments") or {}
    if segments and champion:
        rows.append(f"\n{metric} per {config.retraining.segment} (segments with >= {config.retraining.min_segment_rows} holdout rows):\n")
        rows.append("| segment | candidate | champion |")
        rows.append("|---|---|---|")
        rows.extend(
            f"| {name} | {value:.4f} | {champion['segments'].get(name, float('nan')):.4f} |" for name, value in sorted(segments.items())
        )
    body = "\n".join(
        [
            f"Candidate v{version} passed every guardrail. Promote it to champion"
            + (f" (v{champion['version']} becomes previous)?" if champion else "?"),
            "",
            f"Shared holdout: {holdout['rows']} rows, {holdout['start'][:16]} .. {holdout['end'][:16]}, chosen as "
            f"{holdout['reason']}; {validation['training_rows']} training rows. Both models are scored on it.",
            "",
            *rows,
            "",
            "Guardrails (all passed):",
            "",
            *(f"- {line}" for line in _guardrail_lines(config, validation)),
            "",
            f"**Approve** promotes v{version}; **Reject** keeps the champion. Your name and comment are recorded in "
            f"`{config.db_schema}.promotion_events` and in the model's manifest. No answer within "
            f"{config.retraining.approval_timeout_hours:g} h rejects the candidate.",
        ]
    )
    subject = f"{config.name}: promote candidate v{version}" + (f" over champion v{champion['version']}?" if champion else "?")
    return {"subject": subject, "body": body}


def _review(review: dict | None, timeout_hours: float) -> dict | None:
    """The ApprovalOperator's result (XCom) as a decision record: who, what, their comment, when."""
    if review is None:
        return None
    user = review.get("responded_by_user")
    responded_at = review.get("responded_at")
    comment = ((review.get("params_input") or {}).get("comment") or "").strip()
    return {
        "mode": "manual",
        "approved": list(review.get("chosen_options") or []) == [APPROVE],
        # No responder: the scheduler applied the default (Reject) when the response timeout passed.
        "timed_out": user is None,
        "reviewer": user["name"] if user else None,
        "reviewer_id": user["id"] if user else None,
        "comment": comment or None,
        "responded_at": responded_at.isoformat() if isinstance(responded_at, datetime) else responded_at,
        "timeout_hours": timeout_hours,
    }


def decide_promotion(
    config_path: str, validation: dict, trigger_reason: str, run_id: str | None = None, review: dict | None = None
) -> dict:
    """Promote the candidate if it passed (and, with promotion = "manual", a person approved it), else
    record it as rejected; returns the run's summary. The promotion is a compare-and-swap: if the
    champion is no longer validation["champion_version"], it is recorded as a reject saying so.

    review: the ApprovalOperator's result when a person was asked (approval_request), else None.
    """
    config = load_config(config_path)
    version = validation["version"]
    verdict = _verdict_text(validation)
    decision_record = _review(review, config.retraining.approval_timeout_hours)
    auto = {"mode": config.retraining.promotion, "reviewer": None, "comment": None}
    # The champion it was validated against: the promotion is a compare-and-swap on it (registry.promote).
    expected = validation["champion_version"]
    evaluation_id = validation.get("evaluation_id")
    with _connect(config) as conn:
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
                    conn, config.db_schema, version, reason, run_id, "retrain_model", {**auto, "reason": reason},
                    expected, evaluation_id,
                )
            elif decision_record["approved"]:
                reviewer, comment = decision_record["reviewer"], decision_record["comment"]
                reason = f"{verdict}: all guardrails passed; approved by {reviewer}: {comment or '(no comment)'}; trigger: {trigger_reason}"
                outcome = registry.promote(
                    conn, config.db_schema, version, reason, run_id, reviewer, {**decision_record, "reason": reason},
                    expected, evaluation_id,
                )
            else:
                if decision_record["timed_out"]:
                    why = f"no answer within {config.retraining.approval_timeout_hours:g} h (retraining.approval_timeout_hours): rejected"
                    actor = "retrain_model"
                else:
                    why = f"rejected by {decision_record['reviewer']}: {decision_record['comment'] or '(no comment)'}"
                    actor = decision_record["reviewer"]
                reason = f"{verdict}: all guardrails passed; {why}; trigger: {trigger_reason}"
                outcome = registry.reject(
                    conn, config.db_schema, version, reason, run_id, actor, {**decision_record, "reason": reason}, evaluation_id
                )
        else:
            reason = f"{verdict}: " + "; ".join(validation["failures"]) + f"; trigger: {trigger_reason}"
            outcome = registry.reject(
                conn, config.db_schema, version, reason, run_id, "retrain_model", {**auto, "reason": reason}, evaluation_id
            )
        if outcome is not None:
            decision = "promoted" if outcome.action == "promote" else "rejected"
            reason = outcome.reason
        now_champion = registry.champion_version(conn, config.db_schema)
    summary = {"decision": decision, "candidate_version": version, "champion_version": now_champion, "reason": reason}
    if evaluation_id is not None:
        summary["evaluation_id"] = evaluation_id
    if decision_record is not None:
        summary.update(reviewer=decision_record["reviewer"], comment=decision_record["comment"], timed_out=decision_record["timed_out"])
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
    with _connect(config) as conn:
        if expected_champion is None:
            expected_champion = registry.champion_version(conn, config.db_schema)
        outcome = registry.rollback(conn, config.db_schema, reason, to_version, run_id, actor, expected_champion)
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
    with _connect(config) as conn:
        pruned = registry.prune_versions(conn, config.db_schema, config.retraining.keep_versions)
    return {"pruned_versions": pruned, "keep_versions": config.retraining.keep_versions}


# -- without Airflow --------------------------------------------------------------------------------


def retrain(
    config_path: str,
    reason: str,
    window_start: datetime | str | None = None,
    window_end: datetime | str | None = None,
    labels_as_of: datetime | str | None = None,
    trigger_interval: Any = None,
    run_id: str | None = None,
    report=print,
) -> dict:
    """retrain_model's retrain branch in one process (`driftline retrain`): the same functions in the
    same order, writing the same tables; report(step, result) sees each step's result (its XCom).

    With retraining.promotion = "manual" a candidate that passed stops before the decision: the
    approval is Airflow's (approve_promotion); the candidate and its evaluation stay recorded.
    """
    run_id = run_id or f"cli__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"
    candidate = train_candidate(config_path, reason, window_start, window_end, labels_as_of, trigger_interval)
    report("train_candidate", candidate)
    validation = validate_candidate(config_path, candidate, run_id)
    report("validate_candidate", validation)
    request = approval_request(config_path, validation)
    if request is not None:
        raise RetrainingError(
            f"retraining.promotion is manual: candidate v{validation['version']} passed every guardrail "
            f"(evaluation {validation['evaluation_id']}) and needs a reviewer's approval, which only retrain_model's "
            "approve_promotion task in Airflow records; trigger retrain_model there"
        )
    decision = decide_promotion(config_path, validation, reason, run_id)
    report("decide_promotion", decision)
    report("apply_retention", apply_retention(config_path))
    realized = update_realized_performance(config_path, labels_as_of)
    report("update_realized_performance", realized)
    return decision


# -- realized performance -------------------------------------------------------------------------


def update_realized_performance(config_path: str, labels_as_of: datetime | str | None = None) -> list[dict]:
    """Join labels observed by labels_as_of to each recent published interval and replace its realized_performance row.

    Recent: ending within retraining.realized_lookback_days before the newest label observed by
    labels_as_of (the data's clock, not the wall clock: intervals in 2024 get rows without flags), or
    before labels_as_of when no label has arrived; older intervals keep their last row.
    """
    config = load_config(config_path)
    as_of = _utc(labels_as_of) or datetime.now(timezone.utc)
    labels = read_labels(config, as_of)
    since = realized_since(config, labels, as_of)
    results = []
    with _connect(config, autocommit=False) as conn:
        for start, end, version, run_id in _published_intervals(conn, config.db_schema, since, None):
            predictions = _interval_predictions(conn, config.db_schema, start, end)
            joined = predictions.rename(columns={"entity_key": config.entity_key}).merge(
                labels, on=config.entity_key, how="inner"
            )
            metrics = {}
            if len(joined):
                metrics = evaluate(config, joined[config.target].to_numpy(), joined["score"].to_numpy())
            row = {
                "interval_start": start.isoformat(),
                "interval_end": end.isoformat(),
                "model_version": version,
                "rows_predicted": int(len(predictions)),
                "rows_labelled": int(len(joined)),
                "metrics": metrics,
            }
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (interval_start, interval_end, model_version, run_id, rows_predicted, "
                    "rows_labelled, metrics, labels_as_of) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (interval_start, interval_end) DO UPDATE SET model_version = EXCLUDED.model_version, "
                    "run_id = EXCLUDED.run_id, rows_predicted = EXCLUDED.rows_predicted, "
                    "rows_labelled = EXCLUDED.rows_labelled, metrics = EXCLUDED.metrics, "
                    "labels_as_of = EXCLUDED.labels_as_of, computed_at = now()"
                ).format(db.table(config.db_schema, "realized_performance")),
                (start, end, version, run_id, len(predictions), len(joined), Jsonb(metrics), as_of),
            )
            results.append(row)
            # Labels have arrived: the interval's estimated performance gets its realized values.
            record_realized(conn, config, start, end, as_of, labels)
        conn.commit()
    log.info("realized performance (labels as of %s): %s", as_of.isoformat(), json.dumps(results))
    return results


def realized_since(config: DatasetConfig, labels: pd.DataFrame, as_of: datetime) -> datetime:
    """Where realized performance's lookback starts: realized_lookback_days before the newest label."""
    anchor = labels["observed_at"].max().to_pydatetime() if len(labels) else as_of
    return anchor - timedelta(days=config.retraining.realized_lookback_days)


# -- shadow scoring -------------------------------------------------------------------------------


def score_shadow(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """With retraining.shadow on, score the interval's scored rows with the latest unpromoted candidate."""
    config = load_config(config_path)
    if not config.retraining.shadow:
        return {"skipped": "shadow scoring is off (retraining.shadow = false)"}
    start, end = _utc(interval_start), _utc(interval_end)
    with _connect(config, autocommit=False) as conn:
        version = registry.latest_unpromoted_version(conn, config.db_schema)
        if version is None:
            return {"skipped": "no candidate or rejected version newer than the champion"}
        model = registry.load_model(conn, config.db_schema, version)
        rows = _scored_input_rows(conn, config, start, end)
        scores = predict(model.booster, rows, config, model.manifest["categories"])
        classes = predicted_class(scores, config)
        frame = pd.DataFrame(
            {
                "interval_start": start.isoformat(),
                "interval_end": end.isoformat(),
                "model_version": version,
                "entity_key": rows[config.entity_key].astype("string"),
                "score": scores,
                "predicted_class": classes if classes is not None else pd.array([None] * len(rows), dtype="Int16"),
                "run_id": run_id,
            }
        )
        shadow = db.table(config.db_schema, "shadow_predictions")
        # Same contract as predictions: a rerun replaces the interval's shadow rows in one transaction.
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE interval_start = %s AND interval_end = %s").format(shadow), (start, end)
        )
        import pyarrow as pa

        db.copy_csv(conn, shadow, list(frame.columns), db.arrow_to_csv_bytes(pa.Table.from_pandas(frame, preserve_index=False)))
        conn.commit()
    return {"shadow_version": version, "rows": int(len(frame))}


# -- demo ---------------------------------------------------------------------------------------


def run_demo_lifecycle(config_path: str, plan, since: datetime | None = None) -> str:
    """The demo's retrain step: retrain_model through dag.test(), then versions, history and realized performance.

    retrain_model runs when a drift decision taken in this demo run (decided at or after `since`)
    triggered it, with monitor_drift's conf; or, to show the lifecycle once, when this registry has
    never evaluated a candidate (reason "demo"). Otherwise nothing triggered it and it does not run:
    a second `driftline demo` adds no version and no verdict. The demo's clock is simulated: the
    training window ends with the last interval and labels are read as observed three days later,
    when all of them have arrived.
    """
    from driftline.cli import load_dag_file

    config = load_config(config_path)
    last_end = plan.interval_bounds()[-1][1]
    conf = {"config": config_path, "reason": "demo", "training_window_end": last_end.isoformat()}
    with _connect(config) as conn:
        breach = _latest_drift_trigger(conn, config.db_schema, since)
        evaluated = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(db.table(config.db_schema, "model_evaluations"))
        ).fetchone()[0]
    if breach is None and evaluated:
        print(
            "retrain_model: not run: no drift decision of this run triggered a retrain, and this registry already "
            f"holds {evaluated} evaluation(s). Retrain by hand with `driftline retrain --config {config_path}`."
        )
        state = "success (nothing to retrain)"
    else:
        if breach:
            reason, start, end = breach
            conf = {**conf, "reason": f"monitor_drift: {reason}", "interval": {"start": start.isoformat(), "end": end.isoformat()}}
            del conf["training_window_end"]  # the window ends with the breaching interval
        conf["labels_as_of"] = (last_end + timedelta(days=3)).isoformat()
        dag_run = load_dag_file(config.root / "dags" / "retrain_model.py").test(run_conf=conf)
        state = str(dag_run.state)
        print(f"retrain_model ({conf['reason']}): {state}")
    print_lifecycle(config)
    print(
        f"\nhistory: SELECT created_at, action, from_version, to_version, reason FROM {config.db_schema}.promotion_events ORDER BY event_id;\n"
        f"evaluations: SELECT evaluated_at, candidate_version, champion_version, holdout_start, holdout_rows, passed "
        f"FROM {config.db_schema}.model_evaluations ORDER BY evaluation_id;\n"
        f"rollback: driftline rollback --config {config_path} --reason '...'   (then `driftline models`)"
    )
    return state


def _latest_drift_trigger(conn, schema: str, since: datetime | None = None) -> tuple[str, datetime, datetime] | None:
    """monitor_drift's latest decision to retrain (reason, interval) taken at or after since, if any."""
    exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.drift_decisions",)).fetchone()[0]
    if exists is None:
        return None
    return conn.execute(
        sql.SQL(
            "SELECT reason, interval_start, interval_end FROM {} WHERE trigger "
            "AND (%s::timestamptz IS NULL OR decided_at >= %s) ORDER BY interval_end DESC, decision_id DESC LIMIT 1"
        ).format(db.table(schema, "drift_decisions")),
        (since, since),
    ).fetchone()


def shared_holdout_at_promotion(conn, schema: str) -> dict[int, dict]:
    """{version: the evaluation its latest promotion was decided on (shared holdout metrics and bounds)}."""
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT ON (e.to_version) e.to_version, m.evaluation_id, m.holdout_start, m.holdout_end, "
            "m.holdout_rows, m.result FROM {} e JOIN {} m ON m.evaluation_id = e.evaluation_id "
            "WHERE e.action = 'promote' ORDER BY e.to_version, e.event_id DESC"
        ).format(db.table(schema, "promotion_events"), db.table(schema, "model_evaluations"))
    ).fetchall()
    return {
        version: {
            "evaluation_id": evaluation_id,
            "start": start,
            "end": end,
            "rows": count,
            "metrics": (result.get("candidate") or {}).get("metrics", {}),
            "champion_version": result.get("champion_version"),
            "champion_metrics": (result.get("champion") or {}).get("metrics", {}),
        }
        for version, evaluation_id, start, end, count, result in rows
    }


def realized_empty_reason(conn, config: DatasetConfig) -> str:
    """Why realized_performance has no row: nothing scored, or not computed yet (and how to)."""
    published = _published_intervals(conn, config.db_schema)
    if not published:
        return "no interval has been published yet (`driftline score` or score_batch); realized performance needs predictions"
    labels = read_labels(config, datetime.now(timezone.utc))
    if not len(labels):
        return (
            f"{len(published)} published interval(s), but no label has arrived in "
            f"{config.resolve_location(config.labels_uri)}; labels are joined to predictions by {config.entity_key}"
        )
    since = realized_since(config, labels, datetime.now(timezone.utc))
    if published[-1][1] <= since:
        return (
            f"{len(published)} published interval(s), all ending before {since:%Y-%m-%d %H:%M} "
            f"(retraining.realized_lookback_days = {config.retraining.realized_lookback_days} before the newest label)"
        )
    return (
        f"{len(published)} published interval(s) and labels up to {labels['observed_at'].max():%Y-%m-%d %H:%M}, but "
        "realized performance has not been computed (score_batch and retrain_model do it, `driftline score` does "
        f"not); run `driftline realized --config {config.path}`"
    )


def print_lifecycle(config: DatasetConfig) -> None:
    """Versions, champion, promotion history, evaluations and realized performance per interval, as tables."""
    schema = config.db_schema
    with _connect(config) as conn:
        versions = registry.list_versions(conn, schema)
        history = registry.promotion_history(conn, schema)
        shared = shared_holdout_at_promotion(conn, schema)
        evaluations = conn.execute(
            sql.SQL(
                "SELECT evaluation_id, evaluated_at, candidate_version, champion_version, holdout_rows, holdout_start, "
                "passed, holdout_reason FROM {} ORDER BY evaluation_id DESC LIMIT 10"
            ).format(db.table(schema, "model_evaluations"))
        ).fetchall()
        realized = conn.execute(
            sql.SQL(
                "SELECT interval_start, model_version, rows_predicted, rows_labelled, metrics FROM {} "
                "ORDER BY interval_start"
            ).format(db.table(schema, "realized_performance"))
        ).fetchall()
        empty_reason = None if realized else realized_empty_reason(conn, config)
    metric = config.retraining.metric
    print(f"\n{'version':<9}{'status':<10}{'aliases':<20}{'own holdout ' + metric:>16}{'shared holdout ' + metric:>21}  created")
    for row in versions:
        own = row["metrics"].get(metric)
        at_promotion = shared.get(row["version"], {}).get("metrics", {}).get(metric)
        print(
            f"v{row['version']:<8}{row['status']:<10}{','.join(row['aliases']) or '-':<20}"
            f"{'-' if own is None else f'{own:.4f}':>16}{'-' if at_promotion is None else f'{at_promotion:.4f}':>21}"
            f"  {row['created_at']:%Y-%m-%d %H:%M:%S}{'  (pruned)' if row['pruned_at'] else ''}"
        )
    print(
        "  own holdout: the newest rows of the version's own training window (each version its own rows: not comparable).\n"
        "  shared holdout: at its promotion, candidate and the champion it replaced scored on the same rows, which\n"
        "  neither trained on (model_evaluations; '-' = promoted without one, e.g. `driftline train`)."
    )
    print("\npromotion history:")
    for event in history:
        source = "-" if event["from_version"] is None else f"v{event['from_version']}"
        print(f"  {event['created_at']:%Y-%m-%d %H:%M:%S}  {event['action']:<9}{source:>4} -> v{event['to_version']:<4} {event['reason']}")
    print("\nevaluations (newest first; each is kept, none overwritten):")
    if not evaluations:
        print("  none yet: `driftline retrain` (or retrain_model) evaluates a candidate against the champion")
    for evaluation_id, at, candidate, champion, rows, start, passed, why in evaluations:
        against = f"vs v{champion}" if champion is not None else "no champion"
        print(f"  #{evaluation_id} {at:%Y-%m-%d %H:%M:%S}  v{candidate} {against:<12} {'passed' if passed else 'failed':<7}"
              f"{rows:>7} rows  {why}")
    print(f"\n{'interval':<12}{'model':>6}{'predicted':>11}{'labelled':>10}  realized")
    if empty_reason:
        print(f"  (empty) {empty_reason}")
    for start, version, predicted, labelled, metrics in realized:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())) or "no labels yet"
        print(f"{start:%Y-%m-%d}  {'v' + str(version):>6}{predicted:>11}{labelled:>10}  {shown}")
