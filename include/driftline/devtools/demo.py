"""`driftline demo`: the whole loop on synthetic data through Airflow (dag.test), and what it prints."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from driftline.config import DatasetConfig, load_config
from driftline.devtools.demo_data import DemoPlan


def run_demo(config_path: str, plan: DemoPlan) -> None:
    """Embedded Postgres, synthetic data, a champion, then score_batch, monitor_drift and retrain_model
    through Airflow (dag.test) for each interval of plan; SystemExit naming what did not succeed."""
    from driftline import db
    from driftline.devtools.dag_runner import load_dataset_dag, run_dag_for_interval
    from driftline.devtools.demo_data import write_demo_data
    from driftline.devtools.demo_steps import run_demo_lifecycle, run_demo_monitoring
    from driftline.devtools.standalone import airflow_environment, migrate_airflow
    from driftline.training import train_champion
    from driftline.validation import write_suite

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc)  # drift decisions taken from here on are this run's
    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    os.environ["DRIFTLINE_DB_URL"] = url  # Airflow tasks below run in this process and read it
    os.environ["DRIFTLINE_CONFIG"] = config_path
    print(f"[1/6] database: {db.mask_url(url)}")

    data = write_demo_data(config, plan)
    if not config.suite_path.exists():
        write_suite(config)
    print(f"[2/6] data: {data['history_rows']} labelled history rows, {len(data['inputs'])} daily inputs")

    model = train_champion(config_path, reason="demo: initial champion")
    print(
        f"[3/6] champion model v{model['version']} ({'new' if model['new_version'] else 'unchanged'}), "
        f"holdout {', '.join(f'{k}={v:.4f}' for k, v in model['metrics'].items())}"
    )

    env = airflow_environment(config.root)
    os.environ.update(env)
    migrate_airflow(env)
    dag = load_dataset_dag(config.root / "dags", "score_batch", config.name)
    print("[4/6] running score_batch through Airflow (dag.test) for each interval:")
    failed = []
    for start, end in plan.interval_bounds():
        run = run_dag_for_interval(dag, end, {"config": config_path})
        state = str(getattr(run, "state", "unknown"))
        if "success" not in state:
            failed.append(f"{start:%Y-%m-%d}: {state}")
    print_demo_summary(config, url, plan, time.perf_counter() - started)
    if failed:
        raise SystemExit(f"score_batch did not succeed for: {', '.join(failed)}")

    print("\n[5/6] running monitor_drift through Airflow (dag.test) for each interval:")
    failed = run_demo_monitoring(config_path, plan.interval_bounds(), config.root / "dags")
    if failed:
        raise SystemExit(f"monitor_drift did not succeed for: {', '.join(failed)}")

    print("\n[6/6] retrain_model through Airflow (dag.test), when a drift decision of this run triggered it:")
    if "success" not in run_demo_lifecycle(config_path, plan, since=started_at):
        raise SystemExit("retrain_model did not succeed")


def print_demo_summary(config: DatasetConfig, url: str, plan: DemoPlan, seconds: float) -> None:
    """The scored intervals' health table, where everything is, and queries to try."""
    from psycopg import sql

    from driftline import db

    with db.connect(url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT h.interval_start, h.rows_in, h.rows_scored, h.rows_quarantined, h.model_version, h.fallback, "
                "h.duration_seconds, h.rows_per_second, h.freshness_seconds, "
                "(SELECT count(*) FROM {review} r WHERE r.interval_start = h.interval_start), h.status "
                "FROM {health} h WHERE h.published AND h.interval_start = ANY(%s) ORDER BY h.interval_start"
            ).format(
                health=db.table(config.db_schema, "run_health"),
                review=db.table(config.db_schema, "predictions_for_review"),
            ),
            ([start for start, _ in plan.interval_bounds()],),
        ).fetchall()
        total = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(db.table(config.db_schema, "predictions"))
        ).fetchone()[0]
    print()
    print(
        f"{'interval':<12}{'rows_in':>9}{'scored':>9}{'quarantined':>13}{'model':>7}{'fallback':>10}"
        f"{'seconds':>9}{'rows/s':>9}{'fresh_h':>9}{'review':>8}  status"
    )
    for start, rows_in, scored, quarantined, version, fallback, duration, per_second, fresh, review, status in rows:
        print(
            f"{start:%Y-%m-%d}  {rows_in:>9}{scored:>9}{quarantined:>13}{'v' + str(version):>7}"
            f"{'yes' if fallback else 'no':>10}{duration:>9.2f}{per_second:>9.0f}{fresh / 3600:>9.1f}{review:>8}  {status}"
        )
    print(f"\n{total} predictions in {config.db_schema}.predictions  ({seconds:.0f} s)")
    print(f"data:    {config.root / 'data' / config.name}")
    print(f"models:  {config.registry_dir}")
    print(f"airflow: {config.root / '.driftline' / 'airflow'} (SQLite metadata)")
    print(f"\nconnect: psql '{db.mask_url(url)}'")
    print(
        "query:   SELECT interval_start, entity_key, score, predicted_class, model_version\n"
        f"         FROM {config.db_schema}.predictions ORDER BY score DESC LIMIT 10;\n"
        f"quarantine: SELECT reason_codes, count(*) FROM {config.db_schema}.quarantine_rows GROUP BY 1 ORDER BY 2 DESC;\n"
        "health:  SELECT interval_start, status, model_version, fallback, rows_in, rows_quarantined, rows_failed,\n"
        f"         round(duration_seconds::numeric, 1) AS seconds, round((freshness_seconds / 3600)::numeric, 1) AS hours_late\n"
        f"         FROM {config.db_schema}.run_health ORDER BY started_at DESC LIMIT 20;\n"
        f"alerts:  driftline alerts  or SELECT raised_at, kind, message FROM {config.db_schema}.alerts ORDER BY alert_id DESC;"
    )
    if config.explain is not None:
        print(
            "reasons: SELECT entity_key, score, rank, feature, value, contribution\n"
            f"         FROM {config.db_schema}.prediction_reasons ORDER BY score DESC, entity_key, rank LIMIT 15;"
        )
