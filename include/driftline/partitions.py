"""score_batch over many files: plan partitions, score each partition, publish them together.

Partitioned scoring (scoring.files_per_partition): plan -> one score_partition per group of input
files (Airflow dynamic task mapping; each retried alone) -> publish_partitions. Partitions write
into prediction_rows under the plan's run_key (tagged with their partition number), invisible to
readers until published; publishing checks that every partition is there and adds up, runs the
interval-level checks, and moves the interval's current_run_key in one transaction (no copy), so
readers see the previous contents or the new ones, never a mix of partitions.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from datetime import datetime, timezone

from driftline import db
from driftline.attempt import Attempt, Counts, choose_model, make_scorer, publish, record_failure
from driftline.chunks import score_input
from driftline.config import load_config
from driftline.db import runs
from driftline.errors import BadInput
from driftline.intervals import utc
from driftline.registry import load_model
from driftline.scoring.safeguards import OutputSanityError, ScoreStats
from driftline.sources import input_files
from driftline.sources.prefetch import read_ahead
from driftline.validation import Validator

log = logging.getLogger(__name__)


class PartitionError(BadInput):
    """A partitioned attempt cannot be published (a partition missing, superseded, or not adding up)."""


def plan_partitions(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, model_version: int | None = None
) -> dict:
    """Split the interval's input files into partitions of scoring.files_per_partition files.

    Small intervals (no more files than that, or partitioning off) get mode "single": score_interval
    scores them in one task as before. Otherwise the model is chosen once here (with the usual
    fallback) so every partition scores with the same version.
    """
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    source = config.input_location(start, end)
    # A SQL source is one stream: never partitioned.
    files = input_files(source, config.source.storage_conn_id) if isinstance(source, str) else []
    size = config.files_per_partition
    single = {"mode": "single", "files": len(files), "partitions": []}
    if not size or len(files) <= size:
        return single
    groups = [[str(f) for f in files[i : i + size]] for i in range(0, len(files), size)]
    schema = config.db_schema
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, application_name=f"driftline plan_partitions {run_id}", autocommit=True) as conn:
        db.ensure_schema(conn, schema)
        interval_id = runs.interval_id(conn, schema, start, end)
        # The key is drawn after the model is chosen, as before: a plan that cannot load a model takes none.
        attempt = Attempt(config, start, end, interval_id, 0, run_id, source, datetime.now(timezone.utc))
        choose_model(conn, attempt, model_version)
        attempt.key = runs.new_run_key(conn, schema)
        runs.insert_plan(
            conn,
            schema,
            attempt.key,
            interval_id,
            run_id,
            groups,
            attempt.model_version,
            attempt.requested_version,
            attempt.fallback_reason,
        )
    log.info(
        "interval [%s, %s): %d files in %d partitions (run_key %s, model v%s)",
        start.isoformat(),
        end.isoformat(),
        len(files),
        len(groups),
        attempt.key,
        attempt.model_version,
    )
    return {
        "mode": "partitioned",
        "files": len(files),
        "run_key": attempt.key,
        "model_version": attempt.model_version,
        "partitions": [{"run_key": attempt.key, "partition": i, "files": group} for i, group in enumerate(groups)],
    }


def score_partition(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, partition: dict
) -> dict:
    """Score one partition into prediction_rows under the plan's run_key (unpublished until
    publish_partitions), replacing any earlier attempt of the same partition."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    schema = config.db_schema
    key, number, files = int(partition["run_key"]), int(partition["partition"]), partition["files"]
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    started_at = datetime.now(timezone.utc)
    source = config.input_location(start, end)
    with (
        read_ahead(source, config, start, end, files=files) as chunks,
        db.connect(url, application_name=f"driftline score_partition {key}:{number}", autocommit=True) as conn,
    ):
        plan = runs.plan(conn, schema, key)
        if plan is None:
            raise PartitionError(f"partition plan {key} not found (already published or superseded)")
        interval_id, version = plan[0], plan[2]
        model = load_model(
            conn, schema, version, scoring_only=True
        )  # the plan chose (and could load) it: no fallback here
        attempt = Attempt(
            config,
            start,
            end,
            interval_id,
            key,
            run_id,
            source,
            started_at,
            model_version=model.version,
            partition=number,
            counts=Counts(),
        )
        stages = attempt.counts.stage_seconds
        t = time.perf_counter()
        validator = Validator(config)
        stages["load_suite"] += time.perf_counter() - t
        scorer = make_scorer(conn, attempt, model)  # compiled once per model version and machine, then cached
        stages["compile_model"] += scorer.compile_seconds
        with tempfile.TemporaryFile() as spill, conn.transaction():
            # A share lock on the plan row until this partition commits: publish_partitions takes it
            # exclusively, so it never counts a partition that is still writing (a zombie try of an
            # already retried partition included), and a partition starting after the publish
            # commits sees it (checked here, under the lock) and refuses.
            runs.lock_plan(conn, schema, key, exclusive=False)
            _refuse_published_plan(conn, schema, interval_id, key)
            runs.restart_partition(conn, schema, key, number)
            score_input(conn, attempt, scorer, validator, spill, chunks)
            spill.seek(0)
            db.copy_csv(conn, db.table(schema, "quarantine_rows"), runs.QUARANTINE_COLUMNS, spill)
            counts = attempt.counts
            runs.insert_partition_run(
                conn,
                schema,
                run_key=key,
                partition=number,
                run_id=run_id,
                rows_in=counts.rows_in,
                rows_scored=counts.rows_scored,
                rows_quarantined=counts.rows_quarantined,
                stage_seconds={k: round(v, 4) for k, v in stages.items()},
                score_state=counts.stats.state(),
                reasons=dict(counts.reasons),
                started_at=started_at,
            )
    summary = {**attempt.summary(), "partition": number, "files": len(files)}
    log.info("scored partition %s of run_key %s: %s", number, key, json.dumps(summary, ensure_ascii=False))
    return summary


