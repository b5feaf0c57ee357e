"""monitor_drift's samples and its Evidently report: seeded samples of the interval, the report
(per-feature and prediction drift, data quality) and its HTML file, rendered by the render_report
task (drift.html) off the decision's path: the decision reads drift.statistics.

Evidently takes seconds to import: it is imported inside the functions that need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftline.config import DatasetConfig
from driftline.drift.errors import DriftError
from driftline.drift.statistics import SCORE_COLUMN, column_methods
from driftline.sources import read_interval

if TYPE_CHECKING:
    from driftline.drift.interval_rows import IntervalRows


def sample_tables(tables: Iterable[pa.Table], rows: int, seed: int) -> tuple[pa.Table | None, int]:
    """A seeded uniform sample of at most `rows` rows from a stream of Arrow tables, and the rows seen.

    Bottom-k sampling: every row gets a key and the rows with the smallest keys are kept, so memory
    stays at one table plus the sample however long the stream is, and only rows that can still
    enter the sample are copied. The key is a seeded hash of the row's values (row_keys), not a draw
    in stream order: the sample is a function of the set of rows, whatever order or chunking they
    arrive in (a decision must not depend on arrival order). Kept rows are in key order. Identical
    rows share a key, so they are kept or left out together up to the sample size; pass a column that
    tells rows apart (the entity key) to sample them independently.
    """
    kept: pa.Table | None = None
    kept_keys = np.empty(0, dtype="uint64")
    seen = 0
    for table in tables:
        seen += table.num_rows
        keys = row_keys(table, seed)
        if kept is not None and kept.num_rows >= rows:
            useful = keys < kept_keys.max()
            table, keys = table.filter(pa.array(useful)), keys[useful]
        if table.num_rows == 0:
            continue
        combined = table if kept is None else pa.concat_tables([kept, table])
        all_keys = np.concatenate([kept_keys, keys])
        pick = np.argpartition(all_keys, rows - 1)[:rows] if len(all_keys) > rows else np.arange(len(all_keys))
        # In key order; among rows with one key (identical rows) which is kept does not matter.
        pick = pick[np.argsort(all_keys[pick], kind="stable")]
        kept, kept_keys = combined.take(pa.array(pick)).combine_chunks(), all_keys[pick]
    return kept, seen


def row_keys(table: pa.Table, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each row's values (all columns, in order; a null hashes apart from
    every value), uint64. Vectorised on the Arrow buffers: numbers by their float64 bits, text by
    a polynomial over its UTF-8 bytes; other types through pandas' hashing."""
    keys = np.full(table.num_rows, _mix(np.array([seed % 2**64], dtype="uint64"))[0], dtype="uint64")
    with np.errstate(over="ignore"):
        for column in table.columns:  # a cheap step per column, the full mix once (6 numeric columns: 3x faster)
            keys = (keys ^ _column_hash(column.combine_chunks())) * np.uint64(0x9E3779B97F4A7C15)
            keys ^= keys >> np.uint64(29)
    return _mix(keys)


def _column_hash(array: pa.Array) -> np.ndarray:
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = pc.cast(array, pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        hashed = np.ascontiguousarray(values, dtype="float64").view("uint64")  # row_keys mixes it
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        # A categorical column repeats a few values: hash its dictionary (measured 8x faster on 1M
        # rows of 3 values); a key column is mostly distinct: hash every string.
        if pc.count_distinct(array.slice(0, 1024)).as_py() * 2 < min(len(array), 1024):
            encoded = pc.dictionary_encode(array)
            values = np.append(_text_hash(encoded.dictionary), np.uint64(0))  # the last one: null
            nulls = len(values) - 1
            hashed = values[encoded.indices.fill_null(nulls).to_numpy(zero_copy_only=False)]
        else:
            hashed = _text_hash(array)
    else:  # rare in a feature table (timestamps, lists): pandas hashes them, slower
        hashed = pd.util.hash_array(array.to_pandas().to_numpy()).astype("uint64")
    if array.null_count:
        hashed = np.where(array.is_null().to_numpy(zero_copy_only=False), np.uint64(0x6E756C6C), hashed)
    return hashed


def _text_hash(array: pa.Array) -> np.ndarray:
    """sum((byte + 1) * P**i) over each string's bytes, mixed with its length: one pass of numpy."""
    width = "int64" if pa.types.is_large_string(array.type) else "int32"
    offsets = np.frombuffer(array.buffers()[1], dtype=width)[array.offset : array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2], dtype="uint8") if array.buffers()[2] else np.empty(0, "uint8")
    data = data[offsets[0] : offsets[-1]]
    starts, lengths = (offsets[:-1] - offsets[0]).astype("int64"), np.diff(offsets).astype("int64")
    sums = np.zeros(len(array), dtype="uint64")
    if len(data):
        position = np.arange(len(data), dtype="int64") - np.repeat(starts, lengths)
        with np.errstate(over="ignore"):
            powers = np.cumprod(np.full(int(lengths.max()), 0x100000001B3, dtype="uint64"))
            terms = (data.astype("uint64") + np.uint64(1)) * powers[position]
        filled = lengths > 0
        sums[filled] = np.add.reduceat(terms, starts[filled])
    return _mix(sums ^ _mix(lengths.astype("uint64")))


