"""Model registry: LightGBM text artifacts + JSON manifest on disk, versions and aliases in Postgres.

An artifact is only loaded after its sha256 matches both the manifest and the registry row, so a
tampered or swapped file is refused.
"""

from __future__ import annotations

import hashlib
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

from .db import table
from .errors import BadInput, BadModel

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous"
MODEL_FILE = "model.txt"
MANIFEST_FILE = "manifest.json"


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


def artifact_path(uri: str) -> Path:
    """The local path of a file:// artifact URI (percent-encoding undone: spaces, non-ASCII)."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    return Path(url2pathname(urlparse(uri).path))


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
    """Register a new model and make it champion atomically; returns (version, created).

    Registering the same artifact again (same sha256: same data, params and seed) reuses its
    version and changes nothing else, so a repeated `driftline train` is idempotent and never
    undoes a later promotion (returning to an older version is what `driftline rollback` is for).
    """
    with conn.transaction():
        version, created = _insert_version(conn, schema, registry_dir, model_text, manifest)
        current = champion_version(conn, schema)
        if created or current is None:
            _set_champion(conn, schema, current, version, "promote", reason, run_id)
    return version, created


def register_candidate(
    conn: psycopg.Connection, schema: str, registry_dir: Path, model_text: str, manifest: dict
) -> tuple[int, bool]:
    """Register a model without touching the aliases; returns (version, created).

    An artifact already registered (same sha256) keeps its version and status: retraining on the
    same data with the same seed does not add a copy.
    """
    with conn.transaction():
        return _insert_version(conn, schema, registry_dir, model_text, manifest)


def _insert_version(conn, schema: str, registry_dir: Path, model_text: str, manifest: dict) -> tuple[int, bool]:
    """Inside the caller's transaction: find the artifact by sha256 or write and insert it as a candidate."""
    digest = sha256_bytes(model_text.encode("utf-8"))
    _lock_registry(conn, schema)  # two trainers cannot take the same version number
    row = conn.execute(
        sql.SQL("SELECT version FROM {} WHERE sha256 = %s").format(table(schema, "model_versions")),
        (digest,),
    ).fetchone()
    if row is not None:
        return row[0], False
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
    return version, True


