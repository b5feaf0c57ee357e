from __future__ import annotations

import dataclasses
import gzip
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from driftline.config import load_config
from driftline.sources import InputError, InputMissingError, read_interval, read_table
from tests.strategies import NULL_LIKE, messy_csv, rfc_csv

REPO = Path(__file__).resolve().parents[3]
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 11, 2, tzinfo=timezone.utc)
HEADER = "transaction_id,event_time,amount,account_age_days,transactions_last_24h,distance_from_home_km,hour_of_day,merchant_category,channel"
GOOD = "t1,2026-11-01T10:00:00Z,12.5,100,1,2.5,10,grocery,online"


@pytest.fixture
def config():
    return load_config(REPO / "config" / "demo.toml")


def read(config, path: Path):
    return list(read_interval(str(path), config, START, END))


def csv(tmp_path: Path, *lines: str, encoding="utf-8") -> Path:
    path = tmp_path / "input.csv"
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_cells_that_do_not_parse_become_row_reasons(config, tmp_path):
    path = csv(
        tmp_path,
        HEADER,
        GOOD,
        "t2,2026-11-01T11:00:00Z,twelve,100,1,2.5,10,grocery,online",
        "t3,not-a-time,12.5,100,1,2.5,10,grocery,online",
        "t4,2026-10-31T23:00:00Z,12.5,100,1,,10,grocery,online",
        "t5,2026-11-01T12:00:00Z,1e308,100,1,inf,10,grocery,online",
    )
    (chunk,) = read(config, path)
    assert chunk.frame.shape[0] == 5
    assert chunk.failures == {
        1: ["not_a_number:amount"],
        2: ["unparseable_timestamp:event_time"],
        3: ["outside_interval:event_time"],
    }
    assert chunk.frame["amount"].iloc[4] == 1e308  # parsed; the suite's bounds reject it
    assert pd.isna(chunk.frame["distance_from_home_km"].iloc[3])
    assert chunk.raw.column("amount").to_pylist()[1] == "twelve"


def test_truncated_last_line_is_kept_as_malformed(config, tmp_path):
    path = tmp_path / "input.csv"
    path.write_text(f"{HEADER}\n{GOOD}\nt2,2026-11-01T11:00:00Z,12")
    (chunk,) = read(config, path)
    assert chunk.frame.shape[0] == 1
    assert [text for _, text in chunk.malformed] == ["t2,2026-11-01T11:00:00Z,12"]


def test_utf8_bom_and_non_ascii_values(config, tmp_path):
    path = csv(tmp_path, HEADER, GOOD.replace("t1", "tö-ñ"), encoding="utf-8-sig")
    (chunk,) = read(config, path)
    assert chunk.frame["transaction_id"].tolist() == ["tö-ñ"]


