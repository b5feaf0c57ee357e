"""score_batch as plain functions: read -> validate -> quarantine split -> predict -> write.

The interval is replaced in one transaction (delete + COPY), chunk by chunk, so memory does not
grow with the interval and readers see either the previous contents or the new ones, never a mix.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db
from driftline.alerts import raise_alert
from driftline.config import load_config
from driftline.errors import BadInput, reading, safe_message
from driftline.registry import ModelLoadError, fallback_versions, load_model, version_for_interval
from driftline.scoring.engine import Scorer
from driftline.scoring.safeguards import OutputSanityError, ScoreStats, check_distribution, check_scores, predicted_class
from driftline.sources import MALFORMED_RECORD, Chunk, InputError, read_interval
from driftline.validation import Validator

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = [
    "interval_id", "run_key", "partition", "source_file", "row_number", "entity_key", "reason_codes", "raw_row"
]


@dataclass(frozen=True)
class _Destination:
    """Where one scoring pass writes: prediction_rows under the attempt's run_key, and for
    partitioned scoring also the partition number, with the constant leading columns of each row."""

    table: str
    keys: dict
    interval_id: int
    run_key: int
    partition: int | None = None

    @property
    def columns(self) -> list[str]:
        return [*self.keys, "entity_key", "score", "predicted_class"]

    @classmethod
    def interval(cls, interval_id: int, run_key: int) -> "_Destination":
        return cls("prediction_rows", {"run_key": (run_key, pa.int64())}, interval_id, run_key)

    @classmethod
    def staging(cls, interval_id: int, run_key: int, partition: int) -> "_Destination":
        keys = {"run_key": (run_key, pa.int64()), "partition": (partition, pa.int32())}
        return cls("prediction_rows", keys, interval_id, run_key, partition)


class QuarantineBudgetExceeded(BadInput):
    """Too many rows were quarantined: quarantine is recorded, predictions are left as they were."""


@dataclass
class IntervalResult:
    interval_start: str
    interval_end: str
    source_uri: str
    model_version: int
    scoring_engine: str = ""
    rows_in: int = 0
    rows_scored: int = 0
    rows_quarantined: int = 0
    requested_version: int | None = None
    fallback_reason: str | None = None
    distribution_check: str | None = None
    rows_explained: int | None = None  # [explain] on: rows whose reasons were stored
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stats: ScoreStats = field(default_factory=ScoreStats)

    def summary(self) -> dict:
        """Small, JSON-safe summary (what goes through XCom and into logs)."""
        return {
            "interval_start": self.interval_start,
            "interval_end": self.interval_end,
            "source_uri": self.source_uri,
            "model_version": self.model_version,
            "requested_version": self.requested_version,
            "fallback": self.fallback_reason is not None,
            "fallback_reason": self.fallback_reason,
            "scoring_engine": self.scoring_engine,
            "rows_in": self.rows_in,
            "rows_scored": self.rows_scored,
            "rows_quarantined": self.rows_quarantined,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "quarantine_reasons": dict(self.reasons),
            "distribution_check": self.distribution_check,
            **({} if self.rows_explained is None else {"rows_explained": self.rows_explained}),
        }


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def prepare_database(config_path: str, analyst_role: str | None = None, analyst_password: str | None = None) -> str:
    """Create the deployment's schema if needed (and the analysts' read-only role, when named);
    returns the masked database URL."""
    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        db.ensure_schema(conn, config.db_schema)
        if analyst_role:
            db.grant_analyst_role(conn, config.db_schema, analyst_role, analyst_password)
    return db.mask_url(url)


def score_interval(
    config_path: str,
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    model_version: int | None = None,
) -> dict:
    """Score one data interval end to end and replace it in Postgres; returns the run summary."""
    config = load_config(config_path)
    start, end = _utc(interval_start), _utc(interval_end)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    started_at = datetime.now(timezone.utc)
    source = config.input_location(start, end)
    # Reading starts first: the first chunks are parsed (Arrow releases the GIL) while the task
    # connects, takes the interval lock and loads and verifies the model.
    with _read_ahead(source, config, start, end) as chunks, db.connect(
        url, application_name=f"driftline score_interval {run_id}", autocommit=True
    ) as conn:
        db.ensure_schema(conn, config.db_schema)
        label = f"[{start.isoformat()}, {end.isoformat()})"
        with db.interval_lock(conn, config.db_schema, label):
            interval_id = _interval_id(conn, config.db_schema, start, end)
            run_key = _new_run_key(conn, config.db_schema)
            chosen, result = model_version, None
            where = {"dag_id": "score_batch", "task_id": "score_interval", "run_id": run_id,
                     "interval_start": start, "interval_end": end}
            try:
                model, requested, fallback_reason = _load_scoring_model(conn, config, model_version, end, where)
                chosen = model.version
                result = IntervalResult(start.isoformat(), end.isoformat(), source, model.version, requested_version=requested,
                                        fallback_reason=fallback_reason)
                _replace_interval(conn, config, model, result, interval_id, run_key, run_id, started_at, chunks)
            except QuarantineBudgetExceeded:
                raise
            except Exception as exc:
                _record_failed_run(conn, config, interval_id, run_key, run_id, started_at, source, chosen, exc, result)
                if isinstance(exc, OutputSanityError):
                    exc.alert_id = raise_alert(config, "output_sanity", "critical", str(exc), exc.numbers, **where)
                raise
    log.info("scored interval %s: %s", label, json.dumps(result.summary(), ensure_ascii=False))
    return result.summary()


def _new_run_key(conn, schema: str) -> int:
    """The key of a new scoring attempt (its scoring_runs row is written when it ends)."""
    return conn.execute(
        sql.SQL("SELECT nextval(pg_get_serial_sequence(%s, 'run_key'))"),
        (db.table(schema, "scoring_runs").as_string(conn),),
    ).fetchone()[0]


def _load_scoring_model(conn, config, pinned: int | None, interval_end: datetime, where: dict):
    """(model, requested version, fallback reason or None); a fallback raises a `fallback` alert
    (where: the dag/task/run/interval it is reported under).

    Default: the version that was champion when the interval ended, so a backfill rescores with the
    then-champion; the model_version Param pins one instead. When the wanted version cannot be
    loaded (artifact missing, sha256 mismatch, LightGBM refuses it) and safeguards.fallback is on,
    the most recent other champion that loads is used. A pinned version never falls back.
    """
    schema = config.db_schema
    requested = pinned if pinned is not None else version_for_interval(conn, schema, interval_end)
    try:
        return load_model(conn, schema, requested, scoring_only=True), requested, None
    except ModelLoadError as first:
        if pinned is not None or not config.safeguards.fallback:
            why = "the version is pinned by model_version" if pinned is not None else "safeguards.fallback is off"
            raise ModelLoadError(f"{first}; no fallback because {why}; nothing was written") from first
        tried = [f"v{requested}: {first}" if requested is not None else str(first)]
        for version in fallback_versions(conn, schema, exclude=requested):
            try:
                model = load_model(conn, schema, version, scoring_only=True)
            except ModelLoadError as exc:
                tried.append(f"v{version}: {exc}")
                continue
            reason = f"fell back to v{version}: " + " | ".join(tried)
            log.warning("model fallback for %s: %s", config.name, reason)
            raise_alert(config, "fallback", "warning", reason, {"requested_version": requested, "used_version": version}, **where)
            return model, requested, reason
        raise ModelLoadError(
            f"no kept model version could be loaded, nothing was written; tried {len(tried)}: " + " | ".join(tried)
        ) from first


def _interval_id(conn, schema: str, start: datetime, end: datetime) -> int:
    return conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end) VALUES (%s, %s) "
            "ON CONFLICT (interval_start, interval_end) DO UPDATE SET interval_start = EXCLUDED.interval_start "
            "RETURNING interval_id"
        ).format(db.table(schema, "scored_intervals")),
        (start, end),
    ).fetchone()[0]


def _replace_interval(conn, config, model, result, interval_id, run_key, run_id, started_at, chunks) -> None:
    schema = config.db_schema
    stages = result.stage_seconds
    t = time.perf_counter()
    validator = Validator(config)
    stages["load_suite"] += time.perf_counter() - t
    scorer = Scorer(model, config)
    stages["compile_model"] += scorer.compile_seconds

    # Quarantined rows are spilled to disk and written after the loop: they go in whether or not the
    # budget holds, while the predictions only go in when it does.
    with tempfile.TemporaryFile() as spill:
        with conn.transaction():
            destination = _Destination.interval(interval_id, run_key)
            # The replaced attempt's rows are deleted on the writer thread while the first chunk is
            # read and scored (its connection is idle until then); a rollback restores them.
            _score_input(conn, config, scorer, validator, result, destination, spill, chunks,
                         before_writes=lambda: _delete_replaced_predictions(conn, schema, interval_id, run_key, stages))
            over_budget = result.rows_quarantined > config.quarantine_budget * result.rows_in
            if over_budget:
                raise psycopg.Rollback()  # the interval keeps its previous predictions
            t = time.perf_counter()
            # Raising here rolls the interval back to its previous contents.
            result.distribution_check = check_distribution(result.stats, model.manifest.get("score_reference"), config)
            stages["check_distribution"] += time.perf_counter() - t
            _write_quarantine(conn, schema, interval_id, run_key, spill, result, published=True)
            _insert_run(conn, config, interval_id, run_key, run_id, "succeeded", result, started_at, None)
            conn.execute(
                sql.SQL("UPDATE {} SET current_run_key = %s WHERE interval_id = %s").format(
                    db.table(schema, "scored_intervals")
                ),
                (run_key, interval_id),
            )
        if not over_budget:
            return
        message = (
            f"quarantine budget exceeded for {result.source_uri}: {result.rows_quarantined} of "
            f"{result.rows_in} rows ({result.rows_quarantined / result.rows_in:.1%}) failed validation; "
            f"the budget is {config.quarantine_budget:.1%} (validation.quarantine_budget in {config.path.name}). "
            f"Top reasons: {_top_reasons(result.reasons)}. The quarantined rows are in "
            f"{schema}.quarantine_rows (run_key {run_key}); the interval's previous predictions are unchanged."
        )
        with conn.transaction():
            _write_quarantine(conn, schema, interval_id, run_key, spill, result, published=False)
            _insert_run(conn, config, interval_id, run_key, run_id, "failed", result, started_at, message)
    raise QuarantineBudgetExceeded(message)


def _read_ahead(source: str, config, start: datetime, end: datetime, files=None) -> "_Prefetched":
    """The interval's input chunks, read on a worker thread up to two chunks ahead (a context
    manager: leaving it stops the reader)."""
    return _Prefetched(_named(read_interval(source, config, start, end, files=files), source), depth=2)


def _named(chunks, source: str):
    """The chunks; a foreign reading error (a bad gzip stream, undecodable bytes) names the source."""
    with reading(source):
        yield from chunks


def _delete_replaced_predictions(conn, schema: str, interval_id: int, run_key: int, stages) -> None:
    """Inside the publishing transaction: delete the rows of the interval's earlier attempts (the
    published one, and partitioned plans that never published), so prediction_rows holds each
    interval once. Newer attempts (a plan still scoring its partitions) are never touched."""
    t = time.perf_counter()
    for name in ("prediction_rows", "prediction_reason_rows"):  # reasons ([explain]) go with their predictions
        conn.execute(
            sql.SQL(
                "DELETE FROM {p} WHERE run_key IN (SELECT run_key FROM {r} WHERE interval_id = %s AND run_key < %s "
                "UNION SELECT run_key FROM {plans} WHERE interval_id = %s AND run_key < %s)"
            ).format(p=db.table(schema, name), r=db.table(schema, "scoring_runs"), plans=db.table(schema, "partition_plans")),
            (interval_id, run_key, interval_id, run_key),
        )
    stages["delete_replaced_predictions"] += time.perf_counter() - t


def _score_input(
    conn, config, scorer, validator, result, destination: _Destination, spill, chunks: "_Prefetched", before_writes=None
) -> None:
    """Validate -> predict -> COPY the chunks into destination, inside the caller's transaction
    (before_writes: a callable run on the connection ahead of the first COPY)."""
    stages = result.stage_seconds
    target = db.table(config.db_schema, destination.table)
    if config.explain is not None:  # [explain] on: reasons are queued on the COPY thread after each chunk
        from driftline.scoring.explain import Explainer

        scorer.explainer = Explainer(scorer.model, config)
    try:
        with db.BackgroundCopy(conn, target, destination.columns, order_by="entity_key") as writer:
            if before_writes is not None:
                writer.run(before_writes)
            t = time.perf_counter()
            for chunk in chunks:
                stages["wait_for_input"] += time.perf_counter() - t
                _score_chunk(config, scorer, validator, chunk, result, destination, spill, writer)
                t = time.perf_counter()
            t = time.perf_counter()
        stages["read"] += chunks.seconds  # overlapped with the stages above
    except psycopg.errors.UniqueViolation as exc:
        # Repeats inside one chunk are quarantined; this is a repeat further apart than that.
        if destination.partition is not None:
            raise InputError(
                f"{result.source_uri}: an entity key of partition {destination.partition} appears again in "
                f"another partition of the plan, or more than scoring.chunk_rows={config.chunk_rows} rows apart "
                "in its files; nothing was written for this partition. Deduplicate the export (the key itself "
                "is not logged)."
            ) from exc
        raise InputError(
            f"{result.source_uri}: an entity key appears more than once, more than "
            f"scoring.chunk_rows={config.chunk_rows} rows apart; nothing was written. Deduplicate the "
            "export (the key itself is not logged), or raise chunk_rows."
        ) from exc
    stages["wait_for_writes"] += time.perf_counter() - t
    result.scoring_engine = scorer.engine  # after the loop: a parity mismatch switches engines
    stages["write_predictions"] += writer.seconds  # overlapped with the stages above
    if scorer.explainer is not None:
        result.rows_explained = scorer.explainer.rows


class _Prefetched:
    """Runs an iterator on a worker thread, one item ahead, so reading the next chunk (Arrow's CSV
    reader releases the GIL) overlaps with validating and predicting the current one."""

    _END = object()

    def __init__(self, iterable, depth: int = 1):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._produce, args=(iter(iterable),), name="driftline-read", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        import queue

        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, iterator) -> None:
        try:
            while True:
                started = time.perf_counter()
                item = next(iterator, self._END)
                self.seconds += time.perf_counter() - started
                if not self._put(item) or item is self._END:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(_Failure(exc))

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def __enter__(self) -> "_Prefetched":
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Failure:
    error: BaseException


def _score_chunk(config, scorer, validator, chunk: Chunk, result, destination: _Destination, spill, writer) -> None:
    stages = result.stage_seconds
    rows = chunk.typed
    t = time.perf_counter()
    failures = chunk.failures
    for index, codes in validator.row_failures(rows, result.source_uri).items():
        failures.setdefault(index, []).extend(codes)
    stages["validate"] += time.perf_counter() - t

    t = time.perf_counter()
    bad = np.zeros(rows.num_rows, dtype=bool)
    if failures:
        bad[list(failures)] = True
        good = rows.filter(pa.array(~bad))
    else:
        good = rows
    scores = scorer.predict(good)
    check_scores(scores, config)  # raising here rolls the interval back to its previous contents
    classes = predicted_class(scores, config)
    result.stats.add(scores, classes)
    stages["predict"] += time.perf_counter() - t

    constants = {name: pa.array(np.full(good.num_rows, value), type=kind) for name, (value, kind) in destination.keys.items()}
    writer.submit(
        pa.table(
            {
                **constants,
                "entity_key": good[config.entity_key],
                "score": pa.array(scores, type=pa.float64()),
                "predicted_class": _class_column(classes, len(scores)),
            }
        )
    )

    if scorer.explainer is not None:
        _queue_reasons(config, scorer.explainer, good, scores, destination, writer, stages)

    t = time.perf_counter()
    _spill_quarantine(config, chunk, failures, bad, destination, spill, result)
    stages["quarantine"] += time.perf_counter() - t
    result.rows_in += rows.num_rows + len(chunk.malformed)
    result.rows_scored += good.num_rows


def _queue_reasons(config, explainer, good, scores, destination: _Destination, writer, stages) -> None:
    """TreeSHAP reasons of the chunk's selected rows (LightGBM's threads), COPYed on the writer
    thread in order with the predictions, inside the same transaction."""
    from driftline.scoring.explain import REASON_COLUMNS

    t = time.perf_counter()
    reasons = explainer.reasons(good, scores, {"run_key": destination.run_key, "partition": destination.partition})
    stages["explain"] += time.perf_counter() - t
    if reasons is None:
        return
    target = db.table(config.db_schema, "prediction_reason_rows")

    def write(conn=writer.connection) -> None:
        started = time.perf_counter()
        db.copy_csv(conn, target, REASON_COLUMNS, db.arrow_to_csv_bytes(reasons))
        stages["write_reasons"] += time.perf_counter() - started

    writer.run(write)


def _class_column(classes: np.ndarray | None, rows: int) -> pa.Array:
    return pa.nulls(rows, pa.int16()) if classes is None else pa.array(classes, type=pa.int16())


def _spill_quarantine(config, chunk: Chunk, failures, bad, destination: _Destination, spill, result) -> None:
    """Append quarantined rows (raw values as read, with reason codes) to the spill file as CSV."""
    rows = []
    if failures:
        positions = np.flatnonzero(bad)
        raw = chunk.raw.take(pa.array(positions)).to_pylist()
        for position, raw_row in zip(positions, raw):
            codes = sorted(set(failures[int(position)]))
            rows.append((chunk.row_number(int(position)), raw_row.get(config.entity_key), codes, raw_row))
    for line_number, text in chunk.malformed:
        rows.append((line_number, None, [MALFORMED_RECORD], {"line": text}))
    if not rows:
        return
    keys, numbers, reasons, raws = [], [], [], []
    for number, key, codes, raw_row in rows:
        numbers.append(number)
        key = None if key is None else str(key)
        keys.append(None if key is None or "\x00" in key else key)  # the exact key stays in raw_row
        reasons.append(_text_array(codes))
        raws.append(_raw_json(raw_row))
        for code in codes:
            result.reasons[code] += 1
    table = pa.table(
        {
            "interval_id": pa.array([destination.interval_id] * len(rows), type=pa.int32()),
            "run_key": pa.array([destination.run_key] * len(rows), type=pa.int64()),
            "partition": pa.array([destination.partition] * len(rows), type=pa.int32()),
            "source_file": pa.array([chunk.source or None] * len(rows), type=pa.string()),
            "row_number": pa.array(numbers, type=pa.int64()),
            "entity_key": pa.array(keys, type=pa.string()),
            "reason_codes": pa.array(reasons, type=pa.string()),
            "raw_row": pa.array(raws, type=pa.string()),
        }
    )
    spill.write(db.arrow_to_csv_bytes(table))
    result.rows_quarantined += len(rows)


def _text_array(items: list[str]) -> str:
    """A Postgres text[] literal (for COPY): every element quoted, so names keep every character."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def _raw_value(value):
    """JSON has no NaN/inf: such values keep their text. Postgres cannot store NUL in jsonb, so text
    holding one is kept byte-exact as {"base64": <its UTF-8 bytes>}."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, str) and "\x00" in value:
        import base64

        return {"base64": base64.b64encode(value.encode("utf-8")).decode("ascii")}
    return value


def _raw_json(raw_row: dict) -> str:
    """The raw row as JSON, non-ASCII kept as is; see _raw_value."""
    return json.dumps({k: _raw_value(v) for k, v in raw_row.items()}, default=str, ensure_ascii=False)


def _write_quarantine(conn, schema: str, interval_id: int, run_key: int, spill, result, published: bool) -> None:
    """Replace the interval's quarantine rows with this run's.

    A run over budget publishes nothing, so the published run's quarantine rows stay beside its
    own (readers tell them apart by run_key); only rows of earlier unpublished attempts go. Rows of
    newer attempts (a partitioned plan still scoring) are never touched.
    """
    t = time.perf_counter()
    quarantine, intervals = db.table(schema, "quarantine_rows"), db.table(schema, "scored_intervals")
    if published:
        conn.execute(sql.SQL("DELETE FROM {} WHERE interval_id = %s AND run_key < %s").format(quarantine), (interval_id, run_key))
    else:
        conn.execute(
            sql.SQL(
                "DELETE FROM {} q WHERE q.interval_id = %s AND q.run_key < %s AND q.run_key IS DISTINCT FROM "
                "(SELECT current_run_key FROM {} WHERE interval_id = %s)"
            ).format(quarantine, intervals),
            (interval_id, run_key, interval_id),
        )
    spill.seek(0)
    db.copy_csv(conn, db.table(schema, "quarantine_rows"), QUARANTINE_COLUMNS, spill)
    result.stage_seconds["write_quarantine"] += time.perf_counter() - t


def _insert_run(conn, config, interval_id, run_key, run_id, status, result, started_at, message) -> None:
    """One row of the run summary (and run health): counts, stage timings, model and fallback, scores."""
    band = config.safeguards.review_band or (None, None)
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (run_key, interval_id, run_id, model_version, status, rows_in, rows_scored, "
            "rows_quarantined, stage_seconds, source_uri, message, started_at, requested_version, fallback, "
            "fallback_reason, score_stats, review_low, review_high, scoring_engine) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(db.table(config.db_schema, "scoring_runs")),
        (
            run_key,
            interval_id,
            run_id,
            result.model_version,
            status,
            result.rows_in,
            result.rows_scored,
            result.rows_quarantined,
            Jsonb({k: round(v, 4) for k, v in result.stage_seconds.items()}),
            result.source_uri,
            message,
            started_at,
            result.requested_version,
            result.fallback_reason is not None,
            result.fallback_reason,
            Jsonb(result.stats.summary(config)),
            band[0],
            band[1],
            result.scoring_engine or None,
        ),
    )


def _record_failed_run(conn, config, interval_id, run_key, run_id, started_at, source, model_version, exc, result) -> None:
    """Keep a failed attempt in the run summary (counts as far as it got); best effort, never hides
    the original error."""
    message = safe_message(exc)[:2000]  # scrubbed: run_summary is readable by analysts
    try:
        with conn.transaction():
            if result is not None:
                _insert_run(conn, config, interval_id, run_key, run_id, "failed", result, started_at, message)
                return
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (run_key, interval_id, run_id, model_version, status, source_uri, message, "
                    "started_at) VALUES (%s, %s, %s, %s, 'failed', %s, %s, %s)"
                ).format(db.table(config.db_schema, "scoring_runs")),
                (run_key, interval_id, run_id, model_version, source, message, started_at),
            )
    except Exception as failure:  # noqa: BLE001 - the original exception is what the caller must see
        log.warning("could not record the failed run for interval %s: %s", interval_id, safe_message(failure))


def _top_reasons(reasons: dict[str, int], limit: int = 5) -> str:
    top = sorted(reasons.items(), key=lambda item: -item[1])[:limit]
    return ", ".join(f"{code} x{count}" for code, count in top) or "none"


# Partitioned scoring (scoring.files_per_partition): plan -> one score_partition per group of input
# files (Airflow dynamic task mapping; each retried alone) -> publish_partitions. Partitions write
# into prediction_rows under the plan's run_key (tagged with their partition number), invisible to
# readers until published; publishing checks that every partition is there and adds up, runs the
# interval-level checks, and moves the interval's current_run_key in one transaction (no copy), so
# readers see the previous contents or the new ones, never a mix of partitions.


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
    from driftline.sources import input_files

    config = load_config(config_path)
    start, end = _utc(interval_start), _utc(interval_end)
    source = config.input_location(start, end)
    files = input_files(source)
    size = config.files_per_partition
    single = {"mode": "single", "files": len(files), "partitions": []}
    if not size or len(files) <= size:
        return single
    groups = [files[i : i + size] for i in range(0, len(files), size)]
    schema = config.db_schema
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, application_name=f"driftline plan_partitions {run_id}", autocommit=True) as conn:
        db.ensure_schema(conn, schema)
        interval_id = _interval_id(conn, schema, start, end)
        where = {"dag_id": "score_batch", "task_id": "plan_partitions", "run_id": run_id,
                 "interval_start": start, "interval_end": end}
        model, requested, fallback_reason = _load_scoring_model(conn, config, model_version, end, where)
        run_key = _new_run_key(conn, schema)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (run_key, interval_id, run_id, partitions, files, model_version, requested_version, "
                "fallback_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            ).format(db.table(schema, "partition_plans")),
            (run_key, interval_id, run_id, len(groups), Jsonb([[str(f) for f in g] for g in groups]), model.version,
             requested, fallback_reason),
        )
    log.info("interval [%s, %s): %d files in %d partitions (run_key %s, model v%s)", start.isoformat(), end.isoformat(),
             len(files), len(groups), run_key, model.version)
    return {
        "mode": "partitioned",
        "files": len(files),
        "run_key": run_key,
        "model_version": model.version,
        "partitions": [{"run_key": run_key, "partition": i, "files": [str(f) for f in group]} for i, group in enumerate(groups)],
    }


def score_partition(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, partition: dict) -> dict:
    """Score one partition into prediction_rows under the plan's run_key (unpublished until
    publish_partitions), replacing any earlier attempt of the same partition."""
    config = load_config(config_path)
    start, end = _utc(interval_start), _utc(interval_end)
    schema = config.db_schema
    run_key, number, files = int(partition["run_key"]), int(partition["partition"]), partition["files"]
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    started_at = datetime.now(timezone.utc)
    source = config.input_location(start, end)
    with _read_ahead(source, config, start, end, files=[Path(f) for f in files]) as chunks, db.connect(
        url, application_name=f"driftline score_partition {run_key}:{number}", autocommit=True
    ) as conn:
        plan = conn.execute(
            sql.SQL("SELECT interval_id, model_version FROM {} WHERE run_key = %s").format(db.table(schema, "partition_plans")),
            (run_key,),
        ).fetchone()
        if plan is None:
            raise PartitionError(f"partition plan {run_key} not found (already published or superseded)")
        interval_id, version = plan
        model = load_model(conn, schema, version, scoring_only=True)  # the plan chose (and could load) it: no fallback here
        result = IntervalResult(start.isoformat(), end.isoformat(), source, model.version)
        t = time.perf_counter()
        validator = Validator(config)
        result.stage_seconds["load_suite"] += time.perf_counter() - t
        scorer = Scorer(model, config)  # compiled once per model version and machine, then cached
        result.stage_seconds["compile_model"] += scorer.compile_seconds
        destination = _Destination.staging(interval_id, run_key, number)
        with tempfile.TemporaryFile() as spill, conn.transaction():
            # A share lock on the plan row until this partition commits: publish_partitions takes it
            # exclusively, so it never counts a partition that is still writing (a zombie try of an
            # already retried partition included), and a partition starting after the publish
            # commits sees it (checked here, under the lock) and refuses.
            conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE run_key = %s FOR SHARE").format(db.table(schema, "partition_plans")),
                (run_key,),
            )
            _refuse_published_plan(conn, schema, interval_id, run_key)
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"driftline-partition:{schema}:{run_key}:{number}",))
            for name in ("prediction_rows", "prediction_reason_rows", "quarantine_rows", "partition_runs"):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE run_key = %s AND partition = %s").format(db.table(schema, name)),
                    (run_key, number),
                )
            _score_input(conn, config, scorer, validator, result, destination, spill, chunks)
            spill.seek(0)
            db.copy_csv(conn, db.table(schema, "quarantine_rows"), QUARANTINE_COLUMNS, spill)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (run_key, partition, run_id, rows_in, rows_scored, rows_quarantined, stage_seconds, "
                    "score_state, reasons, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(db.table(schema, "partition_runs")),
                (run_key, number, run_id, result.rows_in, result.rows_scored, result.rows_quarantined,
                 Jsonb({k: round(v, 4) for k, v in result.stage_seconds.items()}), Jsonb(result.stats.state()),
                 Jsonb(dict(result.reasons)), started_at),
            )
    summary = {**result.summary(), "partition": number, "files": len(files)}
    log.info("scored partition %s of run_key %s: %s", number, run_key, json.dumps(summary, ensure_ascii=False))
    return summary


def publish_partitions(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str, run_key: int) -> dict:
    """Check every partition of the plan is there and adds up, run the interval-level checks
    (quarantine budget, score distribution), then replace the interval with the staged rows."""
    config = load_config(config_path)
    start, end = _utc(interval_start), _utc(interval_end)
    schema = config.db_schema
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    label = f"[{start.isoformat()}, {end.isoformat()})"
    with db.connect(url, application_name=f"driftline publish_partitions {run_id}", autocommit=True) as conn:
        with db.interval_lock(conn, schema, label):
            interval_id, partitions, version, requested, fallback_reason, files, planned_at = conn.execute(
                sql.SQL(
                    "SELECT interval_id, partitions, model_version, requested_version, fallback_reason, files, planned_at "
                    "FROM {} WHERE run_key = %s"
                ).format(db.table(schema, "partition_plans")),
                (run_key,),
            ).fetchone()
            published = _published_summary(conn, schema, interval_id, run_key)
            if published is not None:
                # A retry of a publish that committed (the task died before reporting success).
                log.info("plan %s is already published: %s", run_key, json.dumps(published, default=str))
                return published
            result = IntervalResult(start.isoformat(), end.isoformat(), config.input_location(start, end), version,
                                    requested_version=requested, fallback_reason=fallback_reason)
            try:
                with conn.transaction():
                    # Waits for every partition still writing (each holds a share lock on the plan
                    # row), then counts and swaps in the same transaction: nothing changes in between.
                    conn.execute(
                        sql.SQL("SELECT 1 FROM {} WHERE run_key = %s FOR UPDATE").format(db.table(schema, "partition_plans")),
                        (run_key,),
                    )
                    _gather_partitions(conn, config, run_key, interval_id, partitions, result)
                    over_budget = result.rows_quarantined > config.quarantine_budget * result.rows_in
                    if over_budget:
                        raise QuarantineBudgetExceeded(
                            f"quarantine budget exceeded for {result.source_uri}: {result.rows_quarantined} of "
                            f"{result.rows_in} rows ({result.rows_quarantined / result.rows_in:.1%}) failed validation over "
                            f"{partitions} partitions; the budget is {config.quarantine_budget:.1%}. Top reasons: "
                            f"{_top_reasons(result.reasons)}. The quarantined rows are in {schema}.quarantine_rows (run_key "
                            f"{run_key}); the interval's previous predictions are unchanged."
                        )
                    result.distribution_check = check_distribution(result.stats, _manifest(conn, schema, version), config)
                    _swap_in_partitions(conn, config, interval_id, run_key, partitions, run_id, result, planned_at)
            except Exception as exc:
                _record_failed_run(conn, config, interval_id, run_key, run_id, planned_at, result.source_uri, version, exc, result)
                if isinstance(exc, OutputSanityError):
                    exc.alert_id = raise_alert(config, "output_sanity", "critical", str(exc), exc.numbers, dag_id="score_batch",
                                               task_id="publish_partitions", run_id=run_id, interval_start=start, interval_end=end)
                raise
    summary = {**result.summary(), "partitions": partitions, "files": sum(len(group) for group in files)}
    log.info("published interval %s from %d partitions: %s", label, partitions, json.dumps(summary, ensure_ascii=False))
    return summary


def _gather_partitions(conn, config, run_key: int, interval_id: int, partitions: int, result: IntervalResult) -> None:
    """Sum the partitions' counts, timings and score stats into result; refuse a plan that is incomplete,
    superseded, or whose stored rows do not match its counts."""
    schema = config.db_schema
    current = conn.execute(
        sql.SQL("SELECT current_run_key FROM {} WHERE interval_id = %s").format(db.table(schema, "scored_intervals")),
        (interval_id,),
    ).fetchone()[0]
    _refuse_published_plan(conn, schema, interval_id, run_key, current)
    rows = conn.execute(
        sql.SQL(
            "SELECT partition, rows_in, rows_scored, rows_quarantined, stage_seconds, score_state, reasons FROM {} "
            "WHERE run_key = %s ORDER BY partition"
        ).format(db.table(schema, "partition_runs")),
        (run_key,),
    ).fetchall()
    missing = sorted(set(range(partitions)) - {row[0] for row in rows})
    if missing:
        raise PartitionError(f"plan {run_key}: partition(s) {missing} of {partitions} have not been scored; nothing was published")
    for _, rows_in, scored, quarantined, stages, state, reasons in rows:
        result.rows_in += rows_in
        result.rows_scored += scored
        result.rows_quarantined += quarantined
        for stage, seconds in stages.items():
            result.stage_seconds[stage] += seconds  # summed over partitions: work, not wall time
        for code, count in reasons.items():
            result.reasons[code] += count
        result.stats.merge(ScoreStats(**state))
    staged, quarantined = conn.execute(
        sql.SQL(
            "SELECT (SELECT count(*) FROM {p} WHERE run_key = %s), (SELECT count(*) FROM {q} WHERE run_key = %s)"
        ).format(p=db.table(schema, "prediction_rows"), q=db.table(schema, "quarantine_rows")),
        (run_key, run_key),
    ).fetchone()
    if staged != result.rows_scored or quarantined != result.rows_quarantined:
        raise PartitionError(
            f"plan {run_key} does not add up: partitions report {result.rows_scored} scored and "
            f"{result.rows_quarantined} quarantined rows, the database holds {staged} and {quarantined}"
        )


def _published_summary(conn, schema: str, interval_id: int, run_key: int) -> dict | None:
    """The run summary when this plan is the interval's published attempt, else None."""
    row = conn.execute(
        sql.SQL(
            "SELECT r.run_id, r.model_version, r.rows_in, r.rows_scored, r.rows_quarantined, r.partitions FROM {} r "
            "JOIN {} i ON i.current_run_key = r.run_key WHERE i.interval_id = %s AND r.run_key = %s "
            "AND r.status = 'succeeded'"
        ).format(db.table(schema, "scoring_runs"), db.table(schema, "scored_intervals")),
        (interval_id, run_key),
    ).fetchone()
    if row is None:
        return None
    keys = ("run_id", "model_version", "rows_in", "rows_scored", "rows_quarantined", "partitions")
    return {**dict(zip(keys, row)), "already_published": True}


