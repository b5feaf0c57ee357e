"""The error tree, the one mapping to Airflow outcomes, and scrubbing (no Postgres needed here;
real database errors are scrubbed in tests/integration/test_governance_logs.py)."""

from __future__ import annotations

import gzip
import importlib
import inspect
import traceback

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from airflow.sdk.exceptions import AirflowFailException

from driftline import errors
from driftline.airflow import tasks
from driftline.errors import BadConfig, BadInput, BadModel, DriftlineError, NotReady, Transient

MARKER = "pii-marker-6c1f0e"


def _domain_modules():
    """Every driftline module outside the Airflow adapter (the adapter defines no errors of its own)."""
    import pkgutil

    import driftline

    for info in pkgutil.walk_packages(driftline.__path__, "driftline."):
        if not info.name.startswith(("driftline.airflow", "driftline.devtools")):
            yield importlib.import_module(info.name)


def test_every_driftline_exception_is_rooted_in_the_tree():
    found = []
    for module in _domain_modules():
        for _, kind in inspect.getmembers(module, inspect.isclass):
            if issubclass(kind, BaseException) and kind.__module__ == module.__name__:
                found.append(kind)
                assert issubclass(kind, DriftlineError), f"{kind.__module__}.{kind.__name__} is not a DriftlineError"
    assert len(found) >= 19


@pytest.mark.parametrize(
    "path, retried",
    [
        ("sources.InputError", False),
        ("sources.InputMissingError", True),
        ("config.ConfigError", False),
        ("registry.ModelLoadError", False),
        ("scoring.safeguards.OutputSanityError", False),
        ("validation.TableValidationError", False),
        ("validation.SuiteError", False),
        ("attempt.QuarantineBudgetExceeded", False),
        ("labelled.TrainingError", False),
        ("retraining.errors.RetrainingError", False),
        ("db.DatabaseError", True),
        ("db.IntervalBusyError", True),
        ("drift.errors.IntervalNotScoredError", True),
        ("drift.errors.DriftError", False),
    ],
)
def test_branch_decides_retry(path, retried):
    module, name = path.rsplit(".", 1)
    kind = getattr(importlib.import_module(f"driftline.{module}"), name)
    assert errors.retryable(kind("x")) is retried


def _raises(exc: BaseException):
    def step():
        raise exc

    return step


@pytest.mark.parametrize("kind", [BadInput, BadConfig, BadModel])
def test_fail_now_branches_become_airflow_fail_exception(kind):
    with pytest.raises(AirflowFailException) as raised:
        tasks.run_step(_raises(kind("the file is bad; fix it")))
    assert "the file is bad; fix it" in str(raised.value)
    assert isinstance(raised.value.__cause__, kind)  # the notifier reads alert_id / numbers from it


@pytest.mark.parametrize("kind", [NotReady, Transient])
def test_retry_branches_are_raised_unchanged(kind):
    error = kind("later")
    with pytest.raises(kind) as raised:
        tasks.run_step(_raises(error))
    assert raised.value is error


def test_a_bug_is_raised_unchanged_and_retried():
    with pytest.raises(KeyError):
        tasks.run_step(_raises(KeyError("column")))


def test_foreign_bad_input_is_mapped_with_the_file_named(tmp_path):
    broken = tmp_path / "input.csv.gz"
    broken.write_bytes(gzip.compress(b"a,b\n" * 1000)[:40])
    with pytest.raises(AirflowFailException) as raised:

        def read():
            with errors.reading(str(broken)):
                gzip.decompress(broken.read_bytes())

        tasks.run_step(read)
    assert str(broken) in str(raised.value) and "truncated" in str(raised.value)

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(f"key\n{MARKER}\xe9\n".encode("latin-1"))
    with pytest.raises(BadInput) as decoded:
        with errors.reading(str(latin1)):
            latin1.read_bytes().decode("utf-8")
    assert str(latin1) in str(decoded.value) and "not valid utf-8" in str(decoded.value)
    assert MARKER not in str(decoded.value)


def test_arrow_errors_lose_the_quoted_cell():
    data = f"amount\n1.5\n'{MARKER}'\n".encode()
    with pytest.raises(pa.ArrowInvalid) as raised:
        pacsv.read_csv(
            pa.BufferReader(data), convert_options=pacsv.ConvertOptions(column_types={"amount": pa.float64()})
        )
    assert MARKER in str(raised.value)  # the library does put the cell in its message
    mapped = errors.translate(raised.value, "in.csv")
    assert isinstance(mapped, BadInput) and "in.csv" in str(mapped) and MARKER not in str(mapped)