@pytest.mark.parametrize(
    "lines, message",
    [
        ([], "input file is empty"),
        ([HEADER], "no data rows"),
        ([HEADER.replace("amount", "amount_usd"), GOOD], "'amount' looks renamed to 'amount_usd'"),
        ([HEADER.replace(",", ";"), GOOD.replace(",", ";")], "is the file comma-delimited"),
        ([HEADER, GOOD.replace("12.5", "abc")], "column 'amount' holds text, expected numeric"),
    ],
)
def test_table_level_problems_raise_naming_file_and_column(config, tmp_path, lines, message):
    path = tmp_path / "input.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(InputError) as error:
        read(config, path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_missing_file_is_retryable_error(config, tmp_path):
    with pytest.raises(InputMissingError, match="input not found"):
        read(config, tmp_path / "absent.csv")


def test_parquet_input_in_chunks(config, tmp_path):
    frame = pd.read_csv(csv(tmp_path, HEADER, *[GOOD.replace("t1", f"t{i}") for i in range(5)]))
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    path = tmp_path / "input.parquet"
    frame.to_parquet(path)
    small = load_config(REPO / "config" / "demo.toml")
    object.__setattr__(small, "chunk_rows", 2)
    chunks = read(small, path)
    assert [len(c.frame) for c in chunks] == [2, 2, 1]
    assert [c.first_row_number for c in chunks] == [0, 2, 4]
    assert all(not c.failures for c in chunks)


def test_repeated_keys_match_pandas_duplicated_on_random_chunks():
    """The Arrow repeat finder flags exactly what pandas' duplicated(keep="first") flags, nulls never."""
    import numpy as np
    import pyarrow as pa

    from driftline.sources.types import repeats as _repeats

    rng = np.random.default_rng(1)
    for _ in range(300):
        rows = int(rng.integers(0, 60))
        keys = [None if rng.random() < 0.2 else f"k{rng.integers(0, 15)}" for _ in range(rows)]
        column = pa.chunked_array([pa.array(keys[: rows // 2], pa.string()), pa.array(keys[rows // 2 :], pa.string())])
        series = pd.Series(keys, dtype=object)
        expected = (series.duplicated(keep="first") & series.notna()).to_numpy()
        found = _repeats(column)
        assert (np.zeros(rows, dtype=bool) if found is None else found).tolist() == expected.tolist()


# --- The reading contract (issue 16) -----------------------------------------------------------


def with_source(config, **settings):
    return dataclasses.replace(config, source=dataclasses.replace(config.source, **settings))


def one_chunk(config, path):
    chunks = read(config, path)
    assert len(chunks) == 1
    return chunks[0]


def parquet_of(tmp_path, columns: dict, name="input.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(pa.table(columns), path)
    return path


def demo_columns(rows: int, **overrides) -> dict:
    columns = {
        "transaction_id": [f"t{i}" for i in range(rows)],
        "event_time": pa.array([datetime(2026, 11, 1, 10, tzinfo=timezone.utc)] * rows, pa.timestamp("us", tz="UTC")),
        "amount": [12.5] * rows,
        "account_age_days": [100] * rows,
        "transactions_last_24h": [1] * rows,
        "distance_from_home_km": [2.5] * rows,
        "hour_of_day": [10] * rows,
        "merchant_category": ["grocery"] * rows,
        "channel": ["online"] * rows,
    }
    columns.update(overrides)
    return columns


def test_null_like_tokens_are_values_unless_configured(config, tmp_path):
    """By default only an empty cell is missing: a key or category spelled like a null stays that
    text, and in a numeric column such a token is not a number (quarantined, not silently missing)."""
    rows = [GOOD.replace("t1", token).replace("grocery", token) for token in NULL_LIKE]
    rows.append(GOOD.replace("t1", "t-empty").replace("grocery", ""))
    path = csv(tmp_path, HEADER, *rows, GOOD.replace("t1", "t-na-amount").replace("12.5", "NA"))
    chunk = one_chunk(config, path)
    assert chunk.typed["transaction_id"].to_pylist()[: len(NULL_LIKE)] == NULL_LIKE
    assert chunk.typed["merchant_category"].to_pylist()[: len(NULL_LIKE) + 1] == [*NULL_LIKE, None]
    assert chunk.failures == {len(NULL_LIKE) + 1: ["not_a_number:amount"]}

    opted_in = one_chunk(with_source(config, null_values=("NA", "#N/A")), path)
    assert opted_in.typed["merchant_category"].to_pylist()[:7] == [None, "N/A", "null", "NULL", "NaN", "nan", None]
    assert opted_in.failures == {}  # amount "NA" is now missing (nullable), not a failure
    assert opted_in.typed["amount"].to_pylist()[-1] is None


def test_category_na_is_the_same_from_csv_and_parquet(config, tmp_path):
    tokens = ["NA", "", "null", "grocery"]
    path = csv(tmp_path, HEADER, *[GOOD.replace("t1", f"t{i}").replace("grocery", t) for i, t in enumerate(tokens)])
    parquet = parquet_of(tmp_path, demo_columns(4, merchant_category=tokens))
    for overrides in ({}, {"null_values": ("null",)}):
        configured = with_source(config, **overrides)
        from_csv = one_chunk(configured, path).typed["merchant_category"].to_pylist()
        from_parquet = one_chunk(configured, parquet).typed["merchant_category"].to_pylist()
        assert from_csv == from_parquet
    assert from_csv == ["NA", None, None, "grocery"]


def test_whitespace_only_numeric_cell_is_missing_and_keys_are_never_trimmed(config, tmp_path):
    path = csv(
        tmp_path,
        HEADER,
        GOOD.replace("t1", " t1 ").replace(",2.5,", ", ,"),
        GOOD.replace("t1", "t2").replace("12.5", " 12.5 ").replace("grocery", " grocery"),
    )
    chunk = one_chunk(config, path)
    assert chunk.failures == {}
    assert chunk.typed["transaction_id"].to_pylist() == [" t1 ", "t2"]
    assert chunk.typed["distance_from_home_km"].to_pylist() == [None, 2.5]
    assert chunk.typed["amount"].to_pylist() == [12.5, 12.5]
    assert chunk.typed["merchant_category"].to_pylist() == ["grocery", " grocery"]


def test_invalid_utf8_names_file_and_line_and_latin1_works_when_configured(config, tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\n{GOOD.replace('t1', 't2')}\n".replace("grocery", "café").encode("latin-1"))
    with pytest.raises(InputError) as error:
        read(config, path)
    message = str(error.value)
    assert str(path) in message and "line 2" in message and "utf-8" in message and "[source] encoding" in message
    assert "caf" not in message  # no row data in errors
    chunk = one_chunk(with_source(config, encoding="latin-1"), path)
    assert chunk.typed["merchant_category"].to_pylist() == ["café", "café"]


def test_unbalanced_quote_damages_only_its_own_line(config, tmp_path):
    """Today's bug: one open quote swallowed the rest of the file as one field."""
    rows = [GOOD.replace("t1", f"t{i}") for i in range(50)]
    rows[10] = rows[10].replace("12.5", '"12.5')  # opens a quote that never closes
    rows[20] = rows[20] + ",extra"  # wrong field count
    rows[30] = rows[30].replace(",grocery", "")
    rows[-1] = rows[-1].replace("online", '"online')  # open quote on the last line
    path = csv(tmp_path, HEADER, *rows)
    chunk = one_chunk(config, path)
    assert [(line, text) for line, text in chunk.malformed] == [
        (12, rows[10]),
        (22, rows[20]),
        (32, rows[30]),
        (51, rows[-1]),
    ]
    good = [i for i in range(50) if i not in (10, 20, 30, 49)]
    assert chunk.typed["transaction_id"].to_pylist() == [f"t{i}" for i in good]
    assert chunk.row_numbers.tolist() == [i + 2 for i in good]  # line numbers in the file (header = 1)
    assert chunk.typed.num_rows + len(chunk.malformed) == 50


def test_two_stray_quotes_lines_apart_swallow_nothing_between_them(config, tmp_path):
    """A quote opened on one line and another a few lines later close each other, but what lies between
    is no record (two fields, not nine): each stray line is malformed, the good lines between are read.
    (Found by the messy-CSV property below.)"""
    rows = [GOOD.replace("t1", f"t{i}") for i in range(6)]
    rows[1] = '"' + rows[1]  # the key opens a quote
    rows[4] = rows[4].replace(",grocery,", ',",')  # and this one closes it: `"t1 ... t4,...,10,",online`
    path = csv(tmp_path, HEADER, *rows)
    chunk = one_chunk(config, path)
    assert chunk.typed["transaction_id"].to_pylist() == ["t0", "t2", "t3", "t5"]
    assert chunk.row_numbers.tolist() == [2, 4, 5, 7]
    assert [line for line, _ in chunk.malformed] == [3, 6]


def test_blank_lines_are_not_records_and_crlf_is_a_line_end(config, tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes(f"\r\n{HEADER}\r\n{GOOD}\r\n\r\n\n{GOOD.replace('t1', 't2')}\r\n".encode())
    chunk = one_chunk(config, path)
    assert chunk.typed["transaction_id"].to_pylist() == ["t1", "t2"]
    assert chunk.typed["channel"].to_pylist() == ["online", "online"]
    assert chunk.row_numbers.tolist() == [3, 6] and chunk.malformed == []


def test_record_over_the_size_limit_is_malformed_and_reading_resumes(config, tmp_path):
    huge = GOOD.replace("t1", "t2").replace("grocery", "g" * 5000)
    path = csv(tmp_path, HEADER, GOOD, huge, GOOD.replace("t1", "t3"))
    chunk = one_chunk(with_source(config, max_record_bytes=1024), path)
    assert chunk.typed["transaction_id"].to_pylist() == ["t1", "t3"]
    ((line, text),) = chunk.malformed
    assert line == 3 and huge.startswith(text) and len(text) == 1024


def test_nul_in_key_or_value_is_a_row_reason(config, tmp_path):
    path = csv(
        tmp_path,
        HEADER,
        GOOD.replace("t1", "t\x001"),
        GOOD.replace("t1", "t2").replace("grocery", "gro\x00cery"),
        GOOD.replace("t1", "t3"),
    )
    chunk = one_chunk(config, path)
    assert chunk.typed["transaction_id"].to_pylist() == ["t\x001", "t2", "t3"]  # kept byte for byte
    assert chunk.failures == {0: ["unstorable_character:transaction_id"], 1: ["unstorable_character:merchant_category"]}
    parquet = parquet_of(tmp_path, demo_columns(2, transaction_id=["t\x00", "t1"]))
    assert one_chunk(config, parquet).failures == {0: ["unstorable_character:transaction_id"]}


def test_parquet_types_are_checked_not_coerced(config, tmp_path):
    path = parquet_of(tmp_path, demo_columns(2, amount=[True, False]))
    with pytest.raises(InputError) as error:
        read(config, path)
    assert "column 'amount' has type bool, expected numeric" in str(error.value) and str(path) in str(error.value)
    path = parquet_of(tmp_path, demo_columns(2, merchant_category=[1.5, 2.5]), "float_category.parquet")
    with pytest.raises(InputError, match="column 'merchant_category' has type double, expected text"):
        read(config, path)
    # Integers, decimals, dictionaries and dates map as documented.
    from decimal import Decimal

    path = parquet_of(
        tmp_path,
        demo_columns(
            2,
            transaction_id=pa.array([7, 8], pa.int64()),
            amount=pa.array([Decimal("12.50"), Decimal("3.25")], pa.decimal128(6, 2)),
            merchant_category=pa.array(["grocery", "NA"]).dictionary_encode(),
            event_time=pa.array([datetime(2026, 11, 1).date()] * 2, pa.date32()),
        ),
        "mapped.parquet",
    )
    chunk = one_chunk(config, path)
    assert chunk.failures == {}
    assert chunk.typed["transaction_id"].to_pylist() == ["7", "8"]
    assert chunk.typed["amount"].to_pylist() == [12.5, 3.25]
    assert chunk.typed["merchant_category"].to_pylist() == ["grocery", "NA"]


def test_integers_beyond_two_to_the_53_are_quarantined_not_rounded(config, tmp_path):
    big = 2**53 + 1
    parquet = parquet_of(tmp_path, demo_columns(3, account_age_days=pa.array([100, big, -big], pa.int64())))
    path = csv(
        tmp_path,
        HEADER,
        GOOD,
        GOOD.replace("t1", "t2").replace(",100,", f",{big},"),
        GOOD.replace("t1", "t3").replace(",100,", ",1e300,"),
    )
    for source, expected in (
        (parquet, {1: ["precision_loss:account_age_days"], 2: ["precision_loss:account_age_days"]}),
        (path, {1: ["precision_loss:account_age_days"]}),
    ):
        chunk = one_chunk(config, source)
        assert chunk.failures == expected
        assert chunk.typed["account_age_days"].to_pylist()[0] == 100


def test_nanosecond_timestamps_are_truncated_to_microseconds(config, tmp_path):
    path = csv(tmp_path, HEADER, GOOD.replace("10:00:00Z", "10:00:00.123456789Z"))
    parquet = parquet_of(
        tmp_path, demo_columns(1, event_time=pa.array([1793527200123456789], pa.timestamp("ns", tz="UTC")))
    )
    expected = datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert one_chunk(config, path).typed["event_time"].to_pylist() == [expected]
    assert one_chunk(config, parquet).typed["event_time"].to_pylist() == [expected]


def test_duplicate_column_names_fail_naming_the_file(config, tmp_path):
    path = csv(tmp_path, HEADER + "," + HEADER, GOOD + "," + GOOD)
    with pytest.raises(InputError) as error:
        read(config, path)
    assert str(path) in str(error.value) and "more than once" in str(error.value)


def test_truncated_gzip_fails_naming_the_file_alone_or_in_a_directory(config, tmp_path):
    body = ("\n".join([HEADER, *[GOOD.replace("t1", f"t{i}") for i in range(3000)]]) + "\n").encode()
    folder = tmp_path / "interval"
    folder.mkdir()
    (folder / "part-000.csv.gz").write_bytes(gzip.compress(body))
    truncated = folder / "part-001.csv.gz"
    truncated.write_bytes(gzip.compress(body.replace(b"t", b"u"))[:-100])
    for location in (truncated, folder):
        with pytest.raises(InputError) as error:
            read(config, location)
        assert str(truncated) in str(error.value) and "truncated or corrupt" in str(error.value)
    assert sum(c.typed.num_rows for c in read(config, folder / "part-000.csv.gz")) == 3000


def test_read_table_types_history_like_scoring(config, tmp_path):
    """Training reads through the same contract: blanks in numeric columns are missing, null-like
    tokens are text (or missing when configured), unparseable rows are left out with a reason."""
    from driftline.labelled import read_table as training_read_table

    rows = [GOOD.replace("t1", f"t{i}") + ",1" for i in range(6)]
    rows[1] = rows[1].replace(",2.5,", ", ,")  # blank numeric cell
    rows[2] = rows[2].replace("grocery", "NA")
    rows[3] = rows[3].replace("12.5", "NA")  # not a number by default
    rows[4] = rows[4].replace("12.5", '"12.5')  # malformed line
    path = csv(tmp_path, HEADER + ",is_fraud", *rows)
    read = read_table(str(path), config)
    assert read.rows_in == 6 and read.reasons == {"not_a_number:amount": 1, "malformed_record": 1}
    frame = training_read_table(str(path), config)
    assert frame["transaction_id"].tolist() == ["t0", "t1", "t2", "t5"]
    assert np.isnan(frame["distance_from_home_km"].iloc[1])
    assert frame["merchant_category"].iloc[2] == "NA"
    assert frame["is_fraud"].dtype == np.int64
    assert frame.attrs["reading"] == {"rows_in": 6, "left_out": {"not_a_number:amount": 1, "malformed_record": 1}}
    configured = training_read_table(str(path), with_source(config, null_values=("NA",)))
    assert configured["transaction_id"].tolist() == ["t0", "t1", "t2", "t3", "t5"]
    assert pd.isna(configured["merchant_category"].iloc[2]) and pd.isna(configured["amount"].iloc[3])


def test_pipeline_reason_codes_and_raw_rows_keep_every_character():
    import json

    from driftline.chunks import raw_json, text_array

    codes = ["not_a_number:größe_€", 'expect:we"ird\\name', "a,b{c}"]
    assert text_array(codes) == '{"not_a_number:größe_€","expect:we\\"ird\\\\name","a,b{c}"}'
    raw = json.loads(raw_json({"key": "k\x00ey", "name": "größe", "x": float("nan")}))
    import base64

    assert base64.b64decode(raw["key"]["base64"]).decode() == "k\x00ey"
    assert raw["name"] == "größe" and raw["x"] == "nan"


# --- Property: messy CSVs never lose or swallow a record ---------------------------------------


# database=None and no explain phase: nothing (example database, patches) written into the repository.
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=messy_csv())
def test_messy_csv_every_record_is_read_or_reported_at_its_line(config, case):
    import tempfile

    encoding, newline, null_values, chunk_rows, records = case
    configured = dataclasses.replace(
        with_source(config, encoding=encoding, null_values=null_values, max_record_bytes=256), chunk_rows=chunk_rows
    )
    text = newline.join([HEADER, *(line for _, line, _, _ in records)]) + newline
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.csv"
        path.write_bytes(text.encode(encoding))
        expected_records = [
            line for line in path.read_bytes().split(b"\n")[1:] if line not in (b"", b"\r")
        ]  # reference
        chunks = read(configured, path)

    typed = {}  # line -> (key, category)
    malformed = {}
    for chunk in chunks:
        keys = chunk.typed["transaction_id"].to_pylist()
        categories = chunk.typed["merchant_category"].to_pylist()
        for position, line in enumerate(chunk.row_numbers.tolist()):
            assert line not in typed
            typed[line] = (keys[position], categories[position])
        for line, raw in chunk.malformed:
            assert line not in malformed and line not in typed
            malformed[line] = raw
    assert len(typed) + len(malformed) == len(expected_records)  # rows_in = records as a person counts them

    for number, (kind, line, key, category) in enumerate(records, start=2):
        if kind == "blank":
            assert number not in typed and number not in malformed
        elif kind == "good":
            missing = category == "" or category in null_values
            assert typed.get(number) == (key, None if missing else category), "a good record was lost or rewritten"
        elif kind == "open_quote":
            # Lenient CSV can read `"x,"y"` as fields; the record then stands alone, its key intact
            # unless the quote was put on the key itself.
            assert malformed.get(number) == line or (
                number in typed and (line.startswith('""') or typed[number][0] == key or line.startswith('"'))
            )
        elif kind == "huge":
            assert line.startswith(malformed[number]) and len(malformed[number].encode(encoding)) <= 256
        else:
            assert malformed.get(number) == line, kind


def test_training_on_a_history_csv_with_blanks_and_null_like_tokens(config, tmp_path):
    """`driftline train`'s reading side: ' ' in a numeric column used to crash pd.read_csv's float
    parse; now it is missing (nullable), "NA" stays a category, and an unparseable row is left out."""
    from driftline.devtools.demo_data import transactions
    from driftline.labelled import read_table as training_read_table
    from driftline.training import train

    frame = transactions(np.random.default_rng(3), datetime(2026, 10, 1), 400, "h")
    frame = frame.astype({"distance_from_home_km": object, "merchant_category": object, "amount": object})
    frame.loc[::7, "distance_from_home_km"] = " "
    frame.loc[::11, "merchant_category"] = "NA"
    frame.loc[5, "amount"] = "n/a"
    path = tmp_path / "history.csv"
    frame.to_csv(path, index=False)
    history = training_read_table(str(path), config)
    assert len(history) == 399 and history.attrs["reading"]["left_out"] == {"not_a_number:amount": 1}
    blank = history["transaction_id"].isin(frame.loc[::7, "transaction_id"])
    assert blank.sum() == 58 and history.loc[blank, "distance_from_home_km"].isna().all()
    trained = train(config, history)
    assert trained.manifest["rows"]["train"] + trained.manifest["rows"]["holdout"] == 399
    assert (history["merchant_category"] == "NA").sum() == 37  # a category (unseen by this config's list), not missing


def test_csv_chunks_hold_exactly_chunk_rows(config, tmp_path):
    rows = [GOOD.replace("t1", f"t{i}") for i in range(23)]
    rows[9] = rows[9] + ",extra"
    chunks = read(dataclasses.replace(config, chunk_rows=5), csv(tmp_path, HEADER, *rows))
    assert [c.typed.num_rows for c in chunks] == [5, 5, 5, 5, 2]
    assert [line for c in chunks for line in c.row_numbers.tolist()] == [i + 2 for i in range(23) if i != 9]
    assert [m for c in chunks for m in c.malformed] == [(11, rows[9])]


def test_whole_table_read_of_a_header_only_file_is_empty_not_an_error(config, tmp_path):
    path = csv(tmp_path, "transaction_id,is_fraud,observed_at")
    read_back = read_table(str(path), config)
    assert read_back.rows_in == 0 and list(read_back.frame.columns) == ["transaction_id", "is_fraud", "observed_at"]


def test_invalid_utf8_in_a_malformed_line_is_an_encoding_error_too(config, tmp_path):
    path = tmp_path / "input.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\n".encode() + b"t2,\xff\xfe,broken\n")
    with pytest.raises(InputError, match="line 3, byte 4: bytes that are not valid utf-8"):
        read(config, path)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=rfc_csv())
def test_rfc4180_records_spanning_lines_are_read_whole_or_quarantined_whole(config, case):
    """Quoted fields holding line breaks (\\n, \\r\\n), quotes and delimiters, across read blocks: every good
    record is one row with its key and category exactly as written, at its first line (Python's csv module
    is the reference); a broken one is one malformed record holding all its lines; rows_in = records."""
    import csv as pycsv
    import io
    import tempfile

    newline, chunk_rows, limit, records = case
    configured = dataclasses.replace(with_source(config, max_record_bytes=limit), chunk_rows=chunk_rows)
    text = newline.join([HEADER, *(record for _, record, _, _ in records)]) + newline
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.csv"
        path.write_bytes(text.encode())
        chunks = read(configured, path)
    rows, malformed = {}, {}
    for chunk in chunks:
        keys, categories = chunk.typed["transaction_id"].to_pylist(), chunk.typed["merchant_category"].to_pylist()
        for position, line in enumerate(chunk.row_numbers.tolist()):
            assert line not in rows
            rows[line] = (keys[position], categories[position])
        malformed.update(dict(chunk.malformed))
    assert len(rows) + len(malformed) == len(records)  # rows_in: records as a person counts them

    reference = pycsv.reader(io.StringIO(newline.join([HEADER, *(r for k, r, _, _ in records if k == "good")])))
    next(reference)
    line = 2
    for kind, record, key, category in records:
        size = len(record.encode()) + len(newline)
        if kind == "good" and size <= limit:
            assert rows.get(line) == (key, category or None), "a record was split, lost or rewritten"
            assert next(reference)[0] == key
        elif kind == "good":  # over max_record_bytes: never scored, nor any piece of it under a wrong key
            assert line in malformed and all(k != key for k, _ in rows.values())
            next(reference)
        elif kind == "extra_field" and size <= limit:
            assert malformed.get(line) == record  # whole: every line of it, as written
        else:
            assert line in malformed
        assert all(not (k or "").endswith('"') for k, _ in rows.values())  # never a continuation's corrupted key
        line += record.count("\n") + 1


def test_a_key_with_a_line_break_is_one_record_and_a_broken_one_never_scores_a_piece(config, tmp_path):
    """The issue's case: the first line used to be quarantined and the continuation scored under the key `cd"`."""
    good = GOOD.replace("t1", '"ab\r\ncd ""q"""')
    broken = GOOD.replace("t1", '"ef\ngh"') + ",extra"  # a field too many: one malformed record, both lines
    long = GOOD.replace("t1", '"ij\n' + "x" * 300 + '\nkl"')  # over max_record_bytes = 256
    path = csv(tmp_path, HEADER, good, broken, long, GOOD.replace("t1", "t9"))
    chunk = one_chunk(with_source(config, max_record_bytes=256), path)
    assert chunk.typed["transaction_id"].to_pylist() == ['ab\r\ncd "q"', "t9"]
    assert chunk.row_numbers.tolist() == [2, 9]
    assert chunk.malformed[0] == (4, broken)
    assert [line for line, _ in chunk.malformed] == [4, 6, 7, 8]  # the long one: never a row, never under `kl"`
