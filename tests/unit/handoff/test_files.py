"""Reading a model trained elsewhere: LightGBM text, skops with trusted types, pickle only when pinned."""

from __future__ import annotations

import hashlib
import pickle

import pytest

from driftline.handoff.files import read_model_file
from driftline.registry.model_objects import UntrustedModel
from tests.unit.handoff.models import booster, onehot_pipeline, rows


def test_lightgbm_text_is_read_as_a_booster(tmp_path):
    path = tmp_path / "model.txt"
    booster(rows()).save_model(str(path))
    model = read_model_file(path)
    assert model.kind == "lightgbm" and model.model.num_trees() == 10
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_skops_pipeline_loads_with_the_types_it_needed_recorded(tmp_path):
    import skops.io as sio

    path = tmp_path / "model.skops"
    sio.dump(onehot_pipeline(rows()), path)
    model = read_model_file(path)
    assert model.kind == "sklearn"
    assert "lightgbm.sklearn.LGBMClassifier" in model.trusted_types
    assert model.model.predict_proba(rows(5)[model.model.feature_names_in_]).shape == (5, 2)


def test_an_untrusted_type_is_refused_by_name_unless_the_config_trusts_it(tmp_path):
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "model.skops"
    # A notebook-defined function: skops would have to import and call it, so it is untrusted.
    sio.dump(Pipeline([("f", FunctionTransformer(pickle.loads))]), path)
    with pytest.raises(UntrustedModel, match=r"_pickle\.loads") as refused:
        read_model_file(path)
    assert "[handoff] trusted_types" in str(refused.value)
    assert read_model_file(path, extra_trusted=("_pickle.loads",)).kind == "sklearn"


def test_a_pickle_is_refused_without_its_pinned_sha256_and_loaded_with_it(tmp_path):
    import joblib

    path = tmp_path / "model.joblib"
    joblib.dump(onehot_pipeline(rows()), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(UntrustedModel, match="pickle_sha256") as refused:
        read_model_file(path)
    assert digest in str(refused.value)  # the line to add, if the user trusts this exact file
    with pytest.raises(UntrustedModel):
        read_model_file(path, pinned_pickles=("0" * 64,))
    assert read_model_file(path, pinned_pickles=(digest,)).kind == "pickle"


def test_a_pickle_is_never_unpickled_before_the_pin_check(tmp_path, monkeypatch):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    monkeypatch.setattr("joblib.load", lambda *a, **k: pytest.fail("unpickled an unpinned file"))
    with pytest.raises(UntrustedModel):
        read_model_file(path)


@pytest.mark.parametrize("content", [b"", b"not a model", b"PK\x03\x04broken zip", b"tree\nversion=v4\nbroken"])
def test_unreadable_files_are_refused_with_the_path(tmp_path, content):
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    with pytest.raises(UntrustedModel, match="model.bin"):
        read_model_file(path)
