"""The SQL source: an interval read from PostgreSQL straight into Arrow (ADBC, binary COPY), typed by the same
rules as Parquet (types.coerce), so validation, quarantine and scoring see what they see for files."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa

from driftline.config import ConfigError, DatasetConfig, SourceSettings, SqlInput, SqlInterval
from driftline.errors import BadInput, Transient, redact
from driftline.sources.chunk import Chunk
from driftline.sources.types import coerce

# psycopg's placeholder syntax in a query: %% is a literal %, %(name)s a named parameter.
_TOKEN = re.compile(r"%%|%\((\w+)\)s|%|\{|\}")
# SQLSTATE classes that mean the config's query or table is wrong (42: syntax error or access rule
# violation: undefined table or column, permission denied), not the data or the server.
_CONFIG_SQLSTATES = ("42",)


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
    for table in _record_chunks(interval.source, render(interval), config.chunk_rows):
        if table.num_rows == 0:
            continue
        if first == 0:
            _check_columns(table.column_names, config.input_columns, config, f"[source] input ({described})")
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


def _record_chunks(source: SqlInput, query: str, chunk_rows: int, whole: bool = False) -> Iterator[pa.Table]:
    """The result as tables of exactly chunk_rows rows (the last one fewer), extension types
    (numeric, uuid, ...) as their storage (text); whole: one table, empty if no rows."""
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc

    from driftline.db.connection import DatabaseError
    from driftline.secrets import mask_url, scrub

    url = source_url(source)
    try:
        connection = adbc.connect(url)
    except adbc_driver_manager.Error as exc:
        raise DatabaseError(
            f"{_key(source)}: cannot connect to PostgreSQL at {mask_url(url)}: {redact(scrub(str(exc), url))}"
        ) from None
    with connection, connection.cursor() as cursor:
        pending: list[pa.RecordBatch] = []
        rows = 0
        try:
            # Naive `timestamp` columns are UTC here as in files: the interval's timestamptz bounds
            # must not be shifted into them by the server's or the role's own TimeZone setting.
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute(query)
            reader = cursor.fetch_record_batch()
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
    config_fault = sqlstate.startswith(_CONFIG_SQLSTATES)
    # A class-42 message names the config's identifiers (table, column, operator), never a value: kept whole.
    message = " ".join(first_line.split()) if config_fault else redact(first_line)
    what = f"{_key(interval)} ({interval}): the query failed: {message} (SQLSTATE {sqlstate or 'unknown'})"
    if config_fault:
        return ConfigError(f"{what}. Check the table, the column names and the grants of the connection's role.")
    if sqlstate.startswith(("22", "23")):
        return BadInput(f"{what}. The database refused a value while computing the query.")
    return Transient(f"{what}; the step is retried")


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
