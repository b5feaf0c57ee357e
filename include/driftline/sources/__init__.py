"""The one reading contract: every file driftline reads (interval inputs, training history, labels;
CSV, CSV.gz, Parquet) is parsed, typed and checked here, the same way for scoring and training.

- Records: one CSV record per line. A line that does not parse as exactly one record (unbalanced
  quote, wrong field count, longer than [source] max_record_bytes) is reported as malformed with its
  raw text and reading resumes at the next line, so one bad line never swallows the lines after it.
  Empty lines are not records. Quoted fields spanning lines are not supported.
- Missing: only an empty cell (and Parquet null), plus the [source] null_values the config opts in to.
- Typing: cell-level problems (text in a numeric column, an unparseable timestamp, a character
  Postgres cannot store, an integer a float64 cannot hold exactly) become per-row reason codes; the
  rows are quarantined, never dropped or rewritten. Structural problems (missing file or column,
  duplicate header names, a Parquet column of the wrong type, undecodable bytes, a truncated .gz)
  raise InputError naming the file and the line or column.

The README section "How input is read" documents the contract for users.
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

from driftline.config import DatasetConfig, SourceSettings
from driftline.errors import BadInput, NotReady

# A decimal or scientific number, or the spellings of infinity that float parsers accept. NaN is
# deliberately not a number here: "nan" text is not_a_number unless [source] null_values lists it.
_NUMBER = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|inf|infinity)\s*$"
_INTEGER = r"^\s*[-+]?\d+\s*$"
_BLANK = r"^\s+$"
# float64 holds every integer below 2**53 exactly; from there on integers would be silently rounded.
EXACT_INTEGER_LIMIT = 2**53
MALFORMED_RECORD = "malformed_record"
UNSTORABLE_CHARACTER = "unstorable_character"  # NUL: Postgres text and jsonb cannot hold it
PRECISION_LOSS = "precision_loss"
_UTC = pa.timestamp("us", tz="UTC")
_READ_BYTES = 1 << 20  # CSV bytes parsed per block (Arrow releases the GIL while parsing it)


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
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line number, raw text)
    source: str = ""  # the file the rows come from
    # Where each row is in its file: the line number for CSV (the header is line 1), the row number
    # (from 1) for Parquet. None: rows first_row_number + 1, + 2, ...
    row_numbers: np.ndarray | None = None

    @property
    def frame(self) -> pd.DataFrame:
        """The typed rows as pandas (for callers that want a DataFrame; the scoring path does not)."""
        return self.typed.to_pandas()

    def row_number(self, position: int) -> int:
        if self.row_numbers is None:
            return self.first_row_number + position + 1
        return int(self.row_numbers[position])


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


def check_columns(path: Path, present: list[str], config: DatasetConfig, required: list[str] | None = None) -> None:
    """Fail naming every missing column, with a likely rename or delimiter hint."""
    required = config.input_columns if required is None else required
    missing = [c for c in required if c not in present]
    if not missing:
        return
    hints = []
    for column in missing:
        close = difflib.get_close_matches(column, [p for p in present if p not in required], n=1)
        if close:
            hints.append(f"'{column}' looks renamed to '{close[0]}'")
    if len(present) == 1 and any(sep in present[0] for sep in ";\t|"):
        hints.append("the header is a single column: is the file comma-delimited?")
    raise InputError(
        f"{path}: missing column(s) {missing} required by {config.path.name} "
        f"(found {present}){'; ' + '; '.join(hints) if hints else ''}. "
        "Fix the input or update [features]/[dataset] in the config."
    )


def _check_unique_names(path: Path, names: list[str], where: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{path}: {where} names column(s) {repeated} more than once (a header repeated or two exports "
            "pasted side by side?). Each column must appear once; fix the export."
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
    kinds = _interval_kinds(config)
    for path in paths:
        for chunk in _read_file(Path(path), config, kinds, config.input_columns):
            times = chunk.typed[config.event_time]
            outside = pc.or_(
                pc.less(times, pa.scalar(interval_start, _UTC)), pc.greater_equal(times, pa.scalar(interval_end, _UTC))
            )
            _add(chunk.failures, pc.fill_null(outside, False).to_numpy(zero_copy_only=False),
                 f"outside_interval:{config.event_time}")
            _add(chunk.failures, _repeats(chunk.typed[config.entity_key]), f"duplicate_key:{config.entity_key}")
            yield chunk


def _interval_kinds(config: DatasetConfig) -> dict[str, str]:
    """Column -> kind (text, numeric, timestamp, auto) of the configured columns."""
    kinds = {config.entity_key: "text", config.event_time: "timestamp"}
    for feature in config.features:
        kinds[feature.name] = "numeric" if feature.type == "numeric" else "text"
    return kinds


def _read_file(path: Path, config: DatasetConfig, kinds: dict[str, str], required: list[str]) -> Iterator[Chunk]:
    """Typed chunks of one file; kinds: the columns to type (others stay in `raw` only, except that
    whole-table reads ask for them as auto)."""
    if not path.is_file():
        raise InputMissingError(f"input file not found: {path}")
    from_csv = _format(path) == "csv"
    batches = _batches(path, config.source, config.chunk_rows, lambda names: check_columns(path, names, config, required))
    row_number = 0
    seen_rows = False
    for batch in batches:
        if batch.table.num_rows == 0 and not batch.malformed:
            continue
        seen_rows = True
        failures: dict[int, list[str]] = {}
        typed = _coerce(batch.table, failures, config.source, path, kinds, from_csv, batch.may_hold_nul)
        yield Chunk(
            raw=batch.table, typed=typed, first_row_number=row_number, failures=failures, malformed=batch.malformed,
            source=str(path), row_numbers=batch.row_numbers,
        )
        row_number += batch.table.num_rows
    if not seen_rows:
        raise InputError(f"{path}: input has no data rows (header only or empty). Nothing was written.")


@dataclass
class _Batch:
    table: pa.Table  # raw cells: text for CSV (null = missing), native types for Parquet
    row_numbers: np.ndarray | None
    malformed: list[tuple[int, str]]
    may_hold_nul: bool


# --- CSV -----------------------------------------------------------------------------------------


def _batches(path: Path, settings: SourceSettings, chunk_rows: int, check) -> Iterator[_Batch]:
    """Raw batches of one file; check(column names) runs once the header or schema is known."""
    if _format(path) == "csv":
        return _csv_batches(path, settings, chunk_rows, check)
    return _parquet_batches(path, chunk_rows, check)


def _csv_batches(path: Path, settings: SourceSettings, chunk_rows: int, check) -> Iterator[_Batch]:
    """Blocks of whole lines, parsed by Arrow and checked to hold one record per line, gathered into
    batches of about scoring.chunk_rows rows."""
    if path.stat().st_size == 0:
        raise InputError(f"{path}: input file is empty (no header, no rows). Nothing was written.")
    reader = _CsvReader(path, settings)
    check(reader.header(reader.blocks()))
    pending: list[_Block] = []
    pending_rows = 0
    for block in reader.parsed():
        pending.append(block)
        pending_rows += block.table.num_rows
        while pending_rows >= chunk_rows:  # chunks of exactly chunk_rows rows (the last one fewer)
            batch = _gather(pending, reader.schema)
            rest = _Block(batch.table.slice(chunk_rows), batch.row_numbers[chunk_rows:], [], batch.may_hold_nul)
            batch.table, batch.row_numbers = batch.table.slice(0, chunk_rows), batch.row_numbers[:chunk_rows]
            yield batch
            pending, pending_rows = [rest], rest.table.num_rows
    if pending_rows or any(b.malformed for b in pending):
        yield _gather(pending, reader.schema)


@dataclass
class _Block:
    table: pa.Table
    lines: np.ndarray
    malformed: list[tuple[int, str]]
    nul: bool


def _newlines(data: bytes) -> int:
    return int(np.count_nonzero(np.frombuffer(data, np.uint8) == 10))  # 3x faster than bytes.count


def _gather(blocks: list[_Block], schema: pa.Schema) -> _Batch:
    # Zero-copy: the chunk's columns keep the blocks' arrays as their chunks.
    tables = [b.table for b in blocks if b.table.num_rows]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    lines = np.concatenate([b.lines for b in blocks]) if blocks else np.empty(0, np.int64)
    malformed = [m for b in blocks for m in b.malformed]
    return _Batch(table, lines, malformed, any(b.nul for b in blocks))


class _CsvReader:
    """Reads one CSV file as records: one per line, each checked to parse as exactly one row."""

    def __init__(self, path: Path, settings: SourceSettings):
        self.path = path
        self.settings = settings
        self.limit = settings.max_record_bytes
        self.names: list[str] = []
        self.schema = pa.schema([])
        self._sentinel = b""

    # Splitting the byte stream into blocks of whole lines --------------------------------------

    def _stream(self):
        compression = "gzip" if self.path.name.lower().endswith(".gz") else None
        return pa.input_stream(str(self.path), compression=compression)

    def _read(self, stream, size: int, line: int) -> bytes:
        try:
            return stream.read(size)
        except (OSError, pa.ArrowException, EOFError) as exc:
            # A truncated or corrupt .gz: name the file and how far it got, never the bytes.
            raise InputError(
                f"{self.path}: the file cannot be read past line {line} ({type(exc).__name__}: {exc}); it is "
                "truncated or corrupt (an interrupted upload?). Replace it with a complete copy; nothing was written."
            ) from exc

    def blocks(self) -> Iterator:
        """Yield ("block", bytes of whole lines ending in newline, number of its first line) and
        ("oversize", first max_record_bytes of the line, its line number). A block is never longer
        than max_record_bytes, so no line inside one can be."""
        limit = self.limit
        target = min(limit, _READ_BYTES)
        line, buffer, eof, first = 1, b"", False, True
        with self._stream() as stream:
            while True:
                if not eof and len(buffer) < limit and (len(buffer) < target or b"\n" not in buffer):
                    data = self._read(stream, min(_READ_BYTES, limit - len(buffer)), line)
                    if first:
                        first = False
                        if data.startswith(b"\xef\xbb\xbf") and self.settings.encoding == "utf-8":
                            data = data[3:]  # a UTF-8 byte order mark is not part of the first column's name
                    if data:
                        buffer += data
                        continue
                    eof = True
                if not buffer:
                    return
                cut = buffer.rfind(b"\n", 0, limit)
                if cut != -1:
                    block, buffer = buffer[: cut + 1], buffer[cut + 1 :]
                    yield "block", block, line
                    line += _newlines(block)
                elif len(buffer) < limit:  # only at the end of the file: its last line has no newline
                    yield "block", buffer + b"\n", line
                    return
                else:
                    # A line longer than the limit: keep its start as raw text, skip to the next line.
                    yield "oversize", buffer[:limit], line
                    rest, buffer = buffer[limit:], b""
                    while True:
                        cut = rest.find(b"\n")
                        if cut != -1:
                            buffer = rest[cut + 1 :]
                            line += 1
                            break
                        rest = b"" if eof else self._read(stream, _READ_BYTES, line)
                        if not rest:
                            eof = True
                            break

    def header(self, blocks: Iterator) -> list[str]:
        """Take the header line from the first blocks (leading empty lines skipped)."""
        import csv

        for kind, data, line in blocks:
            if kind == "oversize":
                raise InputError(f"{self.path}, line {line}: the header line is longer than [source] max_record_bytes")
            lines = data.split(b"\n")[:-1]
            for index, raw in enumerate(lines):
                if raw in (b"", b"\r"):
                    continue
                text = self._decode(raw, line + index).rstrip("\r")
                try:
                    rows = list(csv.reader([text], strict=True))
                except csv.Error as exc:
                    raise InputError(f"{self.path}, line {line + index}: the header cannot be parsed ({exc})") from exc
                names = rows[0] if rows else []
                _check_unique_names(self.path, names, f"the header (line {line + index})")
                self.names = names
                self.schema = pa.schema([(n, pa.string()) for n in names])
                self._sentinel = b",".join([b'""'] * len(names)) + b"\n"
                rest = b"\n".join(lines[index + 1 :])
                self._pending = ("block", rest + b"\n", line + index + 1) if rest or index + 1 < len(lines) else None
                self._blocks = blocks
                return names
        raise InputError(f"{self.path}: input file is empty (no header, no rows). Nothing was written.")

    # Decoding ----------------------------------------------------------------------------------

    def _decode(self, raw: bytes, line: int) -> str:
        try:
            return raw.decode(self.settings.encoding)
        except UnicodeDecodeError as exc:
            raise self._encoding_error(line, exc.start) from None

    def _encoding_error(self, line: int, column: int | None = None) -> InputError:
        where = f"line {line}" + (f", byte {column + 1}" if column is not None else "")
        return InputError(
            f"{self.path}, {where}: bytes that are not valid {self.settings.encoding}. Re-export the file as "
            f"{self.settings.encoding}, or set [source] encoding to the file's encoding (e.g. \"latin-1\"); "
            "nothing was written."
        )

    def _to_utf8(self, data: bytes, first_line: int) -> bytes:
        """The block as UTF-8 for Arrow; bytes invalid for the encoding fail naming line and byte."""
        try:
            if self.settings.encoding != "utf-8":
                return data.decode(self.settings.encoding).encode("utf-8")
            if not data.isascii():
                data.decode("utf-8")  # checked here (~0.1 ms per MiB): Arrow would not say which line
            return data
        except UnicodeDecodeError as exc:
            line = first_line + data.count(b"\n", 0, exc.start)
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
            raise self._encoding_error(line, column) from None

    # Parsing -----------------------------------------------------------------------------------

    def _arrow(self, data: bytes, threads: bool) -> tuple[pa.Table, list[tuple[int | None, str]]]:
        """Parse data (+ a sentinel line) as rows of text; returns (table incl. sentinel, invalid rows)."""
        import pyarrow.csv as pacsv

        invalid: list[tuple[int | None, str]] = []

        def keep(row) -> str:
            invalid.append((row.number, row.text))
            return "skip"

        table = pacsv.read_csv(
            pa.BufferReader(data + self._sentinel),
            read_options=pacsv.ReadOptions(column_names=self.names, block_size=1 << 20, use_threads=threads),
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep),
            # Every cell as text: typing happens per cell in _coerce, so one bad cell quarantines one row.
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in self.names},
                null_values=["", *self.settings.null_values],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        return table, invalid

    def parsed(self) -> Iterator[_Block]:
        """The file's blocks after the header, parsed and checked."""
        import itertools

        pending = [self._pending] if self._pending else []
        for kind, data, line in itertools.chain(pending, self._blocks):  # lazily: never the whole file
            if kind == "oversize":
                text = self._prefix_text(data, line)
                yield _Block(self.schema.empty_table(), np.empty(0, np.int64), [(line, text)], "\x00" in text)
                continue
            yield self._parse_block(data, line)

    def _parse_block(self, data: bytes, first_line: int) -> _Block:
        data = self._to_utf8(data, first_line)
        nul = b"\x00" in data
        count = _newlines(data)
        # Fast path: with no carriage return other than CRLF's, nothing makes Arrow return more rows
        # than lines; an empty line, a malformed line or a quote left open (it swallows the lines
        # after it, the sentinel included) make it return fewer or report invalid rows. So one row
        # per line plus the sentinel, nothing invalid, means every line is exactly one record.
        simple = b"\r" not in data or data.count(b"\r") == data.count(b"\r\n")
        if simple:
            table, invalid = self._parse(data, first_line, threads=True)
            if not invalid and table.num_rows == count + 1:
                return _Block(table.slice(0, count), np.arange(first_line, first_line + count, dtype=np.int64), [], nul)
        records = [(first_line + i, raw) for i, raw in enumerate(data.split(b"\n")[:-1]) if raw not in (b"", b"\r")]
        tables: list[pa.Table] = []
        lines: list[int] = []
        malformed: list[tuple[int, str]] = []
        self._resolve(records, tables, lines, malformed)
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        return _Block(table, np.asarray(lines, dtype=np.int64), malformed, nul)

    def _parse(self, data: bytes, first_line: int, threads: bool):
        try:
            return self._arrow(data, threads)
        except pa.ArrowInvalid as exc:
            last = first_line + data.count(b"\n") - 1
            # Arrow's message can quote the row: only its type goes into the error (errors carry no row data).
            raise InputError(
                f"{self.path}, lines {first_line}-{last}: CSV cannot be parsed ({type(exc).__name__}); check the export"
            ) from exc

    def _resolve(self, records: list[tuple[int, bytes]], tables, lines, malformed) -> None:
        """Rows of records (line number, bytes) into tables/lines, malformed lines into malformed:
        bisects until every part parses as one row per line (rare: only dirty blocks come here)."""
        if not records:
            return
        body = b"\n".join(raw for _, raw in records) + b"\n"
        stray_cr = any(b"\r" in (raw[:-1] if raw.endswith(b"\r") else raw) for _, raw in records)
        if not stray_cr:
            table, invalid = self._parse(body, records[0][0], threads=False)
            if table.num_rows + len(invalid) == len(records) + 1 and all(n is not None for n, _ in invalid):
                # Every line is one record: the invalid ones (wrong field count) are known by number.
                bad = {number - 1 for number, _ in invalid}
                if len(records) - len(bad) == table.num_rows - 1:
                    tables.append(table.slice(0, table.num_rows - 1))
                    lines.extend(line for index, (line, _) in enumerate(records) if index not in bad)
                    malformed.extend((records[i][0], self._text(*records[i])) for i in sorted(bad))
                    return
        if len(records) == 1:
            malformed.append((records[0][0], self._text(*records[0])))
            return
        middle = len(records) // 2
        self._resolve(records[:middle], tables, lines, malformed)
        self._resolve(records[middle:], tables, lines, malformed)

    @staticmethod
    def _text(line: int, raw: bytes) -> str:
        return raw.decode("utf-8").rstrip("\r")  # checked to be UTF-8 by _to_utf8

    def _prefix_text(self, data: bytes, line: int) -> str:
        """The kept start of an oversize line; a character cut in two at its end is dropped."""
        try:
            return data.decode(self.settings.encoding)
        except UnicodeDecodeError as exc:
            if exc.end == len(data) and exc.start >= len(data) - 4:
                return data[: exc.start].decode(self.settings.encoding)
            raise self._encoding_error(line, exc.start) from None


