"""Object storage inputs (s3://, gs://, any fsspec scheme): which objects an interval's input names, and
opening them as binary files for the CSV and Parquet readers.

Credentials come from an Airflow connection ([source] storage_conn_id), never from the config. The
storage itself is reached through a hook: `set_store_resolver(fn)`, where fn(url, conn_id) returns an
ObjectStore; the Airflow adapter (driftline.airflow.connections.install) registers one built on
ObjectStoragePath. Domain code only sees object URLs and binary file objects.

Failures map onto the error tree as for a local file: nothing at the URL is InputMissingError (NotReady:
retried as not yet landed), a refused credential is BadConfig naming the connection, a network failure
is Transient. Messages name the URL and the connection id, never a key or a secret.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, Protocol
from urllib.parse import urlsplit

from driftline.errors import BadConfig, Transient
from driftline.sources.chunk import InputError, InputMissingError


class ObjectStore(Protocol):
    """What reading needs of one store; URLs are full (scheme://bucket/key), names in results too."""

    def info(self, url: str) -> dict[str, Any]:
        """{"name": url, "type": "file" | "directory", "size": bytes}; FileNotFoundError when nothing is there."""

    def ls(self, url: str) -> list[dict[str, Any]]:
        """info() of the entries directly under a prefix; FileNotFoundError when there are none."""

    def glob(self, url: str) -> list[str]:
        """The URLs of the objects matching a glob pattern."""

    def open(self, url: str) -> BinaryIO:
        """The object as a seekable binary file, read in ranges (never the whole object at once)."""


_store_resolver: Callable[[str, str | None], ObjectStore] | None = None


def set_store_resolver(fn: Callable[[str, str | None], ObjectStore] | None) -> None:
    """Install fn(url, conn_id) -> ObjectStore (the Airflow adapter installs one built on ObjectStoragePath)."""
    global _store_resolver
    _store_resolver = fn


def is_object_url(location: str) -> bool:
    """Whether location names object storage (a URL scheme other than file://)."""
    scheme = urlsplit(location).scheme
    return len(scheme) > 1 and scheme != "file"  # one letter: a Windows drive, not a scheme


def object_key(url: str) -> str:
    """The key part of scheme://bucket/key, every character of it: an object key may hold `#`, `?` and
    `%`, which a URL parser would take for a fragment, a query or an escape."""
    return url.partition("://")[2].partition("/")[2]


def credentials_in_url(location: str) -> bool:
    """Whether the URL carries user info (s3://key:secret@bucket or conn@bucket): not allowed in a config."""
    return "@" in urlsplit(location).netloc


@dataclass(frozen=True)
class ObjectFile:
    """One object of an interval's input: its URL (what messages name) and the connection that reads it."""

    url: str
    conn_id: str | None = None

    @property
    def name(self) -> str:
        return posixpath.basename(object_key(self.url).rstrip("/"))

    def __str__(self) -> str:
        return self.url

    def open(self) -> BinaryIO:
        """The object as a seekable binary file whose reads map storage failures onto the error tree."""
        with storage_errors(self.url, self.conn_id):
            return _MappedFile(_store(self.url, self.conn_id).open(self.url), self.url, self.conn_id)


_GLOB_CHARACTERS = set("*?[")


def object_files(location: str, conn_id: str | None, keep: Callable[[str], bool]) -> list[ObjectFile]:
    """The objects of one interval's input, sorted by URL: the object itself, the objects directly under a
    prefix whose name passes keep (data files, not _SUCCESS), or the matches of a glob. Missing: []."""
    store = _store(location, conn_id)
    with storage_errors(location, conn_id):
        try:
            found = store.info(location)  # first: a key may itself hold `?` or `[` (an object, not a glob)
        except FileNotFoundError:
            found = None
        if found is None and _GLOB_CHARACTERS & set(object_key(location)):
            urls = store.glob(location)
        elif found is None:
            return []
        elif found.get("type") == "directory":
            entries = store.ls(location)
            urls = [e["name"] for e in entries if e.get("type") == "file" and keep(posixpath.basename(e["name"]))]
        else:
            urls = [found["name"]]
    return [ObjectFile(url, conn_id) for url in sorted(urls)]


# -- failures -> the error tree ----------------------------------------------------------------------

# Names of network failures raised by storage clients (botocore, aiohttp, google-auth, requests) that are
# not OSError subclasses; matched by name so this module imports none of them.
_NETWORK_ERRORS = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectionClosedError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientOSError",
    "FSTimeoutError",
    "ConnectionError",
    "Timeout",
}
# Credentials missing or refused before any request reached the bucket.
_CREDENTIAL_ERRORS = {"NoCredentialsError", "PartialCredentialsError", "InvalidConfigError", "DefaultCredentialsError"}


