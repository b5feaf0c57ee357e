"""The interval's rows for the segments, from the one read of monitor_interval: the parsed rows in
Arrow (IntervalRows), those rows joined with their published scores (Published), and the seeded
sample positions the segments take by position.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from driftline.config import DatasetConfig


class IntervalRows:
    """The interval's rows as its input gives them (parse failures left out): the entity key and the
    features, in Arrow. monitor_interval fills it while it streams the interval for its drift
    sample, so the segments need no second read of the input; Arrow holds a 1M-row demo interval in
    ~80 MB, where the pandas frame the segments used to build took ~0.5 GiB."""

    def __init__(self, config: DatasetConfig) -> None:
        self.columns = [config.entity_key, *config.feature_names]
        self.tables: list[pa.Table] = []

    def add(self, typed: pa.Table, keep: np.ndarray) -> None:
        """One chunk's typed rows; keep: the rows that parsed (the others are never scored)."""
        table = typed.select(self.columns)
        self.tables.append(table if keep.all() else table.filter(pa.array(keep)))

    def table(self) -> pa.Table:
        if not self.tables:
            return pa.table({name: pa.array([], type=pa.string()) for name in self.columns})
        return pa.concat_tables(self.tables)


def read_rows(config: DatasetConfig, start: datetime, end: datetime) -> IntervalRows:
    """The interval's rows read from its input (for callers without monitor_interval's stream)."""
    from driftline.sources import read_interval

    rows = IntervalRows(config)
    for chunk in read_interval(config.input_location(start, end), config, start, end):
        keep = np.ones(chunk.typed.num_rows, dtype=bool)
        if chunk.failures:
            keep[list(chunk.failures)] = False
        rows.add(chunk.typed, keep)
    return rows


class Published:
    """The interval's published rows: each read row joined with its stored score, in the order (and
    with the de-duplication: the last row of a key) of the pandas join the segments always used.
    Only the keys and scores become pandas; a feature is converted for the rows that need it."""

    def __init__(self, config: DatasetConfig, rows: IntervalRows, predictions: pd.DataFrame) -> None:
        key = config.entity_key
        self.table = rows.table()
        keys = self.table.column(key)
        text = keys.to_pandas()
        # As text, as the join always took them; Arrow text already converts to Python str.
        if not (pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type)):
            text = text.astype(str)
        left = pd.DataFrame({key: text})
        left["_row"] = np.arange(len(left))
        scores = predictions.rename(columns={"entity_key": key})
        joined = left.drop_duplicates(key, keep="last").merge(scores, on=key, how="inner")
        self.keys = joined[key]
        self.scores = joined["score"].to_numpy()
        self.rows = joined["_row"].to_numpy()

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> pd.Series:
        """One feature of every published row."""
        return self.table.column(name).take(pa.array(self.rows)).to_pandas()

    def features(self, positions: np.ndarray) -> pd.DataFrame:
        """The features of the published rows at positions."""
        return self.table.take(pa.array(self.rows[positions])).to_pandas()


def interval_frame(config: DatasetConfig, start: datetime, end: datetime, predictions: pd.DataFrame) -> pd.DataFrame:
    """The interval's published rows: key, the segment columns and the score (reads its input)."""
    published = Published(config, read_rows(config, start, end), predictions)
    frame = pd.DataFrame({config.entity_key: published.keys.to_numpy(), "score": published.scores})
    for column in config.monitoring.segments:
        frame[column] = published.column(column).to_numpy()
    return frame


def seeded_sample(rows: int, size: int, seed: int) -> np.ndarray:
    """The positions DataFrame.sample(size, random_state=seed) takes from `rows` rows (pandas' rule:
    RandomState(seed).choice without replacement), so a sample taken by position equals it."""
    return np.random.RandomState(seed).choice(rows, size=size, replace=False).astype(np.intp, copy=False)
