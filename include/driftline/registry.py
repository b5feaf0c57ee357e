"""Model registry: LightGBM text artifacts + JSON manifest on disk, versions and aliases in Postgres.

A version is only loaded after two hashes match the registry row: the sha256 of the model text, and
the scoring hash over every manifest field scoring depends on (feature order, categories, score
reference, task), so a tampered artifact and a tampered manifest are refused alike.

Every alias change is a compare-and-swap under the registry lock: a promotion names the champion it
was validated against and a rollback the champion it replaces; when the champion moved meanwhile,
the promotion is recorded as a reject and the rollback changes nothing (RollbackConflict).

Artifacts are written to a hidden staging folder and renamed into place only after their row
commits; a staging folder left by a crash is removed (or finished) by the next registration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
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

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS = "previous"
MODEL_FILE = "model.txt"
MANIFEST_FILE = "manifest.json"


class ModelLoadError(BadModel):
    """A model version cannot be used (unknown, missing, or its hash does not match)."""


class RegistryError(BadInput):
    """A registry change that is not allowed (unknown version, nothing to roll back to, ...)."""


class RollbackConflict(RegistryError):
    """A rollback found another champion than the one it expected to replace; nothing changed."""


# A promotion validated against "no champion" expects None: this marks "not checked" instead.
UNCHECKED: Any = object()

# The manifest fields scoring reads (with the model text's sha256): covered by scoring_sha256.
SCORING_FIELDS = ("task", "features", "categories", "score_reference", "sha256")
# Covered when present (versions registered before they existed keep their hash): the estimated
# performance reads the calibration map.
OPTIONAL_SCORING_FIELDS = ("calibration",)
STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class Outcome:
    """What a promote / reject / rollback did: the action recorded, the champion before and after."""

    action: str
    from_version: int | None
    champion: int | None
    event_id: int | None
    reason: str


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


def scoring_digest(manifest: dict) -> str:
    """sha256 of a canonical JSON of the manifest fields scoring depends on (SCORING_FIELDS).

    List order counts (feature order, category codes); key order and whitespace do not.
    """
    relevant = {name: manifest.get(name) for name in SCORING_FIELDS}
    relevant.update({name: manifest[name] for name in OPTIONAL_SCORING_FIELDS if name in manifest})
    return sha256_bytes(json.dumps(relevant, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def write_artifact(directory: Path, model_text: str, manifest: dict) -> tuple[Path, dict]:
    """Write model.txt and manifest.json (with the model's sha256 and the scoring hash) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    data = model_text.encode("utf-8")
    digest = sha256_bytes(data)
    (directory / MODEL_FILE).write_bytes(data)
    manifest = {**manifest, "artifact": MODEL_FILE, "sha256": digest}
    manifest["scoring_sha256"] = scoring_digest(manifest)
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
        version, created, staged = _insert_version(conn, schema, registry_dir, model_text, manifest)
        current = champion_version(conn, schema)
        if created or current is None:
            _set_champion(conn, schema, current, version, "promote", reason, run_id)
    _publish_staged(staged)
    return version, created


def register_candidate(
    conn: psycopg.Connection, schema: str, registry_dir: Path, model_text: str, manifest: dict
) -> tuple[int, bool]:
    """Register a model without touching the aliases; returns (version, created).

    An artifact already registered (same sha256) keeps its version and status: retraining on the
    same data with the same seed does not add a copy.
    """
    with conn.transaction():
        version, created, staged = _insert_version(conn, schema, registry_dir, model_text, manifest)
    _publish_staged(staged)
    return version, created


def _insert_version(
    conn, schema: str, registry_dir: Path, model_text: str, manifest: dict
) -> tuple[int, bool, tuple[Path, Path] | None]:
    """Inside the caller's transaction: find the artifact by sha256, or write it to a staging folder
    and insert it as a candidate. Returns (version, created, (staging, final) folders or None); the
    caller renames staging to final after commit (_publish_staged), so a crash before the commit
    leaves no folder that claims the version number."""
    digest = sha256_bytes(model_text.encode("utf-8"))
    _lock_registry(conn, schema)  # two trainers cannot take the same version number
    versions = table(schema, "model_versions")
    _sweep_staging(conn, schema, registry_dir)
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
        (version, (final.resolve() / MODEL_FILE).as_uri(), digest, manifest["scoring_sha256"], Jsonb(manifest),
         Jsonb(manifest.get("metrics", {}))),
    )
    return version, True, (staging, final)