def _refuse_published_plan(conn, schema: str, interval_id: int, run_key: int, current: int | None = None) -> None:
    """A plan is scored and published once: after publishing its rows are the interval's published
    rows (a partition retried then would change them), and a later attempt's publication must not be
    overwritten by an older plan."""
    if current is None:
        current = conn.execute(
            sql.SQL("SELECT current_run_key FROM {} WHERE interval_id = %s").format(db.table(schema, "scored_intervals")),
            (interval_id,),
        ).fetchone()[0]
    if current is not None and current >= run_key:
        what = "was already published" if current == run_key else f"is superseded by a later attempt (run_key {current})"
        raise PartitionError(
            f"partition plan {run_key} {what}; to rescore the interval, clear the whole score_batch run "
            "(plan_partitions and everything downstream), not one partition"
        )


def _manifest(conn, schema: str, version: int) -> dict | None:
    row = conn.execute(
        sql.SQL("SELECT manifest -> 'score_reference' FROM {} WHERE version = %s").format(db.table(schema, "model_versions")),
        (version,),
    ).fetchone()
    return row[0] if row else None


def _swap_in_partitions(conn, config, interval_id: int, run_key: int, partitions: int, run_id: str, result, planned_at) -> None:
    """Inside one transaction: publish the plan's rows (already in prediction_rows under its
    run_key) in place of the interval's previous attempt, replace its quarantine, record the run."""
    schema = config.db_schema
    t = time.perf_counter()
    _delete_replaced_predictions(conn, schema, interval_id, run_key, result.stage_seconds)
    conn.execute(
        # Older attempts only: a newer plan of the interval may be scoring its partitions right now.
        sql.SQL("DELETE FROM {} WHERE interval_id = %s AND run_key < %s").format(db.table(schema, "quarantine_rows")),
        (interval_id, run_key),
    )
    result.stage_seconds["publish_partitions"] += time.perf_counter() - t
    # An earlier publish attempt of this plan that failed (and was recorded) gives way to this one.
    conn.execute(
        sql.SQL("DELETE FROM {} WHERE run_key = %s AND status = 'failed'").format(db.table(schema, "scoring_runs")), (run_key,)
    )
    _insert_run(conn, config, interval_id, run_key, run_id, "succeeded", result, planned_at, None)
    conn.execute(
        sql.SQL("UPDATE {} SET partitions = %s WHERE run_key = %s").format(db.table(schema, "scoring_runs")),
        (partitions, run_key),
    )
    conn.execute(
        sql.SQL("UPDATE {} SET current_run_key = %s WHERE interval_id = %s").format(db.table(schema, "scored_intervals")),
        (run_key, interval_id),
    )


