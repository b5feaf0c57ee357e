"""What a `driftline` command prints besides its result: driftline's own warnings and errors, one line
each. Third-party warnings (httpx deprecations, ...) and log lines below ERROR (pgserver's INFO, Airflow's
"No tasks to run" while dag.test waits) only with -v / DRIFTLINE_DEBUG, as are an alert's numbers."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _ours(name: str) -> bool:
    return name == "driftline" or name.startswith("driftline.")


class _QuietFilter(logging.Filter):
    """driftline's records from WARNING up; everyone else's from ERROR up."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= (logging.WARNING if _ours(record.name) else logging.ERROR)


QUIET = _QuietFilter()


@contextmanager
def command_output(verbose: bool) -> Iterator[Callable[[], None]]:
    """Warnings and logging for one command, put back as they were on exit (cli.main also runs inside
    tests). Yields `apply`: call it again after Airflow's import configured logging its way
    (driftline.airflow.connections.install), which replaces handlers."""
    from driftline import alerts

    root, ours = logging.getLogger(), logging.getLogger("driftline")
    saved = root.level, ours.level, alerts.LOG_NUMBERS
    touched: list[logging.Handler] = []

    def apply() -> None:
        alerts.LOG_NUMBERS = verbose
        if verbose:
            root.setLevel(logging.INFO)
            warnings.simplefilter("default")
            return
        # Levels first (records below them are never made), the filter for loggers configured with
        # levels of their own (Airflow's dictConfig sets some to INFO).
        root.setLevel(logging.ERROR)
        ours.setLevel(logging.WARNING)
        for handler in root.handlers:
            if QUIET not in handler.filters:
                handler.addFilter(QUIET)
                touched.append(handler)
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module="driftline")  # ours say what to fix

    with warnings.catch_warnings():
        try:
            apply()
            yield apply
        finally:
            root.setLevel(saved[0])
            ours.setLevel(saved[1])
            alerts.LOG_NUMBERS = saved[2]
            for handler in touched:
                handler.removeFilter(QUIET)
