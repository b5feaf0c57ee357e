# Over 400 lines: the argparse tree is declarative, one add_argument with help text per option of 15 commands.
"""The `driftline` command: init-db, suite, train, score, monitor, retrain, rollback, models, demo, airflow."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
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


def _run_id(args) -> str:
    return args.run_id or f"cli__{datetime.now(timezone.utc):%Y%m%dT%H%M%S}"


ANALYST_PASSWORD_ENV = "DRIFTLINE_ANALYST_PASSWORD"


def cmd_init_db(args) -> None:
    from driftline.batch import prepare_database
    from driftline.db import ANALYST_VIEWS

    config_path = _config_path(args)
    config = load_config(config_path)
    role = args.analyst_role or config.analyst_role
    # The role's password never lives in a file or on the command line (shell history, ps): environment only.
    url = prepare_database(config_path, role, os.environ.get(ANALYST_PASSWORD_ENV) or None)
    print(f"schema {config.db_schema} ready in {url}")
    if role:
        password = (
            "password from $" + ANALYST_PASSWORD_ENV if os.environ.get(ANALYST_PASSWORD_ENV) else "no password set"
        )
        print(
            f"read-only role {role} ({password}): SELECT on {', '.join(f'{config.db_schema}.{v}' for v in ANALYST_VIEWS)}; "
            "nothing else in the schema"
        )


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
        model = load_model(
            conn, config.db_schema, version, pinned_pickles=config.handoff.pickle_sha256
        )  # the manifest is read from a verified artifact
    path, diff = write_suite_from_model(config, model.manifest, version)
    if not diff:
        print(f"{path} already expects the categories model v{version} learned; nothing changed")
        return
    print(diff, end="")
    print(f"updated {path} with the categories model v{version} learned: review the diff above, then commit it")


def cmd_train(args) -> None:
    from driftline.training import train_champion

    print(json.dumps(train_champion(_config_path(args)), indent=2, ensure_ascii=False))


def cmd_import_model(args) -> None:
    """Register a model trained elsewhere, after its feature contract and parity with the notebook hold."""
    from driftline.handoff.importer import import_model

    summary = import_model(
        _config_path(args),
        args.model,
        args.predictions,
        args.trained_until,
        args.sample,
        args.reason,
        args.run_id,
        actor=f"cli:{os.environ.get('USER') or 'cli'}",
    )
    print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
    if "approve_with" in summary:  # manual promotion: only Airflow's approve_promotion asks a reviewer
        print(
            f"candidate v{summary['version']} awaits approval; to ask a reviewer: {summary['approve_with']}",
            file=sys.stderr,
        )


def cmd_init_config(args) -> None:
    """Write a starting dataset config from a model and a history file."""
    from driftline.handoff.starter import write_starting_config

    path = write_starting_config(args.model, args.history, args.output, args, overwrite=args.overwrite)
    print(f"wrote {path}: review every key (types, categories, schedule, paths), then commit it")


def cmd_score(args) -> None:
    """Score one interval without Airflow (same code path as the score_batch task); --dry-run:
    print what would be read, read nothing."""
    if args.dry_run:
        from driftline.sources.plan import interval_plan

        config = load_config(_config_path(args))
        print(json.dumps(interval_plan(config, _when(args.start), _when(args.end)), indent=2, ensure_ascii=False))
        return
    from driftline.pipelines import run_score_batch

    run_score_batch(
        _config_path(args), _when(args.start), _when(args.end), _run_id(args), args.model_version, _print_step
    )


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
        where = (
            f" [{row['interval_start']:%Y-%m-%d %H:%M}, {row['interval_end']:%Y-%m-%d %H:%M})"
            if row["interval_start"]
            else ""
        )
        print(f"#{row['alert_id']} {row['raised_at']:%Y-%m-%d %H:%M:%S} {row['severity']:<8} {row['kind']}{where}")
        print(f"    {row['message']}")
        if row["deliveries"]:
            print(f"    deliveries: {json.dumps(row['deliveries'])}")


def cmd_monitor(args) -> None:
    """monitor_drift without Airflow: its steps in its order (driftline.pipelines), then retrain on a trigger."""
    from driftline.pipelines import run_monitor_drift

    config_path, run_id = _config_path(args), _run_id(args)

    def retrain(triggered: dict) -> None:
        reason = f"monitor_drift: {triggered['reason']}"
        _retrain(
            config_path, reason, (None, None), args.labels_as_of, triggered["interval"], triggered["retrain_run_id"]
        )

    start, end = _when(args.start), _when(args.end)
    results = run_monitor_drift(config_path, start, end, run_id, None if args.no_retrain else retrain, _print_step)
    for triggered in results.get("list_retrains", []) if args.no_retrain else []:
        print(
            f"retrain triggered, not run (--no-retrain): driftline retrain --config {config_path} "
            f"--interval-end {triggered['interval']['end']} --reason {json.dumps('monitor_drift: ' + triggered['reason'])}"
        )


def _retrain(config_path: str, reason: str, window, labels_as_of, trigger_interval, run_id: str) -> None:
    from driftline.pipelines import run_retrain_model

    actor = f"cli:{os.environ.get('USER') or 'cli'}"
    run_retrain_model(config_path, reason, window, labels_as_of, trigger_interval, run_id, actor, _print_step)


def _print_step(step: str, result) -> None:
    print(json.dumps({step: result}, indent=2, default=str))


def cmd_retrain(args) -> None:
    """retrain_model's retrain branch without Airflow: its steps in its order (driftline.pipelines)."""
    trigger_interval = {"end": args.interval_end} if args.interval_end else None
    window = (args.window_start, args.window_end)
    _retrain(_config_path(args), args.reason, window, args.labels_as_of, trigger_interval, _run_id(args))