def _set_champion(
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
    return _insert_event(conn, schema, current, version, action, reason, run_id, actor, reviewer, review_comment)


def _insert_event(
    conn, schema: str, current, version: int, action: str, reason: str, run_id, actor, reviewer, review_comment
) -> int:
    return conn.execute(
        sql.SQL(
            "INSERT INTO {} (from_version, to_version, action, reason, run_id, actor, reviewer, review_comment) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING event_id"
        ).format(table(schema, "promotion_events")),
        (current, version, action, reason, run_id, actor, reviewer, review_comment),
    ).fetchone()[0]


def _append_decision(conn, schema: str, version: int, decision: dict) -> None:
    """Inside the caller's transaction: add a decision (who, why, when) to the version's manifest."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET manifest = jsonb_set(manifest, '{{decisions}}', "
            "coalesce(manifest->'decisions', '[]'::jsonb) || jsonb_build_array(%s::jsonb)) WHERE version = %s"
        ).format(table(schema, "model_versions")),
        (Jsonb(decision), version),
    )


def _write_manifest_file(conn, schema: str, version: int) -> None:
    """After commit: manifest.json on disk follows the registry row (the artifact's hash is unchanged)."""
    uri, manifest, pruned_at = conn.execute(
        sql.SQL("SELECT artifact_uri, manifest, pruned_at FROM {} WHERE version = %s").format(table(schema, "model_versions")),
        (version,),
    ).fetchone()
    directory = artifact_path(uri).parent
    if pruned_at is not None or not directory.is_dir():
        return
    temporary = directory / f".{MANIFEST_FILE}.tmp"
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(directory / MANIFEST_FILE)  # readers see the old or the new file, never half of one


def champion_version(conn: psycopg.Connection, schema: str) -> int | None:
    row = conn.execute(
        sql.SQL("SELECT version FROM {} WHERE alias = %s").format(table(schema, "model_aliases")), (CHAMPION,)
    ).fetchone()
    return row[0] if row else None


def load_model(conn: psycopg.Connection, schema: str, version: int | None = None, scoring_only: bool = False) -> LoadedModel:
    """Load a registered version (default: the champion) after verifying its sha256.

    scoring_only: the booster is a native_booster.NativeBooster (predicts on float64 matrices,
    without importing the lightgbm package: ~1 s less per scoring task); else a lightgbm.Booster.
    """
    if version is None:
        version = champion_version(conn, schema)
        if version is None:
            raise ModelLoadError(
                f"no champion model registered in schema {schema!r}; run `driftline train --config ...` first"
            )
    row = conn.execute(
        sql.SQL("SELECT artifact_uri, sha256, pruned_at FROM {} WHERE version = %s").format(
            table(schema, "model_versions")
        ),
        (version,),
    ).fetchone()
    if row is None:
        raise ModelLoadError(f"model version {version} is not registered in schema {schema!r}")
    artifact_uri, expected, pruned_at = row
    if pruned_at is not None:
        raise ModelLoadError(
            f"model version {version}: artifact removed by retention on {pruned_at:%Y-%m-%d %H:%M} "
            "(retraining.keep_versions); pick a kept version"
        )
    path = artifact_path(artifact_uri)
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
    booster = _booster(data, scoring_only, f"model version {version}: LightGBM cannot read {path}")
    return LoadedModel(version=version, booster=booster, manifest=manifest, sha256=actual, text=data)


def _booster(text: bytes, scoring_only: bool, refused: str):
    if scoring_only:
        from .native_booster import NativeBooster, NativeBoosterError

        try:
            return NativeBooster(text)
        except NativeBoosterError as exc:
            raise ModelLoadError(f"{refused}: {exc}") from exc
    import lightgbm as lgb

    try:
        return lgb.Booster(model_str=text.decode("utf-8"))
    except lgb.basic.LightGBMError as exc:
        raise ModelLoadError(f"{refused}: {exc}") from exc


def previous_version(conn: psycopg.Connection, schema: str) -> int | None:
    row = conn.execute(
        sql.SQL("SELECT version FROM {} WHERE alias = %s").format(table(schema, "model_aliases")), (PREVIOUS,)
    ).fetchone()
    return row[0] if row else None


def _lock_registry(conn: psycopg.Connection, schema: str) -> None:
    """Inside a transaction: one alias change (or registration) at a time."""
    conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table(schema, "model_versions")))


def _status(conn: psycopg.Connection, schema: str, version: int) -> tuple[str, datetime | None]:
    row = conn.execute(
        sql.SQL("SELECT status, pruned_at FROM {} WHERE version = %s").format(table(schema, "model_versions")),
        (version,),
    ).fetchone()
    if row is None:
        raise RegistryError(f"model version {version} is not registered in schema {schema!r}")
    return row


def promote(
    conn: psycopg.Connection,
    schema: str,
    version: int,
    reason: str,
    run_id: str | None = None,
    actor: str | None = None,
    decision: dict | None = None,
) -> int | None:
    """Make a registered version champion (the old one becomes previous) in one transaction; returns the old one.

    decision (who decided, their comment, ...) goes into the event's reviewer/review_comment and is
    appended to the version's manifest, in the same transaction.
    """

    def make_champion(current: int | None, reviewer: str | None, comment: str | None) -> int:
        if _status(conn, schema, version)[1] is not None:  # pruned_at
            raise RegistryError(f"model version {version} was removed by retention; it cannot be promoted")
        if current == version:
            raise RegistryError(f"model version {version} is already the champion")
        return _set_champion(conn, schema, current, version, "promote", reason, run_id, actor, reviewer, comment)

    return _decide(conn, schema, version, "promote", run_id, decision, make_champion)


def reject(
    conn: psycopg.Connection,
    schema: str,
    version: int,
    reason: str,
    run_id: str | None = None,
    actor: str | None = None,
    decision: dict | None = None,
) -> None:
    """Record a candidate as rejected, with the reasons (and who decided); the aliases do not move."""

    def mark_rejected(current: int | None, reviewer: str | None, comment: str | None) -> int:
        if current == version:
            raise RegistryError(f"model version {version} is the champion; roll back instead of rejecting it")
        _status(conn, schema, version)
        conn.execute(
            sql.SQL("UPDATE {} SET status = 'rejected' WHERE version = %s").format(table(schema, "model_versions")),
            (version,),
        )
        return _insert_event(conn, schema, current, version, "reject", reason, run_id, actor, reviewer, comment)

    _decide(conn, schema, version, "reject", run_id, decision, mark_rejected)


