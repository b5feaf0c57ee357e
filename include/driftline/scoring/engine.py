"""Scores from a loaded model: `predict` on pandas frames (offline), `Scorer` on Arrow chunks (compiled or LightGBM)."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import numpy as np

from driftline.config import DatasetConfig
from driftline.scoring.features import FeatureBinding, bind, model_frame, model_matrix, own_pipeline

log = logging.getLogger(__name__)

# Compiled scores must equal LightGBM's within this; checked on a sample of every chunk.
COMPILED_TOLERANCE = 1e-9
PARITY_SAMPLE_ROWS = 256

if TYPE_CHECKING:
    from driftline.scoring.explain import Explainer


def predict(model, rows, config: DatasetConfig) -> np.ndarray:
    """Scores of a loaded model (registry.LoadedModel) for typed rows (a pandas DataFrame): probability
    of the positive class (binary) or the value (regression). Columns bind to the model by name."""
    binding = bind(model, config)
    if len(rows) == 0:
        return np.empty(0, dtype="float64")
    if own_pipeline(model) is not None:  # imported: its pipeline, on the bound columns by name
        return model.booster.score(rows, config)
    return predict_frame(model.booster, rows, config, binding)


def predict_frame(booster, rows, config: DatasetConfig, binding: FeatureBinding) -> np.ndarray:
    """Scores of a booster for typed rows (a pandas DataFrame), its inputs built from binding. A
    NativeBooster (load_model(scoring_only=True)) takes the float64 matrix LightGBM would build."""
    from driftline.scoring.native_booster import NativeBooster

    frame = model_frame(rows, binding)
    if isinstance(booster, NativeBooster):
        from driftline.scoring.explain import frame_matrix

        return np.asarray(booster.predict(frame_matrix(frame), num_threads=_threads(config)), dtype="float64")
    return np.asarray(booster.predict(frame, num_threads=_threads(config)), dtype="float64")


def _threads(config: DatasetConfig) -> int:
    return int(config.lightgbm_params.get("num_threads", 0))


class Scorer:
    """Scores Arrow rows with one loaded model through the configured engine ([scoring] engine).

    "compiled" predicts with the trees compiled by lleaves; if compiling fails, or the compiled
    scores on a sample of a chunk differ from LightGBM's by more than COMPILED_TOLERANCE, it logs
    a warning and scores with LightGBM from then on, so the scores written are always LightGBM's
    within the tolerance.

    hashes: where compiled objects' sha256 are recorded (registry.CompiledHashes); without it the
    compiled-model cache is not used. `notices` lists the untrusted artifacts refused on the way
    (a cached object that did not match the registry, an unsafe cache folder): the caller alerts them.
    """

    def __init__(self, model, config: DatasetConfig, hashes=None):
        self._booster = model.booster
        self.binding = bind(model, config)  # refuses a config whose [features] the model was not trained on
        self._config = config
        self.model = model
        self.explainer: Explainer | None = None  # set by the scoring run when [explain] is on
        self._compiled = None
        self.engine = "lightgbm"
        self.compile_seconds = 0.0
        self.notices: list[str] = []
        if own_pipeline(model) is not None:  # imported scikit-learn model: its own pipeline
            self.engine = "sklearn"
        elif config.scoring_engine == "compiled":
            self._compile(model, hashes)

    def _compile(self, model, hashes) -> None:
        from driftline.scoring.compiled import CompileError, UnsafeCacheError, compile_model

        started = time.perf_counter()
        try:
            if model.text is None or model.sha256 is None:
                raise CompileError("the model was not loaded through the registry (no verified text)")
            compiled = compile_model(model.text, model.sha256, hashes)
            self._compiled, self.engine = compiled.model, "compiled"
            self.notices += [compiled.refused] if compiled.refused else []
        except CompileError as exc:
            if isinstance(exc, UnsafeCacheError):
                self.notices.append(str(exc))
            log.warning(
                "model version %s: compiled scoring unavailable (%s); scoring with LightGBM instead "
                '(slower, same scores). Set [scoring] engine = "lightgbm" to silence this.',
                model.version,
                exc,
            )
        self.compile_seconds = time.perf_counter() - started

    def predict(self, rows, selection: np.ndarray | None = None) -> np.ndarray:
        """Scores for typed Arrow rows: those at the positions in selection (int64), or all."""
        if (rows.num_rows if selection is None else len(selection)) == 0:
            return np.empty(0, dtype="float64")
        if self.engine == "sklearn":
            import pyarrow as pa

            chosen = rows if selection is None else rows.take(pa.array(selection))
            return self._booster.score(chosen, self._config)
        matrix = model_matrix(rows, self.binding, selection)
        if self._compiled is None:
            return np.asarray(self._booster.predict(matrix, num_threads=_threads(self._config)), dtype="float64")
        scores = np.asarray(
            self._compiled.predict(matrix, n_jobs=_threads(self._config) or os.cpu_count()), dtype="float64"
        )
        sample = np.unique(np.linspace(0, len(matrix) - 1, min(len(matrix), PARITY_SAMPLE_ROWS)).astype(np.int64))
        expected = np.asarray(self._booster.predict(matrix[sample], num_threads=1), dtype="float64")
        gap = float(np.max(np.abs(scores[sample] - expected), initial=0.0))
        if not gap <= COMPILED_TOLERANCE:  # NaN counts as a mismatch too
            log.warning(
                "compiled scores differ from LightGBM's by %.3g (> %.0e) on a sample; scoring with LightGBM "
                "from now on. Please report this with the model artifact.",
                gap,
                COMPILED_TOLERANCE,
            )
            self._compiled, self.engine = None, "lightgbm"
            return np.asarray(self._booster.predict(matrix, num_threads=_threads(self._config)), dtype="float64")
        return scores
