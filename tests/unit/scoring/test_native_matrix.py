"""The model matrix built in one native pass (matrix.c) and rows taken without copying the chunk."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftline.chunks import rows_at
from driftline.scoring import native_matrix
from driftline.scoring.engine import Scorer
from driftline.scoring.features import FeatureBinding, _numpy_matrix, bind, model_frame, model_matrix
from tests.unit.models import awkward_rows

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
LEVELS = ["a", "b", "c"]
NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.sampled_from([0.0, -0.0, 1e-40, -1e300, float("nan")]),
)
TEXTS = st.one_of(st.none(), st.sampled_from([*LEVELS, "unseen", ""]))


def _chunked(values: list, kind: pa.DataType, cuts: list[int]) -> pa.ChunkedArray:
    """values as several Arrow chunks, each a slice of a larger array (so offsets are not zero)."""
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    padded = pa.array([None, *values], type=kind).slice(1)
    return pa.chunked_array([padded.slice(a, b - a) for a, b in zip(bounds, bounds[1:])] or [padded], type=kind)


@st.composite
def tables(draw):
    rows = draw(st.integers(1, 40))
    cuts = draw(st.lists(st.integers(0, 40), max_size=3))
    numeric = draw(st.lists(NUMBERS, min_size=rows, max_size=rows))
    texts = draw(st.lists(TEXTS, min_size=rows, max_size=rows))
    all_null = draw(st.booleans())
    table = pa.table(
        {
            "x": _chunked(numeric, pa.float64(), cuts),
            "c": _chunked(texts, pa.string(), cuts),
            "n": pa.nulls(rows, pa.float64()) if all_null else pa.array(np.arange(rows, dtype="int64")),
        }
    )
    selection = draw(st.none() | st.lists(st.integers(0, rows - 1), unique=True).map(sorted))
    return table, None if selection is None else np.array(selection, dtype=np.int64)


BINDING = FeatureBinding(("c", "x", "n"), ("categorical", "numeric", "numeric"), {"c": LEVELS})


@SETTINGS
@given(tables())
def test_the_native_matrix_is_bit_for_bit_the_one_lightgbm_builds_from_the_frame(case):
    table, selection = case
    assert native_matrix._library() is not None  # the native pass runs here (gcc is installed)
    matrix = model_matrix(table, BINDING, selection)
    picked = table if selection is None else table.take(pa.array(selection, type=pa.int64()))
    # Independent of both builders: pandas categoricals' codes (-1 -> NaN), numerics as float64.
    frame = model_frame(picked.to_pandas(), BINDING)
    expected = np.column_stack(
        [
            np.where(frame[n].cat.codes.to_numpy() < 0, np.nan, frame[n].cat.codes.to_numpy())
            if t == "categorical"
            else frame[n].to_numpy(dtype="float64")
            for n, t in zip(BINDING.names, BINDING.types)
        ]
    ).reshape(len(picked), 3)
    assert matrix.shape == expected.shape and matrix.flags.c_contiguous
    np.testing.assert_array_equal(matrix, expected)  # NaN where NaN
    assert (np.signbit(matrix) == np.signbit(expected)).all()  # -0.0 stays -0.0
    finite = ~np.isnan(matrix)
    assert (matrix[finite].view(np.uint64) == expected[finite].view(np.uint64)).all()


def test_the_numpy_path_builds_the_same_matrix(monkeypatch):
    rows = pa.table({"c": ["a", None, "zz", "c"], "x": [1.5, None, float("inf"), -0.0], "n": [1, 2, 3, None]})
    native = model_matrix(rows, BINDING, np.array([3, 1, 0]))
    monkeypatch.setattr(native_matrix, "_library", lambda: None)  # no C compiler
    fallback = model_matrix(rows, BINDING, np.array([3, 1, 0]))
    assert native.view(np.uint64).tolist() == fallback.view(np.uint64).tolist()
    assert _numpy_matrix([pa.array([1.0])], 1, None).tolist() == [[1.0]]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scores_of_selected_rows_are_those_of_the_rows_taken_first(trained_model, data):
    """The scoring path skips quarantined rows inside the matrix instead of copying the chunk: the
    scores are LightGBM's on the valid rows, bit for bit."""
    config, model = trained_model("binary")
    rows = awkward_rows(config).slice(0, 600)
    selection = np.array(sorted(data.draw(st.sets(st.integers(0, 599), min_size=1, max_size=600))), dtype=np.int64)
    scorer = Scorer(model, replace(config, scoring_engine="lightgbm"))
    picked = rows.take(pa.array(selection))
    expected = model.booster.predict(model_frame(picked.to_pandas(), bind(model, config)))
    np.testing.assert_array_equal(scorer.predict(rows, selection), expected)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    data=st.data(),
)
def test_rows_at_is_take(sizes, data):
    table = pa.concat_tables(
        [
            pa.table(
                {
                    "k": [f"{i}-{j}" for j in range(n)],
                    "v": pa.array([str(j) if j % 3 else None for j in range(n)], pa.string()),
                }
            )
            for i, n in enumerate(sizes)
        ]
    )
    positions = np.array(sorted(data.draw(st.sets(st.integers(0, table.num_rows - 1)))), dtype=np.int64)
    assert rows_at(table, positions).to_pylist() == table.take(pa.array(positions, type=pa.int64())).to_pylist()


def test_quarantined_rows_are_taken_without_copying_the_chunk():
    # A raw chunk as the CSV reader builds it: tens of Arrow chunks per text column.
    parts = [pa.table({f"c{i}": [f"{j:08d}" for j in range(5_000)] for i in range(10)}) for _ in range(20)]
    raw = pa.concat_tables(parts)
    positions = np.arange(7, raw.num_rows, 997, dtype=np.int64)
    before = pa.total_allocated_bytes()
    taken = rows_at(raw, positions)
    allocated = pa.total_allocated_bytes() - before
    assert taken.num_rows == len(positions)
    assert allocated < raw.nbytes // 100, f"{allocated} bytes allocated for {len(positions)} rows"
