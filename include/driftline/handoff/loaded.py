"""An imported version's scoring object, from its verified bytes and hash-checked manifest."""

from __future__ import annotations

import hashlib

from driftline.errors import BadConfig
from driftline.handoff.files import load_artifact
from driftline.handoff.sklearn_model import SklearnModel


def imported_model(
    data: bytes, manifest: dict, where: str, pinned_pickles: tuple[str, ...] | None = None
) -> SklearnModel:
    """The SklearnModel of a registered scikit-learn (skops) or pinned-pickle version.

    The trusted types come from the manifest, whose scoring hash the registry has just verified, so
    a type added to the file after import is refused like any other untrusted type. A pickle loads
    only while the config still pins it (pinned_pickles: [handoff] pickle_sha256): removing the pin
    revokes the trust given at import, so the version is refused (BadConfig) rather than unpickled."""
    if manifest["kind"] == "pickle":
        digest = hashlib.sha256(data).hexdigest()
        if digest not in (pinned_pickles or ()):
            raise BadConfig(
                f"{where}: a pickle model loads only while the dataset config pins its sha256 in [handoff] "
                f"pickle_sha256, and {digest} is not pinned there (any more). Pin it again to use this version, "
                "or promote or roll back to another one"
            )
    estimator = load_artifact(manifest["kind"], data, tuple(manifest.get("trusted_types", ())), where)
    return SklearnModel(estimator, manifest["task"], manifest.get("positive_label"))
