"""What test modules share: edited copies of a dataset config, the test database, DAGs for dag.test().

Test modules import from here (or use the conftest fixtures), never from each other.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from driftline.devtools.demo_data import DemoPlan

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "config" / "demo.toml"
SMALL_PLAN = DemoPlan(history_days=10, history_rows_per_day=1_500, intervals=2, rows_per_interval=3_000)


# -- config copies ----------------------------------------------------------------------------------


class ConfigEditError(AssertionError):
    """An edit of a config copy did not apply: the test would check something other than it says."""


def edit_config(
    text: str,
    replace: Iterable[tuple[str, str]] = (),
    *,
    keys: dict[str, str] | None = None,
    sections: dict[str, str | None] | None = None,
    append: str = "",
    source: str = "the config",
) -> str:
    """text with each edit applied, in this order; an edit that does not apply raises ConfigEditError.

    replace: (old, new) literal replacements; old must occur exactly once (quote more of the line).
    keys: {key: TOML value}: the one line `key = ...` becomes `key = value`.
    sections: {table name: body}: the body of [name] (up to the next [header]) becomes body; None
      removes the table, header included.
    append: text added at the end (the last table of the demo config is [drift.trigger]).
    """
    for old, new in replace:
        found = text.count(old)
        if found != 1:
            raise ConfigEditError(
                f"edit {old!r} matches {'nothing' if found == 0 else f'{found} times'} in {source}"
                + ("" if found == 0 else "; quote more of the line")
            )
        text = text.replace(old, new)
    for key, value in (keys or {}).items():
        text, found = re.subn(rf"^{re.escape(key)} = .*$", lambda _, line=f"{key} = {value}": line, text, flags=re.M)
        if found != 1:
            raise ConfigEditError(f"key {key!r} is {'not a line' if found == 0 else f'on {found} lines'} of {source}")
    for name, body in (sections or {}).items():
        pattern = rf"(?ms)^\[{re.escape(name)}\][ \t]*\n.*?(?=^\[|\Z)"
        replacement = "" if body is None else f"[{name}]\n{body}"
        text, found = re.subn(pattern, lambda _, body=replacement: body, text)
        if found != 1:
            raise ConfigEditError(
                f"section [{name}] is {'missing from' if found == 0 else f'{found} times in'} {source}"
            )
    return text + append


def write_config(directory: Path, text: str, name: str = "dataset.toml") -> Path:
    """text written as directory/config/<name> (the project root of a config is its folder's parent)."""
    path = directory / "config" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def config_copy(
    directory: Path,
    replace: Iterable[tuple[str, str]] = (),
    *,
    base: Path = DEMO_CONFIG,
    name: str = "dataset.toml",
    **edits,
) -> Path:
    """A copy of base (default: the demo config) with edits (see edit_config), as directory/config/<name>."""
    return write_config(directory, edit_config(base.read_text(), replace, source=str(base), **edits), name)


def make_project(root: Path, schema: str, **keys: str) -> Path:
    """A project under root: the demo config with its own schema (and keys: {key: TOML value}) as
    root/config/demo.toml, its suite and synthetic data (SMALL_PLAN)."""
    from driftline.config import load_config
    from driftline.devtools.demo_data import write_demo_data
    from driftline.validation import write_suite

    path = config_copy(root, name="demo.toml", keys={"schema": f'"{schema}"', **keys})
    config = load_config(path)
    write_suite(config)
    write_demo_data(config, SMALL_PLAN)
    return path


def config_variant(
    base: Path, schema: str, name: str | None = None, *, sections: dict[str, str | None] | None = None, **keys: str
) -> Path:
    """A sibling config of base (same project root and data) with the given schema, its registry folder,
    keys ({key: TOML value}) and sections (see edit_config), written to config/<name or schema>.toml."""
    keys = {"schema": f'"{schema}"', "registry_dir": f'"models/{schema}"', **keys}
    return config_copy(base.parent.parent, base=base, name=f"{name or schema}.toml", keys=keys, sections=sections)


PARTS_INPUT = '"data/parts/{interval_start:%Y-%m-%d}"'  # a directory of files per interval (TOML value)


def split_input(config_path: Path, interval: tuple[datetime, datetime], files: int) -> list[Path]:
    """Split the interval's CSV (planted bad rows included) into `files` CSVs with the same header."""
    from driftline.config import load_config

    config = load_config(config_path)
    header, *lines = Path(config.input_location(*interval)).read_text().splitlines(keepends=True)
    target = config.root / "data" / "parts" / f"{interval[0]:%Y-%m-%d}"
    target.mkdir(parents=True, exist_ok=True)
    size = -(-len(lines) // files)
    paths = []
    for number in range(files):
        path = target / f"part-{number:03d}.csv"
        path.write_text(header + "".join(lines[number * size : (number + 1) * size]))
        paths.append(path)
    return paths


# -- the test database ------------------------------------------------------------------------------


def db_url() -> str:
    """The session's test database, which the fixtures put into $DRIFTLINE_DB_URL."""
    return os.environ["DRIFTLINE_DB_URL"]


def query_rows(url: str, statement, params=()) -> list[tuple]:
    """Rows of a statement (text or psycopg sql.Composed) on the database at url."""
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()


def fetch(config, query: str, params=(), url: str | None = None) -> list[tuple]:
    """Rows of query on the test database (or url); its {s} is the schema of config (a config path or a
    loaded config)."""
    from psycopg import sql

    if not hasattr(config, "db_schema"):
        from driftline.config import load_config

        config = load_config(config)
    return query_rows(url or db_url(), sql.SQL(query).format(s=sql.Identifier(config.db_schema)), params)


def scalar(config, query, params=(), url: str | None = None):
    """The one value of a one-row, one-column query (see fetch)."""
    [(value,)] = fetch(config, query, params, url)
    return value


def interval_contents(config_path, interval) -> dict:
    """The published predictions, quarantine rows (row_number, key, reasons, raw_row) and run summary of the interval."""
    predictions = fetch(
        config_path,
        "SELECT entity_key, score, predicted_class, model_version FROM {s}.predictions "
        "WHERE interval_start = %s ORDER BY entity_key",
        (interval[0],),
    )
    quarantine = fetch(
        config_path,
        "SELECT q.row_number, q.entity_key, q.reason_codes, q.raw_row FROM {s}.quarantine_rows q "
        "JOIN {s}.scored_intervals i USING (interval_id) WHERE i.interval_start = %s "
        "AND q.run_key = i.current_run_key ORDER BY q.row_number",
        (interval[0],),
    )
    summary = fetch(
        config_path,
        "SELECT rows_in, rows_scored, rows_quarantined, status FROM {s}.run_summary "
        "WHERE published AND interval_start = %s",
        (interval[0],),
    )
    return {"predictions": predictions, "quarantine": quarantine, "summary": summary}


def create_database(server_url: str, name: str) -> str:
    """Create database name on the server of server_url; its URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(server_url, dbname=name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database name (if it exists) on the server of server_url, closing its connections."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- DAGs -------------------------------------------------------------------------------------------


DEMO_DATASET = "demo_transactions"  # [dataset] name of the demo config and of every copy of it


def load_dag(role: str, dataset: str = DEMO_DATASET):
    """The DAG `<dataset>__<role>` of dags/<role>.py, freshly loaded for dag.test() (its DAG-file code
    runs again, building one DAG per config of $DRIFTLINE_CONFIG or the configs folder)."""
    from driftline.devtools.dag_runner import load_dataset_dag

    return load_dataset_dag(REPO / "dags", role, dataset)


# -- files ------------------------------------------------------------------------------------------


def write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """text written to path, its folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)


# -- documentation blocks ---------------------------------------------------------------------------

DOC_PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
# The HTML comment right before a fenced block says how the tests treat it (see docs/internals/testing.md):
#   <!-- runs in tests: <test file> -->                 that file runs the block as written
#   <!-- not-run: <why>; covered by <path>[, <path>] --> not runnable in a test; those files cover it
DOC_MARK = re.compile(r"<!--\s*(runs in tests|not-run)\s*:\s*((?:(?!-->).)*?)\s*-->\s*\Z", re.S)


@dataclass(frozen=True)
class DocBlock:
    """One fenced block of the documentation and the mark before it (mark None when unmarked)."""

    page: str  # relative to the repository, e.g. "docs/configure/dataset.md"
    line: int  # of the opening fence
    text: str
    mark: str | None  # "runs in tests" or "not-run"
    detail: str  # what follows the mark's colon

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def doc_blocks(lang: str = "bash") -> list[DocBlock]:
    """Every ```lang block of README.md and docs/, in page order, with its mark."""
    found = []
    for page in DOC_PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M):
            mark = DOC_MARK.search(text[: match.start()].rstrip() + "\n")
            found.append(
                DocBlock(
                    page.relative_to(REPO).as_posix(),
                    text.count("\n", 0, match.start()) + 1,
                    match.group(1),
                    mark.group(1) if mark else None,
                    mark.group(2) if mark else "",
                )
            )
    return found


