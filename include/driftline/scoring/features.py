"""Typed rows -> the model's inputs: a pandas frame (training, offline checks) or a float64 matrix
(scoring), with the columns bound to the model by name.

A model's inputs are its own feature names, in its own column order, with its own category codes
(FeatureBinding). Every matrix or frame built for a model is built from its binding, never from
the config's order: reordering [features.*] tables changes nothing, while a config that adds,
drops or retypes a feature, or names a category the model cannot code, is refused (bind).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig
from driftline.errors import BadConfig, BadModel


class FeatureMismatch(BadConfig):
    """The config's [features] do not match the features the model was trained on."""


@dataclass(frozen=True)
class FeatureBinding:
    """The model's features in its column order, their types, and the categories it codes each
    categorical feature by (a value's code is its position in that list)."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    categories: dict[str, list[str]]

    @classmethod
    def of_config(cls, config: DatasetConfig, categories: dict[str, list[str]]) -> FeatureBinding:
        """What a model trained now on config learns: the config's order (training only)."""
        return cls(
            tuple(f.name for f in config.features),
            tuple(f.type for f in config.features),
            {name: list(levels) for name, levels in categories.items()},
        )

    def manifest_fields(self) -> dict:
        """The manifest fields that record this binding ("features" and "categories")."""
        return {
            "features": [{"name": n, "type": t} for n, t in zip(self.names, self.types)],
            "categories": {name: list(levels) for name, levels in self.categories.items()},
        }


_FEATURE_NAMES = re.compile(rb"^feature_names=(.*)$", re.M)
_FEATURE_INFOS = re.compile(rb"^feature_infos=(.*)$", re.M)
_PANDAS_CATEGORICAL = re.compile(rb"^pandas_categorical:(.*)$", re.M)


def _text_features(text: bytes) -> tuple[list[str], list[bool], list[list[str]] | None] | None:
    """(names, is-categorical per feature, pandas_categorical) as the LightGBM model text records
    them, or None when it records no feature names."""
    names = _FEATURE_NAMES.search(text)
    if names is None:
        return None
    infos = _FEATURE_INFOS.search(text)
    # A categorical feature's info lists its category codes ("-1:0:2"); a numeric one is "[min:max]"
    # or "none" (never split on).
    kinds = infos.group(1).decode("utf-8", "replace").split() if infos else []
    categorical = [not (info.startswith("[") or info == "none") for info in kinds]
    levels = _PANDAS_CATEGORICAL.search(text)
    try:
        pandas_categorical = json.loads(levels.group(1)) if levels else None
    except ValueError:
        pandas_categorical = None
    return names.group(1).decode("utf-8", "replace").split(), categorical, pandas_categorical


def _lightgbm_name(name: str) -> str:
    # LightGBM stores feature names with whitespace replaced by "_".
    return re.sub(r"\s", "_", name)


def model_binding(manifest: dict, model_text: bytes | None, version) -> FeatureBinding:
    """The features a registered model was trained on: its manifest's "features" and "categories",
    checked against the model text (feature names, order, pandas_categorical); read from the model
    text alone where a manifest lacks them. BadModel when the two disagree."""
    recorded = _text_features(bytes(model_text)) if model_text else None
    features = manifest.get("features")
    if features is None:
        if recorded is None:
            raise BadModel(f"model v{version}: neither its manifest nor its model text records its features")
        names, categorical, levels = recorded
        types = ["categorical" if flag else "numeric" for flag in categorical] or ["numeric"] * len(names)
        cat_names = [n for n, t in zip(names, types) if t == "categorical"]
        categories = manifest.get("categories") or dict(zip(cat_names, levels or []))
        return FeatureBinding(tuple(names), tuple(types), {n: list(categories.get(n, [])) for n in cat_names})
    names = tuple(f["name"] for f in features)
    types = tuple(f["type"] for f in features)
    cat_names = [n for n, t in zip(names, types) if t == "categorical"]
    categories = manifest.get("categories")
    if categories is None and recorded is not None and recorded[2] is not None:
        categories = dict(zip(cat_names, recorded[2]))
    categories = categories or {}
    missing = [n for n in cat_names if n not in categories]
    if missing:
        raise BadModel(f"model v{version}: its manifest records no categories for categorical feature(s) {missing}")
    if recorded is not None:
        text_names, _, levels = recorded
        if [_lightgbm_name(n) for n in names] != text_names:
            raise BadModel(
                f"model v{version}: its manifest lists features {list(names)} but the model text was trained on "
                f"{text_names}; the artifact is inconsistent, retrain it"
            )
        if levels is not None and [list(categories[n]) for n in cat_names] != levels:
            raise BadModel(
                f"model v{version}: the categories in its manifest differ from the codes the model text "
                f"(pandas_categorical) uses for {cat_names}; the artifact is inconsistent, retrain it"
            )
    return FeatureBinding(names, types, {n: list(categories[n]) for n in cat_names})


