"""Two hops from a DAG task to what it does: the DAG task calls its adapter in driftline.airflow.tasks
(hop 1), and the adapter calls the domain function its pipeline step declares (hop 2), whose body
holds the COPY, the breach rule or the champion change. Read with ast, nothing imported, so the
property cannot regress silently (docs/internals/layout.md lists the same chains)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

import driftline
from driftline.pipelines import MONITOR_DRIFT, RETRAIN_MODEL, SCORE_BATCH

PACKAGE = Path(driftline.__file__).resolve().parent
DAGS = Path(__file__).resolve().parents[2] / "dags"
TASKS = "driftline.airflow.tasks"
# A step whose adapter in tasks.py has another name than the step.
ADAPTER_OF = {"request_approval": "approval_request"}

# (DAG file, task = adapter, the domain function, the calls its body makes that a newcomer looks for)
WHERE_TO_LOOK = [
    ("score_batch", "score_interval", "driftline.batch:score_interval", {"run.write"}),  # the COPY
    ("monitor_drift", "monitor_interval", "driftline.drift.monitor:monitor_interval", {"is_breach"}),
    ("monitor_drift", "decide_retrain", "driftline.drift.decision:decide_retrain", {"decide"}),  # drift.policy
    (
        "retrain_model",
        "decide_promotion",
        "driftline.retraining.lifecycle:decide_promotion",
        {"registry.promote", "registry.reject"},
    ),
    ("retrain_model", "rollback_champion", "driftline.retraining.lifecycle:rollback_champion", {"registry.rollback"}),
]


def _source(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@functools.cache
def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    """Every function defined in the file, nested ones (a DAG's @task functions) included, by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)) is not None:
        return f"{base}.{node.attr}"
    return None


def _called(function: ast.FunctionDef) -> set[str]:
    """What the function's body calls (`name`, `module.name`), or hands to run_step to call."""
    found = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            found.add(_dotted(node.func))
            if _dotted(node.func) == "run_step" and node.args:
                found.add(_dotted(node.args[0]))
    return found - {None}


def _imported(function: ast.FunctionDef) -> dict[str, str]:
    """{local name: "module:function"} of the `from module import function [as name]` in the body."""
    return {
        alias.asname or alias.name: f"{node.module}:{alias.name}"
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def _calls_function(function: ast.FunctionDef, target: str) -> bool:
    imported = _imported(function)
    return any(imported.get(name) == target for name in _called(function))


def _adapter(name: str) -> ast.FunctionDef:
    return _functions(_source(TASKS))[name]


@pytest.mark.parametrize(
    "pipeline, step",
    [
        (pipeline, step)
        for pipeline in (SCORE_BATCH, MONITOR_DRIFT, RETRAIN_MODEL)
        for step in pipeline.steps
        if step.calls
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_each_adapter_calls_the_domain_function_its_step_declares(pipeline, step):
    adapter = ADAPTER_OF.get(step.name, step.name)
    assert _calls_function(_adapter(adapter), step.calls), (
        f"{TASKS}.{adapter} does not call {step.calls} itself (declared by {pipeline.name}.{step.name}): "
        "a newcomer should reach the domain function in one hop from the adapter"
    )


@pytest.mark.parametrize("dag, task, domain, looked_for", WHERE_TO_LOOK, ids=lambda v: v if isinstance(v, str) else "")
def test_the_copy_the_breach_rule_and_the_champion_change_are_two_hops_from_a_dag_task(dag, task, domain, looked_for):
    dag_task = _functions(DAGS / f"{dag}.py")[task]
    assert _calls_function(dag_task, f"{TASKS}:{task}"), f"dags/{dag}.py {task} does not call {TASKS}.{task}"
    assert _calls_function(_adapter(task), domain), f"{TASKS}.{task} does not call {domain} itself"
    module, name = domain.split(":")
    missing = looked_for - _called(_functions(_source(module))[name])
    assert not missing, f"{domain} no longer calls {sorted(missing)} in its own body (it moved a hop further)"


def test_the_checks_can_tell_a_direct_call_from_an_indirect_one():
    tree = ast.parse(
        "def adapter():\n    from m import f as g\n    from m import h\n    return run_step(g, 1)\n"
        "def other():\n    from m import f\n    return wrapper(f)\n"
    )
    adapter, other = (node for node in tree.body if isinstance(node, ast.FunctionDef))
    assert _calls_function(adapter, "m:f") and not _calls_function(adapter, "m:h")
    assert not _calls_function(other, "m:f")
