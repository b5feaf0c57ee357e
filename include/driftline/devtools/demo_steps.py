"""The demo's monitor_drift and retrain_model steps through Airflow (dag.test), and the tables it
prints (drift decisions, estimated vs realized performance, versions and history); `driftline
models` prints the lifecycle tables too."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from psycopg import sql

from driftline import db, registry
from driftline.config import DatasetConfig, load_config
from driftline.intervals import utc
from driftline.registry import shared_holdout_at_promotion
from driftline.retraining.realized import realized_empty_reason
from driftline.retraining.windows import connect


def monitor_conf(config_path: str, start: datetime, end: datetime) -> dict:
    """The conf of a manual monitor_drift run for one interval."""
    return {"config": config_path, "interval_start": utc(start).isoformat(), "interval_end": utc(end).isoformat()}


def run_demo_monitoring(config_path: str, intervals: list[tuple[datetime, datetime]], dags_folder: Path) -> list[str]:
    """Run the dataset's monitor_drift (of dags_folder) through Airflow (dag.test) for each interval and
    print what it found.

    Returns the intervals whose run did not succeed.
    """
    from driftline.airflow.dag_defaults import dag_id
    from driftline.airflow.runs import drop_queued_runs
    from driftline.devtools.dag_runner import load_dataset_dag

    config = load_config(config_path)
    dag = load_dataset_dag(dags_folder, "monitor_drift", config.name)
    failed = []
    for start, end in intervals:
        # What the predictions Asset event would say under a scheduler: a manual run names its interval.
        run = dag.test(run_conf=monitor_conf(config_path, start, end))
        # No scheduler runs the retrain run its trigger queued (run_demo_lifecycle runs retrain_model
        # itself): drop it, or every later demo of this Airflow home would wait on it.
        drop_queued_runs(dag_id(config.name, "retrain_model"), _retrain_run_ids(config, run.run_id))
        state = str(getattr(run, "state", "unknown"))
        if "success" not in state:
            failed.append(f"{start:%Y-%m-%d}: {state}")
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT interval_start, current_rows, counted_features, features, drifted_share, prediction_drift, "
                "breach, trigger, reason, report_path, retrain_run_id, attribution_ndcg FROM {} WHERE interval_start = ANY(%s) "
                "ORDER BY interval_start"
            ).format(db.table(config.db_schema, "drift_summary")),
            ([start for start, _ in intervals],),
        ).fetchall()
        features = conn.execute(
            sql.SQL(
                "SELECT interval_start, string_agg(column_name, ', ' ORDER BY column_name) FROM {} "
                "WHERE counted AND interval_start = ANY(%s) GROUP BY 1"
            ).format(db.table(config.db_schema, "drift_features")),
            ([start for start, _ in intervals],),
        ).fetchall()
    drifted = dict(features)
    print(
        f"\n{'interval':<12}{'sampled':>9}{'drifted':>9}{'share':>7}{'pred_drift':>12}{'attr_ndcg':>11}  breach  decision"
    )
    for start, sampled, counted, total, share, prediction, breach, trigger, _, _, _, ndcg in rows:
        decision = "retrain" if trigger else "none"
        attribution = "-" if ndcg is None else f"{ndcg:.3f}"
        print(
            f"{start:%Y-%m-%d}  {sampled:>9}{f'{counted}/{total}':>9}{share:>7.2f}{prediction:>12.3f}{attribution:>11}  "
            f"{'yes' if breach else 'no':<6}  {decision}"
        )
    print("\ndecisions:")
    for start, *_, reason, _, retrain_run, _ in rows:
        suffix = f"  -> {dag_id(config.name, 'retrain_model')} run {retrain_run}" if retrain_run else ""
        print(f"  {start:%Y-%m-%d}: {reason}{suffix}")
        if drifted.get(start):
            print(f"              drifted features: {drifted[start]}")
    if rows:
        print(
            "attr_ndcg: nDCG of the features' mean |TreeSHAP contribution| order vs the reference (< 0.9: attribution drift)"
        )
        print(f"\nreport:  {rows[-1][9]}  (open it in a browser)")
    print_estimates(config, intervals)
    return failed


def _retrain_run_ids(config: DatasetConfig, run_id: str) -> list[str]:
    """The retrain run ids monitor_drift's run run_id asked for."""
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT retrain_run_id FROM {} WHERE run_id = %s AND retrain_run_id IS NOT NULL").format(
                db.table(config.db_schema, "drift_decisions")
            ),
            (run_id,),
        ).fetchall()
    return [retrain_run_id for (retrain_run_id,) in rows]