def own_pipeline(model):
    """The imported scikit-learn model (scoring/sklearn_model.SklearnModel) of a loaded model, which scores its own
    pipeline on the bound columns by name; None for a LightGBM booster, scored on the binding's matrix."""
    return model.booster if getattr(model.booster, "kind", None) == "sklearn" else None


def bind(model, config: DatasetConfig) -> FeatureBinding:
    """The binding of a loaded model (registry.LoadedModel), checked against config's [features].

    Order does not matter (columns are matched by name). A feature the config adds, drops or types
    differently, or a category the config allows that the model has no code for, is refused with
    FeatureMismatch naming both sides.
    """
    binding = model_binding(model.manifest, model.text, model.version)
    model_types = dict(zip(binding.names, binding.types))
    config_types = {f.name: f.type for f in config.features}
    problems = []
    added = [n for n in config_types if n not in model_types]
    dropped = [n for n in binding.names if n not in config_types]
    if added:
        problems.append(f"the config has {added}, which the model was not trained on")
    if dropped:
        problems.append(f"the model needs {dropped}, which the config does not have")
    retyped = [n for n in config_types if n in model_types and config_types[n] != model_types[n]]
    problems.extend(f"{n!r} is {config_types[n]} in the config but {model_types[n]} in the model" for n in retyped)
    for feature in config.features:
        if feature.categories and model_types.get(feature.name) == "categorical":
            unknown = sorted(set(feature.categories) - set(binding.categories[feature.name]))
            if unknown:
                problems.append(
                    f"{feature.name!r} allows {len(unknown)} categor{'y' if len(unknown) == 1 else 'ies'} the model "
                    f"has no code for ({', '.join(map(repr, unknown))}): they would be scored as missing"
                )
    if problems:
        model_side = ", ".join(f"{n} ({t})" for n, t in zip(binding.names, binding.types))
        config_side = ", ".join(f"{f.name} ({f.type})" for f in config.features)
        raise FeatureMismatch(
            f"{config.path.name} [features] do not match model v{model.version}: {'; '.join(problems)}. "
            f"Model v{model.version} features: {model_side}. Config features: {config_side}. "
            "Retrain (driftline train) after changing [features], or restore the config the model was trained with"
        )
    return binding


def model_frame(frame: pd.DataFrame, binding: FeatureBinding) -> pd.DataFrame:
    """Feature columns in the model's order; categoricals use the model's training categories.

    Values never seen in training become missing, which LightGBM routes like a missing value.
    """
    data = {}
    for name, kind in zip(binding.names, binding.types):
        column = frame[name]
        if kind == "categorical":
            data[name] = pd.Categorical(column, categories=binding.categories[name])
        else:
            data[name] = column.astype("float64", copy=False)
    return pd.DataFrame(data, index=frame.index)


_BLOCK_ROWS = 4096


def model_matrix(table, binding: FeatureBinding, rows: np.ndarray | None = None) -> np.ndarray:
    """The float64 matrix LightGBM builds from model_frame(), built straight from Arrow columns.

    Categoricals become their index in the training categories (missing or unseen -> NaN), which is
    what LightGBM does internally with a pandas categorical, so the scores are bit-identical.
    rows: the positions of the table's rows to take (int64, in the order wanted); None takes all.
    Built in one native pass (native_matrix.py); the NumPy path where no C compiler is found.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from driftline.scoring import native_matrix

    selection = None if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
    count = table.num_rows if selection is None else len(selection)
    if selection is not None and count and (selection.min() < 0 or selection.max() >= table.num_rows):
        raise IndexError(f"model_matrix: row positions outside the table's {table.num_rows} rows")
    columns = []
    for name, kind in zip(binding.names, binding.types):
        column = table[name]
        if kind == "categorical":
            column = pc.index_in(column, value_set=pa.array(binding.categories[name], type=pa.string()))
        elif column.type != pa.float64():
            column = pc.cast(column, pa.float64())
        if isinstance(column, pa.ChunkedArray):
            # One chunk (the readers' usual case) is passed as it is; several are joined (a copy).
            column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        columns.append(column)
    matrix = native_matrix.fill(columns, count, selection) if count else None
    if matrix is not None:
        return matrix
    return _numpy_matrix(columns, count, selection)


def _numpy_matrix(columns: list, count: int, selection: np.ndarray | None) -> np.ndarray:
    """model_matrix without the native pass (no C compiler): the same values, more copies."""
    import pyarrow.compute as pc

    arrays = []
    for column in columns:
        values = pc.fill_null(column.cast("float64"), float("nan")).to_numpy(zero_copy_only=False)
        arrays.append(values if selection is None else values[selection])
    # Filled in blocks of rows so each block of the row-major matrix stays in cache while every
    # column is written into it (3x faster than writing whole strided columns).
    matrix = np.empty((count, len(arrays)), dtype="float64")
    for first in range(0, count, _BLOCK_ROWS):
        block = matrix[first : first + _BLOCK_ROWS]
        for position, values in enumerate(arrays):
            block[:, position] = values[first : first + _BLOCK_ROWS]
    return matrix
