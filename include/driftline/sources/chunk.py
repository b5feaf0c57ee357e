"""What every reader yields and raises: Chunk (rows raw, typed, with failures), the reading errors, the reason codes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from driftline.errors import BadInput, NotReady

MALFORMED_RECORD = "malformed_record"
UNSTORABLE_CHARACTER = "unstorable_character"  # NUL: Postgres text and jsonb cannot hold it
PRECISION_LOSS = "precision_loss"


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
