"""[source] input as a SQL query or table: the config checks, the rendered query, and `driftline score --dry-run`
(which prints what an interval's input is, for every source kind, reading nothing and connecting to nothing)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest

from driftline.cli import main
from driftline.config import ConfigError, SqlInput, SqlInterval, load_config
from driftline.db import connection
from driftline.sources.sql import render
from tests.helpers import REPO, config_copy, write_text

START, END = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, tzinfo=timezone.utc)
QUERY = "SELECT * FROM sales.events WHERE event_time >= %(interval_start)s AND event_time < %(interval_end)s"


def inline(**items: str) -> str:
    """A TOML inline table of strings (a JSON string is a TOML basic string)."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in items.items()) + " }"


def sql_source(tmp_path, value: str):
    return load_config(config_copy(tmp_path, keys={"input": value}))


def test_a_query_source_renders_the_interval_bounds_as_literals(tmp_path):
    config = sql_source(tmp_path, inline(conn_id="warehouse", query=QUERY))
    assert config.input_uri == SqlInput(conn_id="warehouse", query=QUERY)
    location = config.input_location(START, END)
    assert isinstance(location, SqlInterval) and str(location) == "sql:warehouse/query"
    assert render(location) == (
        "SELECT * FROM sales.events WHERE event_time >= '2026-11-01 00:00:00+00:00'::timestamptz "
        "AND event_time < '2026-11-02 00:00:00+00:00'::timestamptz"
    )


def test_a_table_source_quotes_its_names_and_keeps_literal_percent_and_braces(tmp_path):
    config = sql_source(tmp_path, '{ conn_id = "warehouse", table = "Sales.events", event_time = "event time" }')
    assert render(config.input_location(START, END)) == (
        'SELECT * FROM "Sales"."events" WHERE "event time" >= \'2026-11-01 00:00:00+00:00\'::timestamptz '
        "AND \"event time\" < '2026-11-02 00:00:00+00:00'::timestamptz"
    )
    query = "SELECT '{a}' AS b, x FROM t WHERE x LIKE 'a%%' AND t >= %(interval_start)s AND t < %(interval_end)s"
    config = sql_source(tmp_path, inline(url="postgresql://h/db", query=query))
    assert render(config.input_location(START, END)).startswith("SELECT '{a}' AS b, x FROM t WHERE x LIKE 'a%' AND")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{ query = "SELECT 1" }', "exactly one of 'conn_id'"),
        ('{ conn_id = "w", url = "postgresql://h/d", table = "t", event_time = "e" }', "exactly one of 'conn_id'"),
        ('{ url = "postgresql://u:secret@h/d", table = "t", event_time = "e" }', "contains a password"),
        ('{ conn_id = "w", table = "t" }', "'event_time' naming its event-time column"),
        ('{ conn_id = "w", table = "a.b.c", event_time = "e" }', "schema.table"),
        ('{ conn_id = "w", query = "SELECT 1" }', "%\\(interval_start\\)s and %\\(interval_end\\)s"),
        ('{ conn_id = "w", query = "SELECT %(day)s" }', "'day'"),
        ('{ conn_id = "w", query = "q", table = "t", event_time = "e" }', "exactly one of 'query' or 'table'"),
        ('{ conn_id = "w", table = "t", event_time = "e", schema = "s" }', "unknown key 'source.input.schema'"),
        ("{ conn_id = 3, table = 't', event_time = 'e' }", "'source.input.conn_id' must be str"),
    ],
)
def test_a_bad_sql_source_fails_at_load_naming_the_key(tmp_path, value, message):
    with pytest.raises(ConfigError, match=message):
        sql_source(tmp_path, value)


def test_a_conn_id_resolves_through_the_installed_resolver_never_driftlines_own_database(monkeypatch):
    from driftline.errors import BadConfig
    from driftline.sources.sql import source_url

    monkeypatch.setenv("DRIFTLINE_DB_URL", "postgresql://driftline-own/db")
    monkeypatch.setattr(connection, "_url_resolver", None)
    with pytest.raises(BadConfig, match=r"\[source\] input conn_id = 'warehouse'"):
        source_url(SqlInput(conn_id="warehouse", table="t", event_time="e"))
    monkeypatch.setattr(connection, "_url_resolver", lambda conn_id: f"postgresql://{conn_id}-host/db")
    assert source_url(SqlInput(conn_id="warehouse", table="t", event_time="e")) == "postgresql://warehouse-host/db"


