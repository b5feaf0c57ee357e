"""Typed rows -> the model's inputs: a pandas frame (training, offline checks) or a float64 matrix (scoring)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig


def model_frame(frame: pd.DataFrame, config: DatasetConfig, categories: dict[str, list[str]]) -> pd.DataFrame:
    """Feature columns in config order; categoricals use the model's training categories.

    Values never seen in training become missing, which LightGBM routes like a missing value.
    """
    data = {}
    for feature in config.features:
        column = frame[feature.name]
        if feature.type == "categorical":
            data[feature.name] = pd.Categorical(column, categories=categories[feature.name])
        else:
            data[feature.name] = column.astype("float64", copy=False)
    return pd.DataFrame(data, index=frame.index)


_BLOCK_ROWS = 4096


def model_matrix(table, config: DatasetConfig, categories: dict[str, list[str]]) -> np.ndarray:
    """The float64 matrix LightGBM builds from model_frame(), built straight from Arrow columns.

    Categoricals become their index in the training categories (missing or unseen -> NaN), which is
    what LightGBM does internally with a pandas categorical, so the scores are bit-identical.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for feature in config.features:
        column = table[feature.name]
        if feature.type == "categorical":
            column = pc.index_in(column, value_set=pa.array(categories[feature.name], type=pa.string()))
        columns.append(pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy(zero_copy_only=False))
    # Filled in blocks of rows so each block of the row-major matrix stays in cache while every
    # column is written into it (3x faster than writing whole strided columns).
    matrix = np.empty((table.num_rows, len(columns)), dtype="float64")
    for first in range(0, table.num_rows, _BLOCK_ROWS):
        block = matrix[first : first + _BLOCK_ROWS]
        for position, values in enumerate(columns):
            block[:, position] = values[first : first + _BLOCK_ROWS]
    return matrix
