"""Object storage through Airflow: the ObjectStore that driftline.sources.objects reads inputs with, built on
ObjectStoragePath (the connection's credentials; the scheme's filesystem comes from its provider, e.g.
apache-airflow-providers-amazon[s3fs] for s3://). Registered by connections.install()."""

from __future__ import annotations

from typing import Any, BinaryIO
from urllib.parse import urlsplit

from driftline.sources.objects import StorageError


class ObjectStoragePathStore:
    """driftline.sources.objects.ObjectStore over one scheme and connection: listings through the path's
    fsspec filesystem (so a refused credential raises instead of reading as 'nothing there'), reads
    through ObjectStoragePath.open (Airflow records the object as the task's input lineage)."""

    def __init__(self, url: str, conn_id: str | None):
        from airflow.sdk import BaseHook, ObjectStoragePath

        self._conn_id = conn_id
        root = ObjectStoragePath(url, conn_id=conn_id)
        self._protocol = root.protocol
        try:
            if conn_id:
                # Looked up first: a provider may fall back to default credentials for a connection it
                # cannot find (the AWS hook does), and a typo must not read with the worker's identity.
                BaseHook.get_connection(conn_id)
            self._fs = root.fs
        except ValueError as exc:  # "No filesystem registered for scheme ..."
            raise StorageError(
                f"{url}: no filesystem for {self._protocol}:// in this Airflow; install the provider that brings "
                "it (s3://: driftline[s3], i.e. apache-airflow-providers-amazon[s3fs])"
            ) from exc
        except Exception as exc:
            if type(exc).__name__ == "AirflowNotFoundException":
                raise StorageError(
                    f"{url}: Airflow connection {conn_id!r} ([source] storage_conn_id) is not defined; create it "
                    f"in the Airflow UI (Admin > Connections) or as $AIRFLOW_CONN_{(conn_id or '').upper()}"
                ) from None
            raise

    def _url(self, name: str) -> str:
        return name if "://" in name else f"{self._protocol}://{name}"

    def _entry(self, found: dict[str, Any]) -> dict[str, Any]:
        return {"name": self._url(found["name"]), "type": found.get("type"), "size": found.get("size")}

    def _key(self, url: str) -> str:
        return self._fs._strip_protocol(url)

    def info(self, url: str) -> dict[str, Any]:
        return self._entry(self._fs.info(self._key(url)))

    def ls(self, url: str) -> list[dict[str, Any]]:
        return [self._entry(found) for found in self._fs.ls(self._key(url), detail=True)]

    def glob(self, url: str) -> list[str]:
        return [self._url(name) for name in self._fs.glob(self._key(url)) if self._fs.isfile(name)]

    def open(self, url: str) -> BinaryIO:
        from airflow.sdk import ObjectStoragePath

        # Ranged reads of 8 MiB (s3fs' default is 50 MiB, i.e. most interval objects whole in memory).
        return ObjectStoragePath(url, conn_id=self._conn_id).open("rb", block_size=_READ_BLOCK)


_READ_BLOCK = 8 << 20
_stores: dict[tuple[str, str | None], ObjectStoragePathStore] = {}


def object_store(url: str, conn_id: str | None) -> ObjectStoragePathStore:
    """The store for url's scheme with connection conn_id (what install() registers with
    driftline.sources.objects); one per scheme and connection in a process, as Airflow caches its filesystems."""
    key = (urlsplit(url).scheme, conn_id)
    if key not in _stores:
        _stores[key] = ObjectStoragePathStore(url, conn_id)
    return _stores[key]