def _dry_run(capsys, config_path) -> dict:
    assert (
        main(["score", "--dry-run", "--config", str(config_path), "--start", "2026-11-01", "--end", "2026-11-02"]) == 0
    )
    return json.loads(capsys.readouterr().out)


def test_dry_run_lists_the_interval_files_after_rendering_and_globbing(tmp_path, capsys):
    path = config_copy(tmp_path, keys={"input": '"data/parts/{interval_start:%Y-%m-%d}/*.csv"'})
    for name in ("b.csv", "a.csv"):
        write_text(tmp_path / "data" / "parts" / "2026-11-01" / name, "x\n")
    plan = _dry_run(capsys, path)
    assert plan["source"] == "files" and plan["landed"]
    assert plan["files"] == [str(tmp_path / "data/parts/2026-11-01" / name) for name in ("a.csv", "b.csv")]
    assert plan["interval_start"] == "2026-11-01T00:00:00+00:00"

    missing = _dry_run(capsys, config_copy(tmp_path, name="missing.toml"))
    assert missing["files"] == [] and not missing["landed"]
    assert missing["location"] == str(tmp_path / "data/demo_transactions/input/2026-11-01.csv")


def test_dry_run_prints_the_rendered_query_and_its_parameters_without_connecting(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(connection, "_url_resolver", lambda conn_id: pytest.fail("looked the connection up"))
    path = config_copy(tmp_path, keys={"input": inline(conn_id="warehouse", query=QUERY)})
    plan = _dry_run(capsys, path)
    assert plan["source"] == "sql" and plan["connection"] == {"conn_id": "warehouse"}
    assert "'2026-11-01 00:00:00+00:00'::timestamptz" in plan["query"]
    assert plan["parameters"] == {
        "interval_start": "2026-11-01T00:00:00+00:00",
        "interval_end": "2026-11-02T00:00:00+00:00",
    }


def test_dry_run_prints_an_object_storage_url_as_rendered(tmp_path, capsys):
    path = config_copy(tmp_path, keys={"input": '"s3://landing/events/{interval_start:%Y-%m-%d}/"'})
    plan = _dry_run(capsys, path)
    assert plan["source"] == "object_storage" and plan["location"] == "s3://landing/events/2026-11-01/"


def test_the_readme_source_examples_load(tmp_path):
    """Each config of the docs' "Where an interval's input comes from" is a valid [source] input."""
    readme = (REPO / "docs" / "configure" / "dataset.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Where an interval's input comes from") :]
    end = section.find("\n## ", 1)  # the next section, if any
    section = section if end < 0 else section[:end]
    examples = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    lines = [line for block in examples for line in block.splitlines() if re.match(r"(input|history|labels) = ", line)]
    assert len(lines) >= 5
    kinds = set()
    for number, line in enumerate(lines):
        key, value = line.split(" = ", 1)
        config = load_config(config_copy(tmp_path, name=f"example_{number}.toml", keys={key: value}))
        kinds.add(type(config.input_location(START, END)).__name__)
        kinds.add(type(config.history_uri).__name__)
        kinds.add(type(config.labels_uri).__name__)
    assert kinds == {"str", "SqlInterval", "SqlInput"}


def test_history_and_labels_tables_are_read_whole(tmp_path):
    config = load_config(
        config_copy(
            tmp_path,
            keys={
                "history": '{ conn_id = "warehouse", table = "sales.history" }',
                "labels": '{ url = "postgresql://h/db", query = "SELECT k, y, observed_at FROM sales.labels WHERE y LIKE \'%%x\'" }',
            },
        )
    )
    assert config.resolve_location(config.history_uri) is config.history_uri
    assert render(config.history_uri) == 'SELECT * FROM "sales"."history"'
    assert render(config.labels_uri) == "SELECT k, y, observed_at FROM sales.labels WHERE y LIKE '%x'"
    assert str(config.labels_uri) == "sql:postgresql://h/db/query"
    with pytest.raises(ConfigError, match="'source.history.query' is read whole and takes no placeholder"):
        load_config(config_copy(tmp_path, name="b.toml", keys={"history": f'{{ conn_id = "w", query = "{QUERY}" }}'}))
