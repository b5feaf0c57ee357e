"""Read one interval's input (CSV or Parquet) in chunks and coerce it to the configured types.

Structural problems (missing file, no rows, missing columns, a column of the wrong type) raise
InputError naming the file and the column. Cell-level problems (text in a numeric column, an
unparseable timestamp, an event outside the interval) become per-row reason codes, so those rows
are quarantined instead of dropped.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .config import DatasetConfig
from .errors import BadInput, NotReady

# A decimal or scientific number, or the spellings of inf/nan that float parsers accept.
_NUMBER = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|inf|infinity|nan)\s*$"
MALFORMED_ROW = "malformed_row"


class InputError(BadInput):
    """The interval input cannot be used as a whole (table-level failure)."""


class InputMissingError(InputError, NotReady):
    """The interval's input file has not landed (yet): worth a retry."""


@dataclass
class Chunk:
    """One block of input rows: raw as read, typed for validation and scoring, and parse failures.

    `typed` holds the configured columns as Arrow arrays: the entity key and categoricals as text,
    numerics as float64, the event time as UTC timestamps; nulls stay nulls.
    """

    raw: pa.Table
    typed: pa.Table
    first_row_number: int
    failures: dict[int, list[str]] = field(default_factory=dict)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (row number, raw text)
    source: str = ""  # the file the rows come from (row numbers count within it)

    @property
    def frame(self) -> pd.DataFrame:
        """The typed rows as pandas (for callers that want a DataFrame; the scoring path does not)."""
        return self.typed.to_pandas()


def local_path(location: str) -> Path:
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme == "file" else location)
    raise InputError(f"unsupported input scheme {parsed.scheme!r} in {location}: use a local path or file:// URI")


_GLOB_CHARACTERS = set("*?[")


def input_files(location: str) -> list[Path]:
    """The files of one interval's input, sorted by name: the file itself, the data files of a
    directory (.csv, .csv.gz, .tsv, .parquet, .pq; hidden and _-prefixed files such as _SUCCESS
    skipped), or the matches of a glob. Missing input gives an empty list."""
    path = local_path(location)
    if _GLOB_CHARACTERS & set(str(path)):
        anchor = Path(path.anchor or ".")
        return sorted(p for p in anchor.glob(str(path.relative_to(anchor))) if p.is_file())
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith((".", "_")) and p.name.lower().endswith(_DATA_SUFFIXES)
        )
    return [path] if path.is_file() else []


_DATA_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")


def _format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise InputError(f"{path}: unknown input format; name the file .csv, .csv.gz or .parquet")


def check_columns(path: Path, present: list[str], config: DatasetConfig) -> None:
    """Fail naming every missing column, with a likely rename or delimiter hint."""
    missing = [c for c in config.input_columns if c not in present]
    if not missing:
        return
    hints = []
    for column in missing:
        close = difflib.get_close_matches(column, [p for p in present if p not in config.input_columns], n=1)
        if close:
            hints.append(f"'{column}' looks renamed to '{close[0]}'")
    if len(present) == 1 and any(sep in present[0] for sep in ";\t|"):
        hints.append("the header is a single column: is the file comma-delimited?")
    raise InputError(
        f"{path}: missing column(s) {missing} required by {config.path.name} "
        f"(found {present}){'; ' + '; '.join(hints) if hints else ''}. "
        "Fix the input or update [features]/[dataset] in the config."
    )


def read_interval(
    location: str,
    config: DatasetConfig,
    interval_start: datetime,
    interval_end: datetime,
    files: list[Path] | None = None,
) -> Iterator[Chunk]:
    """Yield typed chunks of the interval input (every file of it, or the given subset, in order);
    raise InputError for table-level failures."""
    paths = input_files(location) if files is None else files
    if not paths:
        raise InputMissingError(
            f"input not found: {local_path(location)} (rendered from [source] input in {config.path.name} "
            f"for interval {interval_start:%Y-%m-%d %H:%M} .. {interval_end:%Y-%m-%d %H:%M}). "
            "Check that the upstream export for this interval has landed."
        )
    for path in paths:
        yield from _read_file(Path(path), config, interval_start, interval_end)


