"""drift.reference.reference_importance: the reference's attributions computed once per model
version, reused only while the model's and the sample's sha256 still match."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from driftline.drift.reference import build_reference, reference_importance
from tests.unit.models import awkward_rows


def test_reference_importance_is_cached_per_model_sha256_and_verified(trained_model, tmp_path, monkeypatch):
    config, model = trained_model("binary")
    reference = build_reference(config, model, awkward_rows(config).to_pandas())
    path = tmp_path / "v0001.parquet"
    reference.to_parquet(path, index=False)

    first = reference_importance(config, model, path, reference)
    assert len(first) == len(config.feature_names) and max(first) > 0
    cache = path.with_suffix(".attribution.json")
    assert json.loads(cache.read_text())["model_sha256"] == model.sha256

    import driftline.scoring.explain as explain

    calls = []
    real = explain.frame_contributions
    monkeypatch.setattr(explain, "frame_contributions", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert reference_importance(config, model, path, reference) == pytest.approx(first)
    assert calls == []  # served from the cache

    # Another model (another sha256), a rebuilt sample or a tampered file: computed again.
    other = dataclasses.replace(model, sha256="0" * 64)
    assert reference_importance(config, other, path, reference) == pytest.approx(first)
    assert len(calls) == 1
    stored = json.loads(cache.read_text())
    stored["importance"] = [0.0] * len(first)
    stored["reference_sha256"] = "f" * 64
    cache.write_text(json.dumps(stored))
    assert np.allclose(reference_importance(config, other, path, reference), first)
    assert len(calls) == 2
