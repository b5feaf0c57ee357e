"""Synthetic card transactions for the demo config: labelled history, daily inputs, late labels.

Deterministic (seeded), so running the demo twice produces the same files, the same model and
the same predictions. Each daily input carries a few bad rows of the kinds production sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from driftline.config import DatasetConfig

MERCHANTS = ["grocery", "electronics", "travel", "restaurants", "fuel", "online_services", "jewelry"]
MERCHANT_RISK = dict(zip(MERCHANTS, [-0.6, 0.7, 0.5, -0.4, -0.3, 0.4, 1.1]))
CHANNELS = ["card_present", "online", "contactless"]
CHANNEL_RISK = dict(zip(CHANNELS, [-0.5, 0.8, -0.2]))
# Concept shift: the same transactions, another label rate. Fraud moves from jewelry and
# electronics to grocery and fuel, and the amount stops mattering; no feature moves with it.
SHIFTED_MERCHANT_RISK = dict(zip(MERCHANTS, [0.9, -0.6, 0.5, -0.4, 0.7, 0.4, -0.6]))
# `driftline demo`'s fourth day (0-based 3) is the concept shift; with --intervals 3 or fewer there is none.
DEMO_CONCEPT_SHIFT_FROM = 3


@dataclass(frozen=True)
class DemoPlan:
    history_start: datetime = datetime(2026, 10, 1, tzinfo=timezone.utc)
    history_days: int = 31
    history_rows_per_day: int = 4_000
    first_interval: datetime = datetime(2026, 11, 1, tzinfo=timezone.utc)
    intervals: int = 3
    rows_per_interval: int = 20_000
    seed: int = 7
    # From this interval (0-based) on: no feature drift, but the label relationship changes (a
    # concept shift the estimate cannot see and the realized metric catches); None: never. `driftline
    # demo` sets DEMO_CONCEPT_SHIFT_FROM; plans built elsewhere (tests) keep the drift-only days.
    concept_shift_from: int | None = None

    def interval_bounds(self) -> list[tuple[datetime, datetime]]:
        day = timedelta(days=1)
        return [(self.first_interval + i * day, self.first_interval + (i + 1) * day) for i in range(self.intervals)]


def transactions(
    rng: np.random.Generator, start: datetime, rows: int, prefix: str, drift: float = 0.0, concept_shift: bool = False
) -> pd.DataFrame:
    """One day of transactions; drift > 0 shifts amounts and channel mix (for drift monitoring);
    concept_shift labels the same kind of rows by another relationship (the random draws are the same)."""
    seconds = np.sort(rng.integers(0, 86_400, rows))
    frame = pd.DataFrame(
        {
            "transaction_id": [f"{prefix}-{i:07d}" for i in range(rows)],
            "event_time": pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s"),
            "amount": np.round(rng.lognormal(3.6 + drift, 1.0, rows), 2).clip(0.5, 49_000),
            "account_age_days": rng.integers(1, 7_000, rows).astype("float64"),
            "transactions_last_24h": rng.poisson(3 + 4 * drift, rows).astype("float64"),
            "distance_from_home_km": np.round(rng.exponential(15, rows), 1),
            "hour_of_day": (seconds // 3600).astype("float64"),
            "merchant_category": rng.choice(MERCHANTS, rows, p=[0.3, 0.1, 0.08, 0.2, 0.15, 0.12, 0.05]),
            "channel": rng.choice(CHANNELS, rows, p=[0.5 - 0.2 * drift, 0.3 + 0.2 * drift, 0.2]),
        }
    )
    # Missing values where the config allows them.
    frame.loc[rng.random(rows) < 0.02, "distance_from_home_km"] = np.nan
    merchant_risk = SHIFTED_MERCHANT_RISK if concept_shift else MERCHANT_RISK
    logit = (
        -4.2
        + (0.0 if concept_shift else 0.55) * np.log1p(frame["amount"] / 40)
        - 0.25 * np.log1p(frame["account_age_days"] / 30)
        + 0.12 * frame["transactions_last_24h"]
        + 0.35 * np.log1p(frame["distance_from_home_km"].fillna(0) / 20)
        + 0.5 * ((frame["hour_of_day"] < 5) | (frame["hour_of_day"] > 22))
        + frame["merchant_category"].map(merchant_risk)
        + frame["channel"].map(CHANNEL_RISK)
    )
    frame["is_fraud"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int8")
    return frame


def _inject_bad_rows(frame: pd.DataFrame, rng: np.random.Generator, start: datetime) -> pd.DataFrame:
    """A handful of rows production pipelines really receive. Returned as text columns for CSV."""
    text = frame.astype({c: "string" for c in frame.columns if c != "event_time"})
    text["event_time"] = frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    picks = rng.choice(len(frame), 60, replace=False)
    groups = np.array_split(picks, 6)
    text.loc[groups[0], "amount"] = pd.NA  # null where not allowed
    text.loc[groups[1], "amount"] = "-25.00"  # below the minimum
    text.loc[groups[2], "merchant_category"] = "crypto_exchange"  # category never seen in training
    text.loc[groups[3], "amount"] = "twelve"  # text in a numeric column
    text.loc[groups[4], "hour_of_day"] = "31"  # out of range
    text.loc[groups[5], "event_time"] = (start - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")  # late row
    return text


def write_demo_data(config: DatasetConfig, plan: DemoPlan = DemoPlan()) -> dict[str, object]:
    """Write history, daily inputs and late labels where the config says; returns their locations."""
    rng = np.random.default_rng(plan.seed)
    history = pd.concat(
        [
            transactions(rng, plan.history_start + timedelta(days=d), plan.history_rows_per_day, f"h{d:03d}")
            for d in range(plan.history_days)
        ],
        ignore_index=True,
    )
    history_path = Path(config.resolve_location(config.history_uri))
    history_path.parent.mkdir(parents=True, exist_ok=True)
    history.to_parquet(history_path, index=False)

    inputs, labels = [], []
    for number, (start, end) in enumerate(plan.interval_bounds()):
        shifted = plan.concept_shift_from is not None and number >= plan.concept_shift_from
        drift = 0.0 if shifted else 0.25 * number
        day = transactions(rng, start, plan.rows_per_interval, f"{start:%Y%m%d}", drift, concept_shift=shifted)
        labels.append(
            pd.DataFrame(
                {
                    "transaction_id": day["transaction_id"],
                    "is_fraud": day["is_fraud"],
                    "observed_at": day["event_time"] + pd.Timedelta(days=3),
                }
            )
        )
        path = Path(config.input_location(start, end))
        path.parent.mkdir(parents=True, exist_ok=True)
        text = _inject_bad_rows(day.drop(columns=["is_fraud"]), rng, start)
        text.to_csv(path, index=False)
        with path.open("a", encoding="utf-8") as handle:  # one malformed line (an extra field)
            handle.write(f"{start:%Y%m%d}-broken,{start:%Y-%m-%dT%H:%M:%SZ},12.5,100,1,2,3,grocery,online,EXTRA\n")
        inputs.append(str(path))
    labels_path = Path(config.resolve_location(config.labels_uri))
    pd.concat(labels, ignore_index=True).to_parquet(labels_path, index=False)
    return {"history": str(history_path), "history_rows": len(history), "inputs": inputs, "labels": str(labels_path)}
