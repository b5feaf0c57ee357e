"""Object storage inputs end to end: a local S3-compatible server (moto's server mode on 127.0.0.1, started
here), an Airflow connection defined through AIRFLOW_CONN_<ID>, and score_interval against real Postgres.
The same rows read from S3 give the same predictions and quarantine as the local CSV file."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from pathlib import Path

import pandas as pd
import pytest

from driftline.config import load_config
from driftline.errors import Transient
from tests.helpers import SMALL_PLAN, config_copy, fetch, split_input

pytest.importorskip("s3fs", reason="object storage needs the s3 extra (driftline[s3])")

FIRST, SECOND = SMALL_PLAN.interval_bounds()
THIRD = (SECOND[1], SECOND[1] + (SECOND[1] - SECOND[0]))  # no input was generated for it
BUCKET = "driftline-it"
KEY, SECRET = "AKIAFAKEDRIFTLINE", "fake-secret-never-logged"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _connection(endpoint: str, **config_kwargs) -> str:
    extra = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    if config_kwargs:
        extra["config_kwargs"] = config_kwargs
    return json.dumps({"conn_type": "aws", "login": KEY, "password": SECRET, "extra": extra})


@pytest.fixture(scope="module")
def s3(monkeypatch_module):
    """A moto S3 server on a free loopback port, a bucket on it, and the Airflow connection `lake_s3`
    (plus `lake_down`, pointing at a port nothing listens on)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch_module.setenv("AIRFLOW_CONN_LAKE_S3", _connection(endpoint))
    monkeypatch_module.setenv(
        "AIRFLOW_CONN_LAKE_DOWN",
        _connection(f"http://127.0.0.1:{_free_port()}", connect_timeout=1, retries={"max_attempts": 1}),
    )
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket=BUCKET)
    from driftline.airflow.connections import install

    install()  # as in a task or the CLI: object URLs read through ObjectStoragePath
    yield client
    server.stop()


def _s3_config(project: Path, name: str, url: str, conn_id: str = "lake_s3", **keys: str) -> Path:
    """The project's config (same schema and registry) reading its input from url."""
    return config_copy(
        project.parent.parent,
        [("\ninput = ", f'\nstorage_conn_id = "{conn_id}"\ninput = ')],
        base=project,
        name=f"{name}.toml",
        keys={"input": f'"{url}"', **keys},
    )


def _score(config_path: Path, interval) -> dict:
    from driftline.batch import score_interval

    return score_interval(str(config_path), interval[0], interval[1], f"it_{uuid.uuid4().hex[:6]}")


def _contents(config_path: Path, interval, row_numbers: bool = True) -> dict:
    quarantine = fetch(
        config_path,
        "SELECT q.row_number, q.entity_key, q.reason_codes, q.raw_row FROM {s}.quarantine_rows q "
        "JOIN {s}.scored_intervals i USING (interval_id) WHERE i.interval_start = %s "
        "AND q.run_key = i.current_run_key ORDER BY q.entity_key NULLS FIRST, q.row_number",
        (interval[0],),
    )
    return {
        "predictions": fetch(
            config_path,
            "SELECT entity_key, score, predicted_class, model_version FROM {s}.predictions "
            "WHERE interval_start = %s ORDER BY entity_key",
            (interval[0],),
        ),
        "quarantine": [row if row_numbers else row[1:] for row in quarantine],
        "summary": fetch(
            config_path,
            "SELECT rows_in, rows_scored, rows_quarantined, status FROM {s}.run_summary "
            "WHERE published AND interval_start = %s",
            (interval[0],),
        ),
    }


def test_an_s3_object_scores_like_the_local_csv(s3, project, caplog):
    config = load_config(project)
    local = Path(config.input_location(*FIRST))
    s3.put_object(Bucket=BUCKET, Key=f"input/{FIRST[0]:%Y-%m-%d}.csv", Body=local.read_bytes())
    remote = _s3_config(project, "s3_object", f"s3://{BUCKET}/input/{{interval_start:%Y-%m-%d}}.csv")

    _score(project, FIRST)
    expected = _contents(project, FIRST)
    with caplog.at_level(logging.DEBUG):
        summary = _score(remote, FIRST)
    got = _contents(remote, FIRST)

    assert got == expected
    assert len(got["predictions"]) > 2_000 and got["quarantine"]
    assert summary["source_uri"] == f"s3://{BUCKET}/input/{FIRST[0]:%Y-%m-%d}.csv"
    assert SECRET not in caplog.text


def test_a_prefix_of_several_objects_is_read_whole(s3, project):
    parts = split_input(project, SECOND, files=3)
    for part in parts:
        s3.put_object(Bucket=BUCKET, Key=f"parts/{SECOND[0]:%Y-%m-%d}/{part.name}", Body=part.read_bytes())
    s3.put_object(Bucket=BUCKET, Key=f"parts/{SECOND[0]:%Y-%m-%d}/_SUCCESS", Body=b"")
    remote = _s3_config(project, "s3_prefix", f"s3://{BUCKET}/parts/{{interval_start:%Y-%m-%d}}/")

    from driftline.sources.plan import interval_plan

    listed = interval_plan(load_config(remote), *SECOND)["files"]  # what `driftline score --dry-run` prints
    assert listed == [f"s3://{BUCKET}/parts/{SECOND[0]:%Y-%m-%d}/{part.name}" for part in parts]

    _score(project, SECOND)
    expected = _contents(project, SECOND, row_numbers=False)  # line numbers are per file
    _score(remote, SECOND)
    assert _contents(remote, SECOND, row_numbers=False) == expected


