"""Typing raw cells to the configured kinds (text, numeric, timestamp, auto); cells that fail become per-row reason
codes, never dropped or rewritten."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftline.config import SourceSettings
from driftline.sources.chunk import OUT_OF_RANGE, PRECISION_LOSS, UNSTORABLE_CHARACTER, InputError

# A decimal or scientific number, or the spellings of infinity that float parsers accept. NaN is
# deliberately not a number here: "nan" text is not_a_number unless [source] null_values lists it.
_NUMBER = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|inf|infinity)\s*$"
_INTEGER = r"^\s*[-+]?\d+\s*$"
_BLANK = r"^\s+$"
# float64 holds every integer below 2**53 exactly; from there on integers would be silently rounded.
EXACT_INTEGER_LIMIT = 2**53
_UTC = pa.timestamp("us", tz="UTC")
# Python's datetime holds 0001-01-01 .. 9999-12-31 (microseconds from the epoch, UTC); Arrow and
# PostgreSQL hold more (year 294276, 'infinity'). A value outside is a row reason, never a crash later.
_FIRST_US = -62_135_596_800 * 10**6
_LAST_US = 253_402_300_800 * 10**6 - 1
_PER_US = {"s": 10**6, "ms": 10**3, "us": 1}
_SPELLED_INFINITY = r"^\s*[-+]?inf(inity)?\s*$"


def add_failures(failures: dict[int, list[str]], mask: np.ndarray | None, reason: str) -> None:
    """Append reason to the failures of the rows where mask is set."""
    if mask is None:
        return
    for index in np.flatnonzero(mask):
        failures.setdefault(int(index), []).append(reason)


def coerce(
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
            add_failures(failures, _holds_nul(column), f"{UNSTORABLE_CHARACTER}:{name}")
        if nulls is not None and _is_text(_value_type(column.type)):
            column = _nullify(_as_plain_text(column), nulls)
        if kind == "text":
            columns[name] = _as_text(column, name, path)
        elif kind == "numeric":
            values, bad, inexact, outside = _as_float(column, name, path)
            add_failures(failures, bad, f"not_a_number:{name}")
            add_failures(failures, inexact, f"{PRECISION_LOSS}:{name}")
            add_failures(failures, outside, f"{OUT_OF_RANGE}:{name}")
            columns[name] = values
        elif kind == "timestamp":
            values, bad, outside = _as_timestamp(column, name, path)
            add_failures(failures, bad, f"unparseable_timestamp:{name}")
            add_failures(failures, outside, f"{OUT_OF_RANGE}:{name}")
            columns[name] = values
        else:
            outside = outside_python_range(column)
            add_failures(failures, outside, f"{OUT_OF_RANGE}:{name}")
            columns[name] = _as_auto(column if outside is None else _null_where(column, outside))
    return pa.table(columns)


def outside_python_range(column: pa.ChunkedArray) -> np.ndarray | None:
    """Mask of the timestamps and dates Python's datetime cannot hold (before year 1, after 9999:
    PostgreSQL's 'infinity', a far-future sentinel); None when there are none or the type has no such values."""
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.unit in _PER_US:
        per_us = _PER_US[kind.unit]
        first, last, ints = -(-_FIRST_US // per_us), _LAST_US // per_us, pc.cast(column, pa.int64())
    elif pa.types.is_date32(kind):
        first, last, ints = _FIRST_US // 86_400_000_000, _LAST_US // 86_400_000_000, pc.cast(column, pa.int32())
    elif pa.types.is_date64(kind):
        first, last, ints = -(-_FIRST_US // 1000), _LAST_US // 1000, pc.cast(column, pa.int64())
    else:
        return None  # nanosecond timestamps span 1677..2262: always inside
    return _mask(pc.or_(pc.less(ints, first), pc.greater(ints, last)))


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


def repeats(keys: pa.ChunkedArray) -> np.ndarray | None:
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
    """(float64 values, mask of cells that are not numbers, mask of integers beyond 2**53, mask of
    finite values beyond float64's range); masks are None when no cell has the problem. Missing and
    failed cells are null."""
    kind = column.type
    if pa.types.is_integer(kind):
        big = (
            pc.greater_equal(pc.abs(pc.cast(column, pa.float64(), safe=False)), float(EXACT_INTEGER_LIMIT))
            if kind.bit_width == 64
            else None
        )
        inexact = _mask(big)
        values = pc.cast(column, pa.float64(), safe=False)
        return (_null_where(values, inexact) if inexact is not None else values), None, inexact, None
    if pa.types.is_floating(kind):
        values = pc.cast(column, pa.float64())
        nan = pc.is_nan(values)
        if pc.any(nan).as_py():  # a float NaN in a typed file is how many writers store missing
            values = pc.if_else(nan, pa.scalar(None, pa.float64()), values)
        return values, None, None, None
    if pa.types.is_decimal(kind):
        values = pc.cast(column, pa.float64(), safe=False)  # the nearest float64; beyond 1.8e308: inf
        outside = _mask(pc.is_inf(values))
        return (values if outside is None else _null_where(values, outside)), None, None, outside
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
    big = pc.fill_null(
        pc.and_(pc.greater_equal(pc.abs(values), float(EXACT_INTEGER_LIMIT)), pc.is_finite(values)), False
    )
    if pc.any(big).as_py():
        inexact = _mask(pc.and_(big, pc.fill_null(pc.match_substring_regex(column, _INTEGER), False)))
        if inexact is not None:
            values = _null_where(values, inexact)
    outside = None
    if pc.any(pc.fill_null(pc.is_inf(values), False)).as_py():
        # "inf" is a number (the suite's bounds reject it); "1e400" is a finite number float64 cannot hold.
        spelled = pc.fill_null(pc.match_substring_regex(column, _SPELLED_INFINITY, ignore_case=True), False)
        outside = _mask(pc.and_(pc.is_inf(values), pc.invert(spelled)))
        if outside is not None:
            values = _null_where(values, outside)
    return values, bad, inexact, outside


def _mask(condition) -> np.ndarray | None:
    if condition is None:
        return None
    condition = pc.fill_null(condition, False)
    return condition.to_numpy(zero_copy_only=False) if pc.any(condition).as_py() else None


def _null_where(values: pa.ChunkedArray, mask: np.ndarray) -> pa.ChunkedArray:
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def _as_timestamp(column: pa.ChunkedArray, name: str, path: Path):
    """(UTC timestamps in microseconds, finer digits truncated, null where missing or failed; mask of
    unparseable cells; mask of values outside Python's datetime range)."""
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        outside = outside_python_range(column)
        if outside is not None:  # nulled first: the cast to microseconds could overflow on them
            column = _null_where(column, outside)
        if pa.types.is_timestamp(kind) and kind.unit == "ns":  # safe=False truncates sub-microsecond digits
            return pc.cast(column, pa.timestamp("ns", tz="UTC")).cast(_UTC, safe=False), None, outside
        return pc.cast(column, _UTC), None, outside  # naive timestamps are UTC, dates midnight UTC
    if not _is_text(kind):
        raise _type_error(path, name, kind, "a timestamp (timestamp, date or ISO 8601 text)")
    column = _as_plain_text(column)
    for unit in ("us", "ns"):  # fast paths: ISO 8601 throughout, with at most micro- or nanosecond digits
        try:
            values = pc.cast(column, pa.timestamp(unit, tz="UTC")).cast(_UTC, safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        outside = outside_python_range(values)
        return (values if outside is None else _null_where(values, outside)), None, outside
    text = column.to_pandas()
    series = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    # Missing values are the suite's business (not-null expectation); only unparseable text is flagged here.
    bad = (series.isna() & text.notna()).to_numpy()
    parsed = pa.array(series, type=pa.timestamp(series.dt.unit, tz="UTC")).cast(_UTC, safe=False)
    return pa.chunked_array([parsed]), bad, None  # pandas parses years 1677..2262 only: never outside