# --- Parquet -------------------------------------------------------------------------------------


def _parquet_batches(path: Path, chunk_rows: int, check) -> Iterator[_Batch]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    names = parquet.schema_arrow.names
    _check_unique_names(path, names, "the Parquet schema")
    check(names)
    row = 1
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            yield _Batch(table, np.arange(row, row + table.num_rows, dtype=np.int64), [], True)
            row += table.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: Parquet data cannot be read after row {row - 1}: {exc}") from exc


# --- Typing --------------------------------------------------------------------------------------


def _add(failures: dict[int, list[str]], mask: np.ndarray | None, reason: str) -> None:
    if mask is None:
        return
    for index in np.flatnonzero(mask):
        failures.setdefault(int(index), []).append(reason)


def _coerce(
    table: pa.Table,
    failures: dict[int, list[str]],
    settings: SourceSettings,
    path: Path,
    kinds: dict[str, str],
    from_csv: bool,
    may_hold_nul: bool,
) -> pa.Table:
    """The typed columns of kinds (those present), with per-row reasons for cells that fail."""
    nulls = None if from_csv else ["", *settings.null_values]  # CSV: Arrow applied them already
    columns: dict[str, pa.ChunkedArray] = {}
    for name, kind in kinds.items():
        if name not in table.column_names:
            continue
        column = table[name]
        if may_hold_nul and _is_text(column.type):
            _add(failures, _holds_nul(column), f"{UNSTORABLE_CHARACTER}:{name}")
        if nulls is not None and _is_text(_value_type(column.type)):
            column = _nullify(_as_plain_text(column), nulls)
        if kind == "text":
            columns[name] = _as_text(column, name, path)
        elif kind == "numeric":
            values, bad, inexact = _as_float(column, name, path)
            _add(failures, bad, f"not_a_number:{name}")
            _add(failures, inexact, f"{PRECISION_LOSS}:{name}")
            columns[name] = values
        elif kind == "timestamp":
            values, bad = _as_timestamp(column, name, path)
            _add(failures, bad, f"unparseable_timestamp:{name}")
            columns[name] = values
        else:
            columns[name] = _as_auto(column)
    return pa.table(columns)


