"""Registered model versions in Postgres: register, load (hash-checked), look up, prune; the aliases
(champion, previous) and the promotion events every alias change records."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline.db import table
from driftline.errors import BadInput, BadModel
from driftline.registry.artifacts import (
    MANIFEST_FILE,
    OPTIONAL_SCORING_FIELDS,
    SCORING_FIELDS,
    STAGING_PREFIX,
    artifact_bytes,
    artifact_file,
    artifact_path,
    publish_staged,
    read_artifact,
    scoring_digest,
    sha256_bytes,
    sweep_staging,
    write_artifact,
)

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous"


class ModelLoadError(BadModel):
    """A model version cannot be used (unknown, missing, or its hash does not match)."""


class RegistryError(BadInput):
    """A registry change that is not allowed (unknown version, nothing to roll back to, ...)."""


@dataclass(frozen=True)
class LoadedModel:
    version: int
    booster: Any  # lightgbm.Booster, or a NativeBooster (load_model(scoring_only=True))
    manifest: dict
    sha256: str | None = None
    text: bytes | None = field(default=None, repr=False)  # the verified artifact, what compiled scoring builds from


def register_champion(
    conn: psycopg.Connection,
    schema: str,
    registry_dir: Path,
    model_text: str | bytes,
    manifest: dict,
    reason: str,
    run_id: str | None = None,
) -> tuple[int, bool]:
    """Register a new model and make it champion atomically; returns (version, created).

    Registering the same artifact again (same sha256: same data, params and seed) reuses its
    version and changes nothing else, so a repeated `driftline train` is idempotent and never
    undoes a later promotion (returning to an older version is what `driftline rollback` is for).
    """
    with conn.transaction():
        version, created, staged = _insert_version(conn, schema, registry_dir, model_text, manifest)
        current = champion_version(conn, schema)
        if created or current is None:
            set_champion(conn, schema, current, version, "promote", reason, run_id)
    publish_staged(staged)
    return version, created


def register_candidate(
    conn: psycopg.Connection, schema: str, registry_dir: Path, model_text: str | bytes, manifest: dict
) -> tuple[int, bool]:
    """Register a model without touching the aliases; returns (version, created).

    An artifact already registered (same sha256) keeps its version and status: retraining on the
    same data with the same seed does not add a copy.
    """
    with conn.transaction():
        version, created, staged = _insert_version(conn, schema, registry_dir, model_text, manifest)
    publish_staged(staged)
    return version, created


def _insert_version(
    conn, schema: str, registry_dir: Path, model_text: str | bytes, manifest: dict
) -> tuple[int, bool, tuple[Path, Path] | None]:
    """Inside the caller's transaction: find the artifact by sha256, or write it to a staging folder
    and insert it as a candidate. Returns (version, created, (staging, final) folders or None); the
    caller renames staging to final after commit (publish_staged), so a crash before the commit
    leaves no folder that claims the version number."""
    digest = sha256_bytes(artifact_bytes(model_text))
    lock_registry(conn, schema)  # two trainers cannot take the same version number
    versions = table(schema, "model_versions")
    sweep_staging(conn, schema, registry_dir)
    row = conn.execute(sql.SQL("SELECT version FROM {} WHERE sha256 = %s").format(versions), (digest,)).fetchone()
    if row is not None:
        return row[0], False, None
    version = conn.execute(sql.SQL("SELECT coalesce(max(version), 0) + 1 FROM {}").format(versions)).fetchone()[0]
    name = f"v{version:04d}-{digest[:12]}"
    # The schema is in the staging name: registries of two schemas may share a folder, and a sweep
    # only judges staging folders its own table can vouch for.
    final, staging = registry_dir / name, registry_dir / f"{STAGING_PREFIX}{schema}.{name}"
    shutil.rmtree(final, ignore_errors=True)  # a folder no row owns (left by a version before staging existed)
    shutil.rmtree(staging, ignore_errors=True)
    _, manifest = write_artifact(staging, model_text, {**manifest, "version": version})
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (version, artifact_uri, sha256, scoring_sha256, manifest, metrics, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, 'candidate')"
        ).format(versions),
        (
            version,
            (final.resolve() / artifact_file(manifest)).as_uri(),
            digest,
            manifest["scoring_sha256"],
            Jsonb(manifest),
            Jsonb(manifest.get("metrics", {})),
        ),
    )
    return version, True, (staging, final)


def set_champion(
    conn: psycopg.Connection,
    schema: str,
    current: int | None,
    version: int,
    action: str,
    reason: str,
    run_id: str | None,
    actor: str | None = None,
    reviewer: str | None = None,
    review_comment: str | None = None,
    evaluation_id: int | None = None,
) -> int:
    """Inside the caller's transaction: move the aliases and record the event; returns its event_id."""
    versions, aliases = (table(schema, t) for t in ("model_versions", "model_aliases"))
    upsert = sql.SQL(
        "INSERT INTO {} (alias, version) VALUES (%s, %s) "
        "ON CONFLICT (alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()"
    ).format(aliases)
    if current is not None:
        conn.execute(upsert, (PREVIOUS, current))
        conn.execute(sql.SQL("UPDATE {} SET status = 'archived' WHERE version = %s").format(versions), (current,))
    conn.execute(upsert, (CHAMPION, version))
    conn.execute(sql.SQL("UPDATE {} SET status = 'champion' WHERE version = %s").format(versions), (version,))
    return insert_event(
        conn, schema, current, version, action, reason, run_id, actor, reviewer, review_comment, evaluation_id
    )


