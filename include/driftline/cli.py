"""The `driftline` command: init-db, suite, train, score, monitor, retrain, rollback, models, demo, airflow."""

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

from driftline import errors
from driftline.config import default_config_path, load_config


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, help="dataset config (TOML); default $DRIFTLINE_CONFIG or config/demo.toml"
    )


def _config_path(args) -> str:
    return str(Path(args.config).resolve()) if args.config else str(default_config_path())


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


ANALYST_PASSWORD_ENV = "DRIFTLINE_ANALYST_PASSWORD"


def cmd_init_db(args) -> None:
    from driftline.db import ANALYST_VIEWS
    from driftline.batch import prepare_database

    config_path = _config_path(args)
    config = load_config(config_path)
    role = args.analyst_role or config.analyst_role
    # The role's password never lives in a file or on the command line (shell history, ps): environment only.
    url = prepare_database(config_path, role, os.environ.get(ANALYST_PASSWORD_ENV) or None)
    print(f"schema {config.db_schema} ready in {url}")
    if role:
        password = "password from $" + ANALYST_PASSWORD_ENV if os.environ.get(ANALYST_PASSWORD_ENV) else "no password set"
        print(f"read-only role {role} ({password}): SELECT on {', '.join(f'{config.db_schema}.{v}' for v in ANALYST_VIEWS)}; "
              "nothing else in the schema")


def cmd_suite(args) -> None:
    from driftline.validation import write_suite, write_suite_from_model

    config = load_config(_config_path(args))
    if not args.from_model:
        path = write_suite(config, overwrite=args.overwrite)
        print(f"wrote {path}: review it like code, then commit it")
        return
    from driftline import db
    from driftline.registry import RegistryError, champion_version, load_model

    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        db.ensure_schema(conn, config.db_schema)
        version = champion_version(conn, config.db_schema)
        if version is None:
            raise RegistryError(f"no champion model in schema {config.db_schema!r}: run `driftline train` first")
        model = load_model(conn, config.db_schema, version)  # the manifest is read from a verified artifact
    path, diff = write_suite_from_model(config, model.manifest, version)
    if not diff:
        print(f"{path} already expects the categories model v{version} learned; nothing changed")
        return
    print(diff, end="")
    print(f"updated {path} with the categories model v{version} learned: review the diff above, then commit it")


def cmd_train(args) -> None:
    print(json.dumps(train_champion(_config_path(args)), indent=2, ensure_ascii=False))


def train_champion(config_path: str, reason: str = "initial model from `driftline train`") -> dict:
    """Train on the labelled history and register the result as champion (idempotent)."""
    from driftline import db
    from driftline.drift import ensure_reference
    from driftline.registry import load_model, register_champion
    from driftline.training import read_table, train

    config = load_config(config_path)
    history = config.resolve_location(config.history_uri)
    with errors.reading(history):
        trained = train(config, read_table(history, config))
    # Which rows it saw (validation's fair holdout starts after its training_window.end).
    manifest = {
        **trained.manifest,
        "row_selection": {
            "source": "the whole [source] history file",
            "split": f"oldest {1 - config.holdout_fraction:.0%} by event time trained on, newest "
            f"{config.holdout_fraction:.0%} own holdout",
        },
    }
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        db.ensure_schema(conn, config.db_schema)
        version, created = register_champion(
            conn, config.db_schema, config.registry_dir, trained.model_text, manifest, reason
        )
        ensure_reference(conn, config, load_model(conn, config.db_schema, version))  # drift reference, once per version
    return {
        "version": version,
        "new_version": created,
        "metrics": trained.manifest["metrics"],
        "rows": trained.manifest["rows"],
        "rows_excluded": trained.manifest["rows_excluded"],
        "registry_dir": str(config.registry_dir),
    }


def cmd_score(args) -> None:
    """Score one interval without Airflow (same code path as the score_batch task)."""
    from driftline.batch import score_interval

    summary = score_interval(
        _config_path(args), _when(args.start), _when(args.end), args.run_id or f"cli__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}", args.model_version
    )
    print(json.dumps(summary, indent=2, ensure_ascii=False))


