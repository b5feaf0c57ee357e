"""Model artifacts on disk: model.txt + manifest.json, their hashes, and the staging folders that
become a version's folder only after its registry row commits."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from psycopg import sql

from driftline.db import table
from driftline.regular_files import read_regular_file

log = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
# The file a registered version keeps its artifact in, by kind (registry/model_objects.KINDS).
ARTIFACT_FILES = {"lightgbm": MODEL_FILE, "sklearn": "model.skops", "pickle": "model.pkl"}
MANIFEST_FILE = "manifest.json"
# The manifest fields scoring reads (with the model text's sha256): covered by scoring_sha256.
SCORING_FIELDS = ("task", "features", "categories", "score_reference", "sha256")
# Covered when present (versions registered before they existed keep their hash): the estimated
# performance reads the calibration map.
OPTIONAL_SCORING_FIELDS = ("calibration", "kind", "trusted_types", "positive_label")
STAGING_PREFIX = ".staging-"


def artifact_path(uri: str) -> Path:
    """The local path of a file:// artifact URI (percent-encoding undone: spaces, non-ASCII)."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    return Path(url2pathname(urlparse(uri).path))


def read_artifact(path: Path) -> tuple[bytes, dict]:
    """A version's model text (bytes) and manifest (a JSON object); ValueError saying what is wrong
    when either is missing, unreadable, not a regular file, not UTF-8 JSON or not an object."""
    try:
        data = read_regular_file(path)
    except OSError as exc:
        raise ValueError(
            f"artifact unreadable at {path} ({type(exc).__name__}: {exc.strerror or exc}); restore it from a backup"
        ) from exc
    manifest_path = path.parent / MANIFEST_FILE
    try:
        manifest = json.loads(read_regular_file(manifest_path).decode("utf-8"))
    except OSError as exc:
        why = f"unreadable ({type(exc).__name__}: {exc.strerror or exc})"
    except UnicodeDecodeError:
        why = "not UTF-8 text"
    except ValueError as exc:  # json.JSONDecodeError: its position only, never the content
        why = f"not valid JSON ({type(exc).__name__} at line {getattr(exc, 'lineno', '?')})"
    else:
        if isinstance(manifest, dict):
            return data, manifest
        why = f"a JSON {type(manifest).__name__}, not an object"
    raise ValueError(
        f"manifest {manifest_path} is {why}; restore it (the registry row keeps a copy: model_versions.manifest)"
    )


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def scoring_digest(manifest: dict) -> str:
    """sha256 of a canonical JSON of the manifest fields scoring depends on (SCORING_FIELDS).

    List order counts (feature order, category codes); key order and whitespace do not.
    """
    relevant = {name: manifest.get(name) for name in SCORING_FIELDS}
    relevant.update({name: manifest[name] for name in OPTIONAL_SCORING_FIELDS if name in manifest})
    return sha256_bytes(json.dumps(relevant, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def artifact_bytes(model: str | bytes) -> bytes:
    """LightGBM text as UTF-8; an imported model's bytes (skops, pinned pickle) as they are."""
    return model if isinstance(model, bytes) else model.encode("utf-8")


def artifact_file(manifest: dict) -> str:
    """model.txt (LightGBM), or the file of an imported kind (ARTIFACT_FILES)."""
    return ARTIFACT_FILES.get(manifest.get("kind", "lightgbm"), MODEL_FILE)


def write_artifact(directory: Path, model_text: str | bytes, manifest: dict) -> tuple[Path, dict]:
    """Write the model file and manifest.json (with the model's sha256 and the scoring hash) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    data = artifact_bytes(model_text)
    digest = sha256_bytes(data)
    name = artifact_file(manifest)
    (directory / name).write_bytes(data)
    manifest = {**manifest, "artifact": name, "sha256": digest}
    manifest["scoring_sha256"] = scoring_digest(manifest)
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return directory / name, manifest


def publish_staged(staged: tuple[Path, Path] | None) -> None:
    """After commit: move a staged artifact folder to the path its row names (atomic rename)."""
    if staged is None:
        return
    staging, final = staged
    try:
        os.rename(staging, final)
    except FileNotFoundError:
        pass  # the next registration's sweep finished the move first


def sweep_staging(conn, schema: str, registry_dir: Path) -> None:
    """Under the registry lock: staging folders whose row committed are moved into place (their
    writer died between commit and rename); the others belong to a registration that never
    committed (killed or failed before its commit) and are removed."""
    if not registry_dir.is_dir():
        return
    for staging in registry_dir.glob(f"{STAGING_PREFIX}{schema}.*"):
        name = staging.name.removeprefix(f"{STAGING_PREFIX}{schema}.")
        try:
            version, prefix = int(name[1:5]), name.split("-", 1)[1]
        except (ValueError, IndexError):
            continue  # not ours
        committed = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE version = %s AND left(sha256, 12) = %s").format(
                table(schema, "model_versions")
            ),
            (version, prefix),
        ).fetchone()
        if committed and not (registry_dir / name).exists():
            publish_staged((staging, registry_dir / name))
        else:
            shutil.rmtree(staging, ignore_errors=True)
            log.warning("removed %s: an artifact whose registration never committed", staging.name)
