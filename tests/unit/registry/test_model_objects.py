"""A registered imported version's scoring object (registry/model_objects.py): a pinned pickle loads only
while the config still pins it."""

from __future__ import annotations

import hashlib
import io

import pytest

from driftline.errors import BadConfig
from driftline.registry.model_objects import imported_model
from tests.unit.handoff.models import FEATURES, onehot_pipeline, rows


@pytest.fixture(scope="module")
def pickled() -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(onehot_pipeline(rows(300)), buffer)
    return buffer.getvalue()


MANIFEST = {"kind": "pickle", "task": "binary", "positive_label": None}


def test_a_pickle_whose_pin_was_removed_from_the_config_is_refused_naming_the_key(pickled, monkeypatch):
    import joblib

    unpickled = []
    monkeypatch.setattr(joblib, "load", lambda *args, **kwargs: unpickled.append(1))
    digest = hashlib.sha256(pickled).hexdigest()
    for pins in (None, (), ("0" * 64,)):
        with pytest.raises(BadConfig, match=rf"model version 2: .*\[handoff\] pickle_sha256, and {digest} is not"):
            imported_model(pickled, MANIFEST, "model version 2: model.pkl", pins)
    assert unpickled == []  # refused before a byte of it runs


def test_a_pickle_still_pinned_loads_and_scores(pickled):
    frame = rows(20)
    model = imported_model(pickled, MANIFEST, "model version 2", (hashlib.sha256(pickled).hexdigest(),))
    assert model.estimator.predict_proba(frame[FEATURES]).shape == (20, 2)