def cmd_realized(args) -> None:
    """retrain_model's update_realized_performance without Airflow."""
    from driftline.retraining.realized import update_realized_performance

    _print_step("update_realized_performance", update_realized_performance(_config_path(args), args.labels_as_of))


def cmd_rollback(args) -> None:
    """Make an earlier champion (default: the previous one) champion again, with a reason."""
    from driftline.retraining.lifecycle import rollback_champion

    actor = os.environ.get("USER") or "cli"
    summary = rollback_champion(
        _config_path(args), args.reason, args.to, actor=f"cli:{actor}", expected_champion=args.expect_champion
    )
    print(json.dumps(summary, indent=2))


def cmd_models(args) -> None:
    """Registered versions, aliases, promotion history and realized performance."""
    from driftline.devtools.demo_steps import print_lifecycle

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
    from driftline.devtools.demo import run_demo
    from driftline.devtools.demo_data import DEMO_CONCEPT_SHIFT_FROM, DemoPlan

    run_demo(
        _config_path(args),
        DemoPlan(rows_per_interval=args.rows, intervals=args.intervals, concept_shift_from=DEMO_CONCEPT_SHIFT_FROM),
    )


def cmd_airflow(args) -> None:
    """`airflow standalone` for this project: its dags/ and plugins/, a project-local AIRFLOW_HOME and its
    Postgres; `driftline airflow env`: the exports that make the `airflow` CLI reach that instance."""
    from driftline.devtools.standalone import cli_environment, instance_environment, run_standalone

    # No --config and no $DRIFTLINE_CONFIG, but $DRIFTLINE_CONFIGS: every dataset of that folder.
    folder = os.environ.get("DRIFTLINE_CONFIGS") if not (args.config or os.environ.get("DRIFTLINE_CONFIG")) else None
    if folder:
        from driftline.config import load_datasets

        datasets = load_datasets()
        if not datasets.loaded:
            raise datasets.error()
        config_path = datasets.loaded[0][0]  # the project root, database and Airflow home of the first
    else:
        config_path = _config_path(args)
    if args.action == "env":
        print(cli_environment(instance_environment(config_path, args.host, args.port, folder)[0]), end="")
        return
    run_standalone(config_path, args.host, args.port, args.timeout, configs_dir=folder)


