"""Score a scikit-learn estimator or Pipeline on the config's columns, by name, in the scoring chunks.

The model sees what the notebook gave it: a pandas frame with one column per configured feature
(numerics as float64, categoricals as text, missing as NaN), so its own imputers and encoders run
unchanged. Reasons (TreeSHAP) exist only when the last step is LightGBM and the steps before it
keep one column per input; anything else (a one-hot encoder, a derived column) gets a config error
saying why when [explain] is on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig
from driftline.errors import BadConfig, BadModel


class SklearnModel:
    """A loaded scikit-learn model with driftline's scoring interface (kind "sklearn" or "pickle")."""

    kind = "sklearn"

    def __init__(self, estimator, task: str, positive_label=None):
        self.estimator = estimator
        self.task = task
        self._positive = _positive_index(estimator, task, positive_label)
        # A bare LightGBM estimator reads categoricals only as the pandas category dtype (it maps them
        # back to its training categories itself); a pipeline's own encoders want the text.
        self._as_category = type(estimator).__module__.startswith("lightgbm")

    def columns(self, config: DatasetConfig) -> list[str]:
        """The model's input columns in the order it was fitted with (the config's when it records none)."""
        fitted = getattr(self.estimator, "feature_names_in_", None)
        return [str(name) for name in fitted] if fitted is not None else list(config.feature_names)

    def input_frame(self, rows, config: DatasetConfig) -> pd.DataFrame:
        """The model's input: its feature columns of pandas or Arrow rows, by name, in its fitted order."""
        names = self.columns(config)
        if not isinstance(rows, pd.DataFrame):
            rows = rows.select(names).to_pandas()
        types = {f.name: f.type for f in config.features}
        data = {}
        for name in names:
            column = rows[name]
            if types[name] == "categorical":
                text = column.astype(object).where(column.notna(), np.nan)
                data[name] = text.astype("category") if self._as_category else text
            else:
                data[name] = pd.to_numeric(column, errors="coerce").astype("float64")
        return pd.DataFrame(data, index=rows.index)

    def score(self, rows, config: DatasetConfig) -> np.ndarray:
        """Scores for pandas or Arrow rows: the positive class's probability (binary) or the value."""
        if len(rows) == 0:
            return np.empty(0, dtype="float64")
        frame = self.input_frame(rows, config)
        try:
            if self.task == "binary":
                return np.asarray(self.estimator.predict_proba(frame)[:, self._positive], dtype="float64")
            return np.asarray(self.estimator.predict(frame), dtype="float64").reshape(-1)
        except (ValueError, TypeError, KeyError) as exc:
            # The library's message may quote row values (unknown categories, bad cells): not repeated.
            raise BadModel(
                f"the {type(self.estimator).__name__} model failed on {len(frame)} rows with {type(exc).__name__} "
                "(its message is withheld: it may quote row values). Check [features] types and categories against "
                "what the notebook fed the model"
            ) from exc

    def contributions(self, rows, config: DatasetConfig, names=None) -> np.ndarray:
        """TreeSHAP contributions per feature (in `names` order, default the config's) plus the bias
        column last, as LightGBM's."""
        transforms, booster, order = explainable_parts(self.estimator, config, names)
        matrix = self.input_frame(rows, config)
        if transforms is not None:
            matrix = transforms.transform(matrix)
        values = np.asarray(booster.predict(matrix, pred_contrib=True), dtype="float64")
        return values[:, [*order, values.shape[1] - 1]]


def explainable_parts(estimator, config: DatasetConfig, order=None):
    """(transforms or None, the LightGBM booster, column of each configured feature in the booster's
    input); BadConfig when reasons cannot be put on the model's inputs, saying why."""
    from sklearn.pipeline import Pipeline

    transforms, final = (estimator[:-1], estimator[-1]) if isinstance(estimator, Pipeline) else (None, estimator)
    booster = getattr(final, "booster_", None)
    if booster is None:
        raise BadConfig(
            f"[explain] needs TreeSHAP from a LightGBM model, and the model's last step is "
            f"{type(final).__module__}.{type(final).__name__}; remove [explain] from the config for this model"
        )
    fitted = getattr(estimator, "feature_names_in_", None)
    inputs = [str(n) for n in fitted] if fitted is not None else list(config.feature_names)
    names = [str(n).split("__", 1)[-1] for n in (inputs if transforms is None else _output_names(transforms))]
    if sorted(names) != sorted(config.feature_names):
        raise BadConfig(
            "[explain] puts reasons on the model's inputs, but the pipeline's steps before LightGBM turn the "
            f"{len(config.feature_names)} configured features into {len(names)} columns (an encoder or a derived "
            "feature does not keep one column per input), so a contribution cannot be named by a feature; "
            "remove [explain] from the config for this model"
        )
    return transforms, booster, [names.index(name) for name in (order or config.feature_names)]


def _output_names(transforms) -> list[str]:
    try:
        return list(transforms.get_feature_names_out())
    except Exception as exc:  # a step without get_feature_names_out: its columns cannot be named
        raise BadConfig(
            f"[explain]: the pipeline's steps before LightGBM cannot name their output columns ({exc}); "
            "remove [explain] from the config for this model"
        ) from exc


def _positive_index(estimator, task: str, positive_label) -> int:
    if task != "binary":
        return 0
    if not hasattr(estimator, "predict_proba"):
        raise BadModel(
            f"the model ({type(estimator).__name__}) has no predict_proba, which a binary dataset needs for its "
            'scores; import a classifier, or set [dataset] task = "regression"'
        )
    classes = list(getattr(estimator, "classes_", [0, 1]))
    if len(classes) != 2:
        raise BadModel(f"the model predicts {len(classes)} classes; a binary dataset needs exactly 2")
    for candidate in (positive_label, 1, True, "1"):
        if candidate is not None and candidate in classes:
            return classes.index(candidate)
    return 1
