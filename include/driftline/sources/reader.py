"""Reading an interval (typed chunks, with the interval and duplicate-key checks) or a whole table (training
history, labels) under the reading contract."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftline.config import DatasetConfig, SourceSettings, SqlInput, SqlInterval
from driftline.sources.chunk import MALFORMED_RECORD, Batch, Chunk, InputError, InputMissingError
from driftline.sources.csv_records import csv_batches
from driftline.sources.files import InputFile, as_input_file, check_columns, input_files, input_format, local_path
from driftline.sources.objects import is_object_url
from driftline.sources.parquet import parquet_batches
from driftline.sources.types import add_failures, coerce, repeats

_UTC = pa.timestamp("us", tz="UTC")


def read_interval(
    location: str | SqlInterval,
    config: DatasetConfig,
    interval_start: datetime,
    interval_end: datetime,
    files: list[str | InputFile] | None = None,
) -> Iterator[Chunk]:
    """Yield typed chunks of the interval input (every file of it, or the given subset, in order;
    or a SQL query's result); raise InputError for table-level failures."""
    kinds = _interval_kinds(config)
    if isinstance(location, SqlInterval):
        from driftline.sources.sql import sql_chunks

        chunks = sql_chunks(location, config, kinds)
    else:
        chunks = _file_chunks(location, config, interval_start, interval_end, kinds, files)
    for chunk in chunks:
        times = chunk.typed[config.event_time]
        outside = pc.or_(
            pc.less(times, pa.scalar(interval_start, _UTC)), pc.greater_equal(times, pa.scalar(interval_end, _UTC))
        )
        add_failures(
            chunk.failures,
            pc.fill_null(outside, False).to_numpy(zero_copy_only=False),
            f"outside_interval:{config.event_time}",
        )
        add_failures(chunk.failures, repeats(chunk.typed[config.entity_key]), f"duplicate_key:{config.entity_key}")
        yield chunk


def _file_chunks(
    location: str,
    config: DatasetConfig,
    interval_start: datetime,
    interval_end: datetime,
    kinds: dict[str, str],
    files: list[str | InputFile] | None,
) -> Iterator[Chunk]:
    conn_id = config.source.storage_conn_id
    paths = input_files(location, conn_id) if files is None else [as_input_file(f, conn_id) for f in files]
    if not paths:
        raise InputMissingError(
            f"input not found: {_where(location)} (rendered from [source] input in {config.path.name} "
            f"for interval {interval_start:%Y-%m-%d %H:%M} .. {interval_end:%Y-%m-%d %H:%M}). "
            "Check that the upstream export for this interval has landed."
        )
    for path in paths:
        yield from _read_file(path, config, kinds, config.input_columns)


def _where(location: str) -> str:
    return location if is_object_url(location) else str(local_path(location))


def _interval_kinds(config: DatasetConfig) -> dict[str, str]:
    """Column -> kind (text, numeric, timestamp, auto) of the configured columns."""
    kinds = {config.entity_key: "text", config.event_time: "timestamp"}
    for feature in config.features:
        kinds[feature.name] = "numeric" if feature.type == "numeric" else "text"
    return kinds


def _read_file(path: InputFile, config: DatasetConfig, kinds: dict[str, str], required: list[str]) -> Iterator[Chunk]:
    """Typed chunks of one file; kinds: the columns to type (others stay in `raw` only, except that
    whole-table reads ask for them as auto)."""
    if isinstance(path, Path) and not path.is_file():  # an object gone since listing fails when opened
        raise InputMissingError(f"input file not found: {path}")
    from_csv = input_format(path) == "csv"
    batches = _batches(
        path, config.source, config.chunk_rows, lambda names: check_columns(path, names, config, required)
    )
    row_number = 0
    seen_rows = False
    for batch in batches:
        if batch.table.num_rows == 0 and not batch.malformed:
            continue
        seen_rows = True
        failures: dict[int, list[str]] = {}
        typed = coerce(batch.table, failures, config.source, path, kinds, from_csv, batch.may_hold_nul)
        yield Chunk(
            raw=batch.table,
            typed=typed,
            first_row_number=row_number,
            failures=failures,
            malformed=batch.malformed,
            source=str(path),
            row_numbers=batch.row_numbers,
        )
        row_number += batch.table.num_rows
    if not seen_rows:
        raise InputError(f"{path}: input has no data rows (header only or empty). Nothing was written.")


def _batches(path: InputFile, settings: SourceSettings, chunk_rows: int, check) -> Iterator[Batch]:
    """Raw batches of one file; check(column names) runs once the header or schema is known."""
    if input_format(path) == "csv":
        return csv_batches(path, settings, chunk_rows, check)
    return parquet_batches(path, chunk_rows, check)


@dataclass
class TableRead:
    """A whole file read under the contract: typed rows, their reading failures, malformed lines."""

    frame: pd.DataFrame  # every row that parsed as a record, typed (failed cells are null)
    failures: dict[int, list[str]]  # frame position -> reason codes
    malformed: list[tuple[str, int, str]]  # (file, line, raw text)
    rows_in: int  # records in the file(s) as a person counts them

    @property
    def reasons(self) -> dict[str, int]:
        """Reason code -> rows, malformed records included."""
        counts: dict[str, int] = {}
        for codes in self.failures.values():
            for code in sorted(set(codes)):
                counts[code] = counts.get(code, 0) + 1
        if self.malformed:
            counts[MALFORMED_RECORD] = len(self.malformed)
        return counts

    def clean(self) -> pd.DataFrame:
        """The rows that read without a failure (the others are counted in `reasons`)."""
        if not self.failures:
            return self.frame
        keep = np.ones(len(self.frame), dtype=bool)
        keep[list(self.failures)] = False
        return self.frame[keep].reset_index(drop=True)


def read_table(
    location: str | SqlInput, config: DatasetConfig | None = None, required: list[str] | None = None
) -> TableRead:
    """Read a whole (small) file or directory under the reading contract: the configured columns
    typed as for scoring (no interval or duplicate checks), other columns as auto (numbers when
    every cell is one, else text). Without a config: default reading options, every column auto.
    A header-only file is an empty table here (no labels yet is a state, not an error)."""
    settings = config.source if config is not None else SourceSettings()
    known = _interval_kinds(config) if config is not None else {}
    if isinstance(location, SqlInput):
        from driftline.sources.sql import sql_table

        frame, failures = sql_table(location, settings, known, config, required)
        return TableRead(frame, failures, [], len(frame))
    paths = input_files(location, settings.storage_conn_id)
    if not paths:
        raise InputMissingError(f"input not found: {_where(location)}")
    frames, failures = [], {}
    malformed: list[tuple[str, int, str]] = []
    offset = 0
    for path in paths:
        # Typed once over the whole file, so an auto column gets one type for all its rows.
        header: list[str] = []

        def check(names: list[str], path: InputFile = path, header: list[str] = header) -> None:
            header.extend(names)
            if required and config is not None:
                check_columns(path, names, config, required)

        batches = _batches(path, settings, 1 << 30, check)
        raws, nul = [], False
        for batch in batches:
            raws.append(batch.table)
            malformed.extend((str(path), line, text) for line, text in batch.malformed)
            nul = nul or batch.may_hold_nul
        raw = pa.concat_tables(raws) if raws else pa.schema([(n, pa.string()) for n in header]).empty_table()
        chunk_failures: dict[int, list[str]] = {}
        kinds = {name: known.get(name, "auto") for name in raw.column_names}
        typed = coerce(raw, chunk_failures, settings, path, kinds, input_format(path) == "csv", nul)
        failures.update({offset + position: codes for position, codes in chunk_failures.items()})
        frames.append(typed.to_pandas())
        offset += typed.num_rows
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return TableRead(frame, failures, malformed, len(frame) + len(malformed))
