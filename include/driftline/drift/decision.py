"""monitor_drift's decide step: apply [drift.trigger] to a monitored interval against the retrain
DAG's state, append the decision to drift_decisions, and alert on a breach or a waiting retrain."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db
from driftline.alerts import raise_alert
from driftline.config import load_config
from driftline.drift.errors import DriftError
from driftline.drift.order import Interval, plan
from driftline.drift.performance import monitored_breaches
from driftline.drift.policy import Decision, RetrainState, already_triggered, decide
from driftline.drift.summary import refresh_report_summary
from driftline.intervals import utc

__all__ = ["RetrainState", "decide_retrain"]

log = logging.getLogger(__name__)


def decide_retrain(
    config_path: str,
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    retrain: RetrainState,
    now: datetime | None = None,
    retrains: bool = True,
    *,
    retrain_run_id: Callable[[datetime], str],
) -> dict:
    """Apply [drift.trigger] to the monitored interval in data order, store the decision, return it.

    The policy runs over the intervals in data order (drift.order.plan), so the order monitor_drift
    runs in changes no trigger: the other monitored intervals whose data-order decision is now a
    trigger not recorded yet are decided again (a new decision row each; decisions are appended,
    never overwritten): later ones a newly monitored interval released, and earlier or later ones
    held while the retrain DAG could not take a run. Those that now trigger are listed in `retrains`
    (trigger run id and conf), once per interval. retrain: the retrain DAG's state (deployed, paused,
    runs running and queued); while it cannot take a run a trigger is held (said and alerted), never
    refused, so which intervals trigger depends on the data only. A held interval decided again with
    the same outcome adds no row; one whose trigger is already recorded keeps it (the trigger stands:
    the same run id, not listed in `retrains`, nothing new started). retrains=False (`driftline monitor --no-retrain`): a trigger is
    recorded but starts no retrain, so no cooldown counts from it. The result carries decision_id,
    breach, trigger, reason, retrain_run_id, interval, report_path, drifted_share, prediction_drift,
    drifted_features, model_version and retrains. retrain_run_id(interval end): the id of the retrain
    run a trigger for that interval asks for (the orchestrator names its runs). now: stored as
    decided_at, never read by a rule.
    """
    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    now = now or datetime.now(timezone.utc)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        breaches = monitored_breaches(conn, config.db_schema, config.drift.trigger)
        if end not in breaches:
            raise DriftError(
                f"interval [{start.isoformat()}, {end.isoformat()}) has not been monitored; run monitor_interval first"
            )
        planned = plan(
            config.drift.trigger,
            [
                Interval(e, None if e not in breaches else breaches[e][0] or breaches[e][1] is not None)
                for e in _known_ends(conn, config.db_schema) | set(breaches)
            ],
            _retrained(conn, config.db_schema),
            anchor=retrains,
            recorded=(triggered := _triggered(conn, config.db_schema)),
        )
        latest = _latest_reasons(conn, config.db_schema)
        # This interval, then each other one now a trigger not recorded yet: released, or held by the retrain DAG.
        again = [p for other, p in sorted(planned.items()) if other != end and p.trigger and other not in triggered]
        decided = []
        for p, unchanged in [(planned[end], None), *((p, latest.get(p.end)) for p in again)]:
            facts = _interval_facts(conn, config, p, breaches[p.end])
            if p.trigger and p.end in triggered:  # monitored again (republished): its trigger stands, once
                decision = already_triggered(config.drift.trigger, facts.breach, facts.numbers)
                decided.append(_record(conn, config, run_id, now, facts, decision, retrains, retrain_run_id))
                continue
            # The rule: breach and trigger of this interval from its data-order window (drift.policy).
            decision = decide(
                config.drift.trigger,
                facts.breach,
                list(p.window),
                p.last_retrain,
                now,
                retrain,
                facts.numbers,
                _last_trigger(conn, config.db_schema),
                at=p.end,
                waiting_for=p.waiting_for,
                next_retrain_at=p.next_retrain,
            )
            if not decision.trigger and unchanged is not None and decision.reason == unchanged:
                continue  # a held interval decided again with the same outcome adds no row
            decided.append(_record(conn, config, run_id, now, facts, decision, retrains, retrain_run_id))
    for one in decided:
        _alert(config, run_id, one)
    first = decided[0]
    # A trigger that stands (recorded before) starts nothing new: its run was asked for when it was recorded.
    started = [d for d in decided if d["trigger"] and d["retrain_run_id"] and not d.get("trigger_stands")]
    return {**first, "retrains": started}


@dataclass(frozen=True)
class _Facts:
    """What the policy is applied to for one monitored interval (read from drift_intervals)."""

    start: datetime
    end: datetime
    breach: bool  # the drift breach (policy.is_breach at monitor time) or an estimated-performance breach
    numbers: dict
    report_path: str


def _interval_facts(conn, config, planned, breach: tuple) -> _Facts:
    """The monitored interval's numbers the decision is taken on and recorded with."""
    policy, schema = config.drift.trigger, config.db_schema
    # The interval starting first speaks for its end, as in monitored_breaches.
    current = conn.execute(
        sql.SQL(
            "SELECT interval_start, model_version, drifted_share, prediction_drift, breach, counted_features, "
            "features, report_path FROM {} WHERE interval_end = %s ORDER BY interval_start LIMIT 1"
        ).format(db.table(schema, "drift_intervals")),
        (planned.end,),
    ).fetchone()
    start, end = utc(current[0]), planned.end
    version, share, prediction, drift_breach, counted, features, report = current[1:]
    drifted, estimated_why, estimate = breach
    drifted_features = [
        name
        for (name,) in conn.execute(
            sql.SQL(
                "SELECT column_name FROM {} WHERE interval_start = %s AND interval_end = %s AND counted "
                "ORDER BY column_name"
            ).format(db.table(schema, "drift_features")),
            (start, end),
        ).fetchall()
    ]
    numbers = {
        "drifted_share": share,
        "prediction_drift": prediction,
        "counted_features": counted,
        "features": features,
        "drifted_features": drifted_features,
        "model_version": version,
        "estimated_metric": policy.estimated_metric,
        "estimated": estimate,
        "estimated_breach": estimated_why,
    }
    return _Facts(start, end, bool(drift_breach or estimated_why is not None), numbers, report)