def _publish_staged(staged: tuple[Path, Path] | None) -> None:
    """After commit: move a staged artifact folder to the path its row names (atomic rename)."""
    if staged is None:
        return
    staging, final = staged
    try:
        os.rename(staging, final)
    except FileNotFoundError:
        pass  # the next registration's sweep finished the move first


def _sweep_staging(conn, schema: str, registry_dir: Path) -> None:
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
            sql.SQL("SELECT 1 FROM {} WHERE version = %s AND left(sha256, 12) = %s").format(table(schema, "model_versions")),
            (version, prefix),
        ).fetchone()
        if committed and not (registry_dir / name).exists():
            _publish_staged((staging, registry_dir / name))
        else:
            shutil.rmtree(staging, ignore_errors=True)
            log.warning("removed %s: an artifact whose registration never committed", staging.name)


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
    return _insert_event(conn, schema, current, version, action, reason, run_id, actor, reviewer, review_comment, evaluation_id)


def _insert_event(
    conn, schema: str, current, version: int, action: str, reason: str, run_id, actor, reviewer, review_comment,
    evaluation_id: int | None = None,
) -> int:
    return conn.execute(
        sql.SQL(
            "INSERT INTO {} (from_version, to_version, action, reason, run_id, actor, reviewer, review_comment, "
            "evaluation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING event_id"
        ).format(table(schema, "promotion_events")),
        (current, version, action, reason, run_id, actor, reviewer, review_comment, evaluation_id),
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
    # Registered before the scoring hash existed: the registry row's own manifest is the reference.
    expected_scoring = expected_scoring or scoring_digest(registered_manifest)
    actual_scoring = scoring_digest(manifest)
    if actual_scoring != expected_scoring:
        raise ModelLoadError(
            f"model version {version}: scoring hash mismatch for {path.parent / MANIFEST_FILE} (registry "
            f"{expected_scoring[:12]}, manifest {actual_scoring[:12]}): the fields scoring depends on "
            f"({', '.join(SCORING_FIELDS + OPTIONAL_SCORING_FIELDS)}) were changed; refusing to load a tampered manifest"
        )
    booster = _booster(data, scoring_only, f"model version {version}: LightGBM cannot read {path}")
    return LoadedModel(version=version, booster=booster, manifest=manifest, sha256=actual, text=data)


def _booster(text: bytes, scoring_only: bool, refused: str):
    if scoring_only:
        from driftline.scoring.native_booster import NativeBooster, NativeBoosterError

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
    expected_champion: int | None = UNCHECKED,
    evaluation_id: int | None = None,
) -> Outcome:
    """Make a registered version champion (the old one becomes previous) in one transaction.

    expected_champion: the champion the candidate was validated against. Checked under the registry
    lock in the same transaction: if another version is champion by then, the candidate is recorded
    as rejected ("champion changed from vX to vY during validation") and the aliases do not move.
    decision (who decided, their comment, ...) goes into the event's reviewer/review_comment and is
    appended to the version's manifest, in the same transaction.
    """

    def make_champion(current: int | None, reviewer: str | None, comment: str | None) -> tuple[str, int, str]:
        if expected_champion is not UNCHECKED and current != expected_champion:
            why = (
                f"champion changed from {_name(expected_champion)} to {_name(current)} during validation: candidate "
                f"v{version} was compared with {_name(expected_champion)}, not with the champion now; rerun "
                f"retrain_model to compare it with {_name(current)} ({reason})"
            )
            return "reject", _mark_rejected(conn, schema, current, version, why, run_id, actor, reviewer, comment, evaluation_id), why
        if _status(conn, schema, version)[1] is not None:  # pruned_at
            raise RegistryError(f"model version {version} was removed by retention; it cannot be promoted")
        if current == version:
            raise RegistryError(f"model version {version} is already the champion")
        event = _set_champion(conn, schema, current, version, "promote", reason, run_id, actor, reviewer, comment, evaluation_id)
        return "promote", event, reason

    return _decide(conn, schema, version, run_id, decision, make_champion)


def reject(
    conn: psycopg.Connection,
    schema: str,
    version: int,
    reason: str,
    run_id: str | None = None,
    actor: str | None = None,
    decision: dict | None = None,
    evaluation_id: int | None = None,
) -> Outcome:
    """Record a candidate as rejected, with the reasons (and who decided); the aliases do not move."""

    def mark_rejected(current: int | None, reviewer: str | None, comment: str | None) -> tuple[str, int, str]:
        if current == version:
            raise RegistryError(f"model version {version} is the champion; roll back instead of rejecting it")
        return "reject", _mark_rejected(conn, schema, current, version, reason, run_id, actor, reviewer, comment, evaluation_id), reason

    return _decide(conn, schema, version, run_id, decision, mark_rejected)


