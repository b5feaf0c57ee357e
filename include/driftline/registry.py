"""Model registry: LightGBM text artifacts + JSON manifest on disk, versions and aliases in Postgres.

An artifact is only loaded after its sha256 matches both the manifest and the registry row, so a
tampered or swapped file is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from .db import table

CHAMPION = "champion"
PREVIOUS = "previous"
MODEL_FILE = "model.txt"
MANIFEST_FILE = "manifest.json"


class ModelLoadError(RuntimeError):
    """A model version cannot be used (unknown, missing, or its hash does not match)."""


@dataclass(frozen=True)
class LoadedModel:
    version: int
    booster: Any  # lightgbm.Booster
    manifest: dict


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_artifact(directory: Path, model_text: str, manifest: dict) -> tuple[Path, dict]:
    """Write model.txt and manifest.json (with the model's sha256) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    data = model_text.encode("utf-8")
    digest = sha256_bytes(data)
    (directory / MODEL_FILE).write_bytes(data)
    manifest = {**manifest, "artifact": MODEL_FILE, "sha256": digest}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return directory / MODEL_FILE, manifest


def register_champion(
    conn: psycopg.Connection,
    schema: str,
    registry_dir: Path,
    model_text: str,
    manifest: dict,
    reason: str,
    run_id: str | None = None,
) -> tuple[int, bool]:
    """Register a model and make it champion atomically; returns (version, created).

    Registering the same artifact again (same sha256: same data, params and seed) reuses its
    version instead of adding a copy, so a repeated `driftline train` is idempotent.
    """
    digest = sha256_bytes(model_text.encode("utf-8"))
    with conn.transaction():
        # Serialise registrations so two trainers cannot take the same version number.
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table(schema, "model_versions")))
        row = conn.execute(
            sql.SQL("SELECT version FROM {} WHERE sha256 = %s").format(table(schema, "model_versions")),
            (digest,),
        ).fetchone()
        created = row is None
        if created:
            version = conn.execute(
                sql.SQL("SELECT coalesce(max(version), 0) + 1 FROM {}").format(table(schema, "model_versions"))
            ).fetchone()[0]
            path, manifest = write_artifact(registry_dir / f"v{version:04d}-{digest[:12]}", model_text, {**manifest, "version": version})
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (version, artifact_uri, sha256, manifest, metrics, status) "
                    "VALUES (%s, %s, %s, %s, %s, 'candidate')"
                ).format(table(schema, "model_versions")),
                (version, path.resolve().as_uri(), digest, Jsonb(manifest), Jsonb(manifest.get("metrics", {}))),
            )
        else:
            version = row[0]
        current = champion_version(conn, schema)
        if current != version:
            _set_champion(conn, schema, current, version, "promote", reason, run_id)
    return version, created


def _set_champion(
    conn: psycopg.Connection, schema: str, current: int | None, version: int, action: str, reason: str, run_id: str | None
) -> None:
    versions, aliases, events = (table(schema, t) for t in ("model_versions", "model_aliases", "promotion_events"))
    upsert = sql.SQL(
        "INSERT INTO {} (alias, version) VALUES (%s, %s) "
        "ON CONFLICT (alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()"
    ).format(aliases)
    if current is not None:
        conn.execute(upsert, (PREVIOUS, current))
        conn.execute(sql.SQL("UPDATE {} SET status = 'archived' WHERE version = %s").format(versions), (current,))
    conn.execute(upsert, (CHAMPION, version))
    conn.execute(sql.SQL("UPDATE {} SET status = 'champion' WHERE version = %s").format(versions), (version,))
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (from_version, to_version, action, reason, run_id) VALUES (%s, %s, %s, %s, %s)"
        ).format(events),
        (current, version, action, reason, run_id),
    )


def champion_version(conn: psycopg.Connection, schema: str) -> int | None:
    row = conn.execute(
        sql.SQL("SELECT version FROM {} WHERE alias = %s").format(table(schema, "model_aliases")), (CHAMPION,)
    ).fetchone()
    return row[0] if row else None


def load_model(conn: psycopg.Connection, schema: str, version: int | None = None) -> LoadedModel:
    """Load a registered version (default: the champion) after verifying its sha256."""
    import lightgbm as lgb

    if version is None:
        version = champion_version(conn, schema)
        if version is None:
            raise ModelLoadError(
                f"no champion model registered in schema {schema!r}; run `driftline train --config ...` first"
            )
    row = conn.execute(
        sql.SQL("SELECT artifact_uri, sha256 FROM {} WHERE version = %s").format(
            table(schema, "model_versions")
        ),
        (version,),
    ).fetchone()
    if row is None:
        raise ModelLoadError(f"model version {version} is not registered in schema {schema!r}")
    artifact_uri, expected = row
    path = Path(artifact_uri.removeprefix("file://"))
    try:
        data = path.read_bytes()
        manifest = json.loads((path.parent / MANIFEST_FILE).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelLoadError(f"model version {version}: artifact unreadable at {path}: {exc}") from exc
    actual = sha256_bytes(data)
    if actual != expected or manifest.get("sha256") != expected:
        raise ModelLoadError(
            f"model version {version}: sha256 mismatch for {path} (registry {expected[:12]}, manifest "
            f"{str(manifest.get('sha256'))[:12]}, file {actual[:12]}); refusing to load a tampered artifact"
        )
    try:
        booster = lgb.Booster(model_str=data.decode("utf-8"))
    except lgb.basic.LightGBMError as exc:
        raise ModelLoadError(f"model version {version}: LightGBM cannot read {path}: {exc}") from exc
    return LoadedModel(version=version, booster=booster, manifest=manifest)
