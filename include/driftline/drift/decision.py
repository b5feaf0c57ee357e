"""monitor_drift's decide step: apply [drift.trigger] to a monitored interval against the retrain
DAG's state, append the decision to drift_decisions, and alert on a breach or a waiting retrain."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from psycopg import sql
from psycopg.types.json import Jsonb

from driftline import db
from driftline.alerts import raise_alert
from driftline.config import load_config
from driftline.drift.errors import DriftError
from driftline.drift.performance import recent_breaches
from driftline.drift.policy import RetrainState, decide
from driftline.drift.summary import refresh_report_summary
from driftline.intervals import utc

__all__ = ["RetrainState", "decide_retrain", "last_retrain"]

log = logging.getLogger(__name__)


def decide_retrain(
    config_path: str,
    interval_start: datetime,
    interval_end: datetime,
    run_id: str,
    retrain: RetrainState,
    now: datetime | None = None,
) -> dict:
    """Apply [drift.trigger] to the monitored interval, store the decision, return it.

    retrain: the retrain DAG's state (deployed, paused, runs running and queued). A run waiting on a
    paused or stuck retrain DAG is said in the reason and alerted. The result carries what the retrain
    trigger needs: decision_id, breach, trigger, reason, retrain_run_id, interval, report_path,
    drifted_share, prediction_drift, drifted_features, model_version.
    """
    config = load_config(config_path)
    policy = config.drift.trigger
    start, end = utc(interval_start), utc(interval_end)
    now = now or datetime.now(timezone.utc)
    schema = config.db_schema
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        current = conn.execute(
            sql.SQL(
                "SELECT model_version, drifted_share, prediction_drift, breach, counted_features, features, report_path "
                "FROM {} WHERE interval_start = %s AND interval_end = %s"
            ).format(db.table(schema, "drift_intervals")),
            (start, end),
        ).fetchone()
        if current is None:
            raise DriftError(
                f"interval [{start.isoformat()}, {end.isoformat()}) has not been monitored; run monitor_interval first"
            )
        version, share, prediction, breach, counted, features, report = current
        # A breach is drift or an estimated-metric breach ([drift.trigger] estimated_metric_*), per interval.
        history = recent_breaches(conn, schema, policy, end)
        recent = [drifted or why is not None for drifted, why, _ in history]
        estimated_why, estimate = (history[0][1], history[0][2]) if history else (None, None)
        breach = breach or estimated_why is not None
        drifted = [
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
            "drifted_features": drifted,
            "model_version": version,
            "estimated_metric": policy.estimated_metric,
            "estimated": estimate,
            "estimated_breach": estimated_why,
        }
        decision = decide(
            policy, breach, recent, last_retrain(conn, schema), now, retrain, numbers, _last_trigger(conn, schema)
        )
        retrain_run_id = f"drift__{end.isoformat()}" if decision.trigger else None
        decision_id = conn.execute(
            sql.SQL(
                "INSERT INTO {} (interval_start, interval_end, run_id, breach, trigger, reason, numbers, retrain_run_id, "
                "decided_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING decision_id"
            ).format(db.table(schema, "drift_decisions")),
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
    if decision.breach:
        raise_alert(
            config,
            "drift_breach",
            "warning",
            f"drift breach (decision {decision_id}): {decision.reason}; report {Path(report).name}",
            {**decision.numbers, "trigger": decision.trigger, "decision_id": decision_id},
            run_id=run_id,
            interval_start=start,
            interval_end=end,
        )
    if decision.numbers.get("retrain_waiting"):
        raise_alert(
            config,
            "retrain_waiting",
            "warning",
            f"{decision.numbers['retrain_waiting']} (decision {decision_id})",
            {k: decision.numbers[k] for k in ("queued_retrain_runs", "retrain_paused", "active_retrain_runs")},
            run_id=run_id,
            interval_start=start,
            interval_end=end,
        )
    return {
        "decision_id": decision_id,
        "breach": decision.breach,
        "trigger": decision.trigger,
        "reason": decision.reason,
        "retrain_run_id": retrain_run_id,
        "interval": {"start": start.isoformat(), "end": end.isoformat()},
        "report_path": report,
        **{k: decision.numbers[k] for k in ("drifted_share", "prediction_drift", "drifted_features", "model_version")},
    }


def _last_trigger(conn, schema: str) -> tuple[datetime, str] | None:
    """When our newest retrain trigger was decided, and the retrain run id it asked for."""
    row = conn.execute(
        sql.SQL(
            "SELECT decided_at, retrain_run_id FROM {} WHERE trigger ORDER BY decided_at DESC, decision_id DESC LIMIT 1"
        ).format(db.table(schema, "drift_decisions")),
    ).fetchone()
    return (row[0], row[1]) if row else None


def last_retrain(conn, schema: str) -> datetime | None:
    """When a retrain last started or changed the champion: the later of our last trigger and the last
    promotion from an earlier champion (the first registration is not a retrain)."""
    row = conn.execute(
        sql.SQL(
            "SELECT greatest((SELECT max(decided_at) FROM {d} WHERE trigger), "
            "(SELECT max(created_at) FROM {p} WHERE action = 'promote' AND from_version IS NOT NULL))"
        ).format(d=db.table(schema, "drift_decisions"), p=db.table(schema, "promotion_events")),
    ).fetchone()
    return row[0]