def _read_file(path: Path, config: DatasetConfig, interval_start: datetime, interval_end: datetime) -> Iterator[Chunk]:
    if not path.is_file():
        raise InputMissingError(f"input file not found: {path}")
    batches = _csv_batches(path, config) if _format(path) == "csv" else _parquet_batches(path, config)
    row_number = 0
    seen_rows = False
    for table, malformed in batches:
        if table.num_rows == 0 and not malformed:
            continue
        seen_rows = True
        failures: dict[int, list[str]] = {}
        typed = _coerce(table, failures, config, path, interval_start, interval_end)
        chunk = Chunk(
            raw=table, typed=typed, first_row_number=row_number, failures=failures, malformed=malformed, source=str(path)
        )
        row_number += table.num_rows
        yield chunk
    if not seen_rows:
        raise InputError(f"{path}: input has no data rows (header only or empty). Nothing was written.")


def _csv_batches(path: Path, config: DatasetConfig) -> Iterator[tuple[pa.Table, list[tuple[int, str]]]]:
    import pyarrow.csv as pacsv

    if path.stat().st_size == 0:
        raise InputError(f"{path}: input file is empty (no header, no rows). Nothing was written.")
    # Arrow's streaming reader keeps dozens of blocks in flight: with 16 MiB blocks it held ~600 MiB
    # (peak RSS 1.16 GiB scoring 5M rows, 0.59 GiB with 1 MiB blocks, same speed). A row must fit in
    # one block, so a single CSV line over 1 MiB fails the file (InputError) instead of one row.
    block_size = 1 << 20
    try:
        header = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 16),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),  # rows are read below
        ).schema.names
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: cannot read the CSV header: {exc}") from exc
    check_columns(path, header, config)

    malformed: list[tuple[int, str]] = []

    def keep_malformed(row) -> str:
        # A short or long line (e.g. a truncated last line) is quarantined, never silently dropped.
        # The threaded reader may not know the line number (-1 then); the raw text is always kept.
        malformed.append((row.number if row.number is not None else -1, row.text))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_size, use_threads=True),
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_malformed),
        # Read everything as text; typing happens per cell in _coerce so one bad cell quarantines
        # one row instead of failing the whole file.
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=True
        ),
    )
    # Chunks are zero-copy slices of the reader's batches (~6k rows each at 1 MiB): every stage
    # works on chunked columns, and combining them into one array per column copied the text of
    # every row again (~0.35 CPU-s per 1M rows).
    rows_per_chunk = config.chunk_rows
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    try:
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= rows_per_chunk:
                table = pa.Table.from_batches(pending, schema=reader.schema)
                yield table.slice(0, rows_per_chunk), _drain(malformed)
                rest = table.slice(rows_per_chunk)
                pending, pending_rows = rest.to_batches(), rest.num_rows
    except pa.ArrowInvalid as exc:
        raise InputError(f"{path}: CSV cannot be parsed: {exc}") from exc
    if pending_rows or malformed:
        table = pa.Table.from_batches(pending, schema=reader.schema) if pending else reader.schema.empty_table()
        yield table, _drain(malformed)


def _drain(items: list) -> list:
    out = list(items)
    items.clear()
    return out


