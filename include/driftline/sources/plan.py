"""What an interval's input is, without reading it: `driftline score --dry-run`."""

from __future__ import annotations

from datetime import datetime

from driftline.config import DatasetConfig, SqlInterval
from driftline.errors import DriftlineError, safe_message
from driftline.sources.files import input_files, local_path
from driftline.sources.objects import is_object_url


def interval_plan(config: DatasetConfig, start: datetime, end: datetime) -> dict:
    """The interval's input as read_interval would read it: the files (template rendered, directory
    listed, glob expanded), the objects under the URL, or the SQL query with its parameters bound.
    Reads no data and connects to no database."""
    location = config.input_location(start, end)
    plan = {"dataset": config.name, "interval_start": start.isoformat(), "interval_end": end.isoformat()}
    if isinstance(location, SqlInterval):
        from driftline.sources.sql import render

        source = location.source
        return {
            **plan,
            "source": "sql",
            "connection": {"conn_id": source.conn_id} if source.conn_id else {"url": source.url},
            "query": render(location),
            "parameters": {"interval_start": start.isoformat(), "interval_end": end.isoformat()},
        }
    remote = is_object_url(location)
    plan = {
        **plan,
        "source": "object_storage" if remote else "files",
        "location": location if remote else str(local_path(location)),
    }
    try:
        # Lists the directory, prefix or glob (object storage through [source] storage_conn_id); opens nothing.
        files = input_files(location, config.source.storage_conn_id)
    except DriftlineError as exc:  # storage not reachable from here: still say what would be read
        if not remote:
            raise
        return {**plan, "files": None, "not_listed": safe_message(exc)}
    return {**plan, "files": [str(path) for path in files], "landed": bool(files)}
