"""Object storage inputs under the reading contract, against fsspec's in-memory filesystem (no network): the
same chunks as the local file, a prefix read whole, missing objects NotReady, storage failures mapped."""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime, timezone
from pathlib import Path

import fsspec
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from driftline.config import ConfigError, load_config
from driftline.errors import BadConfig, Transient
from driftline.sources import InputMissingError, input_files, objects, read_interval, read_table

REPO = Path(__file__).resolve().parents[3]
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 11, 2, tzinfo=timezone.utc)
HEADER = "transaction_id,event_time,amount,account_age_days,transactions_last_24h,distance_from_home_km,hour_of_day,merchant_category,channel"
ROWS = [
    "t1,2026-11-01T10:00:00Z,12.5,100,1,2.5,10,grocery,online",
    "t2,2026-11-01T11:00:00Z,twelve,100,1,2.5,10,grocery,online",
    'broken,"unclosed,1,2',
    "t3,2026-10-31T23:00:00Z,12.5,100,1,,10,grocery,online",
    "t1,2026-11-01T12:00:00Z,3,100,1,2.5,10,grocery,online",
]
TEXT = "\n".join([HEADER, *ROWS]) + "\n"


class MemoryStore:
    """An ObjectStore over fsspec's memory filesystem, shaped like the Airflow adapter's."""

    def __init__(self, fs, fail: BaseException | None = None):
        self.fs, self.fail, self.opened = fs, fail, []

    def _check(self):
        if self.fail is not None:
            raise self.fail

    def info(self, url):
        self._check()
        found = self.fs.info(url)
        return {"name": "memory://" + found["name"].lstrip("/"), "type": found["type"], "size": found["size"]}

    def ls(self, url):
        self._check()
        return [
            {"name": "memory://" + e["name"].lstrip("/"), "type": e["type"], "size": e["size"]}
            for e in self.fs.ls(url, detail=True)
        ]

    def glob(self, url):
        self._check()
        return ["memory://" + name.lstrip("/") for name in self.fs.glob(url) if self.fs.isfile(name)]

    def open(self, url):
        self._check()
        self.opened.append(url)
        return self.fs.open(url, "rb")


@pytest.fixture
def store():
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    memory = MemoryStore(fs)
    seen = []
    objects.set_store_resolver(lambda url, conn_id: seen.append(conn_id) or memory)
    memory.conn_ids = seen
    yield memory
    objects.set_store_resolver(None)
    fs.store.clear()


@pytest.fixture
def config():
    config = load_config(REPO / "config" / "demo.toml")
    return dataclasses.replace(config, source=dataclasses.replace(config.source, storage_conn_id="lake"))


def put(store, url: str, data: bytes) -> None:
    with store.fs.open(url, "wb") as file:
        file.write(data)


def summary(chunks):
    return [(c.raw.to_pylist(), c.typed.to_pylist(), c.failures, c.malformed, c.row_numbers.tolist()) for c in chunks]


def test_an_object_reads_like_the_local_file(store, config, tmp_path):
    local = tmp_path / "input.csv"
    local.write_text(TEXT)
    put(store, "memory://bucket/day/input.csv", TEXT.encode())
    remote = list(read_interval("memory://bucket/day/input.csv", config, START, END))
    assert summary(remote) == summary(read_interval(str(local), config, START, END))
    assert remote[0].source == "memory://bucket/day/input.csv"
    assert store.conn_ids and set(store.conn_ids) == {"lake"}


def test_a_prefix_is_read_whole_in_name_order_and_skips_markers(store, config):
    header, *rows = TEXT.splitlines()
    put(store, "memory://bucket/day/part-1.csv", "\n".join([header, *rows[:2]]).encode())
    put(store, "memory://bucket/day/part-0.csv.gz", _gzip("\n".join([header, rows[0]]).replace("t1,", "t0,")))
    table = pacsv.read_csv(io.BytesIO("\n".join([header, rows[0].replace("t1,", "t9,")]).encode()))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    put(store, "memory://bucket/day/part-2.parquet", buffer.getvalue())
    put(store, "memory://bucket/day/_SUCCESS", b"")
    put(store, "memory://bucket/day/notes.txt", b"not data")
    files = input_files("memory://bucket/day/", "lake")
    assert [str(f) for f in files] == [
        "memory://bucket/day/part-0.csv.gz",
        "memory://bucket/day/part-1.csv",
        "memory://bucket/day/part-2.parquet",
    ]
    chunks = list(read_interval("memory://bucket/day/", config, START, END))
    assert [c.source for c in chunks] == [str(f) for f in files]
    assert sum(c.raw.num_rows for c in chunks) == 4
    assert [str(f) for f in files] == [str(f) for f in input_files("memory://bucket/day/part-*", "lake")]