def _record(
    conn, config, run_id: str, now: datetime, facts: _Facts, decision: Decision, retrains: bool, name_run
) -> dict:
    """Append the decision to drift_decisions and refresh the interval's report summary. A trigger
    under `--no-retrain` (retrains=False) is marked `"retrain_started": false` in its numbers."""
    start, end = facts.start, facts.end
    retrain_run_id = name_run(end) if decision.trigger else None
    if decision.trigger:
        decision.numbers["retrain_started"] = retrains
    decision_id = conn.execute(
        sql.SQL(
            "INSERT INTO {} (interval_start, interval_end, run_id, breach, trigger, reason, numbers, retrain_run_id, "
            "decided_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING decision_id"
        ).format(db.table(config.db_schema, "drift_decisions")),
        (
            start,
            end,
            run_id,
            decision.breach,
            decision.trigger,
            decision.reason,
            Jsonb(decision.numbers),
            retrain_run_id,
            now,
        ),
    ).fetchone()[0]
    refresh_report_summary(conn, config, start, end)  # the report now says what was decided
    log.info("drift decision %s for [%s, %s): %s", decision_id, start.isoformat(), end.isoformat(), decision.reason)
    return {
        "decision_id": decision_id,
        "breach": decision.breach,
        "trigger": decision.trigger,
        "reason": decision.reason,
        "retrain_run_id": retrain_run_id,
        "interval": {"start": start.isoformat(), "end": end.isoformat()},
        "report_path": facts.report_path,
        "numbers": decision.numbers,
        "trigger_stands": bool(decision.numbers.get("trigger_stands")),
        **{k: decision.numbers[k] for k in ("drifted_share", "prediction_drift", "drifted_features", "model_version")},
    }