def build_parser() -> argparse.ArgumentParser:
    """The `driftline` argument parser: one subcommand per cmd_* function."""
    parser = argparse.ArgumentParser(prog="driftline", description=__doc__)
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also third-party warnings and INFO log lines, and each alert's numbers (or set DRIFTLINE_DEBUG=1)",
    )
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

    p = sub.add_parser(
        "import-model", help="register a model trained elsewhere (LightGBM file, skops, MLflow) after a parity check"
    )
    _config_arg(p)
    p.add_argument(
        "model",
        help="model file (LightGBM text, .skops) or MLflow URI (models:/name/1, models:/name@alias, runs:/id/path)",
    )
    p.add_argument(
        "--predictions", required=True, help="the notebook's predictions for the sample: CSV/Parquet with key, score"
    )
    p.add_argument("--trained-until", required=True, help="newest event time the model trained on (ISO 8601)")
    p.add_argument("--sample", default=None, help="input rows the predictions are for (default: [source] history)")
    p.add_argument("--reason", default=None, help="recorded with the registration")
    p.add_argument("--run-id", default=None, help="recorded with the registration and its evaluations")
    p.set_defaults(func=cmd_import_model)

    p = sub.add_parser("init-config", help="write a starting dataset config from a model and a history file")
    p.add_argument(
        "--model", required=True, help="model file (LightGBM text or .skops) whose features the config lists"
    )
    p.add_argument("--history", required=True, help="labelled history file (CSV/Parquet): types and categories")
    p.add_argument("--output", required=True, help="config file to write (TOML)")
    p.add_argument("--name", required=True, help="dataset name (also the database schema)")
    p.add_argument("--entity-key", required=True, help="column that identifies a row")
    p.add_argument("--event-time", required=True, help="column with the event time")
    p.add_argument("--target", required=True, help="column with the label")
    p.add_argument("--task", choices=("binary", "regression"), default="binary", help="binary (default) or regression")
    p.add_argument(
        "--input",
        default=None,
        help="[source] input template (default data/<name>/input/{interval_start:%%Y-%%m-%%d}.csv)",
    )
    p.add_argument("--labels", default=None, help="[source] labels (default data/<name>/labels.parquet)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_init_config)

    p = sub.add_parser("score", help="score one interval without Airflow")
    _config_arg(p)
    p.add_argument("--start", required=True, help="interval start, ISO 8601 (UTC if no offset)")
    p.add_argument("--end", required=True, help="interval end, ISO 8601")
    p.add_argument(
        "--model-version", type=int, default=None, help="score with this registered version (default: the champion)"
    )
    p.add_argument(
        "--run-id", default=None, help="recorded with the attempt and its predictions (default cli__<UTC time>)"
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be read for the interval (files, or the query and its parameters); read and write nothing",
    )
    p.set_defaults(func=cmd_score)

    p = sub.add_parser(
        "monitor", help="monitor_drift for one scored interval without Airflow (then retrain on a trigger)"
    )
    _config_arg(p)
    p.add_argument("--start", required=True, help="interval start, ISO 8601 (UTC if no offset)")
    p.add_argument("--end", required=True, help="interval end, ISO 8601")
    p.add_argument(
        "--run-id", default=None, help="recorded with the drift results and decision (default cli__<UTC time>)"
    )
    p.add_argument(
        "--no-retrain", action="store_true", help="record the decision; on a trigger print the retrain command"
    )
    p.add_argument(
        "--labels-as-of", default=None, help="for a triggered retrain: labels observed by then (default now)"
    )
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("retrain", help="retrain_model without Airflow: train, validate, promote or reject, realized")
    _config_arg(p)
    p.add_argument("--reason", default="manual retrain from `driftline retrain`", help="recorded with the decision")
    p.add_argument("--window-start", default=None, help="ISO date; default retraining.training_days before the end")
    p.add_argument(
        "--window-end", default=None, help="ISO date; default --interval-end, else the newest labelled event"
    )
    p.add_argument("--interval-end", default=None, help="end of the interval that triggered this retrain")
    p.add_argument("--labels-as-of", default=None, help="ISO time; labels observed by then (default now)")
    p.add_argument(
        "--run-id", default=None, help="recorded with the candidate and the decision (default cli__<UTC time>)"
    )
    p.set_defaults(func=cmd_retrain)

    p = sub.add_parser("realized", help="recompute realized performance (late labels joined to predictions)")
    _config_arg(p)
    p.add_argument("--labels-as-of", default=None, help="ISO time; labels observed by then (default now)")
    p.set_defaults(func=cmd_realized)

    p = sub.add_parser("rollback", help="make the previous (or a given) champion version champion again")
    _config_arg(p)
    p.add_argument("--to", type=int, default=None, metavar="VERSION", help="target version; default: previous champion")
    p.add_argument(
        "--expect-champion",
        type=int,
        default=None,
        metavar="VERSION",
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

    p = sub.add_parser(
        "db-url", help="print the database URL in use, password masked (starts the embedded one if needed)"
    )
    _config_arg(p)
    p.add_argument("--reveal", action="store_true", help="print the password too (for `export DRIFTLINE_DB_URL=...`)")
    p.set_defaults(func=cmd_db_url)

    p = sub.add_parser("db-stop", help="stop the embedded PostgreSQL (pgserver) of this project, if it runs")
    _config_arg(p)
    p.set_defaults(func=cmd_db_stop)

    p = sub.add_parser(
        "airflow",
        help="run Airflow (standalone) with this project's DAGs, UI plugin and database; "
        "`airflow env`: print the exports that make the `airflow` CLI reach it",
    )
    _config_arg(p)
    p.add_argument(
        "action",
        nargs="?",
        choices=("run", "env"),
        default="run",
        help="run (default): start Airflow; env: print `export ...` lines for the `airflow` CLI of that instance "
        '(eval "$(driftline airflow env)"; `driftline airflow` also writes them to AIRFLOW_HOME/driftline-airflow.env)',
    )
    p.add_argument("--host", default="127.0.0.1", help="address the API server listens on (0.0.0.0: all)")
    p.add_argument(
        "--port",
        type=int,
        default=8080,
        help="API server port (default 8080); the log servers use PORT+713 and PORT+714",
    )
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for the UI before saying so")
    p.set_defaults(func=cmd_airflow)

    p = sub.add_parser("demo", help="embedded Postgres + synthetic data + train + score_batch through Airflow")
    _config_arg(p)
    p.add_argument("--rows", type=int, default=20_000, help="rows per daily interval (default 20000)")
    p.add_argument(
        "--intervals",
        type=int,
        default=4,
        help="daily intervals to generate, score and monitor (default 4; the fourth has a concept shift)",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from driftline.console import command_output

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with command_output(args.verbose or bool(os.environ.get("DRIFTLINE_DEBUG"))) as quiet_again:
        return _run(args, quiet_again)


def _run(args, quiet_again) -> int:
    """args.func(args), its failure mapped to a message and an exit code."""
    from driftline.airflow.connections import install

    try:
        install()  # Airflow connection ids in [database], the log masker, the alert channels
        quiet_again()  # Airflow's import configured logging its way
        args.func(args)
    except Exception as exc:  # noqa: BLE001 - the CLI's one mapping of the error tree to exit codes
        error = errors.translate(exc)
        if args.command in ALERTING_COMMANDS and not getattr(args, "dry_run", False):
            alert_cli_failure(args, error)
        if not isinstance(error, errors.DriftlineError):
            # A bug: one scrubbed line (its message may quote a row), the traceback only on request.
            if os.environ.get("DRIFTLINE_DEBUG"):
                raise
            print(
                f"driftline: unexpected error, please report it: {errors.safe_message(error)} "
                "(set DRIFTLINE_DEBUG=1 for the traceback, row data removed)",
                file=sys.stderr,
            )
            return 70  # EX_SOFTWARE
        # Expected failures carry a message that says what and what next: no traceback.
        if isinstance(error, errors.BadConfig):
            print(f"driftline: config error: {errors.safe_message(error)}", file=sys.stderr)
            return 2
        print(f"driftline: {errors.safe_message(error)}", file=sys.stderr)
        return 1
    return 0


# The commands that run a pipeline step: their failures alert like the task's would (`driftline alerts`).
ALERTING_COMMANDS = ("train", "import-model", "score", "monitor", "retrain", "realized", "rollback", "demo")


def alert_cli_failure(args, error: BaseException) -> int | None:
    """A task_failure alert (numbers.source = "cli") for a failed command; never raises.

    Skipped when the failing step already alerted (its error carries alert_id), as the task notifier
    does. Without a loadable config there is nowhere to store it: stderr says so.
    """
    from driftline.alerts import Origin, raise_alert, raised_from

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
    with raised_from(Origin(None, f"cli {args.command}", getattr(args, "run_id", None))):
        return raise_alert(
            config,
            "task_failure",
            "critical",
            message,
            {"source": "cli", "command": args.command, "error": type(error).__name__},
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