class StorageError(BadConfig):
    """Object storage cannot be read as configured: credentials missing or refused, no connection or no
    filesystem for the scheme. Fix the connection or the deployment, not the data."""


class StorageUnavailable(Transient):
    """Object storage could not be reached (network, timeout, throttling): retried."""


def _connection(conn_id: str | None) -> str:
    if conn_id:
        return f"Airflow connection {conn_id!r} ([source] storage_conn_id)"
    return "the default credentials of the worker (no [source] storage_conn_id)"


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def translate_storage_error(exc: BaseException, url: str, conn_id: str | None) -> BaseException | None:
    """The driftline error for a storage client's exception while reading url, or None (not a storage failure)."""
    names = _names(exc)
    if isinstance(exc, FileNotFoundError):
        return InputMissingError(
            f"input not found: {url}. Check that the upstream export for this interval has landed."
        )
    if isinstance(exc, PermissionError) or names & _CREDENTIAL_ERRORS:
        return StorageError(
            f"{url}: access refused with {_connection(conn_id)} ({type(exc).__name__}). Check the connection's "
            "credentials and its permissions on the bucket (list and read)."
        )
    if isinstance(exc, (ConnectionError, TimeoutError)) or names & _NETWORK_ERRORS or isinstance(exc, OSError):
        # s3fs and gcsfs raise a plain OSError for a server-side failure they could not classify
        # (a 5xx, throttling after its own retries): a retry is the right answer to both.
        return StorageUnavailable(
            f"{url}: object storage could not be read ({type(exc).__name__}); the step is retried"
        )
    return None


class storage_errors:
    """Context manager: storage client exceptions inside become driftline errors naming url and the connection."""

    def __init__(self, url: str, conn_id: str | None):
        self.url, self.conn_id = url, conn_id

    def __enter__(self) -> storage_errors:
        return self

    def __exit__(self, kind, exc, traceback) -> Literal[False]:  # never swallows: maps or passes on
        if exc is None or isinstance(exc, BadConfig | InputError | Transient):
            return False
        mapped = translate_storage_error(exc, self.url, self.conn_id)
        if mapped is None:
            return False
        raise mapped from exc


def _store(url: str, conn_id: str | None) -> ObjectStore:
    if _store_resolver is None:
        raise StorageError(
            f"{url}: object storage is read through Airflow connections; run inside Airflow or through the "
            "driftline CLI (which installs the connection lookup)"
        )
    return _store_resolver(url, conn_id)


class _MappedFile:
    """A binary file whose read/seek failures become driftline errors (a dropped connection mid-object
    is Transient, not a corrupt file). Everything else is the wrapped file's."""

    def __init__(self, file: BinaryIO, url: str, conn_id: str | None):
        self._file, self._url, self._conn_id = file, url, conn_id

    def read(self, size: int = -1) -> bytes:
        with storage_errors(self._url, self._conn_id):
            return self._file.read(size)

    def readinto(self, buffer) -> int:
        with storage_errors(self._url, self._conn_id):
            data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        with storage_errors(self._url, self._conn_id):
            return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return bool(getattr(self._file, "closed", False))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> _MappedFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
