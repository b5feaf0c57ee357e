"""Why a row was scored high: TreeSHAP reasons beside the predictions, and attribution drift.

Contributions are TreeSHAP's, computed by Linear TreeSHAP (treeshap.py: the same values as
LightGBM's `pred_contrib` to 1e-12, ~5x less CPU) or, where that cannot run (no C compiler, a
model it does not cover), by `pred_contrib` itself: on the scoring path through native_booster's
`LGBM_BoosterPredictForMat` with C_API_PREDICT_CONTRIB, so no `import lightgbm`. A row's contributions are on the raw score (log-odds for binary) and, with the expected value,
add up to it. Only the rows [explain] selects are explained (min_score, or the top fraction of each
chunk), so the cost is bounded by that share of the rows. Nothing here touches the database; the
scoring attempt queues the reason rows on its COPY thread beside the predictions.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from driftline.config import DatasetConfig, ExplainSettings

REASON_COLUMNS = ["run_key", "partition", "entity_key", "rank", "feature", "value", "contribution"]

# SageMaker Clarify's default: feature attribution drift is flagged when nDCG falls below this.
NDCG_THRESHOLD = 0.9


def select_rows(scores: np.ndarray, settings: ExplainSettings) -> np.ndarray:
    """Positions (ascending) of the rows to explain: score >= min_score, or the ceil(top_fraction x n)
    highest scores (ties at the cut broken by position)."""
    if settings.min_score is not None:
        return np.flatnonzero(scores >= settings.min_score)
    count = min(len(scores), math.ceil(settings.top_fraction * len(scores)))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if count == len(scores):
        return np.arange(len(scores))
    # Stable sort on -score: among equal scores the earlier row wins, so the choice is deterministic.
    return np.sort(np.argsort(-scores, kind="stable")[:count])


def top_reasons(contributions: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(feature positions, signed contributions), both rows x min(top_k, features), ordered by
    |contribution| descending (ties by feature order). contributions: rows x (features + 1), the
    expected value last (ignored)."""
    features = contributions[:, :-1]
    k = min(top_k, features.shape[1])
    order = np.argsort(-np.abs(features), axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(features, order, axis=1)


def mean_abs_contribution(contributions: np.ndarray) -> np.ndarray:
    """Global importance: mean |contribution| per feature (the expected-value column dropped)."""
    if len(contributions) == 0:
        return np.zeros(contributions.shape[1] - 1)
    return np.abs(contributions[:, :-1]).mean(axis=0)


def ndcg(reference: np.ndarray, current: np.ndarray) -> float:
    """nDCG of the current importance order scored by the reference importances (SageMaker Clarify's
    feature attribution drift): 1.0 when the order is unchanged, lower as important features move down.

    DCG = sum_i reference[current order i] / log2(i + 1), i from 1; divided by the DCG of the
    reference's own order. Ties keep feature order. 1.0 when the reference has no importance at all.
    """
    reference, current = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, len(reference) + 2))
    ideal = float(np.sort(reference)[::-1] @ discounts)
    if ideal <= 0.0:
        return 1.0
    return float(reference[np.argsort(-current, kind="stable")] @ discounts) / ideal


@dataclass(frozen=True)
class Attribution:
    """Attribution drift of one interval: mean |contribution| per feature on both samples, and nDCG."""

    features: list[str]
    reference: list[float]
    current: list[float]
    ndcg: float

    @property
    def drifted(self) -> bool:
        return self.ndcg < NDCG_THRESHOLD

    def summary(self) -> dict:
        """JSON-safe: what the monitor_drift summary carries."""
        top = sorted(zip(self.features, self.reference, self.current), key=lambda item: -item[2])
        return {
            "ndcg": round(self.ndcg, 4),
            "threshold": NDCG_THRESHOLD,
            "drifted": self.drifted,
            "top_features": [{"feature": f, "reference": round(r, 6), "current": round(c, 6)} for f, r, c in top[:5]],
        }


def attribution_drift(
    features: list[str], reference_contributions: np.ndarray, current_contributions: np.ndarray
) -> Attribution:
    """Compare the global importance of a drift sample with the reference's."""
    reference = mean_abs_contribution(reference_contributions)
    current = mean_abs_contribution(current_contributions)
    return Attribution(list(features), reference.tolist(), current.tolist(), ndcg(reference, current))


# TreeSHAP costs ~20-400x a prediction (O(trees x leaves x depth) per row, x depth more with
# pred_contrib): attribution drift reads the first rows of each (already random, seeded) sample. The mean |contribution| of
# the leading features has a standard error of a few percent at this size; their order is what nDCG
# compares.
ATTRIBUTION_ROWS = 1000


