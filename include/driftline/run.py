"""One scoring run of an interval and its whole lifecycle: claim it (interval id, run key, lock),
choose the model (with fallback), write the scored chunks (the COPY), publish it or fail it (the
scoring_runs row, the alert). Both scoring paths use it:

    airflow/tasks.score_interval -> batch.score_interval -> ScoringRun.write (the COPY) / .publish
    airflow/tasks.score_partition -> partitions.score_partition -> ScoringRun.write
    airflow/tasks.publish_partitions -> partitions.publish_partitions -> ScoringRun.publish

Its SQL is in db/runs.py; what one chunk becomes (validated, predicted, quarantined) is chunks.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from typing import IO, Any

import psycopg

from driftline import db
from driftline.alerts import raise_alert
from driftline.attempt import Counts, Destination, QuarantineBudgetExceeded
from driftline.chunks import ScoredChunk, score_chunk
from driftline.config import DatasetConfig
from driftline.db import runs
from driftline.errors import safe_message
from driftline.registry import CompiledHashes, ModelLoadError, fallback_versions, load_model, version_for_interval
from driftline.scoring.engine import Scorer
from driftline.scoring.features import FeatureMismatch, bind
from driftline.scoring.safeguards import OutputSanityError, check_distribution
from driftline.sources import Chunk, InputError
from driftline.validation import Validator

log = logging.getLogger(__name__)


class ScoringRun:
    """One attempt at scoring the interval [start, end), on its task's connection.

    `key` is the attempt's number (the run_key column of scoring_runs, prediction_rows and
    quarantine_rows); `run_id` is Airflow's DAG run that made the attempt. A rerun of the same DAG run
    is a new attempt with a new key. `counts` is always there; a failure before the run starts
    counting (before its model is chosen) is recorded without them.
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        config: DatasetConfig,
        start: datetime,
        end: datetime,
        run_id: str,
        source_uri: str,
        started_at: datetime | None = None,
        *,
        records_failure: bool = False,
    ) -> None:
        self.conn, self.config, self.start, self.end = conn, config, start, end
        self.run_id, self.source_uri = run_id, source_uri
        self.started_at = started_at or datetime.now(timezone.utc)
        self.interval_id: int = 0
        self.key: int = 0
        self.model_version: int | None = None
        self.requested_version: int | None = None
        self.fallback_reason: str | None = None
        self.partition: int | None = None  # one partition of a partitioned attempt
        self.partitions: int | None = None  # a partitioned attempt being published: how many it has
        self.counts = Counts()
        self.counting = False  # the failure row carries the counts from here on
        self.records_failure = records_failure  # the run holding the interval lock records its outcome
        self.recorded = False

    @classmethod
    @contextmanager
    def open(
        cls,
        config: DatasetConfig,
        start: datetime,
        end: datetime,
        run_id: str,
        source_uri: str,
        task: str,
        *,
        lock: bool,
        ensure_schema: bool = False,
        started_at: datetime | None = None,
    ) -> Iterator[ScoringRun]:
        """The setup and failure handling every scoring task shares: connect (autocommit, named after
        the task), hold the interval's write lock when `lock`, and when the body raises, record the
        run as failed (the lock holder only: plans and partitions are recorded by their publish)
        and raise an output_sanity alert for an OutputSanityError."""
        url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
        with db.connect(url, application_name=f"driftline {task}", autocommit=True) as conn:
            if ensure_schema:
                db.ensure_schema(conn, config.db_schema)
            run = cls(conn, config, start, end, run_id, source_uri, started_at, records_failure=lock)
            with db.interval_lock(conn, config.db_schema, run.label) if lock else nullcontext():
                try:
                    yield run
                except Exception as exc:
                    run.fail(exc)
                    raise

    @property
    def schema(self) -> str:
        return self.config.db_schema

    @property
    def label(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"

    @property
    def destination(self) -> Destination:
        return Destination(self.interval_id, self.key, self.partition)

    # -- claim and model ----------------------------------------------------------------------------

    def claim(self) -> None:
        """Register the interval and draw the run's key (under the interval lock)."""
        self.interval_id = runs.interval_id(self.conn, self.schema, self.start, self.end)
        self.key = runs.new_run_key(self.conn, self.schema)

    def choose_model(self, pinned: int | None) -> Any:
        """Load the run's model and set model_version, requested_version and fallback_reason; a
        fallback raises a `fallback` alert.

        Default: the version that was champion when the interval ended, so a backfill rescores with
        the then-champion; the model_version Param pins one instead. When the wanted version cannot
        be loaded (artifact missing, sha256 mismatch, LightGBM refuses it) and safeguards.fallback is
        on, the most recent other champion that loads is used. A pinned version never falls back.

        The model's features are bound to the config's here (scoring.features.bind), so a config that
        does not match the model is refused before anything is read or planned; a fallback version
        trained on other features is skipped like one that cannot be loaded.
        """
        self.model_version = pinned  # recorded as asked for when loading it fails
        requested = pinned if pinned is not None else version_for_interval(self.conn, self.schema, self.end)
        self.requested_version = requested
        try:
            model = load_model(
                self.conn, self.schema, requested, scoring_only=True, pinned_pickles=self.config.handoff.pickle_sha256
            )
        except ModelLoadError as first:
            if pinned is not None or not self.config.safeguards.fallback:
                why = "the version is pinned by model_version" if pinned is not None else "safeguards.fallback is off"
                raise ModelLoadError(f"{first}; no fallback because {why}; nothing was written") from first
            model = self._fall_back(requested, first)
        else:
            bind(model, self.config)  # FeatureMismatch (BadConfig): the config is wrong, an older model would not help
        self.model_version = model.version
        self.counting = True
        return model

    def _fall_back(self, requested: int | None, first: ModelLoadError) -> Any:
        tried = [f"v{requested}: {first}" if requested is not None else str(first)]
        for version in fallback_versions(self.conn, self.schema, exclude=requested):
            try:
                model = load_model(
                    self.conn, self.schema, version, scoring_only=True, pinned_pickles=self.config.handoff.pickle_sha256
                )
                bind(model, self.config)
            except (ModelLoadError, FeatureMismatch) as exc:
                tried.append(f"v{version}: {exc}")
                continue
            reason = f"fell back to v{version}: " + " | ".join(tried)
            log.warning("model fallback for %s: %s", self.config.name, reason)
            self.alert("fallback", "warning", reason, {"requested_version": requested, "used_version": version})
            self.fallback_reason = reason
            return model
        raise ModelLoadError(
            f"no kept model version could be loaded, nothing was written; tried {len(tried)}: " + " | ".join(tried)
        ) from first

    def scorer(self, model: Any) -> tuple[Scorer, Validator]:
        """The run's Scorer (its compiled objects checked against the registry; each untrusted
        artifact it refused is alerted) and Validator."""
        stages = self.counts.stage_seconds
        t = time.perf_counter()
        validator = Validator(self.config)
        stages["load_suite"] += time.perf_counter() - t
        scorer = Scorer(model, self.config, CompiledHashes(self.conn, self.schema))
        for notice in scorer.notices:
            self.alert("untrusted_artifact", "warning", notice, {"model_version": model.version})
        stages["compile_model"] += scorer.compile_seconds  # compiled once per model version and machine
        return scorer, validator

    # -- write --------------------------------------------------------------------------------------

    def write(self, scorer: Scorer, validator: Validator, chunks: Iterable[Chunk], spill: IO[bytes]) -> None:
        """Validate -> predict -> COPY the chunks into the run's destination, inside the caller's
        transaction; quarantined rows go to spill. A whole interval first deletes the rows it
        replaces, on the writer's connection while the first chunk is read and scored (a rollback
        restores them). chunks: a read-ahead reader (its `seconds` is the reading time)."""
        config, counts, destination = self.config, self.counts, self.destination
        stages = counts.stage_seconds
        if config.explain is not None:  # [explain] on: reasons are queued on the COPY thread after each chunk
            from driftline.scoring.explain import Explainer

            scorer.explainer = Explainer(scorer.model, config)
        target = db.table(self.schema, destination.table)
        try:
            with db.BackgroundCopy(self.conn, target, destination.columns, order_by="entity_key") as writer:
                if destination.partition is None:
                    writer.run(self.delete_replaced_predictions)
                t = time.perf_counter()
                for chunk in chunks:
                    stages["wait_for_input"] += time.perf_counter() - t
                    scored = score_chunk(config, scorer, validator, chunk, self.source_uri, counts, destination, spill)
                    writer.submit(scored.predictions)
                    if scorer.explainer is not None:
                        self._queue_reasons(scorer.explainer, scored, writer)
                    t = time.perf_counter()
                t = time.perf_counter()
            stages["read"] += chunks.seconds  # type: ignore[attr-defined]  # overlapped with the stages above
        except psycopg.errors.UniqueViolation as exc:
            raise self._repeated_key() from exc
        stages["wait_for_writes"] += time.perf_counter() - t
        counts.scoring_engine = scorer.engine  # after the loop: a parity mismatch switches engines
        stages["write_predictions"] += writer.seconds  # overlapped with the stages above
        if scorer.explainer is not None:
            counts.rows_explained = scorer.explainer.rows

    def _queue_reasons(self, explainer, scored: ScoredChunk, writer: db.BackgroundCopy) -> None:
        """TreeSHAP reasons of the chunk's selected rows (LightGBM's threads), COPYed on the writer
        thread in order with the predictions, inside the same transaction."""
        from driftline.scoring.explain import REASON_COLUMNS

        stages, destination = self.counts.stage_seconds, self.destination
        t = time.perf_counter()
        reasons = explainer.reasons(scored.good, scored.scores, destination.reason_keys)
        stages["explain"] += time.perf_counter() - t
        if reasons is None:
            return
        target = db.table(self.schema, "prediction_reason_rows")

        def write(conn=writer.connection) -> None:
            started = time.perf_counter()
            db.copy_csv(conn, target, REASON_COLUMNS, db.arrow_to_csv_bytes(reasons))
            stages["write_reasons"] += time.perf_counter() - started

        writer.run(write)

    def _repeated_key(self) -> InputError:
        # Repeats inside one chunk are quarantined; this is a repeat further apart than that.
        chunk_rows = self.config.chunk_rows
        if self.partition is not None:
            return InputError(
                f"{self.source_uri}: an entity key of partition {self.partition} appears again in "
                f"another partition of the plan, or more than scoring.chunk_rows={chunk_rows} rows apart "
                "in its files; nothing was written for this partition. Deduplicate the export (the key itself "
                "is not logged)."
            )
        return InputError(
            f"{self.source_uri}: an entity key appears more than once, more than "
            f"scoring.chunk_rows={chunk_rows} rows apart; nothing was written. Deduplicate the "
            "export (the key itself is not logged), or raise chunk_rows."
        )

    def delete_replaced_predictions(self) -> None:
        """Inside the publishing transaction: delete the rows of the interval's earlier attempts, so
        prediction_rows holds each interval once (newer attempts are never touched)."""
        t = time.perf_counter()
        runs.delete_replaced_predictions(self.conn, self.schema, self.interval_id, self.key)
        self.counts.stage_seconds["delete_replaced_predictions"] += time.perf_counter() - t

    def write_quarantine(self, spill: IO[bytes], published: bool) -> None:
        """Replace the interval's quarantine rows with the run's (spilled to a file while scoring)."""
        t = time.perf_counter()
        spill.seek(0)
        runs.replace_quarantine(self.conn, self.schema, self.interval_id, self.key, published, spill)
        self.counts.stage_seconds["write_quarantine"] += time.perf_counter() - t

    # -- publish or fail ----------------------------------------------------------------------------

    def publish(self, score_reference: dict | None, spill: IO[bytes] | None = None) -> None:
        """Inside the caller's transaction: the interval-level checks (quarantine budget, score
        distribution), then make the run the interval's published one and record it.

        spill: the run's quarantined rows, for a run that scored in this transaction (its replaced
        predictions are deleted already); None for a partitioned run, whose rows are stored.
        Raising rolls the interval back to its previous contents.
        """
        counts = self.counts
        self.check_budget()
        t = time.perf_counter()
        counts.distribution_check = check_distribution(counts.stats, score_reference, self.config)
        counts.stage_seconds["check_distribution"] += time.perf_counter() - t
        if spill is not None:
            self.write_quarantine(spill, published=True)
        else:
            t = time.perf_counter()
            self.delete_replaced_predictions()
            runs.replace_quarantine(self.conn, self.schema, self.interval_id, self.key, published=True)
            counts.stage_seconds["publish_partitions"] += time.perf_counter() - t
            # An earlier publish of this plan that failed (and was recorded) gives way to this one.
            runs.delete_failed_runs(self.conn, self.schema, self.key)
        self.record("succeeded")
        runs.publish(self.conn, self.schema, self.interval_id, self.key)

    def check_budget(self) -> None:
        """Raise QuarantineBudgetExceeded when more than validation.quarantine_budget of the rows were quarantined."""
        message = self.counts.over_budget(self.config, self.source_uri, self.partitions)
        if message is not None:
            raise QuarantineBudgetExceeded(
                f"{message} The quarantined rows are in {self.schema}.quarantine_rows (run_key {self.key}); "
                "the interval's previous predictions are unchanged."
            )

    def record(self, status: str, message: str | None = None) -> None:
        """The run's scoring_runs row: counts, stage timings, model and fallback, score stats."""
        self.recorded = True
        config, counts = self.config, self.counts
        band = config.safeguards.review_band or (None, None)
        columns = self._identity(status, message)
        columns.update(
            rows_in=counts.rows_in,
            rows_scored=counts.rows_scored,
            rows_quarantined=counts.rows_quarantined,
            stage_seconds={k: round(v, 4) for k, v in counts.stage_seconds.items()},
            requested_version=self.requested_version,
            fallback=self.fallback_reason is not None,
            fallback_reason=self.fallback_reason,
            score_stats=counts.stats.summary(config),
            review_low=band[0],
            review_high=band[1],
            scoring_engine=counts.scoring_engine or None,
        )
        if self.partitions is not None:
            columns["partitions"] = self.partitions
        runs.insert_run(self.conn, self.schema, **columns)

    def _identity(self, status: str, message: str | None) -> dict:
        return dict(
            run_key=self.key,
            interval_id=self.interval_id,
            run_id=self.run_id,
            model_version=self.model_version,
            status=status,
            source_uri=self.source_uri,
            message=message,
            started_at=self.started_at,
        )

    def fail(self, exc: BaseException) -> None:
        """Keep the failed run in the run summary (counts as far as it got), unless its outcome is
        recorded already; alert an OutputSanityError. Best effort: never hides the original error."""
        if not self.records_failure or not self.key:
            return
        if not self.recorded:
            message = safe_message(exc)[:2000]  # scrubbed: run_summary is readable by analysts
            try:
                with self.conn.transaction():
                    if self.counting:
                        self.record("failed", message)
                    else:
                        runs.insert_run(self.conn, self.schema, **self._identity("failed", message))
            except Exception as failure:  # noqa: BLE001 - the original exception is what the caller must see
                log.warning(
                    "could not record the failed run for interval %s: %s", self.interval_id, safe_message(failure)
                )
        if isinstance(exc, OutputSanityError):
            exc.alert_id = self.alert("output_sanity", "critical", str(exc), exc.numbers)

    def alert(self, kind: str, severity: str, message: str, numbers: dict | None = None) -> int | None:
        """Raise an alert about this run (the DAG and task come from the alert origin the adapter sets)."""
        return raise_alert(
            self.config,
            kind,
            severity,
            message,
            numbers,
            run_id=self.run_id,
            interval_start=self.start,
            interval_end=self.end,
        )

    def summary(self) -> dict:
        """Small, JSON-safe summary (what goes through XCom and into logs)."""
        counts = self.counts
        return {
            "interval_start": self.start.isoformat(),
            "interval_end": self.end.isoformat(),
            "source_uri": self.source_uri,
            "model_version": self.model_version,
            "requested_version": self.requested_version,
            "fallback": self.fallback_reason is not None,
            "fallback_reason": self.fallback_reason,
            **counts.summary(),
        }
