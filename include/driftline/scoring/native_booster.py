"""LightGBM's own C library, called directly for what scoring needs: load a model text, predict on
a float64 matrix.

Why: `import lightgbm` costs ~1 s of CPU in every fresh task process (it imports scikit-learn and
dask wrappers; measured with `python -X importtime`), and on the scoring path it sat between the
first chunk being read and the first score. The scoring path uses the booster only to check the
model loads, to verify a sample of every compiled chunk, and as the fallback engine, all through
`LGBM_BoosterPredictForMat`, the same C call `lightgbm.Booster.predict` makes for a NumPy matrix
(so the scores are identical; tests/unit/scoring/test_native_booster.py compares them). The library file is
the one inside the installed lightgbm package; nothing is imported from the package itself.
Anything else (training, pandas frames, drift, shadow scoring) uses `lightgbm.Booster`.
"""

from __future__ import annotations

import ctypes
import importlib.util
import platform
import threading
from pathlib import Path

import numpy as np

from driftline.errors import BadModel

_C_API_DTYPE_FLOAT64 = 1
_C_API_PREDICT_NORMAL = 0
_C_API_PREDICT_CONTRIB = 3  # c_api.h: TreeSHAP feature contributions, the expected value last
_ROW_MAJOR = 1

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


class NativeBoosterError(BadModel):
    """LightGBM's library is missing or refused the model (the message is LightGBM's own)."""


def library_path() -> Path:
    """lib_lightgbm inside the installed lightgbm package, found without importing the package."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        raise NativeBoosterError("the lightgbm package is not installed")
    package = Path(next(iter(spec.submodule_search_locations)))
    name = {"Windows": "lib_lightgbm.dll", "Darwin": "lib_lightgbm.dylib"}.get(platform.system(), "lib_lightgbm.so")
    # The same places lightgbm/libpath.py looks.
    for candidate in (package / "lib" / name, package / "bin" / name, package.parent / name):
        if candidate.is_file():
            return candidate
    raise NativeBoosterError(f"{name} not found in the lightgbm package at {package}")


def _library() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            lib = ctypes.cdll.LoadLibrary(str(library_path()))
            lib.LGBM_GetLastError.restype = ctypes.c_char_p
            lib.LGBM_BoosterLoadModelFromString.argtypes = [
                ctypes.c_char_p,
                ctypes.POINTER(ctypes.c_int),
                ctypes.POINTER(ctypes.c_void_p),
            ]
            lib.LGBM_BoosterGetNumFeature.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            lib.LGBM_BoosterGetNumClasses.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
            lib.LGBM_BoosterFree.argtypes = [ctypes.c_void_p]
            lib.LGBM_BoosterPredictForMat.argtypes = [
                ctypes.c_void_p,  # handle
                ctypes.c_void_p,  # data
                ctypes.c_int,  # data_type
                ctypes.c_int32,  # nrow
                ctypes.c_int32,  # ncol
                ctypes.c_int,  # is_row_major
                ctypes.c_int,  # predict_type
                ctypes.c_int,  # start_iteration
                ctypes.c_int,  # num_iteration (-1: all)
                ctypes.c_char_p,  # parameter
                ctypes.POINTER(ctypes.c_int64),  # out_len
                ctypes.POINTER(ctypes.c_double),  # out_result
            ]
            _lib = lib
        return _lib


def _check(code: int) -> None:
    if code != 0:
        raise NativeBoosterError(_library().LGBM_GetLastError().decode("utf-8", "replace"))


class NativeBooster:
    """A loaded LightGBM model that predicts on float64 matrices (binary or regression)."""

    def __init__(self, model_text: str | bytes):
        lib = _library()
        text = model_text.encode("utf-8") if isinstance(model_text, str) else bytes(model_text)
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int(0)
        _check(lib.LGBM_BoosterLoadModelFromString(text, ctypes.byref(iterations), ctypes.byref(self._handle)))
        features, classes = ctypes.c_int(0), ctypes.c_int(0)
        _check(lib.LGBM_BoosterGetNumFeature(self._handle, ctypes.byref(features)))
        _check(lib.LGBM_BoosterGetNumClasses(self._handle, ctypes.byref(classes)))
        self._features = features.value
        if classes.value != 1:
            raise NativeBoosterError(f"multiclass models ({classes.value} classes) are not supported for scoring")

    def num_feature(self) -> int:
        return self._features

    def predict(self, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """One score per row, exactly as `lightgbm.Booster.predict(matrix, num_threads=...)`."""
        return self._predict(matrix, num_threads, _C_API_PREDICT_NORMAL, 1).reshape(-1)

    def contributions(self, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """TreeSHAP contributions per row: one column per feature, then the expected value; a row
        sums to its raw score (log-odds for binary). As `lightgbm.Booster.predict(matrix, pred_contrib=True)`."""
        return self._predict(matrix, num_threads, _C_API_PREDICT_CONTRIB, self._features + 1)

    def _predict(self, matrix: np.ndarray, num_threads: int, predict_type: int, width: int) -> np.ndarray:
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self._features:
            raise ValueError(f"expected a 2-D matrix with {self._features} columns, got shape {data.shape}")
        rows = data.shape[0]
        if rows > np.iinfo(np.int32).max:
            raise ValueError(f"{rows} rows in one call; score in chunks")
        out = np.empty((rows, width), dtype=np.float64)
        out_len = ctypes.c_int64(0)
        parameter = f"num_threads={int(num_threads)}".encode() if num_threads else b""
        _check(
            _library().LGBM_BoosterPredictForMat(
                self._handle,
                data.ctypes.data_as(ctypes.c_void_p),
                _C_API_DTYPE_FLOAT64,
                rows,
                data.shape[1],
                _ROW_MAJOR,
                predict_type,
                0,
                -1,
                parameter,
                ctypes.byref(out_len),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        if out_len.value != rows * width:
            raise NativeBoosterError(f"LightGBM returned {out_len.value} values for {rows} rows x {width}")
        return out

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value and _lib is not None:
            _lib.LGBM_BoosterFree(handle)
            self._handle = None
