"""Postgres: where the database is, the schema and its migrations, locks and bulk writes.

Every name goes through psycopg.sql.Identifier; every value is a bind parameter. The names below
are the package's surface (callers write `db.connect`, `db.table`, ...); each lives in one module.
"""

from driftline.db.connection import DatabaseError, connect, resolve_db_url, set_url_resolver
from driftline.db.copy import BackgroundCopy, arrow_to_csv_bytes, copy_csv
from driftline.db.embedded import EMBEDDED_DATA_DIR, start_embedded, stop_embedded
from driftline.db.locks import IntervalBusyError, interval_lock
from driftline.db.schema import ANALYST_VIEWS, ensure_schema, grant_analyst_role, table
from driftline.secrets import mask_url

__all__ = [
    "ANALYST_VIEWS",
    "EMBEDDED_DATA_DIR",
    "BackgroundCopy",
    "DatabaseError",
    "IntervalBusyError",
    "arrow_to_csv_bytes",
    "connect",
    "copy_csv",
    "ensure_schema",
    "grant_analyst_role",
    "interval_lock",
    "mask_url",
    "resolve_db_url",
    "set_url_resolver",
    "start_embedded",
    "stop_embedded",
    "table",
]
