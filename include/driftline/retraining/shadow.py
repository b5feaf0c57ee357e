"""Shadow scoring: with retraining.shadow on, the latest unpromoted candidate scores each interval's
scored rows beside the champion, into shadow_predictions (never read by consumers)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pyarrow as pa
from psycopg import sql

from driftline import db, registry
from driftline.config import load_config
from driftline.errors import Skipped
from driftline.intervals import utc
from driftline.retraining.windows import connect, scored_input_rows
from driftline.scoring.engine import predict
from driftline.scoring.safeguards import predicted_class


def score_shadow(config_path: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict:
    """With retraining.shadow on, score the interval's scored rows with the latest unpromoted candidate;
    errors.Skipped when shadow scoring is off or no candidate is pending."""
    config = load_config(config_path)
    if not config.retraining.shadow:
        raise Skipped("shadow scoring is off (retraining.shadow = false)")
    start, end = utc(interval_start), utc(interval_end)
    with connect(config, autocommit=False) as conn:
        version = registry.latest_unpromoted_version(conn, config.db_schema)
        if version is None:
            raise Skipped("no candidate or rejected version newer than the champion")
        model = registry.load_model(conn, config.db_schema, version, pinned_pickles=config.handoff.pickle_sha256)
        rows = scored_input_rows(conn, config, start, end)
        scores = predict(model, rows, config)
        classes = predicted_class(scores, config)
        frame = pd.DataFrame(
            {
                "interval_start": start.isoformat(),
                "interval_end": end.isoformat(),
                "model_version": version,
                "entity_key": rows[config.entity_key].astype("string"),
                "score": scores,
                "predicted_class": classes if classes is not None else pd.array([None] * len(rows), dtype="Int16"),
                "run_id": run_id,
            }
        )
        shadow = db.table(config.db_schema, "shadow_predictions")
        # Same contract as predictions: a rerun replaces the interval's shadow rows in one transaction.
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE interval_start = %s AND interval_end = %s").format(shadow), (start, end)
        )
        db.copy_csv(
            conn, shadow, list(frame.columns), db.arrow_to_csv_bytes(pa.Table.from_pandas(frame, preserve_index=False))
        )
        conn.commit()
    return {"shadow_version": version, "rows": int(len(frame))}
