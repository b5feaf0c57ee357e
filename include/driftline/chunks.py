"""One chunk of a scoring run: validate -> predict -> prediction rows (run.ScoringRun.write COPYs
them), quarantined rows spilled as CSV."""

from __future__ import annotations

import base64
import json
import time
from typing import IO, NamedTuple

import numpy as np
import pyarrow as pa

from driftline import db
from driftline.attempt import Counts, Destination
from driftline.config import DatasetConfig
from driftline.db.runs import QUARANTINE_COLUMNS
from driftline.scoring.engine import Scorer
from driftline.scoring.safeguards import check_scores, predicted_class
from driftline.sources import MALFORMED_RECORD, Chunk
from driftline.sources.chunk import python_rows
from driftline.validation import Validator


class ScoredChunk(NamedTuple):
    """One chunk scored: the prediction rows to COPY, and the valid rows and their scores (for [explain])."""

    predictions: pa.Table
    rows: pa.Table  # the chunk's typed rows, bad ones included
    selection: np.ndarray | None  # positions of the valid rows in rows (None: all of them)
    scores: np.ndarray

    @property
    def good(self) -> pa.Table:
        """The valid rows (a copy when some were quarantined: only [explain] asks for it)."""
        return self.rows if self.selection is None else self.rows.take(pa.array(self.selection))


def score_chunk(
    config: DatasetConfig,
    scorer: Scorer,
    validator: Validator,
    chunk: Chunk,
    source_uri: str,
    counts: Counts,
    destination: Destination,
    spill: IO[bytes],
) -> ScoredChunk:
    """Validate and predict one chunk: its valid rows become prediction rows for destination, its
    quarantined rows are appended to spill; counts are updated."""
    stages = counts.stage_seconds
    rows = chunk.typed
    t = time.perf_counter()
    failures = chunk.failures
    for index, codes in validator.row_failures(rows, source_uri).items():
        failures.setdefault(index, []).extend(codes)
    stages["validate"] += time.perf_counter() - t

    t = time.perf_counter()
    bad = np.zeros(rows.num_rows, dtype=bool)
    selection = None  # the chunk is never copied to drop its bad rows: the model matrix skips them
    if failures:
        bad[list(failures)] = True
        selection = np.flatnonzero(~bad)
    scored_rows = rows.num_rows if selection is None else len(selection)
    scores = scorer.predict(rows, selection)
    check_scores(scores, config)  # raising here rolls the interval back to its previous contents
    classes = predicted_class(scores, config)
    counts.stats.add(scores, classes)
    stages["predict"] += time.perf_counter() - t

    constants = {
        name: pa.array(np.full(scored_rows, value), type=kind) for name, (value, kind) in destination.keys.items()
    }
    keys = rows[config.entity_key]
    predictions = pa.table(
        {
            **constants,
            "entity_key": keys if selection is None else keys.take(pa.array(selection)),
            "score": pa.array(scores, type=pa.float64()),
            "predicted_class": _class_column(classes, len(scores)),
        }
    )

    t = time.perf_counter()
    spill_quarantine(config, chunk, failures, bad, destination, spill, counts)
    stages["quarantine"] += time.perf_counter() - t
    counts.rows_in += rows.num_rows + len(chunk.malformed)
    counts.rows_scored += scored_rows
    return ScoredChunk(predictions, rows, selection, scores)


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
        raw = python_rows(rows_at(chunk.raw, positions))
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


def rows_at(table: pa.Table, positions: np.ndarray) -> pa.Table:
    """The rows at positions (ascending), as zero-copy slices of table: one per run of adjacent
    positions. Table.take on a raw chunk (tens of Arrow chunks per column) concatenated every column
    first, copying the whole chunk to quarantine a few rows (0.37 CPU-s per 1M rows). Many scattered
    rows take (a copy in proportion) instead: a slice costs ~25 us, a 200k-row take ~50 ms."""
    if len(positions) == 0:
        return table.slice(0, 0)
    starts = np.flatnonzero(np.diff(positions, prepend=positions[0] - 2) != 1)
    if len(starts) > max(table.num_rows // 100, 64):
        return table.take(pa.array(positions))
    lengths = np.diff(np.append(starts, len(positions)))
    return pa.concat_tables([table.slice(int(positions[s]), int(n)) for s, n in zip(starts, lengths)])


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
