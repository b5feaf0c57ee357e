"""native_booster.NativeBooster (LightGBM's C library without the Python package) scores exactly
what lightgbm.Booster.predict scores, refuses what LightGBM refuses, and keeps scikit-learn out
of the scoring path."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from driftline.scoring.features import bind, model_matrix
from driftline.scoring.native_booster import NativeBooster, NativeBoosterError, library_path
from tests.unit.models import awkward_rows


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_native_scores_are_lightgbm_scores_bit_for_bit(task, trained_model):
    config, model = trained_model(task)
    matrix = model_matrix(awkward_rows(config), bind(model, config))

    native = NativeBooster(model.text)

    for threads in (1, 2):
        expected = model.booster.predict(matrix, num_threads=threads)
        np.testing.assert_array_equal(native.predict(matrix, num_threads=threads), expected)
    assert native.num_feature() == matrix.shape[1]
    # Non-contiguous input (a column slice of a wider array) is copied, not misread.
    wide = np.hstack([matrix, np.zeros((len(matrix), 1))])[:, : matrix.shape[1]]
    np.testing.assert_array_equal(native.predict(wide), model.booster.predict(matrix))


def test_native_booster_refuses_what_lightgbm_refuses(trained_model):
    with pytest.raises(NativeBoosterError, match="(?i)model|tree|format"):
        NativeBooster(b"this is not a LightGBM model\n")
    _, model = trained_model("binary")
    native = NativeBooster(model.text)
    with pytest.raises(ValueError, match=r"expected a 2-D matrix with \d+ columns"):
        native.predict(np.zeros((3, native.num_feature() + 1)))


def test_scoring_path_does_not_import_lightgbm_or_sklearn(tmp_path, trained_model):
    _, model = trained_model("binary")
    path = tmp_path / "model.txt"
    path.write_bytes(model.text)
    probe = (
        "import sys, numpy as np\n"
        "from driftline.scoring.native_booster import NativeBooster\n"
        f"booster = NativeBooster(open({str(path)!r}, 'rb').read())\n"
        "booster.predict(np.zeros((4, booster.num_feature())))\n"
        "print(sorted(m for m in ('lightgbm', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert library_path().is_file()


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_engine_predict_on_a_frame_is_the_same_with_the_native_booster(task, trained_model):
    """monitor_drift scores its pandas samples with the native booster (no lightgbm import)."""
    import dataclasses

    from driftline.scoring.engine import predict

    config, model = trained_model(task)
    frame = awkward_rows(config).to_pandas()
    native = dataclasses.replace(model, booster=NativeBooster(model.text))
    np.testing.assert_array_equal(predict(native, frame, config), predict(model, frame, config))