def _mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection of uint64 that spreads every input bit over the output."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def evidently_frame(frame: pd.DataFrame, config: DatasetConfig) -> pd.DataFrame:
    """Feature columns typed the way Evidently reads them: float64 and plain text."""
    data = {}
    for feature in config.features:
        column = frame[feature.name]
        if feature.type == "numeric":
            data[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            data[feature.name] = column.astype("object").where(column.notna(), None)
    return pd.DataFrame(data, index=frame.index)


def sample_interval(
    config: DatasetConfig, start: datetime, end: datetime, quarantined: set[str], rows: IntervalRows | None = None
) -> tuple[pd.DataFrame | None, int]:
    """Seeded sample of the interval's scored rows (parse failures and quarantined keys left out).
    rows: also keeps every row that parsed, from the same read, for the segments."""
    settings = config.drift

    excluded = pa.array(sorted(quarantined), type=pa.string())

    def scored_chunks():
        for chunk in read_interval(config.input_location(start, end), config, start, end):
            typed = chunk.typed  # Arrow: only the sampled rows are ever converted to pandas
            keep = np.ones(typed.num_rows, dtype=bool)
            if chunk.failures:
                keep[list(chunk.failures)] = False
            if rows is not None:
                rows.add(typed, keep)
            if len(excluded):
                keep &= ~pc.is_in(typed[config.entity_key], value_set=excluded).to_numpy(zero_copy_only=False)
            yield typed.select(columns).filter(pa.array(keep))

    # The entity key goes into each row's sampling key (rows with the same features stay apart).
    columns = list(dict.fromkeys([config.entity_key, *config.feature_names]))
    sample, seen = sample_tables(scored_chunks(), settings.sample_rows, settings.seed)
    return (None if sample is None else sample.select(config.feature_names).to_pandas()), seen


def run_report(config: DatasetConfig, reference: pd.DataFrame, current: pd.DataFrame):
    """The Evidently snapshot: one ValueDrift per feature and for the score, plus data quality.

    Data quality is DatasetStats (rows, missing, duplicated, empty and constant columns) and the
    missing count per column, not DataSummaryPreset: that preset draws per-column plots for both
    samples and took 4x as long as everything else in the report together (bench/monitor_drift.py).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MissingValueCount, ValueDrift
    from evidently.presets import DatasetStats

    settings = config.drift
    if SCORE_COLUMN in config.feature_names:
        raise DriftError(f"{config.path}: a feature is named {SCORE_COLUMN!r}, the column drift reports use for scores")
    metrics = [
        ValueDrift(column=name, method=method, threshold=threshold)
        for name, _, method, threshold in column_methods(config)
    ]
    metrics.append(
        ValueDrift(column=SCORE_COLUMN, method=settings.prediction_method, threshold=settings.trigger.prediction_drift)
    )
    metrics.append(DatasetStats())
    metrics.extend(MissingValueCount(column=name) for name in config.feature_names)
    definition = DataDefinition(
        numerical_columns=[*config.numeric_features, SCORE_COLUMN], categorical_columns=config.categorical_features
    )
    report = Report(metrics, include_tests=True)
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def report_path(config: DatasetConfig, start: datetime, end: datetime) -> Path:
    return config.drift.reports_dir / f"drift_{start:%Y-%m-%dT%H%M}_{end:%Y-%m-%dT%H%M}.html"


def save_html(snapshot, path: Path) -> None:
    """Write the report atomically, so a browser never opens half of a rerun's file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    snapshot.save_html(str(partial))
    os.replace(partial, path)
