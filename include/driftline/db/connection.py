"""Where the database is and how to connect to it: URL resolution, connections, connection errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import psycopg

from driftline.db.embedded import EMBEDDED_DATA_DIR, start_embedded
from driftline.errors import BadConfig, Transient
from driftline.secrets import mask_url, register_password, scrub

_url_resolver: Callable[[str], str] | None = None


class DatabaseError(Transient):
    """The database cannot be reached or used; the message says which one (password masked)."""


def set_url_resolver(fn: Callable[[str], str] | None) -> None:
    """Install fn(conn_id) -> URL for `[database] conn_id` (the Airflow adapter installs a connection lookup)."""
    global _url_resolver
    _url_resolver = fn


def resolve_db_url(db_url: str | None, db_conn_id: str | None, root: Path) -> str:
    """$DRIFTLINE_DB_URL, else the configured URL, else the connection id (through the installed
    resolver), else embedded pgserver."""
    url = os.environ.get("DRIFTLINE_DB_URL") or db_url
    if not url and db_conn_id:
        if _url_resolver is None:
            raise BadConfig(
                f"[database] conn_id = {db_conn_id!r} needs Airflow to look the connection up "
                "(run inside Airflow or through the driftline CLI), or set db_url / $DRIFTLINE_DB_URL"
            )
        url = _url_resolver(db_conn_id)
    if not url:
        return start_embedded(root / EMBEDDED_DATA_DIR)
    register_password(url)  # in a task, Airflow's log masker redacts the password from then on
    return url


def resolve_conn_url(conn_id: str, where: str) -> str:
    """The URL of connection conn_id through the installed resolver (an Airflow connection); never
    $DRIFTLINE_DB_URL or the embedded database, which are driftline's own. where: the config key."""
    if _url_resolver is None:
        raise BadConfig(
            f"{where} conn_id = {conn_id!r} needs Airflow to look the connection up (run inside Airflow or "
            "through the driftline CLI), or give a url"
        )
    try:
        url = _url_resolver(conn_id)
    except Exception as exc:  # noqa: BLE001 - Airflow's lookup errors (not found, backend down) are foreign
        raise BadConfig(
            f"{where} conn_id = {conn_id!r}: the connection cannot be looked up ({type(exc).__name__}); define it "
            "in Airflow (UI, secrets backend or AIRFLOW_CONN_<ID>)"
        ) from exc
    register_password(url)
    return url


def connect(url: str, application_name: str = "driftline", **kwargs) -> psycopg.Connection:
    """A psycopg 3 connection; connection failures name the (masked) URL.

    application_name shows up in pg_stat_activity, so an operator can tell which run holds a lock.
    """
    try:
        return psycopg.connect(url, connect_timeout=10, application_name=application_name[:63], **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, refused, malformed URL
        # libpq's message may echo connection parameters: scrub the password from it as well.
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {mask_url(url)}: {scrub(str(exc).strip(), url)}"
        ) from None