def insert_event(
    conn,
    schema: str,
    current,
    version: int,
    action: str,
    reason: str,
    run_id,
    actor,
    reviewer,
    review_comment,
    evaluation_id: int | None = None,
) -> int:
    return conn.execute(
        sql.SQL(
            "INSERT INTO {} (from_version, to_version, action, reason, run_id, actor, reviewer, review_comment, "
            "evaluation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING event_id"
        ).format(table(schema, "promotion_events")),
        (current, version, action, reason, run_id, actor, reviewer, review_comment, evaluation_id),
    ).fetchone()[0]


def champion_version(conn: psycopg.Connection, schema: str) -> int | None:
    row = conn.execute(
        sql.SQL("SELECT version FROM {} WHERE alias = %s").format(table(schema, "model_aliases")), (CHAMPION,)
    ).fetchone()
    return row[0] if row else None


def previous_version(conn: psycopg.Connection, schema: str) -> int | None:
    row = conn.execute(
        sql.SQL("SELECT version FROM {} WHERE alias = %s").format(table(schema, "model_aliases")), (PREVIOUS,)
    ).fetchone()
    return row[0] if row else None


def load_model(
    conn: psycopg.Connection,
    schema: str,
    version: int | None = None,
    scoring_only: bool = False,
    pinned_pickles: tuple[str, ...] | None = None,
) -> LoadedModel:
    """Load a registered version (default: the champion) after verifying its sha256.

    scoring_only: the booster is a native_booster.NativeBooster (predicts on float64 matrices,
    without importing the lightgbm package: ~1 s less per scoring task); else a lightgbm.Booster.
    pinned_pickles: the dataset config's [handoff] pickle_sha256, read now: a pinned-pickle version
    loads only while its sha256 is still listed there (BadConfig otherwise; None pins nothing).
    """
    if version is None:
        version = champion_version(conn, schema)
        if version is None:
            raise ModelLoadError(
                f"no champion model registered in schema {schema!r}; run `driftline train --config ...` first"
            )
    row = conn.execute(
        sql.SQL("SELECT artifact_uri, sha256, pruned_at, scoring_sha256, manifest FROM {} WHERE version = %s").format(
            table(schema, "model_versions")
        ),
        (version,),
    ).fetchone()
    if row is None:
        raise ModelLoadError(f"model version {version} is not registered in schema {schema!r}")
    artifact_uri, expected, pruned_at, expected_scoring, registered_manifest = row
    if pruned_at is not None:
        raise ModelLoadError(
            f"model version {version}: artifact removed by retention on {pruned_at:%Y-%m-%d %H:%M} "
            "(retraining.keep_versions); pick a kept version"
        )
    path = artifact_path(artifact_uri)
    try:
        data, manifest = read_artifact(path)
    except ValueError as exc:
        raise ModelLoadError(f"model version {version}: {exc}; refusing to load it") from exc
    actual = sha256_bytes(data)
    if actual != expected or manifest.get("sha256") != expected:
        raise ModelLoadError(
            f"model version {version}: sha256 mismatch for {path} (registry {expected[:12]}, manifest "
            f"{str(manifest.get('sha256'))[:12]}, file {actual[:12]}); refusing to load a tampered artifact"
        )
    # Registered before the scoring hash existed: the registry row's own manifest is the reference.
    expected_scoring = expected_scoring or scoring_digest(registered_manifest)
    actual_scoring = scoring_digest(manifest)
    if actual_scoring != expected_scoring:
        raise ModelLoadError(
            f"model version {version}: scoring hash mismatch for {path.parent / MANIFEST_FILE} (registry "
            f"{expected_scoring[:12]}, manifest {actual_scoring[:12]}): the fields scoring depends on "
            f"({', '.join(SCORING_FIELDS + OPTIONAL_SCORING_FIELDS)}) were changed; refusing to load a tampered manifest"
        )
    from driftline.registry.model_objects import imported_model, lightgbm_booster

    where = f"model version {version}: {path}"
    try:  # unloadable here (a library missing, a type gone, a corrupt text): score_batch falls back
        if manifest.get("kind", "lightgbm") != "lightgbm":  # imported: scikit-learn (skops) or a pinned pickle
            booster = imported_model(data, manifest, where, pinned_pickles)
        else:
            booster = lightgbm_booster(data, scoring_only, where)
    except BadModel as exc:
        raise ModelLoadError(str(exc)) from exc
    # The LightGBM text only: features.bind reads feature names from it, and a pickled pipeline embeds a
    # LightGBM text of its own (named Column_0.. after the pipeline's transform), which is not the model's input.
    text = data if manifest.get("kind", "lightgbm") == "lightgbm" else None
    return LoadedModel(version=version, booster=booster, manifest=manifest, sha256=actual, text=text)


