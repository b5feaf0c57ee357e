"""What every reader yields and raises: Chunk (rows raw, typed, with failures), the reading errors, the reason codes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftline.errors import BadInput, NotReady

MALFORMED_RECORD = "malformed_record"
UNSTORABLE_CHARACTER = "unstorable_character"  # NUL: Postgres text and jsonb cannot hold it
PRECISION_LOSS = "precision_loss"
OUT_OF_RANGE = "out_of_range"  # a timestamp past year 9999 or 'infinity', a number beyond float64


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


@dataclass
class Batch:
    """Raw rows of one file as a reader returns them, before typing."""

    table: pa.Table  # raw cells: text for CSV (null = missing), native types for Parquet
    row_numbers: np.ndarray | None
    malformed: list[tuple[int, str]]
    may_hold_nul: bool


def python_rows(table: pa.Table) -> list[dict]:
    """The rows as Python values; a value Python cannot hold (a timestamp past year 9999, PostgreSQL's
    'infinity') as Arrow's text of it, so quarantining the row that holds it never crashes."""
    columns = {}
    for name, column in zip(table.column_names, table.columns):
        try:
            columns[name] = column.to_pylist()
        except (OverflowError, ValueError):
            columns[name] = [_python_value(value) for value in column]
    return [dict(zip(columns, values)) for values in zip(*columns.values())] if columns else [{}] * table.num_rows


def _python_value(scalar: pa.Scalar):
    try:
        return scalar.as_py()
    except (OverflowError, ValueError):
        return pc.cast(scalar, pa.string()).as_py()