def _value_type(kind: pa.DataType) -> pa.DataType:
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _as_plain_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _nullify(column: pa.ChunkedArray, tokens: list[str]) -> pa.ChunkedArray:
    """Parquet text: the empty string and the configured null tokens are missing, as in CSV."""
    hit = pc.is_in(column, value_set=pa.array(tokens, type=column.type))
    if not pc.any(hit).as_py():
        return column
    return pc.if_else(hit, pa.scalar(None, column.type), column)


def _holds_nul(column: pa.ChunkedArray) -> np.ndarray | None:
    mask = pc.fill_null(pc.match_substring(_as_plain_text(column), "\x00"), False)
    return mask.to_numpy(zero_copy_only=False) if pc.any(mask).as_py() else None


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


def _is_text(kind: pa.DataType) -> bool:
    kind = _value_type(kind)
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _type_error(path: Path, name: str, found: pa.DataType, expected: str) -> InputError:
    return InputError(
        f"{path}: column '{name}' has type {found}, expected {expected}. Fix the export's column type, or "
        "the column's type in [features]; values of a typed file are checked, never converted."
    )


def _as_text(column: pa.ChunkedArray, name: str, path: Path) -> pa.ChunkedArray:
    """Keys and categoricals: text kept as is; Parquet integers as their decimal text."""
    column = _as_plain_text(column)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    if pa.types.is_integer(column.type):
        return pc.cast(column, pa.string())
    raise _type_error(path, name, column.type, "text (string or dictionary) or integer")