def test_a_missing_object_or_prefix_is_not_ready(store, config):
    for url in ("memory://bucket/nothing/input.csv", "memory://bucket/nothing/", "memory://bucket/nothing/*.csv"):
        with pytest.raises(InputMissingError, match="input not found: memory://bucket/nothing"):
            list(read_interval(url, config, START, END))
    with pytest.raises(InputMissingError):
        read_table("memory://bucket/nothing/labels.csv", config)


def test_an_object_gone_after_listing_is_not_ready(store, config):
    put(store, "memory://bucket/day/input.csv", TEXT.encode())
    files = input_files("memory://bucket/day/", "lake")
    store.fs.rm("memory://bucket/day/input.csv")
    with pytest.raises(InputMissingError, match="memory://bucket/day/input.csv"):
        list(read_interval("memory://bucket/day/", config, START, END, files=[str(f) for f in files]))


@pytest.mark.parametrize(
    ("failure", "kind", "words"),
    [
        (PermissionError("Access Denied"), BadConfig, "access refused with Airflow connection 'lake'"),
        (type("NoCredentialsError", (Exception,), {})("none"), BadConfig, "storage_conn_id"),
        (type("EndpointConnectionError", (Exception,), {})("down"), Transient, "could not be read"),
        (TimeoutError("slow"), Transient, "retried"),
        (OSError("503 Slow Down"), Transient, "retried"),
    ],
)
def test_storage_failures_map_onto_the_error_tree(store, config, failure, kind, words):
    store.fail = failure
    with pytest.raises(kind, match=words) as caught:
        list(read_interval("memory://bucket/day/input.csv", config, START, END))
    assert "memory://bucket/day/input.csv" in str(caught.value)


def test_a_read_failing_mid_object_is_transient_not_corrupt(store, config):
    put(store, "memory://bucket/day/input.csv", TEXT.encode())

    class Dropping(io.BytesIO):
        def read(self, size=-1):
            raise ConnectionResetError("peer reset")

    store.open = lambda url: Dropping(TEXT.encode())
    with pytest.raises(Transient, match="memory://bucket/day/input.csv"):
        list(read_interval("memory://bucket/day/input.csv", config, START, END))


def test_without_the_adapter_object_urls_say_what_to_do(config):
    objects.set_store_resolver(None)
    with pytest.raises(BadConfig, match="run inside Airflow or through the driftline CLI"):
        list(read_interval("s3://bucket/day/input.csv", config, START, END))


def test_credentials_in_the_input_url_are_refused(tmp_path):
    text = (REPO / "config" / "demo.toml").read_text()
    for url in ("s3://AKIAEXAMPLE:secret@bucket/{interval_start:%Y-%m-%d}/", "s3://my_conn@bucket/x.csv"):
        path = tmp_path / "config" / "bad.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text.replace('input = "', f'input = "{url}" #', 1))
        with pytest.raises(ConfigError, match="source.input' carries credentials") as caught:
            load_config(path)
        assert "secret" not in str(caught.value) and "AKIA" not in str(caught.value)


def _gzip(text: str) -> bytes:
    import gzip

    return gzip.compress((text + "\n").encode())


def test_history_and_labels_can_be_objects(store, config, tmp_path):
    from driftline.labelled import TrainingError
    from driftline.labelled import read_table as labelled_table

    put(store, "memory://bucket/history.csv", TEXT.encode())
    local = tmp_path / "history.csv"
    local.write_text(TEXT)
    remote = labelled_table("memory://bucket/history.csv", config)
    assert remote.equals(labelled_table(str(local), config))
    assert remote.attrs == labelled_table(str(local), config).attrs
    with pytest.raises(TrainingError, match="labelled data not found: memory://bucket/nothing.csv"):
        labelled_table("memory://bucket/nothing.csv", config)  # as for a missing local file
