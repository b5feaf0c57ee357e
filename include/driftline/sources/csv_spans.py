"""RFC 4180 records over lines: which lines of a CSV block are one record each, which quoted fields span
lines, and which lines are broken (a quote that never closes, a quote inside an unquoted field).

Only lines with an odd number of quotes can open or close a field spanning lines, so a block whose lines all
hold an even number (nearly every block) never comes here. The scan is strict where Arrow is lenient: Arrow
reads `cd",x` as the field `cd"`, which is how the continuation of a broken multi-line key used to be
scored under a corrupted key; here such a line is broken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

OPEN, CLOSED, BROKEN = "open", "closed", "broken"


def odd_quote_lines(data: bytes) -> np.ndarray | None:
    """Mask of the lines (data ends with a newline) holding an odd number of `"`; None when none does."""
    if b'"' not in data:
        return None
    buffer = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(buffer == 34)
    newlines = np.flatnonzero(buffer == 10)
    per_line = np.diff(np.searchsorted(quotes, newlines), prepend=0)
    odd = (per_line % 2).astype(bool)
    return odd if odd.any() else None


def scan(line: bytes, in_quote: bool) -> str:
    """State at the end of line (no newline, a final \\r dropped): OPEN inside a quoted field, CLOSED at a
    record's end, BROKEN at a quote RFC 4180 does not allow (inside an unquoted field, or a closing quote
    followed by anything but the delimiter or the line's end)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    size, at = len(line), 0
    while True:
        if in_quote:
            quote = line.find(b'"', at)
            if quote == -1:
                return OPEN
            if line[quote + 1 : quote + 2] == b'"':  # "" is a literal quote
                at = quote + 2
                continue
            if quote + 1 == size:
                return CLOSED
            if line[quote + 1] != 44:  # ","
                return BROKEN
            in_quote, at = False, quote + 2
            continue
        if at < size and line[at] == 34:  # a quote opening the field
            in_quote, at = True, at + 1
            continue
        comma = line.find(b",", at)
        if b'"' in line[at : size if comma == -1 else comma]:
            return BROKEN
        if comma == -1:
            return CLOSED
        at = comma + 1


@dataclass
class Span:
    """Lines first..last (indexes into the block's lines) read as one record, or a broken line."""

    first: int
    last: int
    broken: bool = False


def spans(
    lines: list[bytes], odd: np.ndarray, limit: int, eof: bool, one_record: Callable[[int, int], bool] | None = None
) -> tuple[list[Span], int]:
    """The block's records: single lines, quoted fields spanning lines (at most limit bytes, closed
    before the block ends, and, when one_record(first, last) is given, reading as exactly one record),
    and broken lines. Returns (spans, index of the first line carried to the next block: a field still
    open at the block's end, or len(lines)).

    A quote that closes lines later but does not make one record there while a line between is a whole
    record of its own (two stray quotes a few lines apart) is no quoted field: its first line is the
    broken record and the lines after it are read again, so a stray quote never swallows the good lines
    after it. Without such a line (a key with a line break and a field too many) the span is one broken
    record, quarantined whole."""
    found: list[Span] = []
    index = 0
    while index < len(lines):
        if not odd[index]:
            found.append(Span(index, index))
            index += 1
            continue
        state = scan(lines[index], False)
        if state != OPEN:  # an odd count closing on the same line: a stray quote
            found.append(Span(index, index, broken=True))
            index += 1
            continue
        size, last = len(lines[index]) + 1, index + 1
        while last < len(lines) and size + len(lines[last]) + 1 <= limit:
            size += len(lines[last]) + 1
            state = scan(lines[last], True)
            if state != OPEN:
                break
            last += 1
        if state == CLOSED and not _stray(index, last, odd, one_record):
            found.append(Span(index, last))
            index = last + 1
        elif last == len(lines) and not eof and size <= limit:
            return found, index  # still open: the next block may close it
        else:
            # Never closed (end of file, a broken quote), closed but not one record, or over
            # max_record_bytes: this line alone is the broken record and reading resumes at the next
            # line, so one open quote swallows nothing.
            found.append(Span(index, index, broken=True))
            index += 1
    return found, len(lines)


def _stray(first: int, last: int, odd: np.ndarray, one_record: Callable[[int, int], bool] | None) -> bool:
    """Whether lines first..last, closed as one quoted span, are two stray quotes instead: not one record,
    and a line between them is a record on its own."""
    if one_record is None or one_record(first, last):
        return False
    return any(not odd[line] and one_record(line, line) for line in range(first + 1, last))