def cmd_alerts(args) -> None:
    """The newest alerts (failures, fallbacks, sanity and drift breaches, missed deadlines)."""
    from driftline import db
    from driftline.alerts import recent_alerts

    config = load_config(_config_path(args))
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url) as conn:
        db.ensure_schema(conn, config.db_schema)
        rows = recent_alerts(conn, config.db_schema, args.limit)
    if not rows:
        print(f"no alerts in {config.db_schema}.alerts")
    for row in rows:
        where = f" [{row['interval_start']:%Y-%m-%d %H:%M}, {row['interval_end']:%Y-%m-%d %H:%M})" if row["interval_start"] else ""
        print(f"#{row['alert_id']} {row['raised_at']:%Y-%m-%d %H:%M:%S} {row['severity']:<8} {row['kind']}{where}")
        print(f"    {row['message']}")
        if row["deliveries"]:
            print(f"    deliveries: {json.dumps(row['deliveries'])}")


def _run_id(args) -> str:
    return args.run_id or f"cli__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"


def cmd_monitor(args) -> None:
    """monitor_drift without Airflow: the same task functions, then (on a trigger) retrain."""
    from driftline.drift import decide_retrain, monitor_interval

    config_path, run_id = _config_path(args), _run_id(args)
    start, end = _when(args.start), _when(args.end)
    summary = monitor_interval(config_path, start, end, run_id)
    print(json.dumps({"monitor_interval": summary}, indent=2, default=str))
    from driftline.estimation import estimate_interval

    print(json.dumps({"estimate_performance": estimate_interval(config_path, start, end, run_id)}, indent=2, default=str))
    # No Airflow here: no other retrain run can be active, and `driftline retrain` is the deployment.
    decision = decide_retrain(config_path, start, end, run_id)
    print(json.dumps({"decide_retrain": {k: v for k, v in decision.items() if k != "retrain_conf"}}, indent=2, default=str))
    if not decision["trigger"]:
        return
    conf = decision["retrain_conf"]
    if args.no_retrain:
        print(f"retrain triggered, not run (--no-retrain): driftline retrain --config {config_path} "
              f"--interval-end {conf['interval']['end']} --reason {json.dumps(conf['reason'])}")
        return
    from driftline.retraining import retrain

    retrain(config_path, conf["reason"], trigger_interval=conf["interval"], labels_as_of=args.labels_as_of,
            run_id=decision["retrain_run_id"], report=_print_step)


def _print_step(step: str, result) -> None:
    print(json.dumps({step: result}, indent=2, default=str))


def cmd_retrain(args) -> None:
    """retrain_model's retrain branch without Airflow: train, validate, decide, retention, realized."""
    from driftline.retraining import retrain

    retrain(
        _config_path(args),
        args.reason,
        args.window_start,
        args.window_end,
        args.labels_as_of,
        {"end": args.interval_end} if args.interval_end else None,
        _run_id(args),
        report=_print_step,
    )


def cmd_realized(args) -> None:
    """retrain_model's update_realized_performance without Airflow."""
    from driftline.retraining import update_realized_performance

    _print_step("update_realized_performance", update_realized_performance(_config_path(args), args.labels_as_of))


def cmd_rollback(args) -> None:
    """Make an earlier champion (default: the previous one) champion again, with a reason."""
    from driftline.retraining import rollback_champion

    actor = os.environ.get("USER") or "cli"
    summary = rollback_champion(_config_path(args), args.reason, args.to, actor=f"cli:{actor}", expected_champion=args.expect_champion)
    print(json.dumps(summary, indent=2))


def cmd_models(args) -> None:
    """Registered versions, aliases, promotion history and realized performance."""
    from driftline.retraining import print_lifecycle

    print_lifecycle(load_config(_config_path(args)))


def cmd_db_url(args) -> None:
    from driftline import db

    config = load_config(_config_path(args))
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    print(url if args.reveal else db.mask_url(url))


