"""Read an interval's input on a worker thread, ahead of the scoring loop (Arrow parses with the GIL released)."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from driftline.config import DatasetConfig
from driftline.errors import reading
from driftline.sources import read_interval


def read_ahead(
    source: str, config: DatasetConfig, start: datetime, end: datetime, files: list[str | Path] | None = None
) -> ReadAhead:
    """The interval's input chunks, read on a worker thread up to two chunks ahead (a context
    manager: leaving it stops the reader)."""
    return ReadAhead(_named(read_interval(source, config, start, end, files=files), source), depth=2)


def _named(chunks, source: str):
    """The chunks; a foreign reading error (a bad gzip stream, undecodable bytes) names the source."""
    with reading(source):
        yield from chunks


class ReadAhead:
    """Runs an iterator on a worker thread, one item ahead, so reading the next chunk (Arrow's CSV
    reader releases the GIL) overlaps with validating and predicting the current one."""

    _END = object()

    def __init__(self, iterable, depth: int = 1):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.seconds = 0.0
        self._thread = threading.Thread(
            target=self._produce, args=(iter(iterable),), name="driftline-read", daemon=True
        )
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, iterator) -> None:
        try:
            while True:
                started = time.perf_counter()
                item = next(iterator, self._END)
                self.seconds += time.perf_counter() - started
                if not self._put(item) or item is self._END:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put(_Failure(exc))

    def __iter__(self):
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class _Failure:
    error: BaseException