def lock_registry(conn: psycopg.Connection, schema: str) -> None:
    """Inside a transaction: one alias change (or registration) at a time."""
    conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table(schema, "model_versions")))


def version_status(conn: psycopg.Connection, schema: str, version: int) -> tuple[str, datetime | None]:
    row = conn.execute(
        sql.SQL("SELECT status, pruned_at FROM {} WHERE version = %s").format(table(schema, "model_versions")),
        (version,),
    ).fetchone()
    if row is None:
        raise RegistryError(f"model version {version} is not registered in schema {schema!r}")
    return row


def write_manifest_file(conn, schema: str, version: int) -> None:
    """After commit: manifest.json on disk follows the registry row (the artifact's hash is unchanged)."""
    uri, manifest, pruned_at = conn.execute(
        sql.SQL("SELECT artifact_uri, manifest, pruned_at FROM {} WHERE version = %s").format(
            table(schema, "model_versions")
        ),
        (version,),
    ).fetchone()
    directory = artifact_path(uri).parent
    if pruned_at is not None or not directory.is_dir():
        return
    temporary = directory / f".{MANIFEST_FILE}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(directory / MANIFEST_FILE)  # readers see the old or the new file, never half of one


def version_for_interval(conn: psycopg.Connection, schema: str, interval_end: datetime) -> int | None:
    """The version that was champion when the interval ended (backfills score with the then-champion).

    An interval that ended before the first promotion gets the first champion that is still kept,
    so backfilling old history gives the same version every time, whatever was promoted since.
    """
    events = table(schema, "promotion_events")
    row = conn.execute(
        sql.SQL(
            "SELECT e.to_version FROM {} e JOIN {} v ON v.version = e.to_version "
            "WHERE e.action IN ('promote', 'rollback') AND e.created_at <= %s AND v.pruned_at IS NULL "
            "ORDER BY e.created_at DESC, e.event_id DESC LIMIT 1"
        ).format(events, table(schema, "model_versions")),
        (interval_end,),
    ).fetchone()
    if row is None:
        row = conn.execute(
            sql.SQL(
                "SELECT e.to_version FROM {} e JOIN {} v ON v.version = e.to_version "
                "WHERE e.action IN ('promote', 'rollback') AND v.pruned_at IS NULL "
                "ORDER BY e.created_at, e.event_id LIMIT 1"
            ).format(events, table(schema, "model_versions"))
        ).fetchone()
    return row[0] if row else champion_version(conn, schema)


