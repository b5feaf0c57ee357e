"""The one reading contract: every file driftline reads (interval inputs, training history, labels;
CSV, CSV.gz, Parquet) is parsed, typed and checked here, the same way for scoring and training.

- Records: RFC 4180 (csv_spans): one record per line unless a quoted field spans lines. A record that
  does not parse as exactly one row (wrong field count, a quote RFC 4180 does not allow, longer than
  [source] max_record_bytes) is reported whole as malformed with its raw text; a quote that never closes
  makes its own line malformed and reading resumes at the next line. Empty lines are not records.
- Missing: only an empty cell (and Parquet null), plus the [source] null_values the config opts in to.
- Typing: cell-level problems (text in a numeric column, an unparseable timestamp, a character
  Postgres cannot store, an integer a float64 cannot hold exactly,
  a timestamp Python cannot hold) become per-row reason codes; the
  rows are quarantined, never dropped or rewritten. Structural problems (missing file or column,
  duplicate header names, a Parquet column of the wrong type, undecodable bytes, a truncated .gz)
  raise InputError naming the file and the line or column.

Object storage (s3://..., any fsspec scheme; objects.py) reads under the same contract: an object,
a prefix of objects or a glob, streamed in ranges, credentials from an Airflow connection.

Modules: files (where the input is), objects (object storage), csv_records and parquet (raw batches), types
(typing cells), reader (read_interval, read_table), prefetch (reading ahead on a thread), sql (a PostgreSQL
query or table as the input, history or labels: ADBC into Arrow, typed like Parquet), plan
(`driftline score --dry-run`). The README section "How input is read" documents the contract for users.
"""

from driftline.sources.chunk import (
    MALFORMED_RECORD,
    OUT_OF_RANGE,
    PRECISION_LOSS,
    UNSTORABLE_CHARACTER,
    Chunk,
    InputError,
    InputMissingError,
)
from driftline.sources.files import check_columns, input_files, local_path
from driftline.sources.reader import TableRead, read_interval, read_table
from driftline.sources.types import EXACT_INTEGER_LIMIT

__all__ = [
    "EXACT_INTEGER_LIMIT",
    "MALFORMED_RECORD",
    "OUT_OF_RANGE",
    "PRECISION_LOSS",
    "UNSTORABLE_CHARACTER",
    "Chunk",
    "InputError",
    "InputMissingError",
    "TableRead",
    "check_columns",
    "input_files",
    "local_path",
    "read_interval",
    "read_table",
]
