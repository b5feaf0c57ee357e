"""Read a model file trained elsewhere: LightGBM text, scikit-learn saved with skops (explicit trusted
types), or pickle/joblib only when its sha256 is pinned in [handoff] pickle_sha256.

Loading a pickle runs whatever code it names, so an unpinned pickle is refused before a byte of it
is unpickled; skops refuses every type not on the trusted list, and the refusal names the types.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftline.registry.model_objects import DEFAULT_TRUSTED_TYPES, UntrustedModel, load_artifact

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav")


@dataclass
class ModelFile:
    """A model read into memory: its kind, its bytes (what is registered and hashed) and the object."""

    kind: str
    data: bytes
    model: Any = field(repr=False)  # lightgbm.Booster or a scikit-learn estimator
    source: str
    trusted_types: tuple[str, ...] = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def detect_kind(path: Path, data: bytes) -> str:
    """lightgbm (text starting `tree`), sklearn (a skops zip) or pickle (by suffix or protocol byte)."""
    if data.startswith(b"PK\x03\x04"):
        return "sklearn"
    if data.startswith(b"tree\n") or data.startswith(b"tree\r\n"):
        return "lightgbm"
    if path.suffix.lower() in _PICKLE_SUFFIXES or data[:1] == b"\x80":
        return "pickle"
    raise UntrustedModel(
        f"{path}: not a model file driftline reads: expected LightGBM text (Booster.save_model), a scikit-learn "
        "model saved with skops (skops.io.dump), or a pickle/joblib file pinned in [handoff] pickle_sha256"
    )


def read_model_file(
    path: str | Path, extra_trusted: tuple[str, ...] = (), pinned_pickles: tuple[str, ...] = ()
) -> ModelFile:
    """Read and load a model file, refusing what is not trusted (UntrustedModel names why)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UntrustedModel(f"{path}: cannot read the model file: {exc.strerror or exc}") from exc
    kind = detect_kind(path, data)
    if kind == "pickle":
        digest = hashlib.sha256(data).hexdigest()
        if digest not in pinned_pickles:
            raise UntrustedModel(
                f"{path}: a pickle/joblib file runs arbitrary code when loaded, so driftline refuses it. Save the "
                "model with skops (skops.io.dump(model, 'model.skops')) instead, or, if you trust this exact file, "
                f'opt in by pinning its sha256 in the config: [handoff] pickle_sha256 = ["{digest}"]'
            )
    trusted = _trusted_for(data, kind, extra_trusted, str(path))
    return ModelFile(
        kind=kind,
        data=data,
        model=load_artifact(kind, data, trusted, str(path)),
        source=str(path),
        trusted_types=trusted,
    )


def _trusted_for(data: bytes, kind: str, extra: tuple[str, ...], where: str) -> tuple[str, ...]:
    """The skops types this file needs beyond skops' defaults; refuses any not trusted by driftline or config."""
    if kind != "sklearn":
        return ()
    import skops.io as sio

    try:
        needed = sorted(sio.get_untrusted_types(data=data))
    except Exception as exc:  # a damaged zip or a skops format this version cannot read
        raise UntrustedModel(f"{where}: skops cannot read this file: {type(exc).__name__}: {exc}") from exc
    refused = [name for name in needed if name not in DEFAULT_TRUSTED_TYPES and name not in extra]
    if refused:
        raise UntrustedModel(
            f"{where}: the model contains types driftline does not trust: {', '.join(refused)}. If you wrote or "
            "reviewed them, list them in the config ([handoff] trusted_types) and make them importable where "
            "driftline runs; nothing was registered"
        )
    return tuple(needed)