def _parquet_batches(path: Path, config: DatasetConfig) -> Iterator[tuple[pa.Table, list]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    check_columns(path, parquet.schema_arrow.names, config)
    for batch in parquet.iter_batches(batch_size=config.chunk_rows):
        yield pa.Table.from_batches([batch]), []


def _add(failures: dict[int, list[str]], mask: np.ndarray | None, reason: str) -> None:
    if mask is None:
        return
    for index in np.flatnonzero(mask):
        failures.setdefault(int(index), []).append(reason)


def _coerce(
    table: pa.Table,
    failures: dict[int, list[str]],
    config: DatasetConfig,
    path: Path,
    interval_start: datetime,
    interval_end: datetime,
) -> pa.Table:
    keys = _as_text(table[config.entity_key])
    columns: dict[str, pa.ChunkedArray] = {config.entity_key: keys}
    _add(failures, _repeats(keys), f"duplicate_key:{config.entity_key}")
    times, bad = _as_timestamp(table[config.event_time], config.event_time, path)
    _add(failures, bad, f"unparseable_timestamp:{config.event_time}")
    outside = pc.or_(
        pc.less(times, pa.scalar(interval_start, pa.timestamp("us", tz="UTC"))),
        pc.greater_equal(times, pa.scalar(interval_end, pa.timestamp("us", tz="UTC"))),
    )
    _add(failures, pc.fill_null(outside, False).to_numpy(zero_copy_only=False), f"outside_interval:{config.event_time}")
    columns[config.event_time] = times
    for feature in config.features:
        column = table[feature.name]
        if feature.type == "numeric":
            values, bad = _as_float(column, feature.name, path)
            _add(failures, bad, f"not_a_number:{feature.name}")
            columns[feature.name] = values
        else:
            columns[feature.name] = _as_text(column)
    return pa.table(columns)


def _repeats(keys: pa.ChunkedArray) -> np.ndarray | None:
    """Mask of keys seen earlier in the chunk: the first occurrence is scored, the repeats are
    quarantined; nulls are never repeats. None when every key is distinct (the common case)."""
    present = len(keys) - keys.null_count
    if pc.count_distinct(keys, mode="only_valid").as_py() == present:
        return None
    codes = pc.fill_null(pc.dictionary_encode(keys.combine_chunks()).indices, -1).to_numpy(zero_copy_only=False)
    repeated = np.ones(len(codes), dtype=bool)
    repeated[np.unique(codes, return_index=True)[1]] = False  # first position of each code
    repeated[codes == -1] = False
    return repeated


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    return pc.cast(column, pa.string())


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _as_float(column: pa.ChunkedArray, name: str, path: Path) -> tuple[pa.ChunkedArray, np.ndarray | None]:
    """float64 values (null where missing or unparseable) and a mask of unparseable cells (None: all parsed)."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) or pa.types.is_decimal(kind):
        return pc.cast(column, pa.float64()), None
    if not _is_text(kind):
        raise InputError(f"{path}: column '{name}' has type {kind}, expected a numeric column")
    try:
        return pc.cast(column, pa.float64()), None  # fast path: every cell is a number
    except pa.ArrowInvalid:
        pass
    parseable = pc.match_substring_regex(column, _NUMBER, ignore_case=True)
    bad = pc.and_kleene(pc.is_valid(column), pc.invert(parseable)).to_numpy(zero_copy_only=False)
    non_null = int(pc.sum(pc.is_valid(column)).as_py() or 0)
    if non_null and int(bad.sum()) == non_null:
        # No example value in the message: it goes to task logs, raw values stay in Postgres.
        raise InputError(
            f"{path}: column '{name}' holds text, expected numeric (none of its {non_null} values parses "
            "as a number). Check the column order and the export's delimiter."
        )
    cleaned = pc.if_else(parseable, pc.utf8_trim_whitespace(column), None)
    return pc.cast(cleaned, pa.float64()), bad


def _as_timestamp(column: pa.ChunkedArray, name: str, path: Path) -> tuple[pa.ChunkedArray, np.ndarray | None]:
    """UTC timestamps (null where missing or unparseable) and a mask of unparseable cells."""
    utc = pa.timestamp("us", tz="UTC")
    if pa.types.is_timestamp(column.type):
        return pc.cast(column, utc), None  # naive timestamps are taken as UTC
    if not _is_text(column.type):
        raise InputError(f"{path}: column '{name}' has type {column.type}, expected a timestamp")
    try:
        return pc.cast(column, utc), None  # fast path: ISO 8601 throughout
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = column.to_pandas()
    series = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    # Missing values are the suite's business (not-null expectation); only unparseable text is flagged here.
    bad = (series.isna() & text.notna()).to_numpy()
    return pa.chunked_array([pa.array(series, type=utc)]), bad
