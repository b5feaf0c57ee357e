"""The SQL source ([source] input = { conn_id | url, query | table }) against a real Postgres: the same rows give the
same predictions and the same quarantine as the CSV file, the config's mistakes fail naming the key, an empty
interval publishes 0 rows, and text cells (quotes, delimiters, line breaks, unicode, '' and NULL) read back as
written, equal to the CSV reader wherever a CSV line can hold them."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from driftline.batch import score_interval
from driftline.config import ConfigError, load_config
from driftline.db import connection
from driftline.errors import BadConfig, Transient
from driftline.sources import InputError, read_interval
from tests.helpers import SMALL_PLAN, config_variant, db_url, fetch, interval_contents

FIRST, SECOND = SMALL_PLAN.interval_bounds()
ALL_ROWS = (  # keeps every row of the export, so rows outside the interval are quarantined as from the file
    "SELECT * FROM {table} WHERE %(interval_start)s::timestamptz < %(interval_end)s::timestamptz"
)


@pytest.fixture(scope="module")
def warehouse(project):
    """A schema in the test database standing in for the warehouse, dropped after the module."""
    name = f"wh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def load_text_table(schema: str, table: str, path: Path) -> int:
    """The CSV file's well-formed records into schema.table, every column text (so dirty cells fit), in
    file order; COPY reads an unquoted empty cell as NULL and "" as ''. Returns the malformed lines left out."""
    header, *lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    names = next(csv.reader([header]))
    good = [line for line in lines if line.strip() and _one_record(line, len(names))]
    with psycopg.connect(db_url(), autocommit=True) as conn:
        target = sql.Identifier(schema, table)
        columns = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(n)) for n in names)
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, columns))
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target)) as copy:
            copy.write("".join(good).encode("utf-8"))
    return len([line for line in lines if line.strip()]) - len(good)


def _one_record(line: str, fields: int) -> bool:
    try:
        rows = list(csv.reader([line.rstrip("\r\n")], strict=True))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == fields


def sql_config(project: Path, name: str, source: str) -> Path:
    """A sibling config scoring into the same schema with the same champion, reading [source] input = source."""
    config = load_config(project)
    return config_variant(project, config.db_schema, name, registry_dir=f'"{config.registry_dir}"', input=source)


def inline_table(**items: str) -> str:
    """A TOML inline table of strings (a JSON string is a TOML basic string)."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in items.items()) + " }"


def contents(config_path: Path, interval) -> dict:
    """Predictions and quarantine rows (key, reasons, raw_row): a row's number differs (file line, result row)."""
    published = interval_contents(config_path, interval)
    return {"predictions": published["predictions"], "quarantine": [row[1:] for row in published["quarantine"]]}


def test_query_reads_the_same_rows_as_the_csv_file_gives_the_same_predictions_and_quarantine(project, warehouse):
    config = load_config(project)
    malformed = load_text_table(warehouse, "events", Path(config.input_location(*SECOND)))
    assert malformed == 1  # the demo's one line with an extra field: a file has it, a table cannot

    from_file = score_interval(str(project), *SECOND, run_id="csv")
    file_contents = contents(project, SECOND)
    query = ALL_ROWS.format(table=f"{warehouse}.events")
    sql_path = sql_config(project, "from_sql", inline_table(url=db_url(), query=query))
    from_sql = score_interval(str(sql_path), *SECOND, run_id="sql")
    sql_contents = contents(sql_path, SECOND)

    assert sql_contents["predictions"] == file_contents["predictions"]  # scores bit-identical, same keys
    file_quarantine = [row for row in file_contents["quarantine"] if row[1] != ["malformed_record"]]
    assert sql_contents["quarantine"] == file_quarantine  # same rows, reasons and raw values, in the same order
    reasons = Counter(code for row in sql_contents["quarantine"] for code in row[1])
    assert reasons["not_a_number:amount"] == reasons["outside_interval:event_time"] == 10
    assert all(row[2]["amount"] == "twelve" for row in sql_contents["quarantine"] if "not_a_number:amount" in row[1])
    assert from_sql["rows_in"] == from_file["rows_in"] - 1 == from_sql["rows_scored"] + from_sql["rows_quarantined"]
    ((source,),) = fetch(sql_path, "SELECT source_uri FROM {s}.scoring_runs WHERE run_id = 'sql'")
    assert source == "sql:" + db_url().split("?")[0] + "/query"


