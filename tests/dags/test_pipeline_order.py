"""Each DAG runs its pipeline's declared steps (driftline.pipelines): the same tasks, each after the
same upstream steps, in an order the declaration lists topologically; the CLI runs that list."""

from __future__ import annotations

import pytest

from driftline.pipelines import PIPELINES
from tests.dags.test_dag_integrity import DEMO, dag_bag  # noqa: F401, F811 - the fixture

AFTER_SKIP_RULES = {"none_failed", "none_failed_min_one_success"}


@pytest.mark.parametrize("role", sorted(PIPELINES))
def test_each_dag_runs_its_declared_steps_in_their_order(dag_bag, role):  # noqa: F811
    pipeline, dag = PIPELINES[role], dag_bag.dags[f"{DEMO}__{role}"]
    declared = {step.name: set(step.after) for step in pipeline.steps}
    wired = {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}
    assert wired == declared
    # The declared list is an order the DAG can run in: every step after the steps it waits on.
    seen: set[str] = set()
    for step in pipeline.steps:
        assert set(step.after) <= seen, f"{step.name} is listed before {set(step.after) - seen}"
        seen.add(step.name)
    # A step that runs after a skipped one in the DAG does so in the CLI too.
    for task in dag.tasks:
        assert (task.trigger_rule in AFTER_SKIP_RULES) == pipeline.step(task.task_id).after_skip, task.task_id


def test_the_cli_runs_every_declared_step_and_skips_like_airflow():
    from driftline.errors import Skipped
    from driftline.pipelines import Pipeline, Step, run

    pipeline = Pipeline("p", (Step("a"), Step("b", ("a",)), Step("c", ("b",)), Step("d", ("a", "b"), after_skip=True)))

    def skip(results):
        raise Skipped("nothing to do")

    seen = []
    results = run(
        pipeline, {"a": lambda r: 1, "b": skip, "c": lambda r: 3, "d": lambda r: 4}, lambda *s: seen.append(s)
    )
    assert results == {"a": 1, "d": 4}
    assert [name for name, _ in seen] == ["a", "b", "c", "d"] and seen[1][1] == {"skipped": "nothing to do"}
    with pytest.raises(ValueError):
        run(pipeline, {"a": lambda r: 1}, print)
