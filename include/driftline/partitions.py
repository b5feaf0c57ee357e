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
from datetime import datetime, timezone

from driftline.config import load_config
from driftline.db import runs
from driftline.errors import BadInput
from driftline.intervals import utc
from driftline.registry import load_model
from driftline.run import ScoringRun
from driftline.scoring.safeguards import ScoreStats
from driftline.sources import input_files
from driftline.sources.prefetch import read_ahead

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
    task = f"plan_partitions {run_id}"
    with ScoringRun.open(config, start, end, run_id, source, task, lock=False, ensure_schema=True) as run:
        run.interval_id = runs.interval_id(run.conn, run.schema, start, end)
        # The key is drawn after the model is chosen, as before: a plan that cannot load a model takes none.
        model = run.choose_model(model_version)
        run.key = runs.new_run_key(run.conn, run.schema)
        runs.insert_plan(
            run.conn,
            run.schema,
            run.key,
            run.interval_id,
            run_id,
            groups,
            model.version,
            run.requested_version,
            run.fallback_reason,
        )
    log.info(
        "interval [%s, %s): %d files in %d partitions (run_key %s, model v%s)",
        start.isoformat(),
        end.isoformat(),
        len(files),
        len(groups),
        run.key,
        run.model_version,
    )
    return {
        "mode": "partitioned",
        "files": len(files),
        "run_key": run.key,
        "model_version": run.model_version,
        "partitions": [{"run_key": run.key, "partition": i, "files": group} for i, group in enumerate(groups)],
    }


def score_partition(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, partition: dict
) -> dict:
    """Score one partition into prediction_rows under the plan's run_key (unpublished until
    publish_partitions), replacing any earlier attempt of the same partition."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    key, number, files = int(partition["run_key"]), int(partition["partition"]), partition["files"]
    started_at = datetime.now(timezone.utc)
    source = config.input_location(start, end)
    task = f"score_partition {key}:{number}"
    with (
        read_ahead(source, config, start, end, files=files) as chunks,
        ScoringRun.open(config, start, end, run_id, source, task, lock=False, started_at=started_at) as run,
    ):
        plan = runs.plan(run.conn, run.schema, key)
        if plan is None:
            raise PartitionError(f"partition plan {key} not found (already published or superseded)")
        run.interval_id, run.key, run.partition = plan[0], key, number
        # The plan chose (and could load) the model: no fallback here.
        model = load_model(
            run.conn, run.schema, plan[2], scoring_only=True, pinned_pickles=config.handoff.pickle_sha256
        )
        run.model_version = model.version
        scorer, validator = run.scorer(model)
        with tempfile.TemporaryFile() as spill, run.conn.transaction():
            # A share lock on the plan row until this partition commits: publish_partitions takes it
            # exclusively, so it never counts a partition that is still writing (a zombie try of an
            # already retried partition included), and a partition starting after the publish
            # commits sees it (checked here, under the lock) and refuses.
            runs.lock_plan(run.conn, run.schema, key, exclusive=False)
            _refuse_published_plan(run)
            runs.restart_partition(run.conn, run.schema, key, number)
            run.write(scorer, validator, chunks, spill)  # the COPY
            spill.seek(0)
            runs.copy_quarantine(run.conn, run.schema, spill)
            counts = run.counts
            runs.insert_partition_run(
                run.conn,
                run.schema,
                run_key=key,
                partition=number,
                run_id=run_id,
                rows_in=counts.rows_in,
                rows_scored=counts.rows_scored,
                rows_quarantined=counts.rows_quarantined,
                stage_seconds={k: round(v, 4) for k, v in counts.stage_seconds.items()},
                score_state=counts.stats.state(),
                reasons=dict(counts.reasons),
                started_at=run.started_at,
            )
    summary = {**run.summary(), "partition": number, "files": len(files)}
    log.info("scored partition %s of run_key %s: %s", number, key, json.dumps(summary, ensure_ascii=False))
    return summary


def publish_partitions(
    config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, run_key: int
) -> dict:
    """Check every partition of the plan is there and adds up, run the interval-level checks
    (quarantine budget, score distribution), then replace the interval with the staged rows."""
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    source = config.input_location(start, end)
    with ScoringRun.open(config, start, end, run_id, source, f"publish_partitions {run_id}", lock=True) as run:
        interval_id, partitions, version, requested, fallback_reason, files, planned_at = runs.plan(
            run.conn, run.schema, run_key
        )
        published = runs.published_run(run.conn, run.schema, interval_id, run_key)
        if published is not None:
            # A retry of a publish that committed (the task died before reporting success).
            published = {**published, "already_published": True}
            log.info("plan %s is already published: %s", run_key, json.dumps(published, default=str))
            return published
        run.interval_id, run.key, run.started_at, run.partitions = interval_id, run_key, planned_at, partitions
        run.model_version, run.requested_version, run.fallback_reason = version, requested, fallback_reason
        run.counting = True
        with run.conn.transaction():
            # Waits for every partition still writing (each holds a share lock on the plan row), then
            # counts and swaps in the same transaction: nothing changes in between.
            runs.lock_plan(run.conn, run.schema, run_key, exclusive=True)
            _gather_partitions(run)
            run.publish(runs.score_reference(run.conn, run.schema, version))
    summary = {**run.summary(), "partitions": partitions, "files": sum(len(group) for group in files)}
    log.info(
        "published interval %s from %d partitions: %s", run.label, partitions, json.dumps(summary, ensure_ascii=False)
    )
    return summary


def _gather_partitions(run: ScoringRun) -> None:
    """Sum the partitions' counts, timings and score stats into the run; refuse a plan that is
    incomplete, superseded, or whose stored rows do not match its counts."""
    key, partitions, counts = run.key, run.partitions or 0, run.counts
    _refuse_published_plan(run)
    rows = runs.partition_runs(run.conn, run.schema, key)
    missing = sorted(set(range(partitions)) - {row[0] for row in rows})
    if missing:
        raise PartitionError(
            f"plan {key}: partition(s) {missing} of {partitions} have not been scored; nothing was published"
        )
    for _, rows_in, scored, quarantined, stages, state, reasons in rows:
        counts.merge(rows_in, scored, quarantined, stages, reasons, ScoreStats(**state))
    staged, quarantined = runs.staged_counts(run.conn, run.schema, key)
    if staged != counts.rows_scored or quarantined != counts.rows_quarantined:
        raise PartitionError(
            f"plan {key} does not add up: partitions report {counts.rows_scored} scored and "
            f"{counts.rows_quarantined} quarantined rows, the database holds {staged} and {quarantined}"
        )


def _refuse_published_plan(run: ScoringRun) -> None:
    """A plan is scored and published once: after publishing its rows are the interval's published
    rows (a partition retried then would change them), and a later attempt's publication must not be
    overwritten by an older plan."""
    current = runs.current_run_key(run.conn, run.schema, run.interval_id)
    if current is not None and current >= run.key:
        what = (
            "was already published" if current == run.key else f"is superseded by a later attempt (run_key {current})"
        )
        raise PartitionError(
            f"partition plan {run.key} {what}; to rescore the interval, clear the whole score_batch run "
            "(plan_partitions and everything downstream), not one partition"
        )
