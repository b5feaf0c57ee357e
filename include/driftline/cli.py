"""The `driftline` command: init-db, suite, train, score, demo."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from .config import ConfigError, default_config_path, load_config


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help="dataset config (TOML); default $DRIFTLINE_CONFIG or config/demo.toml"
    )


def _config_path(args) -> str:
    return str(Path(args.config).resolve()) if args.config else str(default_config_path())


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def cmd_init_db(args) -> None:
    from .pipeline import prepare_database

    print(f"schema ready in {prepare_database(_config_path(args))}")


def cmd_suite(args) -> None:
    from .validation import write_suite

    path = write_suite(load_config(_config_path(args)), overwrite=args.overwrite)
    print(f"wrote {path}: review it like code, then commit it")


def cmd_train(args) -> None:
    print(json.dumps(train_champion(_config_path(args)), indent=2))


def train_champion(config_path: str, reason: str = "initial model from `driftline train`") -> dict:
    """Train on the labelled history and register the result as champion (idempotent)."""
    from . import db
    from .registry import register_champion
    from .training import read_table, train

    config = load_config(config_path)
    trained = train(config, read_table(config.resolve_location(config.history_uri)))
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        version, created = register_champion(
            conn, config.db_schema, config.registry_dir, trained.model_text, trained.manifest, reason
        )
    return {
        "version": version,
        "new_version": created,
        "metrics": trained.manifest["metrics"],
        "rows": trained.manifest["rows"],
        "registry_dir": str(config.registry_dir),
    }


def cmd_score(args) -> None:
    """Score one interval without Airflow (same code path as the score_batch task)."""
    from .pipeline import score_interval

    summary = score_interval(
        _config_path(args), _when(args.start), _when(args.end), args.run_id or f"cli__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}", args.model_version
    )
    print(json.dumps(summary, indent=2))


def cmd_db_url(args) -> None:
    from . import db

    config = load_config(_config_path(args))
    print(db.resolve_db_url(config.db_url, config.db_conn_id, config.root))


def cmd_demo(args) -> None:
    from .demo import DemoPlan

    plan = DemoPlan(rows_per_interval=args.rows, intervals=args.intervals)
    run_demo(_config_path(args), plan)


def airflow_environment(root: Path) -> dict[str, str]:
    """A project-local Airflow: SQLite metadata under .driftline/airflow, this project's dags/."""
    home = root / ".driftline" / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def migrate_airflow(env: dict[str, str]) -> None:
    """`airflow db migrate` in a child process, skipped when this Airflow version already migrated it."""
    from importlib.metadata import version

    marker = Path(env["AIRFLOW_HOME"]) / f".migrated-{version('apache-airflow-core')}"
    if marker.exists() and (Path(env["AIRFLOW_HOME"]) / "airflow.db").exists():
        return
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    marker.touch()


def run_dag_for_interval(dag, interval_end: datetime, conf: dict):
    """dag.test() for the interval that ends at interval_end (a manual run covers [end - 1 period, end))."""
    return dag.test(logical_date=interval_end, run_conf=conf)


def run_demo(config_path: str, plan) -> None:
    from . import db
    from .demo import write_demo_data
    from .validation import write_suite

    started = time.perf_counter()
    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    os.environ["DRIFTLINE_DB_URL"] = url  # Airflow tasks below run in this process and read it
    os.environ["DRIFTLINE_CONFIG"] = config_path
    print(f"[1/4] database: {db.mask_url(url)}")

    data = write_demo_data(config, plan)
    if not config.suite_path.exists():
        write_suite(config)
    print(f"[2/4] data: {data['history_rows']} labelled history rows, {len(data['inputs'])} daily inputs")

    model = train_champion(config_path, reason="demo: initial champion")
    print(f"[3/4] champion model v{model['version']} ({'new' if model['new_version'] else 'unchanged'}), "
          f"holdout {', '.join(f'{k}={v:.4f}' for k, v in model['metrics'].items())}")

    env = airflow_environment(config.root)
    os.environ.update(env)
    migrate_airflow(env)
    dag = _load_score_batch(config.root / "dags" / "score_batch.py")
    print("[4/4] running score_batch through Airflow (dag.test) for each interval:")
    failed = []
    for start, end in plan.interval_bounds():
        run = run_dag_for_interval(dag, end, {"config": config_path})
        state = str(getattr(run, "state", "unknown"))
        if "success" not in state:
            failed.append(f"{start:%Y-%m-%d}: {state}")
    _print_demo_summary(config, url, plan, time.perf_counter() - started)
    if failed:
        raise SystemExit(f"score_batch did not succeed for: {', '.join(failed)}")