class Contributions:
    """TreeSHAP contributions of one model: Linear TreeSHAP, else LightGBM's pred_contrib (a
    NativeBooster's on the scoring path, a lightgbm.Booster's elsewhere). Raises
    treeshap.LinearTreesRefused (BadModel) for linear trees, which neither explains."""

    def __init__(self, model):
        from driftline.scoring.treeshap import for_model

        self._booster = model.booster
        from driftline.scoring.features import own_pipeline

        # An imported scikit-learn model (scoring/sklearn_model.py) explains its own inputs, by name.
        self.sklearn = own_pipeline(model)
        self.linear = None if self.sklearn is not None else for_model(model.text)

    def __call__(self, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """rows x (features + 1), the expected value last; num_threads 0: every core."""
        if self.linear is not None:
            return self.linear.contributions(matrix, num_threads=num_threads or os.cpu_count() or 1)
        if hasattr(self._booster, "contributions"):
            return self._booster.contributions(matrix, num_threads=num_threads)
        return np.asarray(self._booster.predict(matrix, pred_contrib=True, num_threads=num_threads), dtype="float64")


def frame_matrix(frame) -> np.ndarray:
    """The float64 matrix LightGBM makes of a model_frame(): categoricals as their codes, missing NaN."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if hasattr(column, "cat"):
            codes = column.cat.codes.to_numpy().astype("float64")
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(column.to_numpy(dtype="float64"))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def frame_contributions(model, frame, config: DatasetConfig, binding, rows: int = ATTRIBUTION_ROWS) -> np.ndarray:
    """Contributions of the first `rows` rows of a pandas frame of features (drift samples), one
    column per feature of binding (features.FeatureBinding, the model's order), then the expected value.

    model: a LoadedModel, or a Contributions of it (built once for both samples)."""
    from driftline.scoring.features import model_frame

    explain = model if isinstance(model, Contributions) else Contributions(model)
    if explain.sklearn is not None:  # imported pipeline: reasons on its inputs, or BadConfig
        return explain.sklearn.contributions(frame.iloc[:rows], config, binding.names)
    features = frame_matrix(model_frame(frame.iloc[:rows], binding))
    return explain(features, int(config.lightgbm_params.get("num_threads", 0)))


_SPLIT_FEATURE = re.compile(rb"^split_feature=(.*)$", re.M)
_SPLIT_GAIN = re.compile(rb"^split_gain=(.*)$", re.M)
_FEATURE_NAMES = re.compile(rb"^feature_names=(.*)$", re.M)


def gain_importance(model_text: bytes | str) -> dict[str, float]:
    """Total split gain per feature, read from a LightGBM text model without loading it (what
    `Booster.feature_importance("gain")` returns), in the model's feature order."""
    text = model_text.encode() if isinstance(model_text, str) else bytes(model_text)
    names_line = _FEATURE_NAMES.search(text)
    if names_line is None:
        return {}
    names = names_line.group(1).decode("utf-8", "replace").split()
    gains = np.zeros(len(names))
    for features, split_gains in zip(_SPLIT_FEATURE.findall(text), _SPLIT_GAIN.findall(text)):
        np.add.at(gains, np.array(features.split(), dtype=np.int64), np.array(split_gains.split(), dtype=np.float64))
    return dict(zip(names, gains.tolist()))


class Explainer:
    """Reason rows for the selected rows of one scored chunk (built once per scoring attempt)."""

    def __init__(self, model, config: DatasetConfig):
        from driftline.scoring.features import bind

        self._contributions = Contributions(model)
        self._binding = bind(model, config)
        self._config = config
        self._settings = config.explain
        self._names = list(self._binding.names)  # contributions come in the model's column order
        self._threads = int(config.lightgbm_params.get("num_threads", 0))
        self.rows = 0
        if self._contributions.sklearn is not None:
            from driftline.scoring.sklearn_model import explainable_parts

            explainable_parts(model.booster.estimator, config)  # BadConfig now, before anything is scored

    def reasons(self, rows, scores: np.ndarray, keys: dict):
        """An Arrow table of REASON_COLUMNS for the rows to explain, or None when there are none.

        rows: the scored typed Arrow rows; scores: theirs; keys: {"run_key": ..., "partition": ...}.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        from driftline.scoring.features import model_matrix

        chosen = select_rows(scores, self._settings)
        if len(chosen) == 0:
            return None
        picked = rows.take(pa.array(chosen))
        if self._contributions.sklearn is not None:
            values = self._contributions.sklearn.contributions(picked, self._config, self._binding.names)
        else:
            values = self._contributions(model_matrix(picked, self._binding), self._threads)
        order, signed = top_reasons(values, self._settings.top_k)
        n, k = order.shape
        keep = (signed != 0.0).ravel()  # a feature that moved nothing is not a reason
        row_of = np.repeat(np.arange(n), k)[keep]
        feature_of = order.ravel()[keep]
        # The row's value as read (a category as its text, not its code): every feature column of
        # the picked rows as text, one after another, then one take at feature * n + row.
        texts = pa.concat_arrays([pc.cast(picked[name], pa.string()).combine_chunks() for name in self._names])
        self.rows += n
        return pa.table(
            {
                "run_key": pa.array(np.full(len(row_of), keys["run_key"]), type=pa.int64()),
                "partition": pa.nulls(len(row_of), pa.int32())
                if keys.get("partition") is None
                else pa.array(np.full(len(row_of), keys["partition"]), type=pa.int32()),
                "entity_key": picked[self._config.entity_key].take(pa.array(row_of)),
                "rank": pa.array((np.tile(np.arange(1, k + 1), n)[keep]), type=pa.int16()),
                "feature": pa.array(np.array(self._names, dtype=object)[feature_of], type=pa.string()),
                "value": texts.take(pa.array(feature_of * n + row_of)),
                "contribution": pa.array(signed.ravel()[keep], type=pa.float64()),
            }
        )