def test_table_form_reads_the_interval_from_typed_columns_through_a_connection_id(project, warehouse, monkeypatch):
    """timestamptz, double precision, numeric and bigint columns type as the CSV text does."""
    config = load_config(project)
    load_text_table(warehouse, "events", Path(config.input_location(*FIRST)))
    typed = sql.Identifier(warehouse, "typed_events")
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {typed} AS SELECT transaction_id, event_time::timestamptz AS event_time, "
                "amount::numeric(12, 2) AS amount, account_age_days::numeric::bigint AS account_age_days, "
                "transactions_last_24h::double precision AS transactions_last_24h, "
                "distance_from_home_km::double precision AS distance_from_home_km, "
                "hour_of_day::numeric::integer AS hour_of_day, merchant_category, channel "
                "FROM {events} WHERE amount ~ '^[0-9.]+$'"
            ).format(typed=typed, events=sql.Identifier(warehouse, "events"))
        )
    monkeypatch.setattr(connection, "_url_resolver", lambda conn_id: db_url() if conn_id == "warehouse" else None)
    table = f'{{ conn_id = "warehouse", table = "{warehouse}.typed_events", event_time = "event_time" }}'
    sql_path = sql_config(project, "typed", table)

    score_interval(str(project), *FIRST, run_id="csv")
    file_scores = {key: score for key, score, *_ in contents(project, FIRST)["predictions"]}
    summary = score_interval(str(sql_path), *FIRST, run_id="typed")
    sql_scores = {key: score for key, score, *_ in contents(sql_path, FIRST)["predictions"]}

    assert summary["rows_scored"] > 0.9 * SMALL_PLAN.rows_per_interval
    assert "outside_interval:event_time" not in summary["quarantine_reasons"]  # the WHERE clause selected the interval
    assert sql_scores.keys() <= file_scores.keys()
    assert all(sql_scores[key] == pytest.approx(file_scores[key], abs=1e-12) for key in sql_scores)


def test_an_empty_interval_publishes_zero_rows(project, warehouse):
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (LIKE {})").format(
                sql.Identifier(warehouse, "empty_events"), sql.Identifier(warehouse, "events")
            )
        )
    query = f"SELECT * FROM {warehouse}.empty_events WHERE %(interval_start)s < %(interval_end)s"
    path = sql_config(project, "empty", inline_table(url=db_url(), query=query))
    summary = score_interval(str(path), *FIRST, run_id="empty")
    assert (summary["rows_in"], summary["rows_scored"], summary["rows_quarantined"]) == (0, 0, 0)
    assert fetch(path, "SELECT rows_in FROM {s}.run_summary WHERE published AND interval_start = %s", (FIRST[0],)) == [
        (0,)
    ]


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ('{{ url = "{url}", table = "{wh}.missing", event_time = "event_time" }}', BadConfig, r"\[source\] input"),
        ('{{ url = "{url}", table = "{wh}.events", event_time = "no_such_column" }}', BadConfig, "SQLSTATE 42703"),
        (
            '{{ url = "{url}", query = "SELECT transaction_id FROM {wh}.events WHERE %(interval_start)s < %(interval_end)s" }}',
            BadConfig,
            r"lacks column\(s\) \['event_time'",
        ),
        (
            '{{ url = "postgresql://nobody@127.0.0.1:1/db", table = "t", event_time = "e" }}',
            Transient,
            "cannot connect",
        ),
        # Retrying cannot fix these: the config's query, database or credentials are wrong.
        (
            '{{ url = "{url}", query = "SELECT * FROM otherdb.{wh}.events WHERE %(interval_start)s < %(interval_end)s" }}',
            BadConfig,
            "SQLSTATE 0A000",
        ),
        ('{{ url = "{nodb}", table = "{wh}.events", event_time = "event_time" }}', BadConfig, "cannot connect"),
        ('{{ url = "{norole}", table = "{wh}.events", event_time = "event_time" }}', BadConfig, "cannot connect"),
        ('{{ url = "{url}", table = "pg_toast.events", event_time = "event_time" }}', BadConfig, "SQLSTATE 42"),
        ('{{ url = "{url}", table = "pg_temp.events", event_time = "event_time" }}', BadConfig, "SQLSTATE 42"),
        ('{{ url = "{url}", table = "pg_catalog.events", event_time = "event_time" }}', BadConfig, "SQLSTATE 42"),
        (
            '{{ url = "{url}", query = "SELEC * FROM {wh}.events WHERE %(interval_start)s < %(interval_end)s" }}',
            BadConfig,
            "SQLSTATE 42601",
        ),
        (
            # Zero rows, and not one required column: the result's schema says so, not its (absent) rows.
            '{{ url = "{url}", query = "SELECT 1 AS x WHERE %(interval_start)s > %(interval_end)s" }}',
            BadConfig,
            r"lacks column\(s\) \['transaction_id'",
        ),
    ],
    ids=[
        "missing table",
        "missing column",
        "query without the configured columns",
        "unreachable server",
        "cross-database reference",
        "no such database",
        "no such role",
        "pg_toast",
        "pg_temp",
        "pg_catalog",
        "syntax error",
        "zero rows without the columns",
    ],
)
def test_a_source_that_cannot_be_read_fails_naming_the_key(project, warehouse, source, error, message):
    config = load_config(project)
    load_text_table(warehouse, "events", Path(config.input_location(*FIRST)))
    from psycopg.conninfo import make_conninfo

    urls = {
        "nodb": make_conninfo(db_url(), dbname=f"no_such_db_{uuid.uuid4().hex[:6]}"),
        "norole": make_conninfo(db_url(), user="no_such_role"),
    }
    path = sql_config(project, f"bad_{uuid.uuid4().hex[:6]}", source.format(url=db_url(), wh=warehouse, **urls))
    with pytest.raises(error, match=message) as raised:
        list(read_interval(load_config(path).input_location(*FIRST), load_config(path), *FIRST))
    assert type(raised.value) is not Transient or error is Transient