def test_missing_config_param_fails_at_once_as_bad_config(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(AirflowFailException, match="config file not found"):
        tasks.prepare_database(str(missing))


def test_scrub_removes_detail_and_context_from_the_whole_chain():
    import psycopg

    # A psycopg error as the server words it (the real ones are raised in the integration tests).
    database = psycopg.errors.UniqueViolation(
        f'duplicate key value violates unique constraint "prediction_rows_pkey"\n'
        f"DETAIL:  Key (run_key, entity_key)=(7, {MARKER}) already exists.\n"
        f'CONTEXT:  COPY prediction_rows, line 12: "1,{MARKER},0.5"'
    )
    try:
        try:
            raise database
        except psycopg.Error as exc:
            raise BadInput("an entity key appears twice; deduplicate the export") from exc
    except BadInput as exc:
        wrapped = exc
    assert MARKER in "".join(traceback.format_exception(wrapped))
    errors.scrub(wrapped)
    text = "".join(traceback.format_exception(wrapped))
    assert MARKER not in text and "DETAIL" not in text and "CONTEXT" not in text
    assert "duplicate key value violates unique constraint" in str(database)
    with pytest.raises(AirflowFailException) as raised:
        tasks.run_step(_raises(wrapped))
    assert MARKER not in "".join(traceback.format_exception(raised.value))


def test_redact_keeps_the_words_and_drops_the_literals():
    assert errors.redact(f"could not convert string to float: '{MARKER}'") == "could not convert string to float: <...>"
    assert errors.redact(f'invalid input syntax for type double precision: "{MARKER}"\nCONTEXT: x') == (
        "invalid input syntax for type double precision: <...>"
    )


def test_parse_errors_that_quote_a_row_are_scrubbed_in_the_chain():
    data = f"a,b\n1,2\n{MARKER},3,4\n".encode()
    with pytest.raises(pa.ArrowInvalid) as raised:
        pacsv.read_csv(pa.BufferReader(data))
    assert MARKER in str(raised.value)  # pyarrow appends the raw row
    try:
        try:
            raise raised.value
        except pa.ArrowInvalid as exc:
            raise BadInput(f"in.csv: CSV cannot be parsed: {exc}") from exc
    except BadInput as exc:
        wrapped = exc
    with pytest.raises(AirflowFailException) as outcome:
        tasks.run_step(_raises(wrapped))
    shown = "".join(traceback.format_exception(outcome.value))
    assert MARKER not in shown and "Expected 2 columns, got 3: <...>" in shown and "in.csv" in shown


def test_the_cli_maps_an_unexpected_error_to_one_scrubbed_line(monkeypatch, capsys):
    """Anything escaping a command (here from the setup before it) is one line and exit 70, no traceback."""
    import driftline.airflow.connections as connections
    from driftline import cli

    def broken() -> None:
        raise RuntimeError("setup failed")

    monkeypatch.setattr(connections, "install", broken)
    monkeypatch.delenv("DRIFTLINE_DEBUG", raising=False)
    assert cli.main(["init-db"]) == 70
    err = capsys.readouterr().err
    assert err.startswith("driftline: unexpected error") and "RuntimeError" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("sqlstate", "kind"),
    [
        ("0A000", BadConfig),  # cross-database references are not implemented
        ("28P01", BadConfig),  # password authentication failed
        ("28000", BadConfig),  # invalid authorization (role, pg_hba)
        ("3D000", BadConfig),  # the database does not exist
        ("3F000", BadConfig),  # no such schema
        ("42P01", BadConfig),  # undefined table (pg_temp.x, pg_toast.x)
        ("42703", BadConfig),  # undefined column
        ("42501", BadConfig),  # permission denied
        ("42601", BadConfig),  # syntax error
        ("25006", BadConfig),  # a write in a read-only transaction
        ("22P02", BadInput),
        ("22012", BadInput),
        ("23505", BadInput),
        ("08006", Transient),
        ("40001", Transient),
        ("40P01", Transient),
        ("53300", Transient),
        ("55P03", Transient),
        ("57P01", Transient),
        ("25P02", Transient),
        ("", Transient),
        (None, Transient),
    ],
)
def test_sqlstates_map_to_the_branch_a_retry_can_or_cannot_fix(sqlstate, kind):
    import psycopg

    assert errors.sqlstate_kind(sqlstate) is kind
    if sqlstate:  # and a psycopg error carrying it is translated the same way
        mapped = errors.translate(psycopg.errors.lookup(sqlstate)("boom 'value'"))
        assert isinstance(mapped, kind) and "value" not in str(mapped)
