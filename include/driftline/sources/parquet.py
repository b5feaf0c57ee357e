"""Parquet input: the file's record batches of about scoring.chunk_rows rows, with their row numbers."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from driftline.sources.chunk import Batch, InputError
from driftline.sources.files import InputFile, check_unique_names
from driftline.sources.objects import ObjectFile


def parquet_batches(path: InputFile, chunk_rows: int, check) -> Iterator[Batch]:
    """Record batches of one Parquet file; an object is read by ranges (footer, then row groups)."""
    import pyarrow.parquet as pq

    source = path.open() if isinstance(path, ObjectFile) else path
    try:
        yield from _batches(pq, source, path, chunk_rows, check)
    finally:
        if source is not path:
            source.close()


def _batches(pq, source, path: InputFile, chunk_rows: int, check) -> Iterator[Batch]:
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    names = parquet.schema_arrow.names
    check_unique_names(path, names, "the Parquet schema")
    check(names)
    row = 1
    try:
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            table = pa.Table.from_batches([batch])
            yield Batch(table, np.arange(row, row + table.num_rows, dtype=np.int64), [], True)
            row += table.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path}: Parquet data cannot be read after row {row - 1}: {exc}") from exc
