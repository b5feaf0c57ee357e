"""monitor_drift's render_report task: the Evidently HTML report of a monitored interval, off the
decision's path.

monitor_interval stores the interval's drift sample beside where the report goes; this task reads
it with the model's reference, runs Evidently (seconds of import alone) and writes the HTML
atomically. decide_retrain never waits for it: the decision reads drift.statistics' results, which
monitor_interval stored. A failed or late report leaves the metrics and the decision as they are.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path

from psycopg import sql

from driftline import db
from driftline.config import DatasetConfig, load_config
from driftline.drift.errors import DriftError
from driftline.intervals import utc

log = logging.getLogger(__name__)


def sample_path(report: Path) -> Path:
    """Where monitor_interval keeps the interval's drift sample for its report."""
    return report.with_name(report.stem + ".sample.parquet")


def render_report(config_path: str, interval_start: datetime, interval_end: datetime) -> dict:
    """Render the monitored interval's Evidently report to its report_path; returns path and seconds."""
    import pandas as pd

    from driftline.drift.reference import ensure_reference
    from driftline.registry import load_model

    config = load_config(config_path)
    start, end = utc(interval_start), utc(interval_end)
    url = db.resolve_db_url(config.db_url, config.db_conn_id, config.root)
    with db.connect(url, autocommit=True) as conn:
        version, report = _monitored(conn, config, start, end)
        model = load_model(
            conn, config.db_schema, version, scoring_only=True, pinned_pickles=config.handoff.pickle_sha256
        )
        reference = pd.read_parquet(ensure_reference(conn, config, model))
    sample = sample_path(report)
    if not sample.is_file():
        raise DriftError(
            f"the drift sample of [{start.isoformat()}, {end.isoformat()}) is missing ({sample}): "
            "rerun monitor_interval for the interval, then this task"
        )
    t = time.perf_counter()
    from driftline.drift.report import run_report, save_html
    from driftline.drift.summary import refresh_report_summary

    save_html(run_report(config, reference, pd.read_parquet(sample)), report)
    seconds = time.perf_counter() - t
    # driftline's summary on top, with the decision when decide_retrain has taken it (else
    # decide_retrain, finishing later, puts it there: both read the stored state).
    with db.connect(url, autocommit=True) as conn:
        refresh_report_summary(conn, config, start, end)
    log.info("rendered the drift report of [%s, %s) in %.1f s: %s", start.isoformat(), end.isoformat(), seconds, report)
    return {"report_path": str(report), "seconds": round(seconds, 3)}


def _monitored(conn, config: DatasetConfig, start: datetime, end: datetime) -> tuple[int, Path]:
    row = conn.execute(
        sql.SQL("SELECT model_version, report_path FROM {} WHERE interval_start = %s AND interval_end = %s").format(
            db.table(config.db_schema, "drift_intervals")
        ),
        (start, end),
    ).fetchone()
    if row is None:
        raise DriftError(
            f"interval [{start.isoformat()}, {end.isoformat()}) has not been monitored; run monitor_interval first"
        )
    return int(row[0]), Path(row[1])