def _as_auto(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Columns without a configured kind (the target, extra columns): CSV text becomes int64 or
    float64 when every present cell is a number, else stays text; typed files keep their type."""
    column = _as_plain_text(column)
    if not _is_text(column.type):
        return column
    for kind in (pa.int64(), pa.float64()):
        try:
            return pc.cast(column, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return column


def _as_float(column: pa.ChunkedArray, name: str, path: Path):
    """(float64 values, mask of cells that are not numbers, mask of integers beyond 2**53); masks
    are None when no cell has the problem. Missing cells stay null."""
    kind = column.type
    if pa.types.is_integer(kind):
        big = pc.greater_equal(pc.abs(pc.cast(column, pa.float64(), safe=False)), float(EXACT_INTEGER_LIMIT)) \
            if kind.bit_width == 64 else None
        inexact = _mask(big)
        values = pc.cast(column, pa.float64(), safe=False)
        return (_null_where(values, inexact) if inexact is not None else values), None, inexact
    if pa.types.is_floating(kind):
        values = pc.cast(column, pa.float64())
        nan = pc.is_nan(values)
        if pc.any(nan).as_py():  # a float NaN in a typed file is how many writers store missing
            values = pc.if_else(nan, pa.scalar(None, pa.float64()), values)
        return values, None, None
    if pa.types.is_decimal(kind):
        return pc.cast(column, pa.float64(), safe=False), None, None  # the nearest float64
    if not _is_text(kind):
        raise _type_error(path, name, kind, "numeric (integer, float or decimal)")
    column = _as_plain_text(column)
    try:
        values, bad = pc.cast(column, pa.float64()), None  # fast path: every cell is a number
    except pa.ArrowInvalid:
        blank = pc.fill_null(pc.match_substring_regex(column, _BLANK), False)
        column = pc.if_else(blank, pa.scalar(None, column.type), column)  # whitespace only: missing
        parseable = pc.match_substring_regex(column, _NUMBER, ignore_case=True)
        bad_cells = pc.and_kleene(pc.is_valid(column), pc.invert(parseable))
        bad = bad_cells.to_numpy(zero_copy_only=False)
        non_null = int(pc.sum(pc.is_valid(column)).as_py() or 0)
        if non_null and int(bad.sum()) == non_null:
            # No example value in the message: it goes to task logs, raw values stay in Postgres.
            raise InputError(
                f"{path}: column '{name}' holds text, expected numeric (none of its {non_null} values parses "
                "as a number). Check the column order and the export's delimiter."
            ) from None
        values = pc.cast(pc.if_else(parseable, pc.utf8_trim_whitespace(column), None), pa.float64())
        bad = bad if bad.any() else None
    nan = pc.fill_null(pc.is_nan(values), False)
    if pc.any(nan).as_py():  # the text "nan": not a number unless [source] null_values lists it
        bad = nan.to_numpy(zero_copy_only=False) | (bad if bad is not None else False)
        values = pc.if_else(nan, pa.scalar(None, pa.float64()), values)
    inexact = None
    big = pc.fill_null(pc.greater_equal(pc.abs(values), float(EXACT_INTEGER_LIMIT)), False)
    if pc.any(big).as_py():
        inexact = _mask(pc.and_(big, pc.fill_null(pc.match_substring_regex(column, _INTEGER), False)))
        if inexact is not None:
            values = _null_where(values, inexact)
    return values, bad, inexact


def _mask(condition) -> np.ndarray | None:
    if condition is None:
        return None
    condition = pc.fill_null(condition, False)
    return condition.to_numpy(zero_copy_only=False) if pc.any(condition).as_py() else None


def _null_where(values: pa.ChunkedArray, mask: np.ndarray) -> pa.ChunkedArray:
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def _as_timestamp(column: pa.ChunkedArray, name: str, path: Path) -> tuple[pa.ChunkedArray, np.ndarray | None]:
    """UTC timestamps in microseconds (finer digits truncated; null where missing or unparseable)
    and a mask of unparseable cells."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.unit == "ns":  # ns -> us cannot overflow; safe=False truncates the sub-microsecond digits
            return pc.cast(column, pa.timestamp("ns", tz="UTC")).cast(_UTC, safe=False), None
        try:
            return pc.cast(column, _UTC), None  # naive timestamps are taken as UTC
        except pa.ArrowInvalid as exc:
            raise InputError(
                f"{path}: column '{name}' ({kind}) holds timestamps outside the range of microsecond timestamps"
            ) from exc
    if pa.types.is_date(kind):
        return pc.cast(column, _UTC), None  # midnight UTC
    if not _is_text(kind):
        raise _type_error(path, name, kind, "a timestamp (timestamp, date or ISO 8601 text)")
    column = _as_plain_text(column)
    try:
        return pc.cast(column, _UTC), None  # fast path: ISO 8601 throughout, at most microseconds
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return pc.cast(column, pa.timestamp("ns", tz="UTC")).cast(_UTC, safe=False), None  # nanosecond digits
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = column.to_pandas()
    series = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    # Missing values are the suite's business (not-null expectation); only unparseable text is flagged here.
    bad = (series.isna() & text.notna()).to_numpy()
    parsed = pa.array(series, type=pa.timestamp(series.dt.unit, tz="UTC")).cast(_UTC, safe=False)
    return pa.chunked_array([parsed]), bad


# --- Whole tables (training history, labels) -----------------------------------------------------


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


def read_table(location: str, config: DatasetConfig | None = None, required: list[str] | None = None) -> TableRead:
    """Read a whole (small) file or directory under the reading contract: the configured columns
    typed as for scoring (no interval or duplicate checks), other columns as auto (numbers when
    every cell is one, else text). Without a config: default reading options, every column auto.
    A header-only file is an empty table here (no labels yet is a state, not an error)."""
    settings = config.source if config is not None else SourceSettings()
    known = _interval_kinds(config) if config is not None else {}
    paths = input_files(location)
    if not paths:
        raise InputMissingError(f"input not found: {local_path(location)}")
    frames, failures, malformed = [], {}, []
    offset = 0
    for path in map(Path, paths):
        # Typed once over the whole file, so an auto column gets one type for all its rows.
        header: list[str] = []

        def check(names: list[str], path: Path = path, header: list[str] = header) -> None:
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
        typed = _coerce(raw, chunk_failures, settings, path, kinds, _format(path) == "csv", nul)
        failures.update({offset + position: codes for position, codes in chunk_failures.items()})
        frames.append(typed.to_pandas())
        offset += typed.num_rows
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return TableRead(frame, failures, malformed, len(frame) + len(malformed))
