"""The package's arrows go one way: cli/devtools -> airflow adapter -> domain, no import cycles, no
module over 400 lines without a stated reason. Read from the source with ast (module-level and
function-local imports alike), so nothing is imported to check it."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import driftline

PACKAGE = Path(driftline.__file__).resolve().parent
ADAPTER = "driftline.airflow"
OUTER = ("driftline.airflow", "driftline.devtools", "driftline.cli")  # what domain code never imports
# `driftline import-model` sits above the domain packages: only OUTER may import it.
HANDOFF = "driftline.handoff"
MAX_LINES = 400
# A long module states why on its first line, e.g. "# Over 400 lines: the whole GE-compatible kernel set."
REASON_LINE = re.compile(r"^#.*\b(over \d+ lines|long)\b", re.IGNORECASE)
# Or here, with the reason. Keep it short: splitting is usually the better answer.
LONG_MODULES_ALLOWED: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    is_package = _modules()[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


@functools.cache
def _imports(module: str) -> frozenset[str]:
    """Every module `module` imports anywhere in its body; `from package import name` counts as the
    submodule package.name when there is one."""
    tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in _modules())
    return frozenset(found)


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_only_the_adapter_imports_airflow():
    offenders = {
        module: sorted(name for name in _imports(module) if _inside(name, "airflow"))
        for module in _modules()
        if not _inside(module, ADAPTER)
    }
    offenders = {module: names for module, names in offenders.items() if names}
    assert not offenders, f"airflow imported outside {ADAPTER}: {offenders}"


def test_domain_code_never_imports_the_adapter_devtools_or_cli():
    offenders = {
        module: sorted(name for name in _imports(module) if any(_inside(name, outer) for outer in OUTER))
        for module in _modules()
        if not any(_inside(module, outer) for outer in OUTER)
    }
    offenders = {module: names for module, names in offenders.items() if names}
    assert not offenders, f"domain modules importing {', '.join(OUTER)}: {offenders}"


def test_only_the_outer_layers_import_handoff():
    offenders = {
        module: sorted(name for name in _imports(module) if _inside(name, HANDOFF))
        for module in _modules()
        if not any(_inside(module, outer) for outer in (*OUTER, HANDOFF))
    }
    offenders = {module: names for module, names in offenders.items() if names}
    assert not offenders, f"modules below {HANDOFF} importing it (move what they need down): {offenders}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_among_driftline_modules():
    graph = {
        module: {name for name in _imports(module) if name in _modules() and name != module} for module in _modules()
    }
    cycles = _cycles(graph)
    assert not cycles, f"import cycles (function-local imports count): {cycles}"


def test_long_modules_say_why():
    unexplained = {}
    for module, path in _modules().items():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_LINES and module not in LONG_MODULES_ALLOWED and not REASON_LINE.match(lines[0]):
            unexplained[module] = len(lines)
    assert not unexplained, (
        f"modules over {MAX_LINES} lines without a first-line '# Over {MAX_LINES} lines: why' comment "
        f"(or an entry in LONG_MODULES_ALLOWED): {unexplained}"
    )


def test_the_checks_see_function_local_imports():
    # The adapter's task functions import their domain steps inside the function bodies.
    assert "driftline.airflow.connections" in _imports("driftline.airflow.tasks")
    assert any(_inside(name, "airflow") for name in _imports("driftline.airflow.tasks"))
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