def _name(version: int | None) -> str:
    return "no champion" if version is None else f"v{version}"


def _mark_rejected(conn, schema: str, current, version: int, reason: str, run_id, actor, reviewer, comment, evaluation_id) -> int:
    _status(conn, schema, version)
    conn.execute(
        sql.SQL("UPDATE {} SET status = 'rejected' WHERE version = %s").format(table(schema, "model_versions")),
        (version,),
    )
    return _insert_event(conn, schema, current, version, "reject", reason, run_id, actor, reviewer, comment, evaluation_id)


def _decide(conn, schema: str, version: int, run_id: str | None, decision: dict | None, change) -> Outcome:
    """One promote/reject transaction under the registry lock: change(current champion, reviewer,
    comment) applies it and returns (action, event id, reason); the decision (when given) is appended
    to the version's manifest in the same transaction and written to manifest.json after commit."""
    decision = decision or {}
    with conn.transaction():
        _lock_registry(conn, schema)
        current = champion_version(conn, schema)
        action, event_id, reason = change(current, decision.get("reviewer"), decision.get("comment"))
        if decision:
            record = {**decision, "action": action, "event_id": event_id, "run_id": run_id}
            if reason != decision.get("reason"):
                record["reason"] = reason
            _append_decision(conn, schema, version, record)
        now = champion_version(conn, schema)
    if decision:
        _write_manifest_file(conn, schema, version)
    return Outcome(action, current, now, event_id, reason)


def rollback(
    conn: psycopg.Connection,
    schema: str,
    reason: str,
    to_version: int | None = None,
    run_id: str | None = None,
    actor: str | None = None,
    expected_champion: int | None = UNCHECKED,
) -> Outcome:
    """Make a version that served before champion again (default: the previous champion).

    expected_champion: the champion this rollback means to replace, checked under the registry lock;
    when another change committed first, nothing changes and RollbackConflict says so. Rolling back
    to "previous" also refuses to undo a rollback (the champion came back from exactly that version):
    a second rollback racing the first is a no-op, never a flip back. The target's artifact is loaded
    and hash-checked first: a tampered or missing artifact refuses the rollback and the champion stays.
    """
    if not reason or not reason.strip():
        raise RegistryError("a rollback needs a reason (it is recorded in promotion_events)")
    events = table(schema, "promotion_events")
    with conn.transaction():
        _lock_registry(conn, schema)
        current = champion_version(conn, schema)
        if current is None:
            raise RegistryError(f"no champion in schema {schema!r}: nothing to roll back")
        if expected_champion is not UNCHECKED and current != expected_champion:
            raise RollbackConflict(
                f"rollback not applied: the champion is {_name(current)}, not {_name(expected_champion)} as this "
                "rollback expected (another rollback or promotion committed first); nothing changed. "
                "Check `driftline models`, then roll back again if it is still needed"
            )
        target = to_version if to_version is not None else previous_version(conn, schema)
        if target is None:
            raise RegistryError("there is no previous champion to roll back to; pass --to VERSION")
        if target == current:
            raise RegistryError(f"model version {target} is already the champion")
        if to_version is None:
            last = conn.execute(
                sql.SQL(
                    "SELECT event_id, action, from_version, created_at FROM {} WHERE action IN ('promote', 'rollback') "
                    "ORDER BY event_id DESC LIMIT 1"
                ).format(events)
            ).fetchone()
            if last is not None and last[1] == "rollback" and last[2] == target:
                raise RollbackConflict(
                    f"rollback not applied: champion v{current} is itself a rollback from v{target} (event {last[0]}, "
                    f"{last[3]:%Y-%m-%d %H:%M:%S} UTC); rolling back to 'previous' would undo it. Pass --to {target} "
                    "to return to it deliberately; nothing changed"
                )
        _status(conn, schema, target)
        served = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE to_version = %s AND action IN ('promote', 'rollback')").format(events),
            (target,),
        ).fetchone()[0]
        if not served:
            raise RegistryError(
                f"model version {target} has never been champion; rollback only returns to a version that served. "
                "Validate it with retrain_model instead."
            )
        load_model(conn, schema, target)  # raises ModelLoadError; the transaction rolls back untouched
        event_id = _set_champion(conn, schema, current, target, "rollback", reason, run_id, actor)
    return Outcome("rollback", current, target, event_id, reason)


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
