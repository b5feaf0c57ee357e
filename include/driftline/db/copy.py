"""Bulk writes: COPY CSV bytes or Arrow tables into a table, optionally on a background thread."""

from __future__ import annotations

import io
from typing import IO

import psycopg
from psycopg import sql


def copy_csv(conn: psycopg.Connection, target: sql.Composed, columns: list[str], data: bytes | IO[bytes]) -> None:
    """COPY CSV bytes (or a binary file object) into target(columns)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        if isinstance(data, (bytes, bytearray, memoryview)):
            copy.write(data)
        else:
            while block := data.read(1 << 20):
                copy.write(block)


def arrow_to_csv_bytes(table) -> bytes:
    """Encode an Arrow table as header-less CSV for COPY (doubles keep full precision)."""
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


class BackgroundCopy:
    """COPY Arrow tables into target on one worker thread, so encoding and the network round trip
    overlap with reading, validating and predicting the next chunk (pyarrow's CSV writer, psycopg's
    COPY and LightGBM all release the GIL). The caller must not use the connection until close().

    order_by: sort each table by this column before the COPY. Index inserts in key order touch each
    B-tree page once instead of at random: 2x faster COPY for randomly ordered keys (measured).
    """

    def __init__(
        self,
        conn: psycopg.Connection,
        target: sql.Composed,
        columns: list[str],
        max_pending: int = 2,
        order_by: str | None = None,
    ):
        from concurrent.futures import ThreadPoolExecutor

        self._conn, self._target, self._columns, self._order_by = conn, target, columns, order_by
        self.connection = conn  # for work queued with run()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftline-copy")
        self._pending: list = []
        self._max_pending = max_pending  # bounds memory: at most this many chunks wait in the queue
        self.seconds = 0.0
        self.rows = 0

    def _write(self, arrow_table) -> None:
        import time

        started = time.perf_counter()
        if self._order_by is not None:
            import pyarrow.compute as pc

            arrow_table = arrow_table.take(pc.sort_indices(arrow_table, [(self._order_by, "ascending")]))
        copy_csv(self._conn, self._target, self._columns, arrow_to_csv_bytes(arrow_table))
        self.seconds += time.perf_counter() - started
        self.rows += arrow_table.num_rows

    def submit(self, arrow_table) -> None:
        while len(self._pending) >= self._max_pending:
            self._pending.pop(0).result()  # re-raises a failed COPY here, in the caller's thread
        self._pending.append(self._executor.submit(self._write, arrow_table))

    def run(self, work) -> None:
        """Queue work(), which uses the connection, in order with the COPYs (its failure is raised
        like a failed COPY)."""
        self._pending.append(self._executor.submit(work))

    def close(self) -> None:
        """Wait for every queued COPY; raises the first failure."""
        try:
            while self._pending:
                self._pending.pop(0).result()
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BackgroundCopy:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is None:
            self.close()
            return
        # Already failing: let queued work finish (the connection must be idle before the rollback),
        # and keep the original error.
        for future in self._pending:
            future.exception()
        self._executor.shutdown(wait=True, cancel_futures=True)
