"""The embedded PostgreSQL (pgserver) used when no database is configured: start and stop it."""

from __future__ import annotations

import os
from pathlib import Path

EMBEDDED_DATA_DIR = ".driftline/pgdata"


def _import_pgserver():
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns on every import where XDG_RUNTIME_DIR is unset (containers, CI, ssh):
        # pgserver then keeps its lock under /tmp, which is what we want anyway.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver
    return pgserver


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL kept in data_dir; returns its URL."""
    pgserver = _import_pgserver()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=None)  # keep running for later commands
    return server.get_uri()


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded PostgreSQL of data_dir (a fast shutdown: open sessions are ended, nothing
    committed is lost); False when it was not running."""
    if not (data_dir / "postmaster.pid").exists():
        return False
    pgserver = _import_pgserver()
    # pgserver runs the server as the system user `pgserver` when started by root.
    user = "pgserver" if os.geteuid() == 0 else None
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return True
