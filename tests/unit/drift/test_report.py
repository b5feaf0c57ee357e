"""drift.report's sampling: seeded, uniform over the stream, a function of the set of rows (not of their
order or chunking)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.drift.report import sample_tables


def test_sample_is_seeded_uniform_and_independent_of_chunking():
    values = np.arange(10_000, dtype="float64")  # sorted: a sample biased to any chunk shows in its mean
    whole = pa.table({"x": values})
    chunks = [whole.slice(offset, 1_000) for offset in range(0, 10_000, 1_000)]
    sample, seen = sample_tables(chunks, 1_000, seed=3)
    assert seen == 10_000 and sample.num_rows == 1_000
    assert sample.equals(sample_tables([whole], 1_000, seed=3)[0])
    assert not sample.equals(sample_tables(chunks, 1_000, seed=4)[0])
    picked = sample["x"].to_numpy()
    assert len(set(picked)) == len(picked)  # no row twice
    assert abs(picked.mean() - values.mean()) < 300  # ~3.5 standard errors of a uniform sample mean
    small, seen = sample_tables([pa.table({"x": values[:10]})], 1_000, seed=3)
    assert small.num_rows == seen == 10


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table[name].to_pylist() for name in table.column_names)))


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(range(300)), chunk=st.integers(1, 300), seed=st.integers(0, 2**32))
def test_the_sample_is_a_function_of_the_set_of_rows_not_of_their_order(order, chunk, seed):
    """The same rows arriving in another order (and chunking) give the same sample, as a set of rows."""
    table = pa.table(
        {
            "key": [f"k{i}" for i in range(300)],
            "x": np.arange(300, dtype="float64") % 7,  # values repeat: the key tells the rows apart
            "c": pa.array([None if i % 11 == 0 else f"c{i % 3}" for i in range(300)]),
        }
    )
    forward = sample_tables([table], 50, seed)[0]
    shuffled = table.take(pa.array(order))
    chunks = [shuffled.slice(offset, chunk) for offset in range(0, 300, chunk)]
    again = sample_tables(chunks, 50, seed)[0]
    assert forward.num_rows == 50 and _rows(again) == _rows(forward)
    assert again.equals(forward)  # kept in key order: the same table, not just the same set


def test_identical_rows_are_kept_or_dropped_by_their_count_only():
    table = pa.table({"x": [1.0] * 40 + [2.0] * 40})
    sample = sample_tables([table], 50, seed=1)[0]
    assert sample.num_rows == 50 and sample.equals(sample_tables([table.take(pa.array(range(79, -1, -1)))], 50, 1)[0])
