"""One error root for driftline, the tree under it, and the one place foreign exceptions enter it.

    DriftlineError
    ├── BadInput    the data (a file, a column, a request) cannot be used      } fail now, no retry,
    ├── BadConfig   the dataset config or a file it names cannot be used       } a task_failure alert
    ├── BadModel    the model artifact or what it outputs cannot be trusted    }
    ├── NotReady    the input has not landed yet (or upstream has not run)     } retried
    ├── Transient   the database is down, busy or restarting                   } retried
    └── Skipped     not a failure: this step has nothing to do for this run    } a skipped task

Only the branch decides what happens next (`retryable`); the Airflow adapter (tasks.py) and the CLI
map it to outcomes in one place each. Messages carry file, column, expectation and what to do next,
never row data: Postgres' DETAIL/CONTEXT lines (keys, values, raw COPY lines) are scrubbed from
every psycopg error in a chain before anything logs, stores or alerts it (`scrub`).

Standard library only at import: config.py, imported at DAG parse time, builds on it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager


class DriftlineError(Exception):
    """Root of every error driftline raises on purpose."""

    alert_id: int | None = None  # set when the failure was already alerted (the notifier then skips it)
    numbers: dict | None = None  # counts and bounds the failure alert carries


class BadInput(DriftlineError):
    """The input data cannot be used as it is: fix the file (or the request); retrying cannot help."""


class BadConfig(DriftlineError):
    """The dataset config, or a file it points at (suite, model directory), cannot be used."""


class BadModel(DriftlineError):
    """A model artifact cannot be loaded or compiled, or its output fails the sanity checks."""


class NotReady(DriftlineError):
    """Something this step needs is not there yet (the interval's input, an upstream run): retry later."""


class Transient(DriftlineError):
    """Trouble that passes (database unreachable, restarting, locked): retry later."""


class Skipped(DriftlineError):
    """Not a failure: the step has nothing to do for this run (no candidate to shadow-score, a model
    without calibration, an interval scored by the other path). The message says why; the adapter
    shows it as a skipped task, the CLI prints it and goes on."""


RETRYABLE = (NotReady, Transient)


def retryable(exc: BaseException) -> bool:
    """Whether a retry can help: NotReady/Transient, or a foreign exception that maps to them."""
    return isinstance(translate(exc), RETRYABLE)


# -- foreign exceptions -> the tree --------------------------------------------------------------

# Postgres error classes whose cause is the data (22: data exception, 23: integrity violation).
_DATA_SQLSTATE_CLASSES = ("22", "23")
# SQLSTATEs (classes or codes) whose cause is the configuration, so a retry cannot help: 0A feature not
# supported (a cross-database reference), 28 authentication failed, 3D the database does not exist,
# 3F no such schema, 42 syntax error or access rule violation (undefined table or column, permission
# denied), 25006 a write in a read-only transaction, 2BP01 dependent objects, 0L/0P invalid grantor/role.
# Everything else (08 connection, 40 deadlock or serialization, 53 resources, 55 locks, 57 shutdown)
# is trouble that passes.
_CONFIG_SQLSTATES = ("0A", "0L", "0P", "28", "3D", "3F", "42", "25006", "2BP01")


def sqlstate_kind(sqlstate: str | None) -> type[DriftlineError]:
    """The branch of the tree a PostgreSQL SQLSTATE belongs to: BadInput (the data), BadConfig (the
    config's query, table, database or credentials), else Transient (unknown or passing trouble)."""
    sqlstate = sqlstate or ""
    if sqlstate[:2] in _DATA_SQLSTATE_CLASSES:
        return BadInput
    if sqlstate and sqlstate.startswith(_CONFIG_SQLSTATES):
        return BadConfig
    return Transient


_ROW_TAIL = re.compile(r"(Expected \d+ columns, got \d+):.*")  # pyarrow appends the raw row


def redact(text: str) -> str:
    """The first line of a library message, cut before its first quoted literal (a value, a raw
    line, a key): 'could not convert string to float: <...>'."""
    stripped = str(text).strip()
    first = _ROW_TAIL.sub(r"\1: <...>", stripped.splitlines()[0] if stripped else "")
    quote = min((i for i in (first.find("'"), first.find('"'), first.find("Key (")) if i >= 0), default=-1)
    return first if quote < 0 else first[:quote].rstrip() + " <...>"


def _is_psycopg(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("psycopg")


def describe_database_error(exc: BaseException) -> str:
    """A psycopg error without row data: primary message (literals redacted), SQLSTATE, constraint,
    table and column names. DETAIL and CONTEXT (keys, values, the COPY line) are dropped."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc.args[0] if exc.args else "")
    parts = [redact(primary) or type(exc).__name__]
    sqlstate = getattr(exc, "sqlstate", None)
    names = [f"SQLSTATE {sqlstate}"] if sqlstate else []
    for label, attribute in (("constraint", "constraint_name"), ("table", "table_name"), ("column", "column_name")):
        value = getattr(diag, attribute, None) if diag is not None else None
        if value:
            names.append(f"{label} {value}")
    if names:
        parts.append(f"({', '.join(names)})")
    return " ".join(parts)


def _chain(exc: BaseException | None):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def scrub(exc: BaseException) -> BaseException:
    """Remove row data from exc and every exception it chains (__cause__, __context__), in place.

    psycopg errors keep their type and SQLSTATE but their text becomes `describe_database_error`;
    pyarrow and pandas parse errors lose the quoted cell or row, and so does a message that embedded
    such an error. Tracebacks (Airflow prints the whole chain), stored messages and alerts then show
    no DETAIL or CONTEXT line and no raw row. Returns exc.
    """
    for link in _chain(exc):
        if getattr(link, "_driftline_scrubbed", False):
            continue
        if _is_psycopg(link):
            link.args = (describe_database_error(link),)
        elif type(link).__module__.startswith(("pyarrow", "pandas")):
            link.args = (redact(str(link)),)  # a parse error quotes the cell or the whole row
        elif link.args and isinstance(link.args[0], str) and _ROW_TAIL.search(link.args[0]):
            # A message that embedded such a parse error ("Expected 9 columns, got 10: <row>").
            link.args = (_ROW_TAIL.sub(r"\1: <...>", link.args[0]), *link.args[1:])
        else:
            continue
        try:
            link._driftline_scrubbed = True
        except AttributeError:  # pragma: no cover - built-in exceptions without a __dict__
            pass
    return exc


def safe_message(exc: BaseException) -> str:
    """'TypeName: message' of exc, scrubbed, for run summaries, logs and alerts."""
    scrub(exc)
    if isinstance(exc, DriftlineError) or _is_psycopg(exc):
        text = str(exc)
    else:
        text = redact(str(exc))  # a library's message may quote a cell
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(exc: BaseException, where: str | None = None) -> BaseException:
    """The driftline error for exc: itself when it already is one (scrubbed), a new one for a
    foreign exception that means bad input or passing trouble, else exc unchanged (a bug: it keeps
    its traceback). where: the file (or object) being read, named in the message."""
    scrub(exc)
    if isinstance(exc, DriftlineError):
        return exc
    prefix = f"{where}: " if where else ""
    mapped = _map_foreign(exc, prefix)
    if mapped is None:
        return exc
    mapped.__cause__ = exc  # kept for the traceback; scrubbed above
    return mapped


def _map_foreign(exc: BaseException, prefix: str) -> DriftlineError | None:
    name = type(exc).__name__
    if _is_psycopg(exc):
        text = describe_database_error(exc)
        sqlstate = getattr(exc, "sqlstate", None) or ""
        kind = sqlstate_kind(sqlstate)
        if kind is BadInput:
            return BadInput(f"{prefix}the database refused the data: {text}. Fix the input (the row is not logged).")
        if kind is BadConfig:
            return BadConfig(
                f"{prefix}the database refused the request: {text}. Fix the configuration; a retry cannot help."
            )
        return Transient(f"{prefix}database trouble: {text}; the step is retried")
    if isinstance(exc, UnicodeDecodeError):
        return BadInput(
            f"{prefix}not valid {exc.encoding} text (byte {exc.start}: {exc.reason}); "
            "save the file as UTF-8 or set the encoding the source uses"
        )
    if isinstance(exc, EOFError) or (name in ("BadGzipFile", "error") and type(exc).__module__ in ("gzip", "zlib")):
        return BadInput(f"{prefix}the file is truncated or not valid compressed data ({name}); export it again")
    if name in ("ArrowInvalid", "ArrowTypeError", "ArrowNotImplementedError") and type(exc).__module__.startswith(
        "pyarrow"
    ):
        return BadInput(f"{prefix}cannot be read: {redact(str(exc))} ({name}); fix the file")
    if name in ("ParserError", "EmptyDataError") and type(exc).__module__.startswith("pandas"):
        return BadInput(f"{prefix}cannot be parsed: {redact(str(exc))} ({name}); fix the file")
    if isinstance(exc, FileNotFoundError):
        return BadConfig(f"{prefix}file not found: {exc.filename or redact(str(exc))}; check the path in the config")
    if isinstance(exc, PermissionError):
        return BadConfig(f"{prefix}permission denied: {exc.filename or redact(str(exc))}")
    if name == "LightGBMError":
        return BadModel(f"{prefix}LightGBM refused: {redact(str(exc))}")
    return None


@contextmanager
def reading(where: str):
    """Inside: a foreign exception that means a bad or unreadable file becomes a driftline error
    naming `where` (the file or directory being read)."""
    try:
        yield
    except DriftlineError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated, or re-raised unchanged
        error = translate(exc, where)
        if error is exc:
            raise
        raise error from exc
