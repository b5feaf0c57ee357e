"""Every value that can leave Python's or Arrow's range is one quarantined row with a reason, never a crash:
timestamps and dates past year 9999 or before year 1 (any unit), decimals and numeric text beyond float64."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.chunks import raw_json
from driftline.config import load_config
from driftline.sources import read_interval
from driftline.sources.chunk import python_rows
from tests.unit.sources.test_reader import demo_columns

REPO = Path(__file__).resolve().parents[3]
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 11, 2, tzinfo=timezone.utc)
INSIDE_US = 1_793_527_200_000_000  # 2026-11-01T10:00:00Z
FIRST_US, LAST_US = -62_135_596_800 * 10**6, 253_402_300_800 * 10**6 - 1  # years 1 .. 9999
PER_US = {"s": 10**6, "ms": 10**3, "us": 1}


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "config" / "demo.toml")


def columns(rows: int, **overrides) -> dict:
    """The demo's columns, plus `note`: a timestamp column the config does not name (kept raw only)."""
    return demo_columns(rows, **{"note": pa.array([INSIDE_US] * rows, pa.timestamp("us")), **overrides})


def read_parquet(config, folder: Path, table: dict):
    path = folder / "input.parquet"
    pq.write_table(pa.table(table), path)
    return list(read_interval(str(path), config, START, END))


def quarantined_raw(chunk) -> list[str]:
    """What quarantine stores for every failing row (raises if a value cannot be stored)."""
    positions = sorted(chunk.failures)
    return [raw_json(row) for row in python_rows(chunk.raw.take(pa.array(positions, pa.int64())))]


_TEMPORAL = st.one_of(
    st.tuples(st.sampled_from(["s", "ms", "us"]), st.integers(-(2**63) + 1, 2**63 - 1)),
    st.tuples(st.sampled_from(["s", "ms", "us"]), st.sampled_from([LAST_US, LAST_US + 1, FIRST_US - 1, FIRST_US])),
    st.tuples(st.just("date32"), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("date64"), st.integers(-(2**62), 2**62)),
)
_UNIT = {"date32": 86_400_000_000, "date64": 1000, **PER_US}


def _temporal(kind: str, values: list[int]) -> pa.Array:
    if kind == "date32":
        return pa.array(values, pa.int32()).cast(pa.date32())
    if kind == "date64":
        return pa.array(values, pa.int64()).cast(pa.date64())
    return pa.array(values, pa.int64()).cast(pa.timestamp(kind, tz="UTC"))


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extreme=_TEMPORAL, configured=st.booleans())
def test_parquet_timestamps_of_any_unit_and_range_are_a_row_reason_never_a_crash(
    config, tmp_path_factory, extreme, configured
):
    kind, value = extreme
    if kind in PER_US and value in (LAST_US, LAST_US + 1, FIRST_US - 1, FIRST_US):
        value = value // PER_US[kind] if value > 0 else -(-value // PER_US[kind])  # the edge, in this unit
    if kind == "s" and abs(value) > (2**63 - 1) // 1000:
        value //= 1001  # Parquet stores seconds as milliseconds: the writer itself could not hold more
    inside = INSIDE_US // _UNIT[kind]
    name = "event_time" if configured else "note"
    # Row 1 repeats row 0's key: quarantined either way, so its raw row (holding the extreme value) is stored.
    table = columns(2, transaction_id=["t0", "t0"], **{name: _temporal(kind, [inside, value])})
    (chunk,) = read_parquet(config, tmp_path_factory.mktemp("p"), table)
    assert chunk.typed.num_rows == 2 and 0 not in chunk.failures
    in_range = FIRST_US <= value * _UNIT[kind] <= LAST_US
    assert (f"out_of_range:{name}" in chunk.failures[1]) == (configured and not in_range)
    if configured and in_range:
        assert chunk.typed["event_time"][1].is_valid
    assert len(quarantined_raw(chunk)) == 1  # stored, never an OverflowError


@pytest.mark.parametrize(
    "amount, reason",
    [
        (pa.array([1, 2**63 - 1], pa.int64()), "precision_loss:amount"),
        (pa.array([1, 2**64 - 1], pa.uint64()), "precision_loss:amount"),
        (pa.array([1.0, float("nan")]), None),  # a float NaN in a typed file is missing (documented)
    ],
)
def test_parquet_numbers_beyond_float64_are_a_row_reason(config, tmp_path, amount, reason):
    (chunk,) = read_parquet(config, tmp_path, columns(2, amount=amount))
    assert chunk.failures.get(1, []) == ([reason] if reason else [])
    assert chunk.typed["amount"][1].as_py() is None
    assert all(math.isfinite(v) for v in chunk.typed["amount"].drop_null().to_pylist())


@given(digits=st.integers(309, 2000), sign=st.sampled_from(["", "-", "+"]))
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_csv_numbers_beyond_float64_are_out_of_range_but_spelled_infinity_is_a_number(
    config, tmp_path_factory, digits, sign
):
    header = "transaction_id,event_time,amount,account_age_days,transactions_last_24h,distance_from_home_km,hour_of_day,merchant_category,channel"
    row = "t{},2026-11-01T10:00:00Z,{},100,1,2.5,10,grocery,online"
    path = tmp_path_factory.mktemp("c") / "input.csv"
    amounts = ["12.5", f"{sign}1e{digits}", f"{sign}1{'0' * digits}", f"{sign}Infinity", f"{sign}inf"]
    path.write_text("\n".join([header, *(row.format(i, a) for i, a in enumerate(amounts))]) + "\n")
    (chunk,) = list(read_interval(str(path), config, START, END))
    assert chunk.failures == {1: ["out_of_range:amount"], 2: ["out_of_range:amount"]}
    assert [math.isinf(v) for v in chunk.typed["amount"].to_pylist()[3:]] == [True, True]
