"""What an interval's input is, without reading it: `driftline score --dry-run`."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlparse

from driftline.config import DatasetConfig, SqlInterval
from driftline.sources.files import input_files, local_path


def interval_plan(config: DatasetConfig, start: datetime, end: datetime) -> dict:
    """The interval's input as read_interval would read it: the files (template rendered, directory
    listed, glob expanded), the object-storage URL, or the SQL query with its parameters bound.
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
    if urlparse(location).scheme not in ("", "file"):
        return {**plan, "source": "object_storage", "location": location}
    files = input_files(location)
    return {
        **plan,
        "source": "files",
        "location": str(local_path(location)),
        "files": [str(path) for path in files],
        "landed": bool(files),
    }
