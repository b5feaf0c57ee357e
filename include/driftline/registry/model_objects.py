"""A model artifact's bytes as a model object, by kind: LightGBM text, scikit-learn saved with skops
(only trusted types), or a pickle/joblib file (only when its sha256 was pinned before it was read).

`driftline import-model` (handoff/files.py) reads a file through load_artifact; the registry loads a
registered imported version through imported_model, with the trusted types of its verified manifest.
"""

from __future__ import annotations

import io
from typing import Any

from driftline.errors import BadModel

KINDS = ("lightgbm", "sklearn", "pickle")
# Types skops does not trust by default that a scikit-learn pipeline around LightGBM needs. Anything
# else (a notebook's own transformer class, ...) must be listed in [handoff] trusted_types.
DEFAULT_TRUSTED_TYPES = (
    "collections.OrderedDict",
    "collections.defaultdict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "numpy.dtype",
)


class UntrustedModel(BadModel):
    """A model file driftline will not load: untrusted types, an unpinned pickle, an unreadable file."""


def load_artifact(kind: str, data: bytes, trusted_types: tuple[str, ...], where: str) -> Any:
    """The model object of verified bytes: a lightgbm.Booster or a scikit-learn estimator."""
    try:
        if kind == "lightgbm":
            import lightgbm as lgb

            return lgb.Booster(model_str=data.decode("utf-8"))
        if kind == "sklearn":
            import skops.io as sio

            return sio.loads(data, trusted=list(trusted_types))
        if kind == "pickle":
            import joblib

            return joblib.load(io.BytesIO(data))
    except (UntrustedModel, MemoryError):
        raise
    except Exception as exc:  # each library raises its own (LightGBMError, UntrustedTypesFoundException, ...)
        raise UntrustedModel(f"{where}: the {kind} model cannot be loaded: {type(exc).__name__}: {exc}") from exc
    raise UntrustedModel(f"{where}: unknown model kind {kind!r} (known: {', '.join(KINDS)})")


def imported_model(data: bytes, manifest: dict, where: str, pinned_pickles: tuple[str, ...] | None = None):
    """The SklearnModel of a registered scikit-learn (skops) or pinned-pickle version.

    The trusted types come from the manifest, whose scoring hash the registry has just verified, so
    a type added to the file after import is refused like any other untrusted type. A pickle loads
    only while the config still pins it (pinned_pickles: [handoff] pickle_sha256): removing the pin
    revokes the trust given at import, so the version is refused (BadConfig) rather than unpickled."""
    import hashlib

    from driftline.errors import BadConfig
    from driftline.scoring.sklearn_model import SklearnModel

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


def lightgbm_booster(text: bytes, scoring_only: bool, where: str):
    """A LightGBM model text as a booster: a native_booster.NativeBooster when scoring_only (no lightgbm
    import), else a lightgbm.Booster; BadModel when it cannot be read."""
    if scoring_only:
        from driftline.scoring.native_booster import NativeBooster, NativeBoosterError

        try:
            return NativeBooster(text)
        except NativeBoosterError as exc:
            raise BadModel(f"{where}: LightGBM cannot read it: {exc}") from exc
    import lightgbm as lgb

    try:
        return lgb.Booster(model_str=text.decode("utf-8"))
    except lgb.basic.LightGBMError as exc:
        raise BadModel(f"{where}: LightGBM cannot read it: {exc}") from exc
