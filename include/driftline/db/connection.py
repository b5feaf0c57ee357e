"""Where a configured connection id points: the resolver the Airflow adapter registers (minimal; H1's db split supersedes it)."""

from __future__ import annotations

from typing import Callable

_url_resolver: Callable[[str], str] | None = None


def set_url_resolver(fn: Callable[[str], str] | None) -> None:
    """Register how a `[database] conn_id` becomes a URL (the Airflow adapter registers BaseHook's lookup)."""
    global _url_resolver
    _url_resolver = fn


def url_for_conn_id(conn_id: str) -> str:
    """The URL behind conn_id through the registered resolver; BadConfig without one."""
    from driftline.errors import BadConfig

    if _url_resolver is None:
        raise BadConfig(
            f"[database] conn_id = {conn_id!r} needs Airflow (run under Airflow or the driftline CLI) or set db_url"
        )
    return _url_resolver(conn_id)