def _load_score_batch(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("driftline_dag_score_batch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _print_demo_summary(config, url: str, plan, seconds: float) -> None:
    from psycopg import sql

    from . import db

    with db.connect(url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT interval_start, rows_in, rows_scored, rows_quarantined, model_version, status "
                "FROM {} WHERE published AND interval_start = ANY(%s) ORDER BY interval_start"
            ).format(db.table(config.db_schema, "run_summary")),
            ([start for start, _ in plan.interval_bounds()],),
        ).fetchall()
        total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(db.table(config.db_schema, "predictions"))).fetchone()[0]
    print()
    print(f"{'interval':<12}{'rows_in':>9}{'scored':>9}{'quarantined':>13}{'model':>7}  status")
    for start, rows_in, scored, quarantined, version, status in rows:
        print(f"{start:%Y-%m-%d}  {rows_in:>9}{scored:>9}{quarantined:>13}{'v' + str(version):>7}  {status}")
    print(f"\n{total} predictions in {config.db_schema}.predictions  ({seconds:.0f} s)")
    print(f"data:    {config.root / 'data' / config.name}")
    print(f"models:  {config.registry_dir}")
    print(f"airflow: {config.root / '.driftline' / 'airflow'} (SQLite metadata)")
    print(f"\nconnect: psql '{db.mask_url(url)}'")
    print(
        "query:   SELECT interval_start, entity_key, score, predicted_class, model_version\n"
        f"         FROM {config.db_schema}.predictions ORDER BY score DESC LIMIT 10;\n"
        f"quarantine: SELECT reason_codes, count(*) FROM {config.db_schema}.quarantine_rows GROUP BY 1 ORDER BY 2 DESC;"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init-db", help="create the schema, tables and views (idempotent)")
    _config_arg(p)
    p.set_defaults(func=cmd_init_db)

    p = sub.add_parser("suite", help="write a starting GE suite from the config")
    _config_arg(p)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_suite)

    p = sub.add_parser("train", help="train on the labelled history and register the champion")
    _config_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="score one interval without Airflow")
    _config_arg(p)
    p.add_argument("--start", required=True, help="interval start, ISO 8601 (UTC if no offset)")
    p.add_argument("--end", required=True, help="interval end, ISO 8601")
    p.add_argument("--model-version", type=int, default=None)
    p.add_argument("--run-id", default=None)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("db-url", help="print the database URL in use (starts the embedded one if needed)")
    _config_arg(p)
    p.set_defaults(func=cmd_db_url)

    p = sub.add_parser("demo", help="embedded Postgres + synthetic data + train + score_batch through Airflow")
    _config_arg(p)
    p.add_argument("--rows", type=int, default=20_000, help="rows per daily interval")
    p.add_argument("--intervals", type=int, default=3)
    p.set_defaults(func=cmd_demo)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except ConfigError as exc:
        print(f"driftline: config error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if isinstance(exc, _expected_errors()):
            # Expected failures carry a message that says what and what next: no traceback.
            print(f"driftline: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


def _expected_errors() -> tuple[type[Exception], ...]:
    from .db import DatabaseError, IntervalBusyError
    from .pipeline import QuarantineBudgetExceeded
    from .registry import ModelLoadError
    from .sources import InputError
    from .training import TrainingError
    from .validation import SuiteError, TableValidationError

    return (
        DatabaseError,
        IntervalBusyError,
        QuarantineBudgetExceeded,
        ModelLoadError,
        InputError,
        TrainingError,
        SuiteError,
        TableValidationError,
    )


if __name__ == "__main__":
    sys.exit(main())