def test_the_query_runs_read_only_a_delete_in_a_cte_never_executes(project, warehouse):
    """A trigger that bumps a sequence (which no rollback undoes) proves the DELETE never ran."""
    config = load_config(project)
    load_text_table(warehouse, "victims", Path(config.input_location(*FIRST)))
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SEQUENCE {}").format(sql.Identifier(warehouse, "deletes")))
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval({seq}); "
                "RETURN OLD; END $$"
            ).format(f=sql.Identifier(warehouse, "record_delete"), seq=sql.Literal(f"{warehouse}.deletes"))
        )
        conn.execute(
            sql.SQL("CREATE TRIGGER record BEFORE DELETE ON {t} FOR EACH ROW EXECUTE FUNCTION {f}()").format(
                t=sql.Identifier(warehouse, "victims"), f=sql.Identifier(warehouse, "record_delete")
            )
        )
    query = (
        f"WITH gone AS (DELETE FROM {warehouse}.victims RETURNING *) SELECT * FROM gone "
        "WHERE %(interval_start)s < %(interval_end)s"
    )
    path = sql_config(project, "delete_cte", inline_table(url=db_url(), query=query))
    with pytest.raises(BadConfig, match="SQLSTATE 25006"):
        list(read_interval(load_config(path).input_location(*FIRST), load_config(path), *FIRST))
    (deleted,) = fetch(path, f"SELECT is_called FROM {warehouse}.deletes")[0]
    assert deleted is False


def test_an_error_while_rows_stream_is_mapped_and_scrubbed(project, warehouse, capsys):
    """A cast that fails on row 90,000 (after batches were read): BadInput, no value in the message, and
    the CLI prints no traceback."""
    from driftline.errors import BadInput

    secret = "x_secret_value_90000"
    query = (
        "SELECT g::text AS transaction_id, %(interval_start)s::timestamptz AS event_time, "
        f"(CASE WHEN g = 90000 THEN '{secret}' ELSE '1' END)::float8 AS amount, 100 AS account_age_days, "
        "1 AS transactions_last_24h, 2.5 AS distance_from_home_km, 10 AS hour_of_day, "
        "'grocery' AS merchant_category, 'online' AS channel "
        "FROM generate_series(1, 100000) AS g WHERE %(interval_start)s < %(interval_end)s"
    )
    path = sql_config(project, "stream_error", inline_table(url=db_url(), query=query))
    with pytest.raises(BadInput) as raised:
        list(read_interval(load_config(path).input_location(*FIRST), load_config(path), *FIRST))
    assert secret not in str(raised.value) and "while its rows were read" in str(raised.value)
    from driftline.cli import main

    assert main(["score", "--config", str(path), "--start", FIRST[0].isoformat(), "--end", FIRST[1].isoformat()]) != 0
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err and "Traceback" not in printed.err