def print_estimates(config: DatasetConfig, intervals: list[tuple[datetime, datetime]] | None = None) -> None:
    """The demo's table: estimated AUC and accuracy (with their bands) beside the realized values and
    the estimate's error, for the given intervals (None: every estimated one)."""
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    starts = None if intervals is None else [start for start, _ in intervals]
    with db.connect(url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT interval_start, metric, estimate, band_low, band_high, realized, realized_rows, within_band "
                "FROM {} WHERE metric IN ('auc', 'accuracy') AND (%s::timestamptz[] IS NULL OR interval_start = ANY(%s)) "
                "ORDER BY interval_start, metric DESC"
            ).format(db.table(config.db_schema, "estimated_vs_realized")),
            (starts, starts),
        ).fetchall()
    print("\nestimated performance (CBPE, no labels needed) vs realized once labels arrived:")
    print(
        f"{'interval':<12}{'metric':<10}{'estimate':>9}{'95% band':>17}{'realized':>10}{'error':>9}{'labelled':>10}  in band"
    )
    if not rows:
        print(f"  (empty) binary models registered with a calibration get an estimate (task {config.task!r})")
    missed = []
    for start, metric, estimate, low, high, realized, labelled, inside in rows:
        shown = "-" if realized is None else f"{realized:.4f}"
        error = "-" if realized is None else f"{estimate - realized:+.4f}"
        band = f"[{low:.4f}, {high:.4f}]"
        print(
            f"{start:%Y-%m-%d}  {metric:<10}{estimate:>9.4f}{band:>17}{shown:>10}{error:>9}{labelled or 0:>10}  "
            f"{'-' if inside is None else ('yes' if inside else 'NO')}"
        )
        if inside is False:
            missed.append(f"{start:%Y-%m-%d} {metric}")
    if missed:
        print(
            f"  realized outside the band: {', '.join(missed)}. The estimate assumes the champion's calibration still\n"
            "  holds: a miss by a hair is noise (about 1 in 20), one far outside says it no longer does, e.g. a concept\n"
            "  shift (same features, other labels), which no estimate without labels can see."
        )
    print(
        f"SELECT interval_start, metric, estimate, band_low, band_high, realized, error, within_band "
        f"FROM {config.db_schema}.estimated_vs_realized ORDER BY interval_start, metric;"
    )


def run_demo_lifecycle(config_path: str, plan, since: datetime | None = None) -> str:
    """The demo's retrain step: retrain_model through dag.test(), then versions, history and realized performance.

    retrain_model runs when a drift decision taken in this demo run (decided at or after `since`)
    triggered it, with monitor_drift's conf; or, to show the lifecycle once, when this registry has
    never evaluated a candidate (reason "demo"). Otherwise nothing triggered it and it does not run:
    a second `driftline demo` adds no version and no verdict. The demo's clock is simulated: the
    training window ends with the last interval and labels are read as observed three days later,
    when all of them have arrived.
    """
    from driftline.devtools.dag_runner import load_dataset_dag

    config = load_config(config_path)
    last_end = plan.interval_bounds()[-1][1]
    conf = {"config": config_path, "reason": "demo", "training_window_end": last_end.isoformat()}
    with connect(config) as conn:
        breach = _latest_drift_trigger(conn, config.db_schema, since)
        evaluated = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(db.table(config.db_schema, "model_evaluations"))
        ).fetchone()[0]
    if breach is None and evaluated:
        print(
            "retrain_model: not run: no drift decision of this run triggered a retrain, and this registry already "
            f"holds {evaluated} evaluation(s). Retrain by hand with `driftline retrain --config {config_path}`."
        )
        state = "success (nothing to retrain)"
    else:
        if breach:
            reason, start, end = breach
            conf = {
                **conf,
                "reason": f"monitor_drift: {reason}",
                "interval": {"start": start.isoformat(), "end": end.isoformat()},
            }
            del conf["training_window_end"]  # the window ends with the breaching interval
        conf["labels_as_of"] = (last_end + timedelta(days=3)).isoformat()
        dag_run = load_dataset_dag(config.root / "dags", "retrain_model", config.name).test(run_conf=conf)
        state = str(dag_run.state)
        print(f"retrain_model ({conf['reason']}): {state}")
    print_lifecycle(config)
    print(
        f"\nhistory: SELECT created_at, action, from_version, to_version, reason FROM {config.db_schema}.promotion_events ORDER BY event_id;\n"
        f"evaluations: SELECT evaluated_at, candidate_version, champion_version, holdout_start, holdout_rows, passed "
        f"FROM {config.db_schema}.model_evaluations ORDER BY evaluation_id;\n"
        f"rollback: driftline rollback --config {config_path} --reason '...'   (then `driftline models`)"
    )
    return state


