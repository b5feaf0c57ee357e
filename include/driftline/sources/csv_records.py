"""The line-record CSV reader: one record per line, parsed by Arrow in blocks; a line that is not one record is
reported as malformed with its raw text, and reading resumes at the next line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from driftline.config import SourceSettings
from driftline.sources.chunk import Batch, InputError
from driftline.sources.csv_spans import odd_quote_lines, spans
from driftline.sources.files import InputFile, check_unique_names, open_stream

_READ_BYTES = 1 << 20  # CSV bytes parsed per block (Arrow releases the GIL while parsing it)


def csv_batches(path: InputFile, settings: SourceSettings, chunk_rows: int, check) -> Iterator[Batch]:
    """Blocks of whole lines, parsed by Arrow and checked to hold one record per line, gathered into
    batches of about scoring.chunk_rows rows. An object is streamed, never downloaded whole."""
    if isinstance(path, Path) and path.stat().st_size == 0:  # an empty object fails in header() alike
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


def _gather(blocks: list[_Block], schema: pa.Schema) -> Batch:
    # Zero-copy: the chunk's columns keep the blocks' arrays as their chunks.
    tables = [b.table for b in blocks if b.table.num_rows]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    lines = np.concatenate([b.lines for b in blocks]) if blocks else np.empty(0, np.int64)
    malformed = [m for b in blocks for m in b.malformed]
    return Batch(table, lines, malformed, any(b.nul for b in blocks))


class _CsvReader:
    """Reads one CSV file as records: one per line, each checked to parse as exactly one row."""

    def __init__(self, path: InputFile, settings: SourceSettings):
        self.path = path
        self.settings = settings
        self.limit = settings.max_record_bytes
        self.names: list[str] = []
        self.schema = pa.schema([])
        self._sentinel = b""

    # Splitting the byte stream into blocks of whole lines --------------------------------------

    def _stream(self):
        compression = "gzip" if self.path.name.lower().endswith(".gz") else None
        return open_stream(self.path, compression)

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
                check_unique_names(self.path, names, f"the header (line {line + index})")
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
            f'{self.settings.encoding}, or set [source] encoding to the file\'s encoding (e.g. "latin-1"); '
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

    def _arrow(
        self, data: bytes, threads: bool, newlines: bool = False
    ) -> tuple[pa.Table, list[tuple[int | None, str]]]:
        """Parse data (+ a sentinel line) as rows of text; returns (table incl. sentinel, invalid rows)."""
        import pyarrow.csv as pacsv

        invalid: list[tuple[int | None, str]] = []

        def keep(row) -> str:
            invalid.append((row.number, row.text))
            return "skip"

        table = pacsv.read_csv(
            pa.BufferReader(data + self._sentinel),
            read_options=pacsv.ReadOptions(column_names=self.names, block_size=1 << 20, use_threads=threads),
            parse_options=pacsv.ParseOptions(invalid_row_handler=keep, newlines_in_values=newlines),
            # Every cell as text: typing happens per cell in types.coerce, so one bad cell quarantines one row.
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in self.names},
                null_values=["", *self.settings.null_values],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        return table, invalid

    def parsed(self) -> Iterator[_Block]:
        """The file's blocks after the header, parsed and checked; a quoted field still open at a block's
        end is carried into the next block (at most max_record_bytes of it)."""
        import itertools

        pending = [self._pending] if self._pending else []
        carry, carry_line = b"", 0
        for kind, data, line in itertools.chain(pending, self._blocks):  # lazily: never the whole file
            if kind == "oversize":
                if carry:
                    yield self._parse_block(carry, carry_line, eof=True)[0]
                    carry = b""
                text = self._prefix_text(data, line)
                yield _Block(self.schema.empty_table(), np.empty(0, np.int64), [(line, text)], "\x00" in text)
                continue
            data = self._to_utf8(data, line)
            if carry:
                data, line = carry + data, carry_line
            block, carry, carry_line = self._parse_block(data, line, eof=False)
            yield block
        if carry:
            yield self._parse_block(carry, carry_line, eof=True)[0]

    def _parse_block(self, data: bytes, first_line: int, eof: bool) -> tuple[_Block, bytes, int]:
        """(the block's rows, the bytes of a record still open at its end, that record's line number)."""
        nul = b"\x00" in data
        count = _newlines(data)
        odd = odd_quote_lines(data)
        # Fast path: with no carriage return other than CRLF's and no line holding an odd number of
        # quotes (none opens a field spanning lines), nothing makes Arrow return more rows than lines; an
        # empty line, a malformed line or a quote left open make it return fewer or report invalid rows.
        # So one row per line plus the sentinel, nothing invalid, means every line is exactly one record.
        simple = b"\r" not in data or data.count(b"\r") == data.count(b"\r\n")
        if simple and odd is None:
            table, invalid = self._parse(data, first_line, threads=True)
            if not invalid and table.num_rows == count + 1:
                block = _Block(
                    table.slice(0, count), np.arange(first_line, first_line + count, dtype=np.int64), [], nul
                )
                return block, b"", 0
        raw_lines = data.split(b"\n")[:-1]
        parsed: dict[tuple[int, int], pa.Table | None] = {}  # the multi-line records spans() tried, parsed once

        def one_record(first: int, last: int) -> bool:
            raw = b"\n".join(raw_lines[first : last + 1])
            parsed[first, last] = self._one_record(raw, first_line + first)
            return parsed[first, last] is not None

        mask = odd if odd is not None else np.zeros(count, bool)
        found, carried = spans(raw_lines, mask, self.limit, eof, one_record)
        rest = b"".join(line + b"\n" for line in raw_lines[carried:])
        if simple and odd is not None and not any(span.broken for span in found):
            # Every field spanning lines closed: one parse of the block, trusted when Arrow finds exactly
            # the records the scan found (no carriage return can split one, so equal counts = same records).
            starts = [
                first_line + s.first for s in found if s.first != s.last or raw_lines[s.first] not in (b"", b"\r")
            ]
            body = data[: len(data) - len(rest)]
            table, invalid = self._parse(body, first_line, threads=True, newlines=True)
            if not invalid and table.num_rows == len(starts) + 1:
                return (
                    _Block(table.slice(0, len(starts)), np.asarray(starts, np.int64), [], nul),
                    rest,
                    first_line + carried,
                )
        tables: list[pa.Table] = []
        lines: list[int] = []
        malformed: list[tuple[int, str]] = []
        records: list[tuple[int, bytes]] = []  # single lines, resolved together
        for span in found:
            if span.first == span.last and not span.broken:
                if raw_lines[span.first] not in (b"", b"\r"):
                    records.append((first_line + span.first, raw_lines[span.first]))
                continue
            self._resolve(records, tables, lines, malformed)
            records = []
            number, raw = first_line + span.first, b"\n".join(raw_lines[span.first : span.last + 1])
            row = None if span.broken else parsed[span.first, span.last]
            if row is None:
                malformed.append((number, self._text(number, raw)))
            else:
                tables.append(row)
                lines.append(number)
        self._resolve(records, tables, lines, malformed)
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        return _Block(table, np.asarray(lines, dtype=np.int64), malformed, nul), rest, first_line + carried

    def _one_record(self, raw: bytes, number: int) -> pa.Table | None:
        """A record whose quoted field spans lines as one row, or None if it is not exactly one row."""
        try:
            table, invalid = self._arrow(raw + b"\n", threads=False, newlines=True)
        except pa.ArrowInvalid:
            return None
        return table.slice(0, 1) if not invalid and table.num_rows == 2 else None  # the row and the sentinel

    def _parse(self, data: bytes, first_line: int, threads: bool, newlines: bool = False):
        try:
            return self._arrow(data, threads, newlines)
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
        return raw.decode("utf-8").rstrip("\r")  # checked to be UTF-8 by _to_utf8; the lines of a span joined by \n

    def _prefix_text(self, data: bytes, line: int) -> str:
        """The kept start of an oversize line; a character cut in two at its end is dropped."""
        try:
            return data.decode(self.settings.encoding)
        except UnicodeDecodeError as exc:
            if exc.end == len(data) and exc.start >= len(data) - 4:
                return data[: exc.start].decode(self.settings.encoding)
            raise self._encoding_error(line, exc.start) from None