def publish_partitions(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, run_key: int
) -> dict:
    """Check every partition of the plan is there and adds up, run the interval-level checks
    (quarantine budget, score distribution), then replace the interval with the staged rows."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    schema = config.db_schema
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    label = f"[{start.isoformat()}, {end.isoformat()})"
    with db.connect(url, application_name=f"driftline publish_partitions {run_id}", autocommit=True) as conn:
        with db.interval_lock(conn, schema, label):
            interval_id, partitions, version, requested, fallback_reason, files, planned_at = runs.plan(
                conn, schema, run_key
            )
            published = runs.published_run(conn, schema, interval_id, run_key)
            if published is not None:
                # A retry of a publish that committed (the task died before reporting success).
                published = {**published, "already_published": True}
                log.info("plan %s is already published: %s", run_key, json.dumps(published, default=str))
                return published
            attempt = Attempt(
                config,
                start,
                end,
                interval_id,
                run_key,
                run_id,
                config.input_location(start, end),
                planned_at,
                model_version=version,
                requested_version=requested,
                fallback_reason=fallback_reason,
                partitions=partitions,
                counts=Counts(),
            )
            try:
                with conn.transaction():
                    # Waits for every partition still writing (each holds a share lock on the plan
                    # row), then counts and swaps in the same transaction: nothing changes in between.
                    runs.lock_plan(conn, schema, run_key, exclusive=True)
                    _gather_partitions(conn, attempt)
                    publish(conn, attempt, runs.score_reference(conn, schema, version))
            except Exception as exc:
                record_failure(conn, attempt, exc)
                if isinstance(exc, OutputSanityError):
                    exc.alert_id = attempt.alert("output_sanity", "critical", str(exc), exc.numbers)
                raise
    summary = {**attempt.summary(), "partitions": partitions, "files": sum(len(group) for group in files)}
    log.info("published interval %s from %d partitions: %s", label, partitions, json.dumps(summary, ensure_ascii=False))
    return summary


def _gather_partitions(conn, attempt: Attempt) -> None:
    """Sum the partitions' counts, timings and score stats into the attempt; refuse a plan that is
    incomplete, superseded, or whose stored rows do not match its counts."""
    schema, key, partitions, counts = attempt.schema, attempt.key, attempt.partitions, attempt.counts
    _refuse_published_plan(conn, schema, attempt.interval_id, key)
    rows = runs.partition_runs(conn, schema, key)
    missing = sorted(set(range(partitions)) - {row[0] for row in rows})
    if missing:
        raise PartitionError(
            f"plan {key}: partition(s) {missing} of {partitions} have not been scored; nothing was published"
        )
    for _, rows_in, scored, quarantined, stages, state, reasons in rows:
        counts.merge(rows_in, scored, quarantined, stages, reasons, ScoreStats(**state))
    staged, quarantined = runs.staged_counts(conn, schema, key)
    if staged != counts.rows_scored or quarantined != counts.rows_quarantined:
        raise PartitionError(
            f"plan {key} does not add up: partitions report {counts.rows_scored} scored and "
            f"{counts.rows_quarantined} quarantined rows, the database holds {staged} and {quarantined}"
        )


def _refuse_published_plan(conn, schema: str, interval_id: int, key: int) -> None:
    """A plan is scored and published once: after publishing its rows are the interval's published
    rows (a partition retried then would change them), and a later attempt's publication must not be
    overwritten by an older plan."""
    current = runs.current_run_key(conn, schema, interval_id)
    if current is not None and current >= key:
        what = "was already published" if current == key else f"is superseded by a later attempt (run_key {current})"
        raise PartitionError(
            f"partition plan {key} {what}; to rescore the interval, clear the whole score_batch run "
            "(plan_partitions and everything downstream), not one partition"
        )