def test_infinity_and_far_timestamps_are_one_quarantined_row_each(project, warehouse):
    table = sql.Identifier(warehouse, "extremes")
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} AS SELECT 'k' || g AS transaction_id, %s::timestamptz AS event_time, "
                "12.5::numeric AS amount, 100 AS account_age_days, 1 AS transactions_last_24h, "
                "2.5::float8 AS distance_from_home_km, 10 AS hour_of_day, 'grocery' AS merchant_category, "
                "'online' AS channel, now()::date AS noted FROM generate_series(1, 200) AS g"
            ).format(table),
            (FIRST[0],),
        )
        for key, column, value in [
            ("k1", "event_time", "infinity"),
            ("k2", "event_time", "-infinity"),
            ("k3", "event_time", "10000-01-01"),
            ("k4", "amount", "NaN"),
            ("k5", "noted", "infinity"),
        ]:
            conn.execute(
                sql.SQL("UPDATE {} SET {} = {} WHERE transaction_id = %s").format(
                    table, sql.Identifier(column), sql.Literal(value)
                ),
                (key,),
            )
        conn.execute(sql.SQL("UPDATE {} SET transaction_id = 'k6' WHERE transaction_id = 'k5'").format(table))
    query = f"SELECT * FROM {warehouse}.extremes WHERE %(interval_start)s < %(interval_end)s ORDER BY noted"
    path = sql_config(project, "extremes", inline_table(url=db_url(), query=query))
    summary = score_interval(str(path), *FIRST, run_id="extremes")
    assert (summary["rows_in"], summary["rows_quarantined"]) == (200, 5)
    reasons = Counter(code for row in contents(path, FIRST)["quarantine"] for code in row[1])
    assert reasons["out_of_range:event_time"] == 3 and reasons["not_a_number:amount"] == 1
    assert reasons["duplicate_key:transaction_id"] == 1  # the row holding date 'infinity' elsewhere: stored


def test_a_query_with_a_stray_percent_is_a_config_error(project):
    path = sql_config(
        project,
        "percent",
        '{ url = "postgresql://h/db", query = "SELECT * FROM t WHERE a LIKE \'x%\' AND %(interval_start)s < %(interval_end)s" }',
    )
    with pytest.raises(ConfigError, match="%%"):
        list(read_interval(load_config(path).input_location(*FIRST), load_config(path), *FIRST))


# -- text cells: SQL reads back what was written, like the CSV reader --------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
CELL = st.one_of(st.none(), st.just(""), TEXT, st.sampled_from(["a,b", 'say "hi"', "two\nlines", " a ", "NA", "12.5"]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=8))
def test_text_cells_read_back_as_written_and_as_the_csv_reader_reads_them(project, warehouse, tmp_path, rows):
    config = load_config(project)
    columns = ["transaction_id", "merchant_category", "amount"]
    start = FIRST[0]
    table = sql.Identifier(warehouse, "cells")
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(
            sql.SQL("CREATE TABLE {} (n serial, transaction_id text, merchant_category text, amount text)").format(
                table
            )
        )
        with conn.cursor().copy(
            sql.SQL("COPY {} (transaction_id, merchant_category, amount) FROM STDIN").format(table)
        ) as copy:
            for row in rows:
                copy.write_row(row)
    query = (
        f"SELECT transaction_id, '{start.isoformat()}' AS event_time, amount, 1 AS account_age_days, "
        "1 AS transactions_last_24h, 1 AS distance_from_home_km, 1 AS hour_of_day, merchant_category, "
        f"'online' AS channel FROM {warehouse}.cells WHERE %(interval_start)s < %(interval_end)s ORDER BY n"
    )
    path = sql_config(project, "cells", inline_table(url=db_url(), query=query))
    from_sql = _read(load_config(path).input_location(*FIRST), load_config(path))

    if isinstance(from_sql, tuple):
        # Keys and categories: exactly the stored text; NULL and '' are missing (the empty cell of a file).
        for name, index in (("transaction_id", 0), ("merchant_category", 1)):
            assert from_sql[0][name].to_pylist() == [row[index] or None for row in rows]
    if any(cell is not None and ("\n" in cell or "\r" in cell) for row in rows for cell in row):
        return  # a CSV line cannot hold a line break: nothing to compare with
    csv_file = tmp_path / f"cells-{uuid.uuid4().hex[:6]}.csv"
    header = "transaction_id,event_time,amount,account_age_days,transactions_last_24h,distance_from_home_km,"
    lines = [header + "hour_of_day,merchant_category,channel"]
    for key, category, amount in rows:
        cells = [key, start.isoformat(), amount, "1", "1", "1", "1", category, "online"]
        lines.append(",".join(_csv_cell(cell) for cell in cells))
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    from_file = _read(str(csv_file), config)
    if not isinstance(from_sql, tuple):  # no amount parses as a number: the input fails as a whole, both ways
        assert type(from_file) is type(from_sql)
        return
    assert from_sql[0].select(columns).to_pylist() == from_file[0].select(columns).to_pylist()
    assert from_sql[1] == from_file[1]


