"""Advisory locks: one writer per interval, failing fast with the name of the other holder."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from driftline.errors import Transient

log = logging.getLogger(__name__)


class IntervalBusyError(Transient):
    """Another run holds the write lock of the same interval."""


@contextmanager
def interval_lock(conn: psycopg.Connection, schema: str, interval_label: str) -> Iterator[None]:
    """Hold a session advisory lock on one interval, or fail fast naming the other holder."""
    key = f"driftline-interval:{schema}:{interval_label}"
    got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]
    if not got:
        holder = conn.execute(
            """SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l
               JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted
                 AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)""",
            (key,),
        ).fetchone()
        who = f"backend pid {holder[0]} since {holder[2]:%Y-%m-%d %H:%M:%S}" if holder else "another session"
        raise IntervalBusyError(
            f"interval {interval_label} is being written by another run ({who}); "
            "this run wrote nothing. Retry when that run has finished."
        )
    try:
        yield
    finally:
        try:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        except psycopg.Error:  # a broken connection: the server frees the lock with the session
            log.warning("could not release the advisory lock of interval %s", interval_label)