def cmd_db_stop(args) -> None:
    from driftline import db

    config = load_config(_config_path(args))
    data_dir = config.root / db.EMBEDDED_DATA_DIR
    if db.stop_embedded(data_dir):
        print(f"stopped the embedded PostgreSQL in {data_dir} (any driftline command starts it again)")
    else:
        print(f"the embedded PostgreSQL in {data_dir} is not running")


def cmd_demo(args) -> None:
    from driftline.devtools.demo_data import DemoPlan

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


def cmd_airflow(args) -> None:
    """`airflow standalone` for this project: its dags/ and plugins/, a project-local AIRFLOW_HOME and its Postgres."""
    import signal

    from driftline import db

    config_path = _config_path(args)
    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    env = {**os.environ, **airflow_standalone_environment(config.root, config_path, url, args.host, args.port)}
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    elif not (os.environ.get("DRIFTLINE_DB_URL") or config.db_url or config.db_conn_id):
        # SQLite metadata refuses backfills while the scheduler writes ("database is locked"): with the
        # embedded Postgres, keep Airflow's metadata in a database of its own there.
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = airflow_metadata_database(url, "airflow")
    else:
        print("driftline: Airflow metadata in SQLite; for backfills set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN "
              "to a PostgreSQL database", file=sys.stderr)
    address = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}"
    passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    if passwords.exists():
        passwords.chmod(0o600)  # written 0644 by an earlier run (before the umask below)
    print(f"driftline: starting Airflow {env['AIRFLOW_HOME']} (dags {env['AIRFLOW__CORE__DAGS_FOLDER']}, "
          f"predictions in {db.mask_url(url)}); Ctrl-C stops it", flush=True)
    # Same process group: Ctrl-C (SIGINT to the group) stops standalone and its components; on
    # SIGTERM this process stops standalone (with SIGINT) before it exits instead of orphaning it.
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=env,
        # A shell's background job starts with SIGINT ignored; standalone stops its components on SIGINT only.
        # umask 077: what Airflow writes (the generated admin password, task logs) is private to the user.
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), os.umask(0o077)),
    )
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        if _wait_healthy(f"{address}/api/v2/monitor/health", process, timeout=args.timeout):
            print(f"\ndriftline: Airflow UI at {address}  (log in as admin; the password is in {passwords})\n"
                  f"driftline: drift reports {address}{_plugin_prefix()}/reports, "
                  f"model registry {address}{_plugin_prefix()}/registry (also under Browse in the UI)\n", flush=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop_standalone(process)
    if process.returncode not in (0, -2, -9, -15):
        raise SystemExit(process.returncode)


def _stop_standalone(process: subprocess.Popen, grace: float = 60) -> None:
    """Stop standalone with SIGINT (on SIGTERM it exits and orphans its components), then make sure
    every process it had started is gone: SIGTERM, and SIGKILL after `grace` seconds."""
    import signal

    components = _descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for signum in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + grace
        while (alive := [pid for pid, state in _process_states(components).items() if state != "Z"]):
            if time.monotonic() > deadline:
                break
            for pid in alive:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            time.sleep(1)
        else:
            return


def _process_states(pids: list[int] | None = None) -> dict[int, str]:
    """{pid: state letter} from /proc for the given pids (all when None); missing pids are left out."""
    states = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        if pids is not None and pid not in pids:
            continue
        try:
            states[pid] = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
    return states


def _descendants(root: int) -> list[int]:
    """Every process below root (Linux /proc), taken before root stops: orphans lose their parent."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


LOG_SERVER_OFFSET = 713  # 8080 + 713 = 8793, Airflow's default worker log server port


def airflow_standalone_environment(root: Path, config_path: str, db_url: str, host: str, port: int) -> dict[str, str]:
    """airflow_environment() plus what a long-running Airflow needs: plugins, the config, the API address."""
    return {
        **airflow_environment(root),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": os.environ.get("AIRFLOW__API__WORKERS", "1"),
        # Task logs at INFO (the demo's dag.test runs keep WARNING): a successful task's log says what it did.
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
        # The worker and triggerer log servers follow --port (8793/8794 for the default 8080, Airflow's
        # own defaults), so a second instance on another port does not collide with the first.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + LOG_SERVER_OFFSET),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + LOG_SERVER_OFFSET + 1),
        # LocalExecutor starts this many worker processes up front: 32 by default, too many for a laptop.
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "4"),
        # Task processes report to the API server: make them find it on a non-default port.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "DRIFTLINE_CONFIG": config_path,  # the DAG files and the UI plugin read the same dataset config
        "DRIFTLINE_DB_URL": db_url,
        "GX_ANALYTICS_ENABLED": "False",
        # standalone starts its components as `airflow ...` from PATH: make it this environment's.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def airflow_metadata_database(db_url: str, name: str) -> str:
    """Create database `name` on the server of db_url if missing; its SQLAlchemy URL for Airflow."""
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    from driftline import db

    with db.connect(db_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(db_url)
    host = params.pop("host", None)
    socket_dir = host if host and host.startswith("/") else None  # a Unix socket directory goes in the query
    url = URL.create(
        "postgresql+psycopg2",
        username=params.get("user"),
        password=params.get("password") or None,
        host=None if socket_dir else host,
        port=int(params["port"]) if params.get("port") and not socket_dir else None,
        database=name,
        query={"host": socket_dir} if socket_dir else {},
    )
    return url.render_as_string(hide_password=False)


def _plugin_prefix() -> str:
    return "/driftline"  # driftline.airflow.ui.URL_PREFIX, without importing the UI module here


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """Poll Airflow's health endpoint until it answers 200; False if the process exits or time runs out."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    if process.poll() is None:
        print(f"driftline: Airflow not healthy after {timeout:.0f} s at {url}; still waiting on it", file=sys.stderr)
    return False


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
    from driftline import db
    from driftline.devtools.demo_data import write_demo_data
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
    print(f"[3/6] champion model v{model['version']} ({'new' if model['new_version'] else 'unchanged'}), "
          f"holdout {', '.join(f'{k}={v:.4f}' for k, v in model['metrics'].items())}")

    env = airflow_environment(config.root)
    os.environ.update(env)
    migrate_airflow(env)
    dag = load_dag_file(config.root / "dags" / "score_batch.py")
    print("[4/6] running score_batch through Airflow (dag.test) for each interval:")
    failed = []
    for start, end in plan.interval_bounds():
        run = run_dag_for_interval(dag, end, {"config": config_path})
        state = str(getattr(run, "state", "unknown"))
        if "success" not in state:
            failed.append(f"{start:%Y-%m-%d}: {state}")
    _print_demo_summary(config, url, plan, time.perf_counter() - started)
    if failed:
        raise SystemExit(f"score_batch did not succeed for: {', '.join(failed)}")

    from driftline.drift import run_demo_monitoring

    print("\n[5/6] running monitor_drift through Airflow (dag.test) for each interval:")
    failed = run_demo_monitoring(config_path, plan.interval_bounds(), config.root / "dags" / "monitor_drift.py")
    if failed:
        raise SystemExit(f"monitor_drift did not succeed for: {', '.join(failed)}")

    from driftline.retraining import run_demo_lifecycle

    print("\n[6/6] retrain_model through Airflow (dag.test), when a drift decision of this run triggered it:")
    if "success" not in run_demo_lifecycle(config_path, plan, since=started_at):
        raise SystemExit("retrain_model did not succeed")


def load_dag_file(path: Path):
    """The `dag` object of a DAG file, loaded as a private module, for dag.test().

    Deadlines are dropped: they are a scheduler feature, and Airflow 3.3.2's dag.test() cannot finish
    a successful run of a DAG that has one (DagRun.update_state looks the unsaved DeadlineAlert up by
    id: "'dict' object has no attribute 'hex'"). The scheduler path keeps them.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"driftline_dag_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.dag.deadline = None
    return module.dag


def _print_demo_summary(config, url: str, plan, seconds: float) -> None:
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
                health=db.table(config.db_schema, "run_health"), review=db.table(config.db_schema, "predictions_for_review")
            ),
            ([start for start, _ in plan.interval_bounds()],),
        ).fetchall()
        total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(db.table(config.db_schema, "predictions"))).fetchone()[0]
    print()
    print(f"{'interval':<12}{'rows_in':>9}{'scored':>9}{'quarantined':>13}{'model':>7}{'fallback':>10}"
          f"{'seconds':>9}{'rows/s':>9}{'fresh_h':>9}{'review':>8}  status")
    for start, rows_in, scored, quarantined, version, fallback, duration, per_second, fresh, review, status in rows:
        print(f"{start:%Y-%m-%d}  {rows_in:>9}{scored:>9}{quarantined:>13}{'v' + str(version):>7}"
              f"{'yes' if fallback else 'no':>10}{duration:>9.2f}{per_second:>9.0f}{fresh / 3600:>9.1f}{review:>8}  {status}")
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


def build_parser() -> argparse.ArgumentParser:
    """The `driftline` argument parser: one subcommand per cmd_* function."""
    parser = argparse.ArgumentParser(prog="driftline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init-db", help="create the schema, tables and views (idempotent)")
    _config_arg(p)
    p.add_argument(
        "--analyst-role",
        default=None,
        metavar="ROLE",
        help="also create/update a read-only LOGIN role for the reader views (default: [database] analyst_role); "
        f"its password, if any, from ${ANALYST_PASSWORD_ENV}",
    )
    p.set_defaults(func=cmd_init_db)

    p = sub.add_parser("suite", help="write a starting GE suite from the config")
    _config_arg(p)
    p.add_argument("--overwrite", action="store_true", help="replace an existing suite file (default: refuse)")
    p.add_argument(
        "--from-model",
        action="store_true",
        help="after training: add in-set expectations for the categories the champion learned "
        "(categoricals without [features] categories) to the suite, and print the diff to review",
    )
    p.set_defaults(func=cmd_suite)

    p = sub.add_parser("train", help="train on the labelled history and register the champion")
    _config_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("score", help="score one interval without Airflow")
    _config_arg(p)
    p.add_argument("--start", required=True, help="interval start, ISO 8601 (UTC if no offset)")
    p.add_argument("--end", required=True, help="interval end, ISO 8601")
    p.add_argument("--model-version", type=int, default=None, help="score with this registered version (default: the champion)")
    p.add_argument("--run-id", default=None, help="recorded with the attempt and its predictions (default cli__<UTC time>)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("monitor", help="monitor_drift for one scored interval without Airflow (then retrain on a trigger)")
    _config_arg(p)
    p.add_argument("--start", required=True, help="interval start, ISO 8601 (UTC if no offset)")
    p.add_argument("--end", required=True, help="interval end, ISO 8601")
    p.add_argument("--run-id", default=None, help="recorded with the drift results and decision (default cli__<UTC time>)")
    p.add_argument("--no-retrain", action="store_true", help="record the decision; on a trigger print the retrain command")
    p.add_argument("--labels-as-of", default=None, help="for a triggered retrain: labels observed by then (default now)")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("retrain", help="retrain_model without Airflow: train, validate, promote or reject, realized")
    _config_arg(p)
    p.add_argument("--reason", default="manual retrain from `driftline retrain`", help="recorded with the decision")
    p.add_argument("--window-start", default=None, help="ISO date; default retraining.training_days before the end")
    p.add_argument("--window-end", default=None, help="ISO date; default --interval-end, else the newest labelled event")
    p.add_argument("--interval-end", default=None, help="end of the interval that triggered this retrain")
    p.add_argument("--labels-as-of", default=None, help="ISO time; labels observed by then (default now)")
    p.add_argument("--run-id", default=None, help="recorded with the candidate and the decision (default cli__<UTC time>)")
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("realized", help="recompute realized performance (late labels joined to predictions)")
    _config_arg(p)
    p.add_argument("--labels-as-of", default=None, help="ISO time; labels observed by then (default now)")
    p.set_defaults(func=cmd_realized)

    p = sub.add_parser("rollback", help="make the previous (or a given) champion version champion again")
    _config_arg(p)
    p.add_argument("--to", type=int, default=None, metavar="VERSION", help="target version; default: previous champion")
    p.add_argument(
        "--expect-champion", type=int, default=None, metavar="VERSION",
        help="the champion this rollback replaces (default: the champion when the command starts); "
        "if another change committed first, nothing changes and the command exits 1",
    )
    p.add_argument("--reason", required=True, help="why: recorded in promotion_events")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("alerts", help="the newest alerts (failures, fallbacks, sanity, drift, deadlines)")
    _config_arg(p)
    p.add_argument("--limit", type=int, default=20, help="how many of the newest alerts to show (default 20)")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("models", help="model versions, promotion history and realized performance")
    _config_arg(p)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("db-url", help="print the database URL in use, password masked (starts the embedded one if needed)")
    _config_arg(p)
    p.add_argument("--reveal", action="store_true", help="print the password too (for `export DRIFTLINE_DB_URL=...`)")
    p.set_defaults(func=cmd_db_url)

    p = sub.add_parser("db-stop", help="stop the embedded PostgreSQL (pgserver) of this project, if it runs")
    _config_arg(p)
    p.set_defaults(func=cmd_db_stop)

    p = sub.add_parser("airflow", help="run Airflow (standalone) with this project's DAGs, UI plugin and database")
    _config_arg(p)
    p.add_argument("--host", default="127.0.0.1", help="address the API server listens on (0.0.0.0: all)")
    p.add_argument("--port", type=int, default=8080,
                   help="API server port (default 8080); the log servers use PORT+713 and PORT+714")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the UI before saying so")
    p.set_defaults(func=cmd_airflow)

    p = sub.add_parser("demo", help="embedded Postgres + synthetic data + train + score_batch through Airflow")
    _config_arg(p)
    p.add_argument("--rows", type=int, default=20_000, help="rows per daily interval (default 20000)")
    p.add_argument("--intervals", type=int, default=3, help="daily intervals to generate, score and monitor (default 3)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except Exception as exc:  # noqa: BLE001 - the CLI's one mapping of the error tree to exit codes
        error = errors.translate(exc)
        if args.command in ALERTING_COMMANDS:
            alert_cli_failure(args, error)
        if not isinstance(error, errors.DriftlineError):
            raise  # a bug: the traceback is the report
        # Expected failures carry a message that says what and what next: no traceback.
        if isinstance(error, errors.BadConfig):
            print(f"driftline: config error: {errors.safe_message(error)}", file=sys.stderr)
            return 2
        print(f"driftline: {errors.safe_message(error)}", file=sys.stderr)
        return 1
    return 0


# The commands that run a pipeline step: their failures alert like the task's would (`driftline alerts`).
ALERTING_COMMANDS = ("train", "score", "monitor", "retrain", "realized", "rollback", "demo")


def alert_cli_failure(args, error: BaseException) -> int | None:
    """A task_failure alert (numbers.source = "cli") for a failed command; never raises.

    Skipped when the failing step already alerted (its error carries alert_id), as the task notifier
    does. Without a loadable config there is nowhere to store it: stderr says so.
    """
    from driftline.alerts import raise_alert

    cause = error
    while cause is not None:
        if getattr(cause, "alert_id", None) is not None:
            return None
        cause = cause.__cause__
    message = f"driftline {args.command} failed: {errors.safe_message(error)}"
    try:
        config = load_config(_config_path(args))
    except errors.DriftlineError as exc:
        print(f"driftline: alert not stored (no usable config: {errors.safe_message(exc)})", file=sys.stderr)
        return None
    start = _optional_time(getattr(args, "start", None))
    end = _optional_time(getattr(args, "end", None))
    return raise_alert(
        config,
        "task_failure",
        "critical",
        message,
        {"source": "cli", "command": args.command, "error": type(error).__name__},
        task_id=f"cli {args.command}",
        run_id=getattr(args, "run_id", None),
        interval_start=start,
        interval_end=end,
    )


def _optional_time(text: str | None) -> datetime | None:
    try:
        return _when(text) if text else None
    except ValueError:
        return None


if __name__ == "__main__":
    sys.exit(main())
