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

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.types.json import Jsonb

from . import db
from .config import load_config
from .registry import load_model, version_for_interval
from .scoring import Scorer, check_scores, predicted_class
from .sources import MALFORMED_ROW, Chunk, InputError, read_interval
from .validation import Validator

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ["interval_id", "entity_key", "score", "predicted_class"]
QUARANTINE_COLUMNS = ["interval_id", "run_key", "row_number", "entity_key", "reason_codes", "raw_row"]


class QuarantineBudgetExceeded(RuntimeError):
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
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    reasons: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self) -> dict:
        """Small, JSON-safe summary (what goes through XCom and into logs)."""
        return {
            "interval_start": self.interval_start,
            "interval_end": self.interval_end,
            "source_uri": self.source_uri,
            "model_version": self.model_version,
            "scoring_engine": self.scoring_engine,
            "rows_in": self.rows_in,
            "rows_scored": self.rows_scored,
            "rows_quarantined": self.rows_quarantined,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "quarantine_reasons": dict(self.reasons),
        }


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def prepare_database(config_path: str) -> str:
    """Create the deployment's schema if needed; returns the masked database URL."""
    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        db.ensure_schema(conn, config.db_schema)
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
    with db.connect(url, application_name=f"driftline score_interval {run_id}", autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        label = f"[{start.isoformat()}, {end.isoformat()})"
        with db.interval_lock(conn, config.db_schema, label):
            interval_id = _interval_id(conn, config.db_schema, start, end)
            run_key = conn.execute(
                sql.SQL("SELECT nextval(pg_get_serial_sequence(%s, 'run_key'))"),
                (db.table(config.db_schema, "scoring_runs").as_string(conn),),
            ).fetchone()[0]
            source = config.input_location(start, end)
            chosen = model_version
            try:
                # Default: the version that was champion when the interval ended, so a backfill
                # rescores with the then-champion; the model_version Param pins one instead.
                chosen = model_version if model_version is not None else version_for_interval(conn, config.db_schema, end)
                model = load_model(conn, config.db_schema, chosen)
                result = IntervalResult(start.isoformat(), end.isoformat(), source, model.version)
                _replace_interval(conn, config, model, result, interval_id, run_key, run_id, started_at, start, end)
            except QuarantineBudgetExceeded:
                raise
            except Exception as exc:
                _record_failed_run(conn, config, interval_id, run_key, run_id, started_at, source, chosen, exc)
                raise
    log.info("scored interval %s: %s", label, json.dumps(result.summary()))
    return result.summary()


def _interval_id(conn, schema: str, start: datetime, end: datetime) -> int:
    return conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end) VALUES (%s, %s) "
            "ON CONFLICT (interval_start, interval_end) DO UPDATE SET interval_start = EXCLUDED.interval_start "
            "RETURNING interval_id"
        ).format(db.table(schema, "scored_intervals")),
        (start, end),
    ).fetchone()[0]


def _replace_interval(conn, config, model, result, interval_id, run_key, run_id, started_at, start, end) -> None:
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
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE interval_id = %s").format(db.table(schema, "prediction_rows")),
                (interval_id,),
            )
            target = db.table(schema, "prediction_rows")
            try:
                chunks = _Prefetched(read_interval(result.source_uri, config, start, end))
                with db.BackgroundCopy(conn, target, PREDICTION_COLUMNS, order_by="entity_key") as writer, chunks:
                    t = time.perf_counter()
                    for chunk in chunks:
                        stages["wait_for_input"] += time.perf_counter() - t
                        _score_chunk(config, scorer, validator, chunk, result, interval_id, run_key, spill, writer)
                        t = time.perf_counter()
                    t = time.perf_counter()
                stages["read"] += chunks.seconds  # overlapped with the stages above
            except psycopg.errors.UniqueViolation as exc:
                # Repeats inside one chunk are quarantined; this is a repeat further apart than that.
                raise InputError(
                    f"{result.source_uri}: an entity key appears more than once, more than "
                    f"scoring.chunk_rows={config.chunk_rows} rows apart; nothing was written. Deduplicate the "
                    "export (the key itself is not logged), or raise chunk_rows."
                ) from exc
            stages["wait_for_writes"] += time.perf_counter() - t
            result.scoring_engine = scorer.engine  # after the loop: a parity mismatch switches engines
            stages["write_predictions"] += writer.seconds  # overlapped with the stages above
            over_budget = result.rows_quarantined > config.quarantine_budget * result.rows_in
            if over_budget:
                raise psycopg.Rollback()  # the interval keeps its previous predictions
            _write_quarantine(conn, schema, interval_id, spill, result, published=True)
            _insert_run(conn, schema, interval_id, run_key, run_id, "succeeded", result, started_at, None)
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
            _write_quarantine(conn, schema, interval_id, spill, result, published=False)
            _insert_run(conn, schema, interval_id, run_key, run_id, "failed", result, started_at, message)
    raise QuarantineBudgetExceeded(message)


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