def blocks_run_by(page: str, test_file: str) -> list[str]:
    """The bash blocks of page (e.g. "docs/configure/dataset.md") marked to run in test_file, in order."""
    return [b.text for b in doc_blocks() if b.page == page and b.mark == "runs in tests" and b.detail == test_file]


def doc_shell_env(root: Path, database_url: str) -> dict[str, str]:
    """The environment a documented command runs in: a newcomer's shell in the project root root, with
    this Python's `driftline`, `airflow` and `python` on PATH, `. .venv/bin/activate` working (a stub
    venv whose activate puts them on PATH), the test database, and nothing of driftline's set."""
    import sys

    bin_dir = Path(sys.executable).parent
    write_text(root / ".venv" / "bin" / "activate", f'export PATH="{bin_dir}{os.pathsep}$PATH"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    return {
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DRIFTLINE_HOME": str(root),
        "DRIFTLINE_DB_URL": database_url,
        "DRIFTLINE_CACHE_DIR": str(root / ".cache"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "include"), str(REPO), env.get("PYTHONPATH")])),
    }


def run_doc_block(block: str, root: Path, env: dict[str, str], timeout: float = 300) -> str:
    """Run a documented bash block as one script in root (the first failing command stops it); its stdout."""
    import subprocess

    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail -x\n" + block],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"exit {done.returncode}:\n{block}\n{done.stderr[-4000:]}"
    return done.stdout