def _decide(conn, schema: str, version: int, action: str, run_id: str | None, decision: dict | None, change) -> int | None:
    """One promote/reject transaction under the registry lock: change(current champion, reviewer,
    comment) applies it and returns the event id; the decision (when given) is appended to the
    version's manifest in the same transaction and written to manifest.json after commit. Returns
    the champion before the change."""
    decision = decision or {}
    with conn.transaction():
        _lock_registry(conn, schema)
        current = champion_version(conn, schema)
        event_id = change(current, decision.get("reviewer"), decision.get("comment"))
        if decision:
            _append_decision(conn, schema, version, {**decision, "action": action, "event_id": event_id, "run_id": run_id})
    if decision:
        _write_manifest_file(conn, schema, version)
    return current


def rollback(
    conn: psycopg.Connection,
    schema: str,
    reason: str,
    to_version: int | None = None,
    run_id: str | None = None,
    actor: str | None = None,
) -> tuple[int, int]:
    """Make a version that served before champion again (default: the previous champion); returns (from, to).

    The target's artifact is loaded and hash-checked first: a tampered or missing artifact refuses
    the rollback and the champion stays.
    """
    if not reason or not reason.strip():
        raise RegistryError("a rollback needs a reason (it is recorded in promotion_events)")
    with conn.transaction():
        _lock_registry(conn, schema)
        current = champion_version(conn, schema)
        if current is None:
            raise RegistryError(f"no champion in schema {schema!r}: nothing to roll back")
        target = to_version if to_version is not None else previous_version(conn, schema)
        if target is None:
            raise RegistryError("there is no previous champion to roll back to; pass --to VERSION")
        if target == current:
            raise RegistryError(f"model version {target} is already the champion")
        _status(conn, schema, target)
        served = conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {} WHERE to_version = %s AND action IN ('promote', 'rollback')"
            ).format(table(schema, "promotion_events")),
            (target,),
        ).fetchone()[0]
        if not served:
            raise RegistryError(
                f"model version {target} has never been champion; rollback only returns to a version that served. "
                "Validate it with retrain_model instead."
            )
        load_model(conn, schema, target)  # raises ModelLoadError; the transaction rolls back untouched
        _set_champion(conn, schema, current, target, "rollback", reason, run_id, actor)
    return current, target


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


def promotion_history(conn: psycopg.Connection, schema: str) -> list[dict]:
    """Every promote / reject / rollback, oldest first."""
    cursor = conn.execute(
        sql.SQL(
            "SELECT event_id, created_at, action, from_version, to_version, reason, run_id, actor, reviewer, review_comment "
            "FROM {} ORDER BY created_at, event_id"
        ).format(table(schema, "promotion_events"))
    )
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def list_versions(conn: psycopg.Connection, schema: str) -> list[dict]:
    """Registered versions with status, metrics and aliases, oldest first."""
    cursor = conn.execute(
        sql.SQL(
            "SELECT v.version, v.created_at, v.status, v.sha256, v.metrics, v.pruned_at, "
            "coalesce(array_agg(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL), '{{}}') AS aliases "
            "FROM {} v LEFT JOIN {} a ON a.version = v.version GROUP BY v.version ORDER BY v.version"
        ).format(table(schema, "model_versions"), table(schema, "model_aliases"))
    )
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def prune_versions(conn: psycopg.Connection, schema: str, keep: int) -> list[int]:
    """Remove the artifacts of versions older than the newest `keep`; never the champion or previous.

    The registry row stays (marked pruned_at) so history and stored predictions still name it.
    """
    if keep < 2:
        raise RegistryError(f"keep must be at least 2 (champion and previous), got {keep}")
    versions = table(schema, "model_versions")
    with conn.transaction():
        _lock_registry(conn, schema)
        protected = {champion_version(conn, schema), previous_version(conn, schema)}
        rows = conn.execute(
            sql.SQL("SELECT version, artifact_uri FROM {} WHERE pruned_at IS NULL ORDER BY version DESC").format(versions)
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