def _score_chunk(config, scorer, validator, chunk: Chunk, result, interval_id, run_key, spill, writer) -> None:
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
    stages["predict"] += time.perf_counter() - t

    writer.submit(
        pa.table(
            {
                "interval_id": pa.array(np.full(good.num_rows, interval_id, dtype="int32")),
                "entity_key": good[config.entity_key],
                "score": pa.array(scores, type=pa.float64()),
                "predicted_class": _class_column(scores, config),
            }
        )
    )

    t = time.perf_counter()
    _spill_quarantine(config, chunk, failures, bad, interval_id, run_key, spill, result)
    stages["quarantine"] += time.perf_counter() - t
    result.rows_in += rows.num_rows + len(chunk.malformed)
    result.rows_scored += good.num_rows


def _class_column(scores: np.ndarray, config) -> pa.Array:
    classes = predicted_class(scores, config)
    return pa.nulls(len(scores), pa.int16()) if classes is None else pa.array(classes, type=pa.int16())


def _spill_quarantine(config, chunk: Chunk, failures, bad, interval_id, run_key, spill, result) -> None:
    """Append quarantined rows (raw values as read, with reason codes) to the spill file as CSV."""
    rows = []
    if failures:
        positions = np.flatnonzero(bad)
        raw = chunk.raw.take(pa.array(positions)).to_pylist()
        for position, raw_row in zip(positions, raw):
            codes = sorted(set(failures[int(position)]))
            rows.append((chunk.first_row_number + int(position) + 1, raw_row.get(config.entity_key), codes, raw_row))
    for line_number, text in chunk.malformed:
        rows.append((line_number, None, [MALFORMED_ROW], {"line": text}))
    if not rows:
        return
    keys, numbers, reasons, raws = [], [], [], []
    for number, key, codes, raw_row in rows:
        numbers.append(number)
        keys.append(None if key is None else str(key))
        reasons.append("{" + ",".join(json.dumps(code) for code in codes) + "}")
        raws.append(_raw_json(raw_row))
        for code in codes:
            result.reasons[code] += 1
    table = pa.table(
        {
            "interval_id": pa.array([interval_id] * len(rows), type=pa.int32()),
            "run_key": pa.array([run_key] * len(rows), type=pa.int64()),
            "row_number": pa.array(numbers, type=pa.int64()),
            "entity_key": pa.array(keys, type=pa.string()),
            "reason_codes": pa.array(reasons, type=pa.string()),
            "raw_row": pa.array(raws, type=pa.string()),
        }
    )
    spill.write(db.arrow_to_csv_bytes(table))
    result.rows_quarantined += len(rows)


def _raw_json(raw_row: dict) -> str:
    """JSON has no NaN/inf: such values keep their text so the raw row survives intact."""
    return json.dumps(
        {k: (str(v) if isinstance(v, float) and not np.isfinite(v) else v) for k, v in raw_row.items()}, default=str
    )


def _write_quarantine(conn, schema: str, interval_id: int, spill, result, published: bool) -> None:
    """Replace the interval's quarantine rows with this run's.

    A run over budget publishes nothing, so the published run's quarantine rows stay beside its
    own (readers tell them apart by run_key); only rows of earlier unpublished attempts go.
    """
    t = time.perf_counter()
    quarantine, intervals = db.table(schema, "quarantine_rows"), db.table(schema, "scored_intervals")
    if published:
        conn.execute(sql.SQL("DELETE FROM {} WHERE interval_id = %s").format(quarantine), (interval_id,))
    else:
        conn.execute(
            sql.SQL(
                "DELETE FROM {} q WHERE q.interval_id = %s AND q.run_key IS DISTINCT FROM "
                "(SELECT current_run_key FROM {} WHERE interval_id = %s)"
            ).format(quarantine, intervals),
            (interval_id, interval_id),
        )
    spill.seek(0)
    db.copy_csv(conn, db.table(schema, "quarantine_rows"), QUARANTINE_COLUMNS, spill)
    result.stage_seconds["write_quarantine"] += time.perf_counter() - t


def _insert_run(conn, schema, interval_id, run_key, run_id, status, result, started_at, message) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (run_key, interval_id, run_id, model_version, status, rows_in, rows_scored, "
            "rows_quarantined, stage_seconds, source_uri, message, started_at, scoring_engine) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(db.table(schema, "scoring_runs")),
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
            result.scoring_engine or None,
        ),
    )


def _record_failed_run(conn, config, interval_id, run_key, run_id, started_at, source, model_version, exc) -> None:
    """Keep a failed attempt in the run summary; best effort, never hides the original error."""
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (run_key, interval_id, run_id, model_version, status, source_uri, message, "
                    "started_at) VALUES (%s, %s, %s, %s, 'failed', %s, %s, %s)"
                ).format(db.table(config.db_schema, "scoring_runs")),
                (run_key, interval_id, run_id, model_version, source, f"{type(exc).__name__}: {exc}"[:2000], started_at),
            )
    except Exception:  # noqa: BLE001 - the original exception is what the caller must see
        log.warning("could not record the failed run for interval %s", interval_id, exc_info=True)


def _top_reasons(reasons: dict[str, int], limit: int = 5) -> str:
    top = sorted(reasons.items(), key=lambda item: -item[1])[:limit]
    return ", ".join(f"{code} x{count}" for code, count in top) or "none"


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
                          (SELECT count(*) FROM {p} p WHERE p.interval_id = i.interval_id),
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