def fallback_versions(conn: psycopg.Connection, schema: str, exclude: int | None) -> list[int]:
    """Kept versions that have been champion, most recently champion first: what score_batch tries
    when the version it wants cannot be loaded."""
    rows = conn.execute(
        sql.SQL(
            "SELECT e.to_version FROM {} e JOIN {} v ON v.version = e.to_version "
            "WHERE e.action IN ('promote', 'rollback') AND v.pruned_at IS NULL AND e.to_version IS DISTINCT FROM %s "
            "GROUP BY e.to_version ORDER BY max(e.event_id) DESC"
        ).format(table(schema, "promotion_events"), table(schema, "model_versions")),
        (exclude,),
    ).fetchall()
    return [row[0] for row in rows]


def list_versions(conn: psycopg.Connection, schema: str) -> list[dict]:
    """Registered versions with status, metrics and aliases, oldest first."""
    cursor = conn.execute(
        sql.SQL(
            "SELECT v.version, v.created_at, v.status, v.sha256, v.metrics, v.pruned_at, "
            "coalesce(array_agg(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL), '{{}}') AS aliases "
            "FROM {} v LEFT JOIN {} a ON a.version = v.version GROUP BY v.version ORDER BY v.version"
        ).format(table(schema, "model_versions"), table(schema, "model_aliases"))
    )
    names = [column.name for column in cursor.description or ()]  # a SELECT always has one
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def prune_versions(conn: psycopg.Connection, schema: str, keep: int) -> list[int]:
    """Remove the artifacts of versions older than the newest `keep`; never the champion or previous.

    The registry row stays (marked pruned_at) so history and stored predictions still name it.
    """
    if keep < 2:
        raise RegistryError(f"keep must be at least 2 (champion and previous), got {keep}")
    versions = table(schema, "model_versions")
    with conn.transaction():
        lock_registry(conn, schema)
        protected = {champion_version(conn, schema), previous_version(conn, schema)}
        rows = conn.execute(
            sql.SQL("SELECT version, artifact_uri FROM {} WHERE pruned_at IS NULL ORDER BY version DESC").format(
                versions
            )
        ).fetchall()
        doomed = [(v, uri) for v, uri in rows[keep:] if v not in protected]
        if doomed:
            conn.execute(
                sql.SQL("UPDATE {} SET pruned_at = now() WHERE version = ANY(%s)").format(versions),
                ([v for v, _ in doomed],),
            )
    for version, uri in doomed:  # after commit: a row marked pruned is never loaded again
        shutil.rmtree(artifact_path(uri).parent, ignore_errors=True)
        log.info("pruned model version %s (%s)", version, uri)
    return [v for v, _ in doomed]


def latest_unpromoted_version(conn: psycopg.Connection, schema: str) -> int | None:
    """The newest candidate or rejected version registered after the champion (for shadow scoring)."""
    row = conn.execute(
        sql.SQL(
            "SELECT version FROM {} WHERE status IN ('candidate', 'rejected') AND pruned_at IS NULL "
            "AND version > coalesce((SELECT version FROM {} WHERE alias = %s), 0) ORDER BY version DESC LIMIT 1"
        ).format(table(schema, "model_versions"), table(schema, "model_aliases")),
        (CHAMPION,),
    ).fetchone()
    return row[0] if row else None