def check_interval(config_path: str, interval_start: datetime, interval_end: datetime) -> dict:
    """Re-read the published interval from Postgres and assert rows_in = rows_scored + rows_quarantined."""
    config = load_config(config_path)
    start, end = _utc(interval_start), _utc(interval_end)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    schema = config.db_schema
    with db.connect(url) as conn:
        row = conn.execute(
            sql.SQL(
                """SELECT r.run_key, r.run_id, r.model_version, r.rows_in, r.rows_scored, r.rows_quarantined,
                          (SELECT count(*) FROM {p} p WHERE p.run_key = i.current_run_key),
                          (SELECT count(*) FROM {q} q WHERE q.interval_id = i.interval_id
                                                          AND q.run_key = i.current_run_key)
                   FROM {i} i JOIN {r} r ON r.run_key = i.current_run_key
                   WHERE i.interval_start = %s AND i.interval_end = %s"""
            ).format(
                p=db.table(schema, "prediction_rows"),
                q=db.table(schema, "quarantine_rows"),
                i=db.table(schema, "scored_intervals"),
                r=db.table(schema, "scoring_runs"),
            ),
            (start, end),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"interval [{start.isoformat()}, {end.isoformat()}) has no published predictions")
    run_key, run_id, version, rows_in, rows_scored, rows_quarantined, stored_predictions, stored_quarantine = row
    if rows_in != rows_scored + rows_quarantined or stored_predictions != rows_scored or stored_quarantine != rows_quarantined:
        raise RuntimeError(
            f"interval [{start.isoformat()}, {end.isoformat()}) does not add up: rows_in={rows_in}, "
            f"rows_scored={rows_scored} (stored {stored_predictions}), rows_quarantined={rows_quarantined} "
            f"(stored {stored_quarantine})"
        )
    return {
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
        "run_id": run_id,
        "model_version": version,
        "rows_in": rows_in,
        "rows_scored": rows_scored,
        "rows_quarantined": rows_quarantined,
    }
