"""The registry's record of compiled-model objects: the sha256 each cache file must have before
scoring/compiled.py lets LLVM load it (a hash written beside the file proves nothing: whoever can
replace the file can replace the hash)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from driftline.db import table


@dataclass(frozen=True)
class CompiledHashes:
    """compiled_objects of one deployment schema, read and written on the scoring connection."""

    conn: psycopg.Connection
    schema: str

    def expected(self, cache_key: str) -> str | None:
        """The object sha256 recorded when this cache file was built, or None (never built here)."""
        row = self.conn.execute(
            sql.SQL("SELECT object_sha256 FROM {} WHERE cache_key = %s").format(table(self.schema, "compiled_objects")),
            (cache_key,),
        ).fetchone()
        return row[0] if row else None

    def record(self, cache_key: str, model_sha256: str, object_sha256: str) -> None:
        """After a compile from verified model text: the object this process built is the reference
        (a compile that differs from an earlier one replaces its row; the older file is then rebuilt)."""
        with self.conn.transaction():
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {} (cache_key, model_sha256, object_sha256) VALUES (%s, %s, %s) "
                    "ON CONFLICT (cache_key) DO UPDATE SET model_sha256 = EXCLUDED.model_sha256, "
                    "object_sha256 = EXCLUDED.object_sha256, compiled_at = now()"
                ).format(table(self.schema, "compiled_objects")),
                (cache_key, model_sha256, object_sha256),
            )