def test_a_parquet_object_reads_like_the_local_parquet(s3, project, tmp_path):
    from driftline.sources import read_interval

    config = load_config(project)
    frame = pd.read_csv(config.input_location(*FIRST), dtype=str, on_bad_lines="skip").head(500)
    local = tmp_path / "day.parquet"
    frame.to_parquet(local, index=False)
    s3.put_object(Bucket=BUCKET, Key="parquet/day.parquet", Body=local.read_bytes())
    remote = load_config(_s3_config(project, "s3_parquet", f"s3://{BUCKET}/parquet/day.parquet"))

    def chunks(location, config):
        return [
            (c.typed.to_pylist(), c.failures, c.row_numbers.tolist()) for c in read_interval(location, config, *FIRST)
        ]

    assert chunks(f"s3://{BUCKET}/parquet/day.parquet", remote) == chunks(str(local), config)


def test_a_missing_object_is_not_ready(s3, project):
    from driftline.sources import InputMissingError

    remote = _s3_config(project, "s3_missing", f"s3://{BUCKET}/input/{{interval_start:%Y-%m-%d}}.csv")
    with pytest.raises(InputMissingError, match=f"input not found: s3://{BUCKET}/input/{THIRD[0]:%Y-%m-%d}.csv"):
        _score(remote, THIRD)
    prefix = _s3_config(project, "s3_missing_prefix", f"s3://{BUCKET}/parts/{{interval_start:%Y-%m-%d}}/")
    with pytest.raises(InputMissingError, match="input not found"):
        _score(prefix, THIRD)


def test_unreachable_storage_is_transient_and_names_no_secret(s3, project, caplog):
    down = _s3_config(project, "s3_down", f"s3://{BUCKET}/input/{{interval_start:%Y-%m-%d}}.csv", conn_id="lake_down")
    with caplog.at_level(logging.INFO), pytest.raises(Transient, match="could not be read") as caught:
        _score(down, FIRST)
    text = str(caught.value)
    assert f"s3://{BUCKET}/input/" in text and SECRET not in text and KEY not in text
    assert SECRET not in caplog.text


def test_an_undefined_connection_is_bad_config(s3, project):
    from driftline.errors import BadConfig

    remote = _s3_config(project, "s3_noconn", f"s3://{BUCKET}/input/{{interval_start:%Y-%m-%d}}.csv", conn_id="nope")
    with pytest.raises(BadConfig, match="'nope'"):
        _score(remote, FIRST)


def test_a_prefix_scored_by_partitions_matches_the_single_task(s3, project):
    """files_per_partition over objects: the plan carries object URLs, each partition reads its own."""
    from driftline.partitions import plan_partitions, publish_partitions, score_partition

    parts = split_input(project, SECOND, files=3)
    for part in parts:
        s3.put_object(Bucket=BUCKET, Key=f"mapped/{SECOND[0]:%Y-%m-%d}/{part.name}", Body=part.read_bytes())
    url = f"s3://{BUCKET}/mapped/{{interval_start:%Y-%m-%d}}/"
    remote = str(_s3_config(project, "s3_mapped", url, files_per_partition="2"))
    _score(project, SECOND)
    expected = _contents(project, SECOND, row_numbers=False)

    plan = plan_partitions(remote, *SECOND, "it_mapped")
    assert plan["mode"] == "partitioned" and [len(p["files"]) for p in plan["partitions"]] == [2, 1]
    assert plan["partitions"][0]["files"][0] == f"s3://{BUCKET}/mapped/{SECOND[0]:%Y-%m-%d}/{parts[0].name}"
    for partition in plan["partitions"]:
        score_partition(remote, *SECOND, "it_mapped", partition)
    publish_partitions(remote, *SECOND, "it_mapped", plan["run_key"])
    assert _contents(remote, SECOND, row_numbers=False) == expected


@pytest.mark.parametrize(
    "name",
    ["a#b.csv", "a?b.csv", "a b.csv", "a%20b.csv", "a+b&c=d;e.csv", "ñandú é€.csv", "a[1].csv", "a@b:c.csv"],
)
def test_keys_with_url_special_characters_are_read_as_objects_and_in_prefixes(s3, project, name):
    """`#`, `?`, `%`, spaces, unicode: key characters, never a URL fragment, query, escape or glob."""
    from driftline.sources import read_interval

    config = load_config(project)
    body = Path(config.input_location(*FIRST)).read_bytes()
    folder = f"special/{uuid.uuid4().hex[:8]}"
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/{name}", Body=body)
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/decoy-{name}", Body=b"not,the,file\n")  # a glob would match it
    expected = sum(chunk.typed.num_rows for chunk in read_interval(str(config.input_location(*FIRST)), config, *FIRST))
    for url in (f"s3://{BUCKET}/{folder}/{name}", f"s3://{BUCKET}/{folder}/"):
        remote = load_config(_s3_config(project, f"special_{uuid.uuid4().hex[:6]}", url.replace("{", "{{")))
        if url.endswith("/"):  # the prefix: both objects, the decoy fails on its columns
            from driftline.sources import input_files

            assert [f.url for f in input_files(url, "lake_s3")] == [
                f"s3://{BUCKET}/{folder}/{n}" for n in sorted([name, f"decoy-{name}"])
            ]
            continue
        chunks = list(read_interval(remote.input_location(*FIRST), remote, *FIRST))
        assert sum(chunk.typed.num_rows for chunk in chunks) == expected
        assert {chunk.source for chunk in chunks} == {url}