def _latest_drift_trigger(conn, schema: str, since: datetime | None = None) -> tuple[str, datetime, datetime] | None:
    """monitor_drift's latest decision to retrain (reason, interval) taken at or after since, if any."""
    exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.drift_decisions",)).fetchone()[0]
    if exists is None:
        return None
    return conn.execute(
        sql.SQL(
            "SELECT reason, interval_start, interval_end FROM {} WHERE trigger "
            "AND (%s::timestamptz IS NULL OR decided_at >= %s) ORDER BY interval_end DESC, decision_id DESC LIMIT 1"
        ).format(db.table(schema, "drift_decisions")),
        (since, since),
    ).fetchone()


def print_lifecycle(config: DatasetConfig) -> None:
    """Versions, champion, promotion history, evaluations and realized performance per interval, as tables."""
    schema = config.db_schema
    with connect(config) as conn:
        versions = registry.list_versions(conn, schema)
        history = registry.promotion_history(conn, schema)
        shared = shared_holdout_at_promotion(conn, schema)
        evaluations = conn.execute(
            sql.SQL(
                "SELECT evaluation_id, evaluated_at, candidate_version, champion_version, holdout_rows, holdout_start, "
                "passed, holdout_reason FROM {} ORDER BY evaluation_id DESC LIMIT 10"
            ).format(db.table(schema, "model_evaluations"))
        ).fetchall()
        realized = conn.execute(
            sql.SQL(
                "SELECT interval_start, model_version, rows_predicted, rows_labelled, metrics FROM {} "
                "ORDER BY interval_start"
            ).format(db.table(schema, "realized_performance"))
        ).fetchall()
        empty_reason = None if realized else realized_empty_reason(conn, config)
    metric = config.retraining.metric
    print(
        f"\n{'version':<9}{'status':<10}{'aliases':<20}{'own holdout ' + metric:>16}{'shared holdout ' + metric:>21}  created"
    )
    for row in versions:
        own = row["metrics"].get(metric)
        at_promotion = shared.get(row["version"], {}).get("metrics", {}).get(metric)
        print(
            f"v{row['version']:<8}{row['status']:<10}{','.join(row['aliases']) or '-':<20}"
            f"{'-' if own is None else f'{own:.4f}':>16}{'-' if at_promotion is None else f'{at_promotion:.4f}':>21}"
            f"  {row['created_at']:%Y-%m-%d %H:%M:%S}{'  (pruned)' if row['pruned_at'] else ''}"
        )
    print(
        "  own holdout: the newest rows of the version's own training window (each version its own rows: not comparable).\n"
        "  shared holdout: at its promotion, candidate and the champion it replaced scored on the same rows, which\n"
        "  neither trained on (model_evaluations; '-' = promoted without one, e.g. `driftline train`)."
    )
    print("\npromotion history:")
    for event in history:
        source = "-" if event["from_version"] is None else f"v{event['from_version']}"
        print(
            f"  {event['created_at']:%Y-%m-%d %H:%M:%S}  {event['action']:<9}{source:>4} -> v{event['to_version']:<4} {event['reason']}"
        )
    print("\nevaluations (newest first; each is kept, none overwritten):")
    if not evaluations:
        print("  none yet: `driftline retrain` (or retrain_model) evaluates a candidate against the champion")
    for evaluation_id, at, candidate, champion, rows, _start, passed, why in evaluations:
        against = f"vs v{champion}" if champion is not None else "no champion"
        print(
            f"  #{evaluation_id} {at:%Y-%m-%d %H:%M:%S}  v{candidate} {against:<12} {'passed' if passed else 'failed':<7}"
            f"{rows:>7} rows  {why}"
        )
    print(f"\n{'interval':<12}{'model':>6}{'predicted':>11}{'labelled':>10}  realized")
    if empty_reason:
        print(f"  (empty) {empty_reason}")
    for start, version, predicted, labelled, metrics in realized:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())) or "no labels yet"
        print(f"{start:%Y-%m-%d}  {'v' + str(version):>6}{predicted:>11}{labelled:>10}  {shown}")
    if realized:
        print_estimates(config)  # now that labels arrived: the estimate beside what it estimated
