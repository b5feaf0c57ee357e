"""monitor_drift's trigger policy, pure: what counts as drift, what is a breach, whether a breach
starts a retrain and why, and which interval a run covers. No I/O: plain values in, a Decision out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from driftline.config import DriftPolicy
from driftline.errors import BadConfig, BadInput
from driftline.intervals import utc


@dataclass(frozen=True)
class FeatureResult:
    column_name: str
    column_type: str  # numeric | categorical
    method: str
    statistic: float | None
    threshold: float | None
    drifted: bool  # Evidently's verdict for the method and threshold
    effect_size: float | None  # normed Wasserstein (numeric) or Jensen-Shannon distance (categorical)
    counted: bool  # drifted and effect_size >= effect_size_floor: what the policy counts


@dataclass(frozen=True)
class Decision:
    breach: bool
    trigger: bool
    reason: str
    numbers: dict


@dataclass(frozen=True)
class RetrainState:
    """The retrain DAG as the orchestrator sees it when monitor_drift decides: its id (named in the
    reasons), whether it is deployed and paused, and how many of its runs are running and queued."""

    dag_id: str
    deployed: bool = True
    paused: bool = False
    running: int = 0
    queued: int = 0


def effect_size(reference: pd.Series, current: pd.Series, column_type: str) -> float | None:
    """How far apart two samples are, independent of sample size (None when either side is empty).

    Numeric: Wasserstein distance in units of the reference's standard deviation (Evidently's
    "wasserstein" statistic). Categorical: Jensen-Shannon distance (base 2, in [0, 1]) of the
    category frequencies, missing values counted as a category.
    """
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    if column_type == "numeric":
        ref = pd.to_numeric(reference, errors="coerce").dropna().to_numpy(dtype="float64")
        cur = pd.to_numeric(current, errors="coerce").dropna().to_numpy(dtype="float64")
        if len(ref) == 0 or len(cur) == 0:
            return None
        return float(wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))
    ref_counts = reference.astype("object").fillna("<missing>").value_counts()
    cur_counts = current.astype("object").fillna("<missing>").value_counts()
    if ref_counts.empty or cur_counts.empty:
        return None
    categories = ref_counts.index.union(cur_counts.index)
    p = ref_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64")
    q = cur_counts.reindex(categories, fill_value=0).to_numpy(dtype="float64")
    return float(jensenshannon(p / p.sum(), q / q.sum(), base=2))


def counts_as_drift(drifted: bool, effect: float | None, floor: float) -> bool:
    """A drifted feature counts only when its effect size reaches the floor (p-values flag trivia at scale)."""
    return bool(drifted and effect is not None and effect >= floor)


def is_breach(policy: DriftPolicy, drifted_share: float, prediction_drift: float) -> bool:
    return drifted_share >= policy.drifted_share or prediction_drift >= policy.prediction_drift


def decide(
    policy: DriftPolicy,
    breach: bool,
    recent_breaches: list[bool],
    last_retrain_at: datetime | None,
    now: datetime,
    retrain: RetrainState,
    numbers: dict | None = None,
    last_trigger: tuple[datetime, str] | None = None,
    at: datetime | None = None,
    waiting_for: tuple[datetime, ...] = (),
    next_retrain_at: datetime | None = None,
) -> Decision:
    """Whether this interval starts a retrain, and why.

    recent_breaches: breach flags of the last `policy.window` intervals in data order, newest first,
    this one included (drift.order.plan). last_retrain_at, next_retrain_at and at are data times: the
    cooldown runs from the data the last retrain covered to this interval's end (`at`; `now` when not
    given), and back from a later retrain already recorded (next_retrain_at), never on the wall clock.
    waiting_for: earlier intervals that could still change a trigger (drift.order): the trigger is
    held until they are known. retrain: the retrain DAG's state; last_trigger: (when, run id) of our
    newest trigger, named in the words only. Rules in order: breach now, k of the last n, cooldown,
    held for earlier intervals, held while the retrain DAG cannot take a run (one running, one queued,
    not deployed). A hold is not a no: the interval is decided again (drift.decision) and triggers once
    the DAG can take the run, so which intervals trigger depends on the data only. A paused retrain
    DAG is named in the reason (`numbers["retrain_waiting"]`), never swallowed.
    """
    dag_id = retrain.dag_id
    persisted = sum(bool(b) for b in recent_breaches[: policy.window])
    numbers = {
        **(numbers or {}),
        "breaches_in_window": persisted,
        "breaches_required": policy.breaches,
        "window": policy.window,
        "active_retrain_runs": retrain.running,
        "queued_retrain_runs": retrain.queued,
        "retrain_paused": retrain.paused,
        "last_retrain_at": last_retrain_at.isoformat() if last_retrain_at else None,
        "cooldown_hours": policy.cooldown_hours,
    }
    what = _breach_text(policy, numbers)
    if not breach:
        return Decision(False, False, f"no breach: {what}", numbers)
    if persisted < policy.breaches:
        return Decision(
            True,
            False,
            f"breach not persistent: {persisted} of the last {policy.window} intervals breached, "
            f"{policy.breaches} required ({what})",
            numbers,
        )
    at = at or now
    cooldown = timedelta(hours=policy.cooldown_hours)
    if last_retrain_at is not None and at - last_retrain_at < cooldown:
        until = last_retrain_at + cooldown
        return Decision(
            True,
            False,
            f"breach, but in cooldown: the last retrain covered data up to {last_retrain_at:%Y-%m-%d %H:%M} UTC, "
            f"no trigger for an interval ending before {until:%Y-%m-%d %H:%M} UTC ({what})",
            numbers,
        )
    if next_retrain_at is not None and next_retrain_at - at < cooldown:
        numbers["next_retrain_at"] = next_retrain_at.isoformat()
        return Decision(
            True,
            False,
            f"breach, but in cooldown: a retrain was already triggered for data up to "
            f"{next_retrain_at:%Y-%m-%d %H:%M} UTC, less than {policy.cooldown_hours:g} h after this interval ({what})",
            numbers,
        )
    if waiting_for:
        numbers["waiting_for_intervals"] = [end.isoformat() for end in waiting_for]
        return Decision(
            True,
            False,
            f"breach persisted, but held: {len(waiting_for)} earlier interval(s) ending "
            f"{', '.join(f'{end:%Y-%m-%d %H:%M}' for end in waiting_for)} UTC not decided yet could change it; "
            f"decided again when they are ({what})",
            numbers,
        )
    waiting = _waiting_text(retrain, last_trigger)
    if waiting:
        numbers["retrain_waiting"] = waiting
    again = "decided again at the next monitor_drift run"
    if retrain.running > 0:
        return _held(f"breach persisted, but held: a {dag_id} run is already active; {again} ({what})", numbers)
    if retrain.queued > 0 and retrain.paused:
        return _held(f"breach persisted, but held: {waiting}; unpause {dag_id} to let it run ({what})", numbers)
    if retrain.queued > 0:
        return _held(f"breach persisted, but held: {waiting} (queued, not yet running); {again} ({what})", numbers)
    if not retrain.deployed:
        return _held(f"breach persisted, but held: DAG {dag_id} is not deployed; {again} ({what})", numbers)
    if retrain.paused:
        waiting = f"{dag_id} is paused: the run triggered now will wait until it is unpaused"
        numbers["retrain_waiting"] = waiting
    # The reason is carried to the retrain run and its promotion, and stored for good: it names the data
    # only. A paused DAG is transient state: numbers["retrain_waiting"] and its alert say it.
    return Decision(
        True, True, f"retrain: breach in {persisted} of the last {policy.window} intervals ({what})", numbers
    )


def already_triggered(policy: DriftPolicy, breach: bool, numbers: dict) -> Decision:
    """An interval decided again (monitored again after a rerun republished it, or asked again) whose
    data-order trigger is already recorded: the trigger stands, under the same retrain run id, which
    the orchestrator starts once (an existing run is not started again), whatever the retrain DAG is
    doing now. One trigger per interval, never turned into a hold."""
    what = _breach_text(policy, numbers)
    return Decision(
        breach,
        True,
        f"retrain: this interval's trigger stands (already recorded, one per interval) ({what})",
        {**numbers, "trigger_stands": True},
    )


def _held(reason: str, numbers: dict) -> Decision:
    """A trigger the retrain DAG cannot take now: recorded as held (numbers["held"]), decided again."""
    return Decision(True, False, reason, {**numbers, "held": "retrain_dag"})


def _waiting_text(retrain: RetrainState, last_trigger: tuple[datetime, str] | None) -> str | None:
    """What a queued retrain run is waiting for, in words (None when nothing is queued)."""
    if retrain.queued <= 0:
        return None
    run = (
        f"the run triggered on {last_trigger[0]:%Y-%m-%d %H:%M} UTC ({last_trigger[1]})"
        if last_trigger
        else f"{retrain.queued} queued run(s)"
    )
    if retrain.paused:
        return f"{retrain.dag_id} is paused: {run} is waiting"
    return f"a {retrain.dag_id} run is waiting: {run}"


def interval_to_monitor(start: str | None, end: str | None, events: list[dict]) -> dict:
    """The interval a monitor_drift run covers: the manual run's Params, else its asset events' bounds.

    events: the triggering asset events' extra (score_batch's publish summary) with their partition
    key. A partitioned run carries the events of one interval; bounds that disagree are refused.
    """
    if start or end:
        if not (start and end):
            raise BadConfig("a manual monitor_drift run needs both interval_start and interval_end (ISO 8601)")
        try:
            bounds = (utc(start), utc(end))
        except BadInput as exc:
            raise BadConfig(f"interval_start/interval_end are not ISO 8601 times: {exc}") from None
        if bounds[0] >= bounds[1]:
            raise BadConfig(f"interval_start {start} is not before interval_end {end}")
    else:
        found = {
            (utc(e["interval_start"]), utc(e["interval_end"]))
            for e in events
            if e.get("interval_start") and e.get("interval_end")
        }
        if not found:
            raise BadConfig(
                "no interval to monitor: no score_batch predictions event with interval bounds triggered this run; "
                "trigger it by hand with interval_start and interval_end"
            )
        if len(found) > 1:
            raise BadInput(f"the triggering events name {len(found)} different intervals; expected one per run")
        bounds = found.pop()
    return {"start": bounds[0].isoformat(), "end": bounds[1].isoformat()}


def _breach_text(policy: DriftPolicy, numbers: dict) -> str:
    share = numbers.get("drifted_share")
    prediction = numbers.get("prediction_drift")
    if share is None or prediction is None:
        return "no numbers"
    text = (
        f"drifted share {share:.2f} (threshold {policy.drifted_share:.2f}, effect size >= "
        f"{policy.effect_size_floor:g}), prediction drift {prediction:.3f} (threshold {policy.prediction_drift:g})"
    )
    # The estimated-metric rule names itself when it is what breached (estimation.estimated_breach).
    return f"{text}; {numbers['estimated_breach']}" if numbers.get("estimated_breach") else text
