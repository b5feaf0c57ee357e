"""drift.report's sampling: seeded, uniform over the stream, independent of how it is chunked."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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
    assert np.all(np.diff(picked) > 0)  # stream order kept, no row twice
    assert abs(picked.mean() - values.mean()) < 300  # ~3.5 standard errors of a uniform sample mean
    small, seen = sample_tables([pa.table({"x": values[:10]})], 1_000, seed=3)
    assert small.num_rows == seen == 10
