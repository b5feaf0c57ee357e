"""The SQL source: an interval read from PostgreSQL straight into Arrow (ADBC, binary COPY), typed by the same
rules as Parquet (types.coerce), so validation, quarantine and scoring see what they see for files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa

from driftline.config import ConfigError, DatasetConfig, SourceSettings, SqlInput, SqlInterval
from driftline.errors import BadConfig, BadInput, Transient, redact, sqlstate_kind
from driftline.sources.chunk import Chunk
from driftline.sources.types import coerce

# psycopg's placeholder syntax in a query: %% is a literal %, %(name)s a named parameter.
_TOKEN = re.compile(r"%%|%\((\w+)\)s|%|\{|\}")
# What a server's FATAL at connect says when the database, the role or the password is wrong.
_REFUSED = ("does not exist", "authentication failed", "pg_hba.conf", "permission denied", "not permitted to log in")
# A server error raised while rows stream reaches ADBC without its SQLSTATE (a plain OSError): these
# words mark the ones a retry can fix; any other is the data (a cast or a division that fails on a row).
_PASSING = (
    "canceling statement",
    "terminating connection",
    "server closed",
    "deadlock",
    "could not serialize",
    "out of memory",
    "connection",
    "timeout",
)


def render(location: SqlInterval | SqlInput) -> str:
    """The query that reads the interval (its bounds bound as literals, client-side, no connection
    needed: what `driftline score --dry-run` prints and what is sent), or the whole table or
    query of a [source] history / labels SqlInput."""
    from psycopg import sql

    source = location.source if isinstance(location, SqlInterval) else location
    bounds = {}
    if isinstance(location, SqlInterval):
        bounds = {
            "interval_start": sql.Literal(_plain(location.start)),
            "interval_end": sql.Literal(_plain(location.end)),
        }
    if source.table:
        table = sql.Identifier(*source.table.split("."))
        if not bounds:
            return sql.SQL("SELECT * FROM {table}").format(table=table).as_string(None)
        column = sql.Identifier(source.event_time)
        query = sql.SQL("SELECT * FROM {table} WHERE {column} >= {interval_start} AND {column} < {interval_end}")
        return query.format(table=table, column=column, **bounds).as_string(None)

    def token(match: re.Match) -> str:
        text = match.group(0)
        if text == "%%":
            return "%"
        if match.group(1):
            return "{" + match.group(1) + "}"
        if text == "%":
            raise ConfigError(f"{_key(source)}.query: a literal % must be written %% (psycopg's placeholder syntax)")
        return text * 2  # { and } are literal in the query, not format fields

    return sql.SQL(_TOKEN.sub(token, source.query)).format(**bounds).as_string(None)


def _plain(moment: datetime) -> datetime:
    """A stdlib UTC datetime (Airflow passes pendulum's subclass)."""
    return datetime.fromtimestamp(moment.timestamp(), timezone.utc).replace(microsecond=moment.microsecond)


def source_url(source: SqlInput) -> str:
    """The database URL: the configured url, else the connection conn_id through the installed
    resolver (Airflow's), never driftline's own database."""
    from driftline.db.connection import resolve_conn_url

    return source.url if source.url else resolve_conn_url(source.conn_id, _key(source))


def sql_chunks(interval: SqlInterval, config: DatasetConfig, kinds: dict[str, str]) -> Iterator[Chunk]:
    """Typed chunks of scoring.chunk_rows rows of the interval's query result, streamed (the
    result is never held whole). No rows: nothing is yielded (an empty interval)."""
    described = str(interval)
    first = 0

    def check(schema: pa.Schema) -> None:  # from the result's schema: a zero-row result is checked too
        _check_columns(schema.names, config.input_columns, config, f"[source] input ({described})")

    for table in _record_chunks(interval.source, render(interval), config.chunk_rows, check=check):
        if table.num_rows == 0:
            continue
        failures: dict[int, list[str]] = {}
        typed = coerce(table, failures, config.source, described, kinds, from_csv=False, may_hold_nul=False)
        yield Chunk(raw=table, typed=typed, first_row_number=first, failures=failures, source=described)
        first += table.num_rows


def sql_table(
    source: SqlInput, settings: SourceSettings, known: dict[str, str], config: DatasetConfig | None, required
) -> tuple[pd.DataFrame, dict[int, list[str]]]:
    """A whole query result ([source] history / labels) typed at once: known kinds, the other columns auto."""
    described = str(source)
    [table] = _record_chunks(source, render(source), 1 << 62, whole=True)
    if required and config is not None:
        _check_columns(table.column_names, required, config, f"{_key(source)} ({described})")
    failures: dict[int, list[str]] = {}
    kinds = {name: known.get(name, "auto") for name in table.column_names}
    typed = coerce(table, failures, settings, described, kinds, from_csv=False, may_hold_nul=False)
    return typed.to_pandas(), failures


def _record_chunks(
    source: SqlInput, query: str, chunk_rows: int, whole: bool = False, check=None
) -> Iterator[pa.Table]:
    """The result as tables of exactly chunk_rows rows (the last one fewer), extension types
    (numeric, uuid, ...) as their storage (text); whole: one table, empty if no rows. check(schema)
    runs once the result's schema is known, before any row. The query runs in a READ ONLY
    transaction (never committed): a data-modifying CTE or function it calls fails instead of writing."""
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc

    from driftline.db.connection import DatabaseError
    from driftline.secrets import mask_url, scrub

    url = source_url(source)
    try:
        connection = adbc.connect(url)
    except adbc_driver_manager.Error as exc:
        kind = _connect_fault(str(exc))
        what = f"{_key(source)}: cannot connect to PostgreSQL at {mask_url(url)}: {redact(scrub(str(exc), url))}"
        if kind is BadConfig:  # no such database, role or password refused: a retry cannot help
            raise ConfigError(f"{what}. Check the database name and the credentials of the connection.") from None
        raise DatabaseError(what) from None
    with connection, connection.cursor() as cursor:
        pending: list[pa.RecordBatch] = []
        rows = 0
        try:
            cursor.execute("SET TRANSACTION READ ONLY")  # first: it must precede any query of the transaction
            # Naive `timestamp` columns are UTC here as in files: the interval's timestamptz bounds
            # must not be shifted into them by the server's or the role's own TimeZone setting.
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute(query)
            reader = cursor.fetch_record_batch()
            if check is not None:
                check(_storage(reader.schema.empty_table()).schema)
            for batch in reader:
                pending.append(batch)
                rows += batch.num_rows
                while rows >= chunk_rows:
                    table = pa.Table.from_batches(pending)
                    yield _storage(table.slice(0, chunk_rows))
                    rest = table.slice(chunk_rows)
                    pending, rows = rest.to_batches(), rest.num_rows
        except adbc_driver_manager.Error as exc:
            raise _query_error(exc, source) from None
        except OSError as exc:  # raised while rows stream (a server-side cast failing on a row): no SQLSTATE
            raise _stream_error(exc, source) from None
        if rows or whole:
            yield _storage(pa.Table.from_batches(pending, schema=reader.schema))


def _storage(table: pa.Table) -> pa.Table:
    columns = [
        pa.chunked_array([chunk.storage for chunk in column.chunks], column.type.storage_type)
        if isinstance(column.type, pa.BaseExtensionType)
        else column
        for column in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def _key(source: SqlInput) -> str:
    return f"[source] {source.key}"


def _query_error(exc: Exception, interval: SqlInput) -> Exception:
    """The query failed: the config's fault (undefined table or column, syntax, permission) is
    BadConfig naming the key; bad data (SQLSTATE 22/23) BadInput; the rest Transient. Only the
    first line of the server's message, cut before any quoted literal (a value), is kept."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    config_fault = sqlstate_kind(sqlstate) is BadConfig
    # A class-42 message names the config's identifiers (table, column, operator), never a value: kept whole.
    message = " ".join(first_line.split()) if config_fault else redact(first_line)
    what = f"{_key(interval)} ({interval}): the query failed: {message} (SQLSTATE {sqlstate or 'unknown'})"
    if config_fault:
        return ConfigError(
            f"{what}. Check the query (it runs read-only, in the connection's own database), the table, "
            "the column names and the grants of the connection's role."
        )
    if sqlstate_kind(sqlstate) is BadInput:
        return BadInput(f"{what}. The database refused a value while computing the query.")
    return Transient(f"{what}; the step is retried")


def _stream_error(exc: OSError, source: SqlInput) -> Exception:
    """A server error raised after the first rows: ADBC gives no SQLSTATE, so the message decides
    between passing trouble (Transient) and the data (BadInput); values are cut from it."""
    text = " ".join(str(exc).split())
    message = redact(text.split("ERROR:", 1)[-1].strip() or type(exc).__name__)
    what = f"{_key(source)} ({source}): the query failed while its rows were read: {message}"
    if "ERROR:" not in text or any(word in text.lower() for word in _PASSING):
        return Transient(f"{what}; the step is retried")
    return BadInput(f"{what}. The database refused a value while computing the query (the row is not logged).")


def _connect_fault(text: str) -> type:
    """Why a connection failed: libpq reports the server's refusal as text without a SQLSTATE; a missing
    database (3D000), role or password (28P01/28000) or pg_hba rule is the config's, the rest passes."""
    refusal = text.split("FATAL:", 1)[1].lower() if "FATAL:" in text else ""
    if any(word in refusal for word in _REFUSED) or "no password supplied" in text:
        return BadConfig
    return Transient


def _check_columns(present: list[str], required: list[str], config: DatasetConfig, described: str) -> None:
    repeated = sorted({name for name in present if present.count(name) > 1})
    if repeated:
        raise ConfigError(f"{described}: the query result names column(s) {repeated} more than once; alias them apart")
    missing = [column for column in required if column not in present]
    if missing:
        raise ConfigError(
            f"{described}: the query result lacks column(s) {missing} required by {config.path.name} "
            f"(found {present}). Select them (alias with AS if named differently) or fix [features]/[dataset]."
        )