def _alert(config, run_id: str, decision: dict) -> None:
    """A breach alert, and a retrain_waiting alert when a retrain run waits on its DAG."""
    numbers, decision_id = decision.pop("numbers"), decision["decision_id"]
    start, end = (utc(decision["interval"][k]) for k in ("start", "end"))
    if decision["breach"]:
        raise_alert(
            config,
            "drift_breach",
            "warning",
            f"drift breach (decision {decision_id}): {decision['reason']}; report {Path(decision['report_path']).name}",
            {**numbers, "trigger": decision["trigger"], "decision_id": decision_id},
            run_id=run_id,
            interval_start=start,
            interval_end=end,
        )
    if numbers.get("retrain_waiting"):
        raise_alert(
            config,
            "retrain_waiting",
            "warning",
            f"{numbers['retrain_waiting']} (decision {decision_id})",
            {k: numbers[k] for k in ("queued_retrain_runs", "retrain_paused", "active_retrain_runs")},
            run_id=run_id,
            interval_start=start,
            interval_end=end,
        )


def _known_ends(conn, schema: str) -> set[datetime]:
    """Ends of the intervals score_batch has started on (monitored or not yet), less those it gave up
    on: never published and whose newest attempt failed. Such an interval would hold later triggers
    until someone reran it; once a rerun publishes it, it is monitored and decided like a late one."""
    rows = conn.execute(
        sql.SQL(
            "SELECT i.interval_end FROM {i} i WHERE i.current_run_key IS NOT NULL OR coalesce("
            "(SELECT r.status FROM {r} r WHERE r.interval_id = i.interval_id ORDER BY r.run_key DESC LIMIT 1), "
            "'running') <> 'failed'"
        ).format(i=db.table(schema, "scored_intervals"), r=db.table(schema, "scoring_runs"))
    )
    return {utc(end) for (end,) in rows.fetchall()}


def _latest_reasons(conn, schema: str) -> dict[datetime, str]:
    """The reason of each interval's newest decision, by interval end."""
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT ON (interval_end) interval_end, reason FROM {} ORDER BY interval_end, decision_id DESC"
        ).format(db.table(schema, "drift_decisions"))
    )
    return {utc(end): reason for end, reason in rows.fetchall()}


def _triggered(conn, schema: str) -> dict[datetime, bool]:
    """Ends of the intervals a decision already triggered (one trigger per interval), and whether one of
    those triggers started a retrain (not `driftline monitor --no-retrain`)."""
    rows = conn.execute(
        sql.SQL(
            "SELECT interval_end, bool_or(coalesce((numbers ->> 'retrain_started')::boolean, true)) FROM {} "
            "WHERE trigger GROUP BY interval_end"
        ).format(db.table(schema, "drift_decisions"))
    )
    return {utc(end): started for end, started in rows.fetchall()}


def _retrained(conn, schema: str) -> list[datetime]:
    """Data times of champion changes not started by a drift trigger: the promoted model's training end."""
    rows = conn.execute(
        sql.SQL(
            "SELECT (m.manifest -> 'training_window' ->> 'end')::timestamptz FROM {p} p "
            "JOIN {m} m ON m.version = p.to_version WHERE p.action = 'promote' AND p.from_version IS NOT NULL"
        ).format(p=db.table(schema, "promotion_events"), m=db.table(schema, "model_versions"))
    ).fetchall()
    return [utc(end) for (end,) in rows if end is not None]


def _last_trigger(conn, schema: str) -> tuple[datetime, str] | None:
    """When our newest retrain trigger was decided, and the retrain run id it asked for (named in the
    words of a hold; no rule reads the time)."""
    row = conn.execute(
        sql.SQL(
            "SELECT decided_at, retrain_run_id FROM {} WHERE trigger ORDER BY decided_at DESC, decision_id DESC LIMIT 1"
        ).format(db.table(schema, "drift_decisions")),
    ).fetchone()
    return (row[0], row[1]) if row else None
