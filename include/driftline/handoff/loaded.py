"""An imported version's scoring object, from its verified bytes and hash-checked manifest."""

from __future__ import annotations

from driftline.handoff.files import load_artifact
from driftline.handoff.sklearn_model import SklearnModel


def imported_model(data: bytes, manifest: dict, where: str) -> SklearnModel:
    """The SklearnModel of a registered scikit-learn (skops) or pinned-pickle version.

    The trusted types come from the manifest, whose scoring hash the registry has just verified, so
    a type added to the file after import is refused like any other untrusted type."""
    estimator = load_artifact(manifest["kind"], data, tuple(manifest.get("trusted_types", ())), where)
    return SklearnModel(estimator, manifest["task"], manifest.get("positive_label"))