def _read(location, config):
    """(typed rows, {row: reason codes}) of read_interval, or the InputError it raised."""
    try:
        chunks = list(read_interval(location, config, *FIRST))
    except InputError as exc:
        return exc
    assert not any(chunk.malformed for chunk in chunks)
    typed = pa.concat_tables([chunk.typed for chunk in chunks])
    return typed, {c.first_row_number + p: sorted(codes) for c in chunks for p, codes in c.failures.items()}


def _csv_cell(cell: str | None) -> str:
    """NULL as the empty cell, text quoted (so '' is "", and quotes and commas survive)."""
    if cell is None:
        return ""
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="").writerow([cell])
    return buffer.getvalue()


def test_history_and_labels_read_from_tables_equal_the_files(project, warehouse):
    """[source] history / labels = { url, table }: the same frame as the Parquet file (typed the same way)."""
    from driftline.labelled import read_table

    config = load_config(project)
    tables = {}
    for key, uri in (("history", config.history_uri), ("labels", config.labels_uri)):
        frame = pd.read_parquet(config.resolve_location(uri))
        name = f"{key}_rows"
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(_POSTGRES_TYPES[str(dtype)]))
            for column, dtype in frame.dtypes.items()
        )
        with psycopg.connect(db_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(warehouse, name), columns))
            with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(warehouse, name))) as copy:
                for row in frame.itertuples(index=False):
                    copy.write_row([None if pd.isna(value) else value for value in row])
        tables[key] = inline_table(url=db_url(), table=f"{warehouse}.{name}")
    path = sql_config(project, "history_sql", f'"{config.input_uri}"')  # input stays the file
    path.write_text(
        path.read_text()
        .replace(f'history = "{config.history_uri}"', f"history = {tables['history']}")
        .replace(f'labels = "{config.labels_uri}"', f"labels = {tables['labels']}")
    )
    from_sql = load_config(path)
    assert str(from_sql.history_uri) == f"sql:{db_url().split('?')[0]}/{warehouse}.history_rows"
    for key in ("history_uri", "labels_uri"):
        expected = read_table(config.resolve_location(getattr(config, key)), config)
        got = read_table(getattr(from_sql, key), from_sql)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        assert got.attrs["reading"] == expected.attrs["reading"]


_POSTGRES_TYPES = {
    "object": "text",
    "float64": "double precision",
    "int64": "bigint",
    "int8": "smallint",
    "int32": "integer",
    "bool": "boolean",
    "datetime64[ns, UTC]": "timestamptz",
    "datetime64[us, UTC]": "timestamptz",
    "datetime64[ms, UTC]": "timestamptz",
}


def test_naive_timestamps_are_utc_whatever_the_sessions_time_zone(project, warehouse):
    """A `timestamp` column is compared with the interval's bounds in UTC, as a naive file timestamp is read."""
    config = load_config(project)
    load_text_table(warehouse, "events", Path(config.input_location(*FIRST)))
    naive = sql.Identifier(warehouse, "naive_events")
    with psycopg.connect(db_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} AS SELECT * FROM {} WHERE false").format(
                naive, sql.Identifier(warehouse, "events")
            )
        )
        conn.execute(sql.SQL("ALTER TABLE {} ALTER event_time TYPE timestamp USING NULL").format(naive))
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT 'late', %s, '1', '1', '1', '1', '1', 'grocery', 'online'").format(naive),
            (FIRST[0].replace(tzinfo=None) + pd.Timedelta(minutes=30),),
        )
    url = psycopg.conninfo.make_conninfo(db_url(), options="-c TimeZone=Asia/Kolkata")  # UTC+05:30
    path = sql_config(
        project, "naive", inline_table(url=url, table=f"{warehouse}.naive_events", event_time="event_time")
    )
    chunks = list(read_interval(load_config(path).input_location(*FIRST), load_config(path), *FIRST))
    assert [chunk.typed["transaction_id"].to_pylist() for chunk in chunks] == [["late"]]
    assert chunks[0].typed["event_time"].to_pylist()[0] == FIRST[0] + pd.Timedelta(minutes=30)
    assert not chunks[0].failures
