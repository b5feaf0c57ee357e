"""A project-local Airflow: its environment, metadata database and migration, and the `airflow standalone` supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

LOG_SERVER_OFFSET = 713  # 8080 + 713 = 8793, Airflow's default worker log server port
PLUGIN_PREFIX = "/driftline"  # driftline.airflow.ui.app.URL_PREFIX, without importing the UI here

if TYPE_CHECKING:
    from driftline.config import DatasetConfig


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


ENV_FILE = "driftline-airflow.env"  # in AIRFLOW_HOME: `. <it>`, then the `airflow` CLI reaches this instance
# What the `airflow` CLI needs to reach the running instance (its metadata database, DAGs, plugins, API)
# and what its commands hand to driftline code; not its process tuning (workers, log level, PATH).
CLI_KEYS = (
    "AIRFLOW_HOME",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__PLUGINS_FOLDER",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__UNIT_TEST_MODE",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "DRIFTLINE_CONFIG",
    "DRIFTLINE_CONFIGS",
    "DRIFTLINE_DB_URL",
)


def instance_environment(
    config_path: str, host: str, port: int, configs_dir: str | None = None, announce: bool = False
) -> tuple[dict[str, str], DatasetConfig]:
    """(environment, config) of `driftline airflow` for this project: airflow_standalone_environment() with
    the metadata database chosen (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN as set, else a database `airflow`
    on the embedded Postgres, else SQLite), over os.environ. announce: say so on stderr when it is SQLite."""
    from driftline import db
    from driftline.config import load_config

    config = load_config(config_path)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    env = {**os.environ, **airflow_standalone_environment(config.root, config_path, url, host, port)}
    if configs_dir:
        del env["DRIFTLINE_CONFIG"]  # it would win over the folder
        env["DRIFTLINE_CONFIGS"] = configs_dir
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    elif not (os.environ.get("DRIFTLINE_DB_URL") or config.db_url or config.db_conn_id):
        # SQLite metadata refuses backfills while the scheduler writes ("database is locked"): with the
        # embedded Postgres, keep Airflow's metadata in a database of its own there.
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = airflow_metadata_database(url, "airflow")
    elif announce:
        print(
            "driftline: Airflow metadata in SQLite; for backfills set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN "
            "to a PostgreSQL database",
            file=sys.stderr,
        )
    return env, config


def cli_environment(env: dict[str, str]) -> str:
    """The export lines to source (`. FILE`, or eval) so that `airflow ...` reaches this instance."""
    import shlex

    return "".join(f"export {key}={shlex.quote(env[key])}\n" for key in CLI_KEYS if key in env)


def write_cli_environment(env: dict[str, str]) -> Path:
    """Write cli_environment() to AIRFLOW_HOME/driftline-airflow.env, readable by the user only (it may
    carry database passwords); returns its path."""
    path = Path(env["AIRFLOW_HOME"]) / ENV_FILE
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # before the secrets go in
    path.write_text(cli_environment(env))
    return path


def run_standalone(config_path: str, host: str, port: int, timeout: float, configs_dir: str | None = None) -> None:
    """`airflow standalone` for this project: its dags/ and plugins/, a project-local AIRFLOW_HOME and its
    Postgres; returns when it stops (Ctrl-C, SIGTERM), SystemExit on a failure exit code. With configs_dir,
    the DAGs and pages serve every dataset of that folder (config_path, one of them, gives the project).
    Writes AIRFLOW_HOME/driftline-airflow.env: sourced, the `airflow` CLI talks to this instance."""
    from driftline import db

    env, config = instance_environment(config_path, host, port, configs_dir, announce=True)
    url = env["DRIFTLINE_DB_URL"]
    env_file = write_cli_environment(env)
    address = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    if passwords.exists():
        passwords.chmod(0o600)  # written 0644 by an earlier run (before the umask below)
    print(
        f"driftline: starting Airflow {env['AIRFLOW_HOME']} (dags {env['AIRFLOW__CORE__DAGS_FOLDER']}, "
        f"predictions in {db.mask_url(url)}); Ctrl-C stops it",
        flush=True,
    )
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
        if _wait_healthy(f"{address}/api/v2/monitor/health", process, timeout=timeout):
            pages = (
                f"every dataset of {configs_dir} at {address}{PLUGIN_PREFIX}/"
                if configs_dir
                else f"drift reports {address}{PLUGIN_PREFIX}/{config.name}/reports, "
                f"model registry {address}{PLUGIN_PREFIX}/{config.name}/registry"
            )
            print(
                f"\ndriftline: Airflow UI at {address}  (log in as admin; the password is in {passwords})\n"
                f"driftline: {pages} (also under Browse in the UI)\n"
                f"driftline: the `airflow` CLI of this instance: . {env_file}\n",
                flush=True,
            )
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        _stop_standalone(process)
    if process.returncode not in (0, -2, -9, -15):
        raise SystemExit(process.returncode)


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


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


def _stop_standalone(process: subprocess.Popen, grace: float = 60) -> None:
    """Stop standalone with SIGINT (on SIGTERM it exits and orphans its components), then make sure
    every process it had started is gone: SIGTERM, and SIGKILL after `grace` seconds."""
    import psutil

    try:
        # Taken before standalone stops: its orphaned components lose their parent.
        components = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        components = []
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for signum in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + grace
        while alive := _running(components):
            if time.monotonic() > deadline:
                break
            for component in alive:
                try:
                    component.send_signal(signum)
                except psutil.NoSuchProcess:
                    pass
            time.sleep(1)
        else:
            return


def _running(processes) -> list:
    """The processes still running; a zombie (exited, not yet reaped by its new parent) counts as gone."""
    import psutil

    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running
