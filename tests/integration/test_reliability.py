"""Nothing lost on bad input and faults: every case either fails clearly or quarantines with reasons,
and Postgres always shows rows_in = rows_scored + rows_quarantined for what was published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import psycopg.sql
import pytest

from driftline import db
from driftline.attempt import QuarantineBudgetExceeded
from driftline.batch import check_interval, score_interval
from driftline.config import load_config
from driftline.registry import ModelLoadError, champion_version
from tests.helpers import config_variant, fetch, write_text
from tests.integration.scenarios import ROWS, clean_rows, frame_csv

CASE_DAY = datetime(2026, 12, 1, tzinfo=timezone.utc)


def published_count(config, start: datetime) -> int:
    return fetch(config, "SELECT count(*) FROM {s}.predictions WHERE interval_start = %s", (start,))[0][0]


def quarantine_reasons(config, start: datetime) -> Counter:
    rows = fetch(
        config,
        "SELECT q.reason_codes FROM {s}.quarantine_rows q JOIN {s}.scored_intervals i USING (interval_id) "
        "WHERE i.interval_start = %s",
        (start,),
    )
    return Counter(code for (codes,) in rows for code in codes)


def with_cells(column: str, value, count: int = 3):
    def build(frame: pd.DataFrame) -> str:
        frame = frame.astype({column: object})
        frame.loc[: count - 1, column] = value
        return frame_csv(frame)

    return build


# name -> (builder from clean rows to file text, expected: ("error", text in message) or ("quarantine", reason code))
CASES = {
    "empty_file": (lambda f: "", ("error", "input file is empty")),
    "header_only": (lambda f: ",".join(f.columns) + "\n", ("error", "no data rows")),
    "missing_column": (lambda f: frame_csv(f.drop(columns=["channel"])), ("error", "missing column(s) ['channel']")),
    "renamed_column": (
        lambda f: frame_csv(f.rename(columns={"hour_of_day": "hour_of_the_day"})),
        ("error", "'hour_of_day' looks renamed to 'hour_of_the_day'"),
    ),
    "extra_column": (lambda f: frame_csv(f.assign(note="free text")), ("quarantine", None)),
    "text_in_numeric_cells": (with_cells("amount", "twelve"), ("quarantine", "not_a_number:amount")),
    "numeric_column_all_text": (
        lambda f: frame_csv(f.assign(amount="n/a-ish")),
        ("error", "column 'amount' holds text, expected numeric"),
    ),
    "all_nan_required_column": (
        lambda f: frame_csv(f.assign(amount=np.nan)),
        ("budget", "expect_column_values_to_not_be_null:amount"),
    ),
    "nan_heavy_rows": (
        lambda f: frame_csv(f.assign(distance_from_home_km=np.nan, transactions_last_24h=np.nan)),
        ("quarantine", None),  # nullable features: scored, LightGBM handles missing values
    ),
    "duplicate_keys_in_chunk": (
        lambda f: frame_csv(pd.concat([f, f.iloc[:2]], ignore_index=True)),
        ("quarantine", "duplicate_key:transaction_id"),
    ),
    "utf8_bom": (lambda f: "\ufeff" + frame_csv(f), ("quarantine", None)),
    "non_ascii_names_and_values": (
        lambda f: frame_csv(f.assign(**{"Größe_€": "ß"}, transaction_id=[f"tö-ñ-{i}" for i in range(len(f))])),
        ("quarantine", None),
    ),
    "huge_value": (with_cells("amount", 1e308), ("quarantine", "expect_column_values_to_be_between:amount")),
    "infinity": (
        with_cells("account_age_days", "inf"),
        ("quarantine", "expect_column_values_to_be_between:account_age_days"),
    ),
    "negative_where_forbidden": (with_cells("amount", -3), ("quarantine", "expect_column_values_to_be_between:amount")),
    "unseen_category": (
        with_cells("merchant_category", "crypto_exchange"),
        ("quarantine", "expect_column_values_to_be_in_set:merchant_category"),
    ),
    "wrong_delimiter": (lambda f: f.to_csv(index=False, sep=";"), ("error", "is the file comma-delimited")),
    "truncated_last_line": (lambda f: frame_csv(f).rstrip("\n")[:-40], ("quarantine", "malformed_record")),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_reported_or_quarantined_never_dropped(project, case):
    from driftline.sources import InputError

    config = load_config(project)
    start = CASE_DAY + timedelta(days=list(CASES).index(case))
    end = start + timedelta(days=1)
    build, (outcome, detail) = CASES[case]
    text = build(clean_rows(start))
    write_text(Path(config.input_location(start, end)), text)

    if outcome == "error":
        with pytest.raises(InputError) as error:
            score_interval(str(project), start, end, run_id=f"bad_input_{case}")
        assert detail in str(error.value)
        assert config.input_location(start, end) in str(error.value)
        assert published_count(config, start) == 0
        ((status, message),) = fetch(
            config, "SELECT status, message FROM {s}.run_summary WHERE interval_start = %s", (start,)
        )
        assert status == "failed" and detail in message
        return

    if outcome == "budget":
        with pytest.raises(QuarantineBudgetExceeded, match="quarantine budget exceeded"):
            score_interval(str(project), start, end, run_id=f"bad_input_{case}")
        assert published_count(config, start) == 0
        ((rows_in, scored, quarantined),) = fetch(
            config,
            "SELECT rows_in, rows_scored, rows_quarantined FROM {s}.run_summary WHERE interval_start = %s",
            (start,),
        )
        assert rows_in == scored + quarantined == ROWS
        assert quarantine_reasons(config, start)[detail] == ROWS
        return

    summary = score_interval(str(project), start, end, run_id=f"bad_input_{case}")
    stored = check_interval(str(project), start, end)  # raises unless rows_in = scored + quarantined, as stored
    assert stored["rows_in"] == summary["rows_in"] == stored["rows_scored"] + stored["rows_quarantined"]
    # ... and rows_in is the records a person counts: the non-empty lines after the header.
    written = Path(config.input_location(start, end)).read_bytes().split(b"\n")[1:]
    assert stored["rows_in"] == sum(1 for line in written if line not in (b"", b"\r"))
    assert published_count(config, start) == stored["rows_scored"] > 0
    reasons = quarantine_reasons(config, start)
    if detail is None:
        assert stored["rows_quarantined"] == 0, reasons
    else:
        assert reasons[detail] >= 1, reasons
    keys = [
        row[0] for row in fetch(config, "SELECT entity_key FROM {s}.predictions WHERE interval_start = %s", (start,))
    ]
    assert len(keys) == len(set(keys))


def test_duplicate_key_far_apart_fails_clearly_and_writes_nothing(project):
    from driftline.sources import InputError

    config = load_config(project)  # chunk_rows = 1000 in the test project
    start = datetime(2027, 1, 1, tzinfo=timezone.utc)
    frame = clean_rows(start, rows=2500)
    frame.loc[2400, "transaction_id"] = frame.loc[5, "transaction_id"]
    write_text(Path(config.input_location(start, start + timedelta(days=1))), frame_csv(frame))
    with pytest.raises(InputError, match="appears more than once"):
        score_interval(str(project), start, start + timedelta(days=1), run_id="far_duplicate")
    assert published_count(config, start) == 0


# --- faults -----------------------------------------------------------------------------------


def big_input(config, start: datetime, rows: int = 60_000) -> None:
    write_text(Path(config.input_location(start, start + timedelta(days=1))), frame_csv(clean_rows(start, rows)))


def score_in_child(project: Path, start: datetime, run_id: str) -> subprocess.Popen:
    end = start + timedelta(days=1)
    command = [
        sys.executable,
        "-m",
        "driftline.cli",
        "score",
        "--config",
        str(project),
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--run-id",
        run_id,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def wait_for(config, condition_sql: str, params, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fetch(config, condition_sql, params)[0][0]:
            return
        if process.poll() is not None:
            pytest.fail(f"child exited early: {process.stderr.read()[-2000:]}")
        time.sleep(0.01)
    pytest.fail("condition never met")


def contents(config, start: datetime):
    return fetch(
        config,
        "SELECT entity_key, score, run_id FROM {s}.predictions WHERE interval_start = %s ORDER BY entity_key",
        (start,),
    )


def test_crash_during_copy_leaves_previous_contents_and_rerun_completes(project):
    config = load_config(project)
    start = datetime(2027, 2, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    big_input(config, start)
    score_interval(str(project), start, end, run_id="before_crash")
    before = contents(config, start)
    assert len(before) == 60_000

    child = score_in_child(project, start, "crashing_run")
    wait_for(
        config,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND query ILIKE 'COPY%%' AND state = 'active'",
        ("driftline score_interval crashing_run",),
        child,
    )
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert contents(config, start) == before  # readers never see the half-written interval
    summary = score_interval(str(project), start, end, run_id="after_crash")
    after = contents(config, start)
    assert len(after) == summary["rows_scored"] == 60_000
    assert {run_id for _, _, run_id in after} == {"after_crash"}
    assert [(k, s) for k, s, _ in after] == [(k, s) for k, s, _ in before]


def test_concurrent_runs_of_one_interval_leave_one_copy_and_the_loser_says_why(project):
    config = load_config(project)
    start = datetime(2027, 3, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    big_input(config, start)
    child = score_in_child(project, start, "first_writer")
    wait_for(
        config,
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
        ("driftline score_interval first_writer",),
        child,
    )
    with pytest.raises(db.IntervalBusyError) as error:
        score_interval(str(project), start, end, run_id="second_writer")
    assert "being written by another run" in str(error.value) and "wrote nothing" in str(error.value)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err[-2000:]

    rows = contents(config, start)
    assert len(rows) == len({key for key, _, _ in rows}) == 60_000
    assert {run_id for _, _, run_id in rows} == {"first_writer"}


def test_unreachable_database_fails_clearly_then_recovers_without_partial_state(project, monkeypatch):
    config = load_config(project)
    start = datetime(2027, 4, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    write_text(Path(config.input_location(start, end)), frame_csv(clean_rows(start)))
    good_url = os.environ["DRIFTLINE_DB_URL"]
    monkeypatch.setenv("DRIFTLINE_DB_URL", "postgresql://driftline:secret@127.0.0.1:1/driftline")
    with pytest.raises(db.DatabaseError) as error:
        score_interval(str(project), start, end, run_id="database_down")
    assert "127.0.0.1:1" in str(error.value) and "secret" not in str(error.value)
    monkeypatch.setenv("DRIFTLINE_DB_URL", good_url)
    assert fetch(config, "SELECT count(*) FROM {s}.run_summary WHERE interval_start = %s", (start,)) == [(0,)]
    summary = score_interval(str(project), start, end, run_id="database_back")
    assert check_interval(str(project), start, end)["rows_scored"] == summary["rows_scored"] == ROWS


def test_tampered_champion_is_refused_and_nothing_is_written(project):
    config = load_config(project)
    start = datetime(2027, 5, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    write_text(Path(config.input_location(start, end)), frame_csv(clean_rows(start)))
    ((uri,),) = fetch(config, "SELECT artifact_uri FROM {s}.model_versions WHERE status = 'champion'")
    path = Path(uri.removeprefix("file://"))
    original = path.read_bytes()
    with psycopg.connect(os.environ["DRIFTLINE_DB_URL"]) as conn:
        champion = champion_version(conn, config.db_schema)
    try:
        path.write_bytes(original + b"\n")
        with pytest.raises(ModelLoadError, match="sha256 mismatch"):
            score_interval(str(project), start, end, run_id="tampered")
    finally:
        path.write_bytes(original)
    assert published_count(config, start) == 0
    with psycopg.connect(os.environ["DRIFTLINE_DB_URL"]) as conn:
        assert champion_version(conn, config.db_schema) == champion


def test_schema_check_takes_no_lock_beside_an_open_interval_write(project):
    """ensure_schema on an up-to-date schema must not queue behind (or deadlock with) a scoring
    transaction: an open write on prediction_rows and scoring_runs, and a 1 s lock_timeout."""
    config = load_config(project)
    writer = psycopg.connect(os.environ["DRIFTLINE_DB_URL"])
    try:
        for name in ("prediction_rows", "scoring_runs"):
            writer.execute(
                psycopg.sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(db.table(config.db_schema, name))
            )
        with psycopg.connect(os.environ["DRIFTLINE_DB_URL"], autocommit=True) as other:
            other.execute("SET lock_timeout = '1s'")
            db.ensure_schema(other, config.db_schema)  # raises LockNotAvailable if it took a table lock
    finally:
        writer.rollback()
        writer.close()


def test_rerun_replaces_the_attempt_so_prediction_rows_holds_each_interval_once(project):
    config = load_config(project)
    start = datetime(2027, 4, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    write_text(Path(config.input_location(start, end)), frame_csv(clean_rows(start)))
    first = score_interval(str(project), start, end, run_id="rerun_first")
    second = score_interval(str(project), start, end, run_id="rerun_second")
    assert first["rows_scored"] == second["rows_scored"] == ROWS
    stored = fetch(
        config,
        "SELECT p.run_key, count(*) FROM {s}.prediction_rows p JOIN {s}.scoring_runs r USING (run_key) "
        "JOIN {s}.scored_intervals i USING (interval_id) WHERE i.interval_start = %s GROUP BY 1",
        (start,),
    )
    current = fetch(config, "SELECT current_run_key FROM {s}.scored_intervals WHERE interval_start = %s", (start,))
    assert stored == [(current[0][0], ROWS)]  # the first attempt's rows are gone, not hidden
    assert {run_id for _, _, run_id in contents(config, start)} == {"rerun_second"}


def test_schema_keyed_by_interval_migrates_to_rows_keyed_by_attempt(project, tmp_path):
    """A deployment whose prediction_rows still has interval_id (schema before run_key keying)
    keeps its published predictions through ensure_schema, and scoring goes on over them."""
    from driftline.batch import prepare_database

    config = load_config(project)
    start = datetime(2027, 5, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    write_text(Path(config.input_location(start, end)), frame_csv(clean_rows(start)))
    score_interval(str(project), start, end, run_id="before_migration")
    before = fetch(config, "SELECT interval_start, entity_key, score, run_id FROM {s}.predictions ORDER BY 1, 2")
    # Put the table back into the earlier shape: rows keyed by interval_id, views reading that.
    with psycopg.connect(os.environ["DRIFTLINE_DB_URL"], autocommit=True) as conn:
        s = psycopg.sql.Identifier(config.db_schema)
        for statement in (
            "DROP VIEW {s}.latest_predictions, {s}.predictions_for_review, {s}.predictions, {s}.prediction_reasons",
            "ALTER TABLE {s}.prediction_rows ADD COLUMN interval_id integer",
            "UPDATE {s}.prediction_rows p SET interval_id = i.interval_id FROM {s}.scored_intervals i "
            "WHERE i.current_run_key = p.run_key",
            "ALTER TABLE {s}.prediction_rows DROP COLUMN run_key",
            "CREATE UNIQUE INDEX prediction_rows_entity_interval ON {s}.prediction_rows (entity_key, interval_id)",
            "CREATE VIEW {s}.predictions AS SELECT i.interval_start, i.interval_end, p.entity_key, p.score, "
            "p.predicted_class, r.model_version, r.run_id, r.finished_at AS scored_at FROM {s}.prediction_rows p "
            "JOIN {s}.scored_intervals i ON i.interval_id = p.interval_id "
            "JOIN {s}.scoring_runs r ON r.run_key = i.current_run_key",
            "DELETE FROM {s}.schema_version",
        ):
            conn.execute(psycopg.sql.SQL(statement).format(s=s))

    prepare_database(str(project))

    columns = fetch(
        config,
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (f'"{config.db_schema}".prediction_rows',),
    )
    assert sorted(c for (c,) in columns) == ["entity_key", "partition", "predicted_class", "run_key", "score"]
    assert (
        fetch(config, "SELECT interval_start, entity_key, score, run_id FROM {s}.predictions ORDER BY 1, 2") == before
    )
    indexes = fetch(
        config,
        "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'prediction_rows'",
        (config.db_schema,),
    )
    assert indexes == [("prediction_rows_run_entity",)]
    summary = score_interval(str(project), start, end, run_id="after_migration")
    assert check_interval(str(project), start, end)["rows_scored"] == summary["rows_scored"] == ROWS


# --- The reading contract end to end (issue 16) ------------------------------------------------


def test_dirty_export_damages_only_its_bad_records_and_rows_in_counts_lines(project):
    """One open quote used to swallow the rest of the file as one quarantined "row" while the
    interval published as succeeded. Now every line is one record: the damaged ones are quarantined
    with their raw text, keys spelled like nulls are scored as those keys, a NUL key is quarantined
    (not a failed interval), and rows_in equals the records a line count finds."""
    import base64
    import json

    config = load_config(project)
    start = datetime(2027, 6, 1, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    frame = clean_rows(start, rows=3000)
    frame.loc[5, "transaction_id"] = "NA"
    frame.loc[6, "transaction_id"] = "null"
    frame = frame.astype({"distance_from_home_km": object})
    frame.loc[8, "distance_from_home_km"] = " "  # blank in a nullable numeric column: missing, scored
    lines = frame_csv(frame).split("\n")
    damaged = lines[101].split(",")
    damaged[2] = '"' + damaged[2]  # an open quote in row 100: nothing after it may be swallowed
    lines[101] = ",".join(damaged)
    nul_key = lines[201].split(",")[0] + "\x00x"
    lines[201] = nul_key + lines[201][lines[201].index(",") :]
    lines[1500:1500] = ["", ""]  # blank lines are not records
    text = "\n".join(lines)
    path = Path(config.input_location(start, end))
    write_text(path, text)

    reference_records = [line for line in path.read_bytes().split(b"\n")[1:] if line.strip(b"\r")]
    summary = score_interval(str(project), start, end, run_id="dirty_export")
    stored = check_interval(str(project), start, end)
    assert summary["rows_in"] == stored["rows_in"] == len(reference_records) == 3000
    assert (stored["rows_scored"], stored["rows_quarantined"]) == (2998, 2)

    quarantined = {
        codes[0]: (row_number, key, raw)
        for row_number, key, codes, raw in fetch(
            config,
            "SELECT q.row_number, q.entity_key, q.reason_codes, q.raw_row FROM {s}.quarantine_rows q "
            "JOIN {s}.scored_intervals i USING (interval_id) WHERE i.interval_start = %s AND q.run_key = i.current_run_key",
            (start,),
        )
    }
    assert quarantined["malformed_record"] == (102, None, {"line": lines[101]})
    row_number, key, raw = quarantined["unstorable_character:transaction_id"]
    assert (row_number, key) == (202, None)
    assert base64.b64decode(raw["transaction_id"]["base64"]).decode() == nul_key  # byte for byte
    scored = {
        key for (key,) in fetch(config, "SELECT entity_key FROM {s}.predictions WHERE interval_start = %s", (start,))
    }
    expected = set(frame["transaction_id"]) - {frame.loc[100, "transaction_id"], frame.loc[200, "transaction_id"]}
    assert scored == expected and {"NA", "null"} <= scored
    assert json.dumps(summary)  # the run summary holds counts, never row data


def test_reason_codes_keep_non_ascii_feature_names_through_copy(project):
    """Reason codes go into quarantine_rows.reason_codes (text[]) with every character of the name."""
    import io

    import pyarrow as pa

    from driftline.attempt import Counts, Destination
    from driftline.chunks import spill_quarantine
    from driftline.db.runs import QUARANTINE_COLUMNS
    from driftline.sources import Chunk

    config = load_config(project)
    codes = ["not_a_number:größe_€", 'expect_x:we"ird\\name', "in_set:a,b {c}", "日本語"]
    raw = pa.table({"transaction_id": ["k-ü"], "größe_€": ["zwölf"]})
    chunk = Chunk(raw=raw, typed=raw, first_row_number=0, failures={0: codes}, source="input.csv")
    spill = io.BytesIO()
    result = Counts()  # the counts of an attempt
    spill_quarantine(config, chunk, chunk.failures, np.array([True]), Destination.interval(-16, -16), spill, result)
    with psycopg.connect(os.environ["DRIFTLINE_DB_URL"]) as conn:
        db.copy_csv(conn, db.table(config.db_schema, "quarantine_rows"), QUARANTINE_COLUMNS, spill.getvalue())
        stored = conn.execute(
            psycopg.sql.SQL(
                "SELECT entity_key, reason_codes, raw_row FROM {}.quarantine_rows WHERE run_key = -16"
            ).format(psycopg.sql.Identifier(config.db_schema))
        ).fetchall()
        conn.rollback()
    assert stored == [("k-ü", sorted(codes), {"transaction_id": "k-ü", "größe_€": "zwölf"})]


def test_messy_csvs_through_the_scoring_path_account_for_every_line(project):
    """The unit property test's messy CSVs, scored end to end (quarantine budget off so every
    example publishes): rows_in is the line count, every good record's key is scored or quarantined
    unchanged, every damaged line is quarantined with its raw text."""
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.strategies import messy_csv

    config = load_config(project)
    variant = config_variant(project, config.db_schema, name="messy_budget_off", quarantine_budget="1.0")
    days = iter(range(1000))

    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=messy_csv())
    def check(case):
        encoding, newline, null_values, _, records = case
        start = datetime(2028, 1, 1, tzinfo=timezone.utc) + timedelta(days=next(days))
        end = start + timedelta(days=1)
        stamp = start.strftime("%Y-%m-%dT10:00:00Z")
        lines = [line.replace("2026-11-01T10:00:00Z", stamp) for _, line, _, _ in records]
        path = Path(config.input_location(start, end))
        text = newline.join([",".join(clean_rows(start, 1).columns), *lines]) + newline
        write_text(path, text.encode("utf-8", "replace").decode("utf-8"))  # the project reads UTF-8
        reference = [line for line in path.read_bytes().split(b"\n")[1:] if line not in (b"", b"\r")]
        summary = score_interval(str(variant), start, end, run_id=f"messy_{start:%Y%m%d}")
        stored = check_interval(str(variant), start, end)
        assert summary["rows_in"] == stored["rows_in"] == len(reference)
        scored = {
            k for (k,) in fetch(config, "SELECT entity_key FROM {s}.predictions WHERE interval_start = %s", (start,))
        }
        quarantined = fetch(
            config,
            "SELECT q.row_number, q.entity_key, q.reason_codes, q.raw_row FROM {s}.quarantine_rows q JOIN "
            "{s}.scored_intervals i USING (interval_id) WHERE i.interval_start = %s AND q.run_key = i.current_run_key",
            (start,),
        )
        by_line = {row_number: (key, codes, raw) for row_number, key, codes, raw in quarantined}
        for number, (kind, line, key, _) in enumerate(records, start=2):
            line = line.replace("2026-11-01T10:00:00Z", stamp)
            if kind == "good":
                assert key in scored or by_line[number][0] == key
            elif kind in ("extra_field", "missing_field"):
                assert by_line[number][1] == ["malformed_record"] and by_line[number][2] == {"line": line}

    check()


def test_keys_with_line_breaks_are_scored_whole_and_a_broken_one_quarantined_whole(project):
    """Issue 27: a quoted key holding a line break (legal CSV) used to quarantine its first line and score
    the continuation under a corrupted key; 20,000 of them counted 20,000 fragments as scored."""
    config = load_config(project)
    start = datetime(2027, 6, 3, tzinfo=timezone.utc)
    end = start + timedelta(days=1)
    frame = clean_rows(start, rows=3000)
    frame["transaction_id"] = [f"k{i}\r\nline two" if i % 3 == 0 else f"k{i}" for i in range(len(frame))]
    text = frame_csv(frame)  # pandas quotes the keys with line breaks (RFC 4180)
    broken = '"broken\nkey",' + text.split("\n")[2].split(",", 1)[1] + ",extra"  # a field too many
    write_text(Path(config.input_location(start, end)), text.rstrip("\n") + "\n" + broken + "\n")

    summary = score_interval(str(project), start, end, run_id="multiline_keys")
    assert (summary["rows_in"], summary["rows_scored"], summary["rows_quarantined"]) == (3001, 3000, 1)
    scored = {
        key for (key,) in fetch(config, "SELECT entity_key FROM {s}.predictions WHERE interval_start = %s", (start,))
    }
    assert scored == set(frame["transaction_id"])
    ((raw,),) = fetch(
        config,
        "SELECT q.raw_row FROM {s}.quarantine_rows q JOIN {s}.scored_intervals i USING (interval_id) "
        "WHERE i.interval_start = %s AND q.run_key = i.current_run_key",
        (start,),
    )
    assert raw == {"line": broken}
