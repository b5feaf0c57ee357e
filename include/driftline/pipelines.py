"""Each pipeline's steps, in the one order the DAG files, the CLI and the demo all run.

A pipeline is an ordered list of named steps; a step names the steps it runs after (its upstream
tasks in the DAG) and the domain function it calls. The DAG files wire the same steps as Airflow
tasks (tests/dags checks each DAG's tasks and their upstreams against this list); `run` runs them
in this process for the CLI (`driftline score`, `monitor`, `retrain`), with Airflow's semantics
where it matters: a step raising errors.Skipped is skipped, and so are the steps after it unless
they run after a skip (`after_skip`: Airflow's none_failed trigger rules).

Standard library only at import: DAG files may read the declarations at parse time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Step:
    """One step: its name (the DAG's task id), the steps it runs after, and the function it calls
    ("module:function"; None for a step only an orchestrator needs, such as a branch or a gate)."""

    name: str
    after: tuple[str, ...] = ()
    calls: str | None = None
    after_skip: bool = False  # runs when an upstream step was skipped (at least one succeeded or none ran)


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)


SCORE_BATCH = Pipeline(
    "score_batch",
    (
        Step("prepare_database", calls="driftline.batch:prepare_database"),
        Step("plan_partitions", ("prepare_database",), "driftline.partitions:plan_partitions"),
        Step("score_interval", ("plan_partitions",), "driftline.batch:score_interval"),  # run.write: the COPY
        Step("score_partition", ("plan_partitions",), "driftline.partitions:score_partition"),
        Step("publish_partitions", ("plan_partitions", "score_partition"), "driftline.partitions:publish_partitions"),
        Step("announce_predictions", ("score_interval", "publish_partitions"), "driftline.batch:check_interval", True),
        Step(
            "update_realized_performance",
            ("announce_predictions",),
            "driftline.retraining.realized:update_realized_performance",
        ),
        Step("score_shadow", ("score_interval",), "driftline.retraining.shadow:score_shadow"),
    ),
)

MONITOR_DRIFT = Pipeline(
    "monitor_drift",
    (
        Step("prepare_database", calls="driftline.batch:prepare_database"),
        Step("choose_interval", ("prepare_database",), "driftline.drift.policy:interval_to_monitor"),
        Step("monitor_interval", ("choose_interval",), "driftline.drift.monitor:monitor_interval"),
        Step(
            "estimate_performance",
            ("choose_interval", "monitor_interval"),
            "driftline.drift.performance:estimate_interval",
        ),
        # The breach rule: drift.policy.decide, applied in data order by drift.decision.decide_retrain.
        Step(
            "decide_retrain",
            ("choose_interval", "estimate_performance"),
            "driftline.drift.decision:decide_retrain",
            True,
        ),
        Step("list_retrains", ("decide_retrain",)),
        Step("trigger_retrain", ("list_retrains",)),  # starts retrain_model once per triggering interval
        # The Evidently HTML report, beside the decision: nothing waits for it (drift.html).
        Step("render_report", ("choose_interval", "monitor_interval"), "driftline.drift.html:render_report"),
    ),
)

RETRAIN_MODEL = Pipeline(
    "retrain_model",
    (
        Step("prepare_database", calls="driftline.batch:prepare_database"),
        Step("choose_action", ("prepare_database",)),  # retrain, or roll back
        # Conf candidate_version: train nothing, hand on that registered candidate (retraining.pending).
        Step("train_candidate", ("choose_action",), "driftline.retraining.lifecycle:train_candidate"),
        Step("validate_candidate", ("train_candidate",), "driftline.retraining.lifecycle:validate_candidate"),
        Step("request_approval", ("validate_candidate",), "driftline.retraining.review:approval_request"),
        Step("approve_promotion", ("request_approval",)),  # a person, in Airflow only
        Step("approved", ("approve_promotion",)),
        # The champion change: registry.promote / registry.reject, called by lifecycle.decide_promotion.
        Step(
            "decide_promotion",
            ("validate_candidate", "approved"),
            "driftline.retraining.lifecycle:decide_promotion",
            True,
        ),
        Step("rollback_champion", ("choose_action",), "driftline.retraining.lifecycle:rollback_champion"),
        Step(
            "apply_retention",
            ("decide_promotion", "rollback_champion"),
            "driftline.retraining.lifecycle:apply_retention",
            True,
        ),
        Step(
            "update_realized_performance",
            ("apply_retention",),
            "driftline.retraining.realized:update_realized_performance",
        ),
    ),
)

PIPELINES = {pipeline.name: pipeline for pipeline in (SCORE_BATCH, MONITOR_DRIFT, RETRAIN_MODEL)}


def dag_id(dataset: str, role: str) -> str:
    """The id of one dataset's DAG: `<dataset>__<role>`, role being the DAG file's name
    (score_batch, monitor_drift, retrain_model)."""
    return f"{dataset}__{role}"


Report = Callable[[str, Any], None]


def run(pipeline: Pipeline, actions: dict[str, Callable[[dict], Any]], report: Report) -> dict:
    """Run pipeline's steps in their declared order in this process: actions[name](results so far)
    per step; report(name, result) sees each result, or {"skipped": why}. Returns the results."""
    from driftline.errors import Skipped

    if set(actions) != {step.name for step in pipeline.steps}:
        raise ValueError(f"{pipeline.name}: actions for {sorted(actions)}, steps {[s.name for s in pipeline.steps]}")
    results: dict[str, Any] = {}
    skipped: set[str] = set()
    for step in pipeline.steps:
        upstream_skipped = [name for name in step.after if name in skipped]
        if upstream_skipped and (not step.after_skip or len(upstream_skipped) == len(step.after)):
            skipped.add(step.name)
            report(step.name, {"skipped": f"after skipped {', '.join(upstream_skipped)}"})
            continue
        try:
            results[step.name] = actions[step.name](results)
        except Skipped as exc:
            skipped.add(step.name)
            report(step.name, {"skipped": str(exc)})
            continue
        report(step.name, results[step.name])
    return results


# -- steps the DAG and the CLI share that decide between the two scoring paths ---------------------


def scored_whole(partitions: list[dict]) -> None:
    """The single-task path's guard: Skipped when partitions score the interval."""
    from driftline.errors import Skipped

    if partitions:
        raise Skipped(f"scored by {len(partitions)} partitions (run_key {partitions[0]['run_key']})")


def scored_in_parts(partitions: list[dict]) -> int:
    """The partitioned path's guard: the partitions' run key; Skipped when the interval was scored in one task."""
    from driftline.errors import Skipped

    if not partitions:
        raise Skipped("scored in one task by score_interval")
    return partitions[0]["run_key"]


# -- the CLI's bindings: each step of a pipeline on the values of one command line ---------------


def run_score_batch(
    config_path: str, start: datetime, end: datetime, run_id: str, model_version: int | None, report: Report
) -> dict:
    """score_batch in this process (`driftline score`): the DAG's steps, partitions scored one after another."""
    from driftline import batch, partitions
    from driftline.retraining.realized import update_realized_performance
    from driftline.retraining.shadow import score_shadow

    def score_whole(results: dict) -> dict:
        scored_whole(results["plan_partitions"])
        return batch.score_interval(config_path, start, end, run_id, model_version)

    def score_each(results: dict) -> list[dict]:
        scored_in_parts(results["plan_partitions"])
        return [partitions.score_partition(config_path, start, end, run_id, p) for p in results["plan_partitions"]]

    def publish_parts(results: dict) -> dict:
        run_key = scored_in_parts(results["plan_partitions"])
        return partitions.publish_partitions(config_path, start, end, run_id, run_key)

    return run(
        SCORE_BATCH,
        {
            "prepare_database": lambda r: batch.prepare_database(config_path),
            "plan_partitions": lambda r: partitions.plan_partitions(config_path, start, end, run_id, model_version)[
                "partitions"
            ],
            "score_interval": score_whole,
            "score_partition": score_each,
            "publish_partitions": publish_parts,
            "announce_predictions": lambda r: batch.check_interval(config_path, start, end),
            "update_realized_performance": lambda r: update_realized_performance(config_path, None),
            "score_shadow": lambda r: score_shadow(config_path, start, end, run_id),
        },
        report,
    )


def run_monitor_drift(
    config_path: str,
    start: datetime,
    end: datetime,
    run_id: str,
    retrain: Callable[[dict], Any] | None,
    report: Report,
) -> dict:
    """monitor_drift in this process (`driftline monitor`): nothing else can be retraining, and
    retrain(decision) stands for the retrain_model run a triggering decision starts (None: none starts)."""

    def retrain_run_id(interval_end: datetime) -> str:
        return f"{run_id}__retrain__{interval_end.isoformat()}"

    from driftline.batch import prepare_database
    from driftline.drift.decision import decide_retrain
    from driftline.drift.html import render_report
    from driftline.drift.monitor import monitor_interval
    from driftline.drift.performance import estimate_interval
    from driftline.drift.policy import RetrainState, interval_to_monitor

    state = RetrainState(dag_id="driftline retrain", deployed=True, paused=False, running=0, queued=0)
    return run(
        MONITOR_DRIFT,
        {
            "prepare_database": lambda r: prepare_database(config_path),
            "choose_interval": lambda r: interval_to_monitor(start.isoformat(), end.isoformat(), []),
            "monitor_interval": lambda r: monitor_interval(config_path, start, end, run_id),
            "estimate_performance": lambda r: estimate_interval(config_path, start, end, run_id),
            "decide_retrain": lambda r: decide_retrain(
                config_path, start, end, run_id, state, retrains=retrain is not None, retrain_run_id=retrain_run_id
            ),
            "list_retrains": lambda r: r["decide_retrain"]["retrains"],
            "trigger_retrain": lambda r: [retrain(d) for d in r["list_retrains"]] if retrain else [],
            "render_report": lambda r: render_report(config_path, start, end),
        },
        report,
    )


def run_retrain_model(
    config_path: str,
    reason: str,
    window: tuple[Any, Any],
    labels_as_of: Any,
    trigger_interval: Any,
    run_id: str,
    actor: str,
    report: Report,
    candidate: dict | None = None,
) -> dict:
    """retrain_model's retrain branch in this process (`driftline retrain`). No person can be asked
    here: with retraining.promotion = "manual" a candidate that passed stops at approve_promotion
    (RetrainingError); the candidate and its evaluation stay recorded. candidate: one already
    registered (`driftline import-model`), which train_candidate hands on instead of training."""
    from driftline.batch import prepare_database
    from driftline.errors import Skipped
    from driftline.retraining import lifecycle
    from driftline.retraining.errors import RetrainingError
    from driftline.retraining.realized import update_realized_performance
    from driftline.retraining.review import approval_request

    def approve(results: dict) -> None:
        validation = results["validate_candidate"]
        if results["request_approval"] is None:
            raise Skipped("no reviewer needed (auto promotion, a failed guardrail or the same artifact)")
        raise RetrainingError(
            f"retraining.promotion is manual: candidate v{validation['version']} passed every guardrail "
            f"(evaluation {validation['evaluation_id']}) and needs a reviewer's approval, which only retrain_model's "
            "approve_promotion task in Airflow records; trigger retrain_model there"
        )

    def rollback(results: dict) -> None:
        raise Skipped("action is retrain")

    return run(
        RETRAIN_MODEL,
        {
            "prepare_database": lambda r: prepare_database(config_path),
            "choose_action": lambda r: "train_candidate",
            "train_candidate": lambda r: (
                candidate or lifecycle.train_candidate(config_path, reason, *window, labels_as_of, trigger_interval)
            ),
            "validate_candidate": lambda r: lifecycle.validate_candidate(config_path, r["train_candidate"], run_id),
            "request_approval": lambda r: approval_request(config_path, r["validate_candidate"]),
            "approve_promotion": approve,
            "approved": lambda r: None,
            "decide_promotion": lambda r: lifecycle.decide_promotion(
                config_path, r["validate_candidate"], reason, run_id, None, actor=actor
            ),
            "rollback_champion": rollback,
            "apply_retention": lambda r: lifecycle.apply_retention(config_path),
            "update_realized_performance": lambda r: update_realized_performance(config_path, labels_as_of),
        },
        report,
    )
