"""Champion decisions: promote, reject, rollback, each a compare-and-swap under the registry lock
that appends an event (and the decision to the version's manifest), never overwrites one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from driftline.db import table
from driftline.registry.versions import (
    RegistryError,
    champion_version,
    insert_event,
    load_model,
    lock_registry,
    previous_version,
    set_champion,
    version_status,
    write_manifest_file,
)


class RollbackConflict(RegistryError):
    """A rollback found another champion than the one it expected to replace; nothing changed."""


# A promotion validated against "no champion" expects None: this marks "not checked" instead.
UNCHECKED: Any = object()


@dataclass(frozen=True)
class Outcome:
    """What a promote / reject / rollback did: the action recorded, the champion before and after."""

    action: str
    from_version: int | None
    champion: int | None
    event_id: int | None
    reason: str


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
            return (
                "reject",
                _mark_rejected(conn, schema, current, version, why, run_id, actor, reviewer, comment, evaluation_id),
                why,
            )
        if version_status(conn, schema, version)[1] is not None:  # pruned_at
            raise RegistryError(f"model version {version} was removed by retention; it cannot be promoted")
        if current == version:
            raise RegistryError(f"model version {version} is already the champion")
        event = set_champion(
            conn, schema, current, version, "promote", reason, run_id, actor, reviewer, comment, evaluation_id
        )
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
        return (
            "reject",
            _mark_rejected(conn, schema, current, version, reason, run_id, actor, reviewer, comment, evaluation_id),
            reason,
        )

    return _decide(conn, schema, version, run_id, decision, mark_rejected)


def _name(version: int | None) -> str:
    return "no champion" if version is None else f"v{version}"


def _mark_rejected(
    conn, schema: str, current, version: int, reason: str, run_id, actor, reviewer, comment, evaluation_id
) -> int:
    version_status(conn, schema, version)
    conn.execute(
        sql.SQL("UPDATE {} SET status = 'rejected' WHERE version = %s").format(table(schema, "model_versions")),
        (version,),
    )
    return insert_event(
        conn, schema, current, version, "reject", reason, run_id, actor, reviewer, comment, evaluation_id
    )


def _decide(conn, schema: str, version: int, run_id: str | None, decision: dict | None, change) -> Outcome:
    """One promote/reject transaction under the registry lock: change(current champion, reviewer,
    comment) applies it and returns (action, event id, reason); the decision (when given) is appended
    to the version's manifest in the same transaction and written to manifest.json after commit."""
    decision = decision or {}
    with conn.transaction():
        lock_registry(conn, schema)
        current = champion_version(conn, schema)
        action, event_id, reason = change(current, decision.get("reviewer"), decision.get("comment"))
        if decision:
            record = {**decision, "action": action, "event_id": event_id, "run_id": run_id}
            if reason != decision.get("reason"):
                record["reason"] = reason
            _append_decision(conn, schema, version, record)
        now = champion_version(conn, schema)
    if decision:
        write_manifest_file(conn, schema, version)
    return Outcome(action, current, now, event_id, reason)


def _append_decision(conn, schema: str, version: int, decision: dict) -> None:
    """Inside the caller's transaction: add a decision (who, why, when) to the version's manifest."""
    conn.execute(
        sql.SQL(
            "UPDATE {} SET manifest = jsonb_set(manifest, '{{decisions}}', "
            "coalesce(manifest->'decisions', '[]'::jsonb) || jsonb_build_array(%s::jsonb)) WHERE version = %s"
        ).format(table(schema, "model_versions")),
        (Jsonb(decision), version),
    )


def rollback(
    conn: psycopg.Connection,
    schema: str,
    reason: str,
    to_version: int | None = None,
    run_id: str | None = None,
    actor: str | None = None,
    expected_champion: int | None = UNCHECKED,
    pinned_pickles: tuple[str, ...] | None = None,
) -> Outcome:
    """Make a version that served before champion again (default: the previous champion).

    expected_champion: the champion this rollback means to replace, checked under the registry lock;
    when another change committed first, nothing changes and RollbackConflict says so. Rolling back
    to "previous" also refuses to undo a rollback (the champion came back from exactly that version):
    a second rollback racing the first is a no-op, never a flip back. The target's artifact is loaded
    and hash-checked first: a tampered or missing artifact refuses the rollback and the champion stays.
    pinned_pickles: the dataset config's [handoff] pickle_sha256; a pinned-pickle target loads only while pinned.
    """
    if not reason or not reason.strip():
        raise RegistryError("a rollback needs a reason (it is recorded in promotion_events)")
    events = table(schema, "promotion_events")
    with conn.transaction():
        lock_registry(conn, schema)
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
        version_status(conn, schema, target)
        served = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE to_version = %s AND action IN ('promote', 'rollback')").format(
                events
            ),
            (target,),
        ).fetchone()[0]
        if not served:
            raise RegistryError(
                f"model version {target} has never been champion; rollback only returns to a version that served. "
                "Validate it with retrain_model instead."
            )
        load_model(
            conn, schema, target, pinned_pickles=pinned_pickles
        )  # raises ModelLoadError; the transaction rolls back untouched
        event_id = set_champion(conn, schema, current, target, "rollback", reason, run_id, actor)
    return Outcome("rollback", current, target, event_id, reason)


def promotion_history(conn: psycopg.Connection, schema: str) -> list[dict]:
    """Every promote / reject / rollback, oldest first."""
    cursor = conn.execute(
        sql.SQL(
            "SELECT event_id, created_at, action, from_version, to_version, reason, run_id, actor, reviewer, review_comment "
            "FROM {} ORDER BY created_at, event_id"
        ).format(table(schema, "promotion_events"))
    )
    names = [column.name for column in cursor.description or ()]  # a SELECT always has one
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def shared_holdout_at_promotion(conn, schema: str) -> dict[int, dict]:
    """{version: the evaluation its latest promotion was decided on (shared holdout metrics and bounds)}."""
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT ON (e.to_version) e.to_version, m.evaluation_id, m.holdout_start, m.holdout_end, "
            "m.holdout_rows, m.result FROM {} e JOIN {} m ON m.evaluation_id = e.evaluation_id "
            "WHERE e.action = 'promote' ORDER BY e.to_version, e.event_id DESC"
        ).format(table(schema, "promotion_events"), table(schema, "model_evaluations"))
    ).fetchall()
    return {
        version: {
            "evaluation_id": evaluation_id,
            "start": start,
            "end": end,
            "rows": count,
            "metrics": (result.get("candidate") or {}).get("metrics", {}),
            "champion_version": result.get("champion_version"),
            "champion_metrics": (result.get("champion") or {}).get("metrics", {}),
        }
        for version, evaluation_id, start, end, count, result in rows
    }
