from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from driftline.config import load_config
from driftline.sources import InputError, InputMissingError, read_interval

REPO = Path(__file__).resolve().parents[2]
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

    from driftline.sources import _repeats

    rng = np.random.default_rng(1)
    for _ in range(300):
        rows = int(rng.integers(0, 60))
        keys = [None if rng.random() < 0.2 else f"k{rng.integers(0, 15)}" for _ in range(rows)]
        column = pa.chunked_array([pa.array(keys[: rows // 2], pa.string()), pa.array(keys[rows // 2 :], pa.string())])
        series = pd.Series(keys, dtype=object)
        expected = (series.duplicated(keep="first") & series.notna()).to_numpy()
        found = _repeats(column)
        assert (np.zeros(rows, dtype=bool) if found is None else found).tolist() == expected.tolist()
