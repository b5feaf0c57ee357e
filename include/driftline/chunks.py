"""Score an attempt's input chunks: validate -> predict -> COPY the predictions, quarantined rows spilled as CSV."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable
from typing import IO

import numpy as np
import psycopg
import pyarrow as pa

from driftline import db
from driftline.attempt import Attempt, Counts, Destination
from driftline.config import DatasetConfig
from driftline.db.runs import QUARANTINE_COLUMNS
from driftline.scoring.engine import Scorer
from driftline.scoring.safeguards import check_scores, predicted_class
from driftline.sources import MALFORMED_RECORD, Chunk, InputError
from driftline.sources.chunk import python_rows
from driftline.validation import Validator


def score_input(
    conn,
    attempt: Attempt,
    scorer: Scorer,
    validator: Validator,
    spill: IO[bytes],
    chunks: Iterable[Chunk],
    before_writes: Callable[[], None] | None = None,
) -> None:
    """Validate -> predict -> COPY the chunks into the attempt's destination, inside the caller's
    transaction; quarantined rows go to spill (before_writes: run on the writer's connection ahead of
    the first COPY). chunks: a read-ahead reader (its `seconds` is the reading time)."""
    config, counts, destination = attempt.config, attempt.counts, attempt.destination
    stages = counts.stage_seconds
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
                _score_chunk(config, scorer, validator, chunk, attempt.source_uri, counts, destination, spill, writer)
                t = time.perf_counter()
            t = time.perf_counter()
        stages["read"] += chunks.seconds  # overlapped with the stages above
    except psycopg.errors.UniqueViolation as exc:
        # Repeats inside one chunk are quarantined; this is a repeat further apart than that.
        if destination.partition is not None:
            raise InputError(
                f"{attempt.source_uri}: an entity key of partition {destination.partition} appears again in "
                f"another partition of the plan, or more than scoring.chunk_rows={config.chunk_rows} rows apart "
                "in its files; nothing was written for this partition. Deduplicate the export (the key itself "
                "is not logged)."
            ) from exc
        raise InputError(
            f"{attempt.source_uri}: an entity key appears more than once, more than "
            f"scoring.chunk_rows={config.chunk_rows} rows apart; nothing was written. Deduplicate the "
            "export (the key itself is not logged), or raise chunk_rows."
        ) from exc
    stages["wait_for_writes"] += time.perf_counter() - t
    counts.scoring_engine = scorer.engine  # after the loop: a parity mismatch switches engines
    stages["write_predictions"] += writer.seconds  # overlapped with the stages above
    if scorer.explainer is not None:
        counts.rows_explained = scorer.explainer.rows


def _score_chunk(
    config: DatasetConfig,
    scorer: Scorer,
    validator: Validator,
    chunk: Chunk,
    source_uri: str,
    counts: Counts,
    destination: Destination,
    spill: IO[bytes],
    writer,
) -> None:
    stages = counts.stage_seconds
    rows = chunk.typed
    t = time.perf_counter()
    failures = chunk.failures
    for index, codes in validator.row_failures(rows, source_uri).items():
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
    counts.stats.add(scores, classes)
    stages["predict"] += time.perf_counter() - t

    constants = {
        name: pa.array(np.full(good.num_rows, value), type=kind) for name, (value, kind) in destination.keys.items()
    }
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
    spill_quarantine(config, chunk, failures, bad, destination, spill, counts)
    stages["quarantine"] += time.perf_counter() - t
    counts.rows_in += rows.num_rows + len(chunk.malformed)
    counts.rows_scored += good.num_rows


def _queue_reasons(config: DatasetConfig, explainer, good, scores, destination: Destination, writer, stages) -> None:
    """TreeSHAP reasons of the chunk's selected rows (LightGBM's threads), COPYed on the writer
    thread in order with the predictions, inside the same transaction."""
    from driftline.scoring.explain import REASON_COLUMNS

    t = time.perf_counter()
    reasons = explainer.reasons(good, scores, {"run_key": destination.key, "partition": destination.partition})
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


def spill_quarantine(
    config: DatasetConfig,
    chunk: Chunk,
    failures: dict[int, list[str]],
    bad: np.ndarray,
    destination: Destination,
    spill: IO[bytes],
    counts: Counts,
) -> None:
    """Append quarantined rows (raw values as read, with reason codes) to the spill file as CSV in
    QUARANTINE_COLUMNS order."""
    rows = []
    if failures:
        positions = np.flatnonzero(bad)
        raw = python_rows(chunk.raw.take(pa.array(positions)))
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
        reasons.append(text_array(codes))
        raws.append(raw_json(raw_row))
        for code in codes:
            counts.reasons[code] += 1
    columns = {
        "interval_id": pa.array([destination.interval_id] * len(rows), type=pa.int32()),
        "run_key": pa.array([destination.key] * len(rows), type=pa.int64()),
        "partition": pa.array([destination.partition] * len(rows), type=pa.int32()),
        "source_file": pa.array([chunk.source or None] * len(rows), type=pa.string()),
        "row_number": pa.array(numbers, type=pa.int64()),
        "entity_key": pa.array(keys, type=pa.string()),
        "reason_codes": pa.array(reasons, type=pa.string()),
        "raw_row": pa.array(raws, type=pa.string()),
    }
    spill.write(
        db.arrow_to_csv_bytes(pa.table([columns[name] for name in QUARANTINE_COLUMNS], names=QUARANTINE_COLUMNS))
    )
    counts.rows_quarantined += len(rows)


def text_array(items: list[str]) -> str:
    """A Postgres text[] literal (for COPY): every element quoted, so names keep every character."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def _raw_value(value):
    """JSON has no NaN/inf: such values keep their text. Postgres cannot store NUL in jsonb, so text
    holding one is kept byte-exact as {"base64": <its UTF-8 bytes>}."""
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    if isinstance(value, str) and "\x00" in value:
        return {"base64": base64.b64encode(value.encode("utf-8")).decode("ascii")}
    return value


def raw_json(raw_row: dict) -> str:
    """The raw row as JSON, non-ASCII kept as is; see _raw_value."""
    return json.dumps({k: _raw_value(v) for k, v in raw_row.items()}, default=str, ensure_ascii=False)
