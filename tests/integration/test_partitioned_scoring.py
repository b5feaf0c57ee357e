"""Partitioned scoring: an interval whose input is a directory of files, scored by mapped tasks, gives
exactly what the single-task path gives, and re-running a partition never duplicates rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from driftline.batch import check_interval
from driftline.config import load_config
from driftline.partitions import PartitionError, plan_partitions, publish_partitions, score_partition
from tests.helpers import PARTS_INPUT, SMALL_PLAN, config_variant, fetch, split_input

INTERVAL = SMALL_PLAN.interval_bounds()[0]
FILES = 5


@pytest.fixture(scope="module")
def variants(project):
    """Two schemas over the same split input: one task (files_per_partition = 0) and partitions of 2 files."""
    from driftline.training import train_champion

    split_input(project, INTERVAL, FILES)
    paths = {}
    for name, per_partition in (("single", "0"), ("partitioned", "2")):
        path = config_variant(
            project, f"pt_{name}_{uuid.uuid4().hex[:6]}", input=PARTS_INPUT, files_per_partition=per_partition
        )
        train_champion(str(path))
        paths[name] = path
    return paths


def predictions(config_path: Path) -> list[tuple]:
    return fetch(
        config_path,
        "SELECT entity_key, score, predicted_class, model_version FROM {s}.predictions WHERE interval_start = %s "
        "ORDER BY entity_key",
        (INTERVAL[0],),
    )


def quarantine(config_path: Path) -> list[tuple]:
    return fetch(
        config_path,
        "SELECT q.source_file, q.row_number, q.entity_key, q.reason_codes FROM {s}.quarantine_rows q "
        "JOIN {s}.scored_intervals i USING (interval_id) WHERE i.interval_start = %s AND q.run_key = i.current_run_key "
        "ORDER BY 1, 2",
        (INTERVAL[0],),
    )


def task_states(dag_run) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for ti in dag_run.get_task_instances():
        states.setdefault(ti.task_id, []).append(str(ti.state))
    return states


def test_partitioned_run_equals_the_single_task_path(variants, score_batch_dag):
    runs = {}
    for name, path in variants.items():
        run = score_batch_dag.test(logical_date=INTERVAL[1], run_conf={"config": str(path)})
        assert "success" in str(run.state), name
        runs[name] = task_states(run)
    assert runs["single"]["score_interval"] == ["success"] and runs["single"]["publish_partitions"] == ["skipped"]
    assert runs["partitioned"]["score_interval"] == ["skipped"]
    assert runs["partitioned"]["score_partition"] == ["success"] * 3  # 5 files, 2 per partition
    assert runs["partitioned"]["publish_partitions"] == ["success"]

    single, partitioned = variants["single"], variants["partitioned"]
    assert predictions(partitioned) == predictions(single) and len(predictions(single)) > 0
    assert quarantine(partitioned) == quarantine(single) and len(quarantine(single)) > 0
    assert {Path(f).name for f, *_ in quarantine(single)} <= {f"part-{n:03d}.csv" for n in range(FILES)}
    summaries = {name: check_interval(str(path), *INTERVAL) for name, path in variants.items()}
    for key in ("rows_in", "rows_scored", "rows_quarantined", "model_version"):
        assert summaries["partitioned"][key] == summaries["single"][key]
    [(partitions, status)] = fetch(partitioned, "SELECT partitions, status FROM {s}.run_health WHERE published")
    assert (partitions, status) == (3, "succeeded")
    # The published plan's rows are the only rows: nothing copied, nothing left behind.
    assert fetch(partitioned, "SELECT count(*), count(DISTINCT partition) FROM {s}.prediction_rows") == [
        (len(predictions(single)), 3)
    ]

    # The same DAG run again: the interval is replaced, not doubled.
    assert "success" in str(score_batch_dag.test(logical_date=INTERVAL[1], run_conf={"config": str(partitioned)}).state)
    assert predictions(partitioned) == predictions(single)
    assert quarantine(partitioned) == quarantine(single)


def test_a_retried_partition_replaces_its_rows_and_publishing_waits_for_all(variants):
    path = str(variants["partitioned"])
    run_id = "manual__retry_one_partition"
    before = predictions(variants["partitioned"])
    plan = plan_partitions(path, *INTERVAL, run_id)
    assert plan["mode"] == "partitioned" and [len(p["files"]) for p in plan["partitions"]] == [2, 2, 1]
    first, second, third = plan["partitions"]
    score_partition(path, *INTERVAL, run_id, first)
    score_partition(path, *INTERVAL, run_id, second)
    score_partition(path, *INTERVAL, run_id, second)  # a retry of the same partition

    with pytest.raises(PartitionError, match=r"partition\(s\) \[2\] of 3 have not been scored"):
        publish_partitions(path, *INTERVAL, run_id, plan["run_key"])
    assert predictions(variants["partitioned"]) == before  # nothing published meanwhile

    score_partition(path, *INTERVAL, run_id, third)
    summary = publish_partitions(path, *INTERVAL, run_id, plan["run_key"])
    assert summary["partitions"] == 3 and summary["rows_in"] == summary["rows_scored"] + summary["rows_quarantined"]
    assert predictions(variants["partitioned"]) == predictions(variants["single"])
    keys = [key for key, *_ in predictions(variants["partitioned"])]
    assert len(keys) == len(set(keys))
    assert check_interval(path, *INTERVAL)["run_id"] == run_id

    with pytest.raises(PartitionError, match="was already published"):
        score_partition(path, *INTERVAL, run_id, second)
    # A retry of a publish that committed (the task died before reporting success) changes nothing.
    again = publish_partitions(path, *INTERVAL, run_id, plan["run_key"])
    assert again["already_published"] and again["rows_in"] == summary["rows_in"] and again["partitions"] == 3
    assert predictions(variants["partitioned"]) == predictions(variants["single"])


def test_an_older_plan_cannot_overwrite_a_newer_publication(variants):
    path = str(variants["partitioned"])
    older = plan_partitions(path, *INTERVAL, "manual__older")
    score_partition(path, *INTERVAL, "manual__older", older["partitions"][1])  # scored, never published
    newer = plan_partitions(path, *INTERVAL, "manual__newer")
    for partition in newer["partitions"]:
        score_partition(path, *INTERVAL, "manual__newer", partition)
    publish_partitions(path, *INTERVAL, "manual__newer", newer["run_key"])
    # The superseded plan's rows went with the publication; only the published attempt's remain.
    assert fetch(variants["partitioned"], "SELECT DISTINCT run_key FROM {s}.prediction_rows") == [(newer["run_key"],)]
    with pytest.raises(PartitionError, match=f"superseded by a later attempt \\(run_key {newer['run_key']}\\)"):
        score_partition(path, *INTERVAL, "manual__older", older["partitions"][0])
    assert check_interval(path, *INTERVAL)["run_id"] == "manual__newer"


def test_small_intervals_keep_the_single_task_path(variants, project):
    path = config_variant(
        variants["partitioned"],
        load_config(variants["partitioned"]).db_schema,
        name="wide_partitions",
        files_per_partition="5",
    )
    assert plan_partitions(str(path), *INTERVAL, "manual__small") == {
        "mode": "single",
        "files": FILES,
        "partitions": [],
    }


def test_publish_waits_for_a_partition_still_writing_and_counts_what_it_committed(variants):
    """A partition try that is still writing (say a zombie of a retried one) holds a share lock on
    the plan row; publish waits for it and judges the plan as that try left it."""
    import os
    import time
    from concurrent.futures import ThreadPoolExecutor

    import psycopg
    from psycopg import sql

    path = str(variants["partitioned"])
    run_id = "manual__publish_waits"
    before = predictions(variants["partitioned"])
    plan = plan_partitions(path, *INTERVAL, run_id)
    for partition in plan["partitions"]:
        score_partition(path, *INTERVAL, run_id, partition)
    schema = sql.Identifier(load_config(path).db_schema)
    with psycopg.connect(os.environ["DRIFTLINE_DB_URL"]) as zombie, ThreadPoolExecutor(1) as pool:
        # What a partition try does first, inside its transaction: lock the plan, drop its old rows.
        zombie.execute(
            sql.SQL("SELECT 1 FROM {}.partition_plans WHERE run_key = %s FOR SHARE").format(schema), (plan["run_key"],)
        )
        for table in ("prediction_rows", "partition_runs"):
            zombie.execute(
                sql.SQL("DELETE FROM {}.{} WHERE run_key = %s AND partition = 2").format(schema, sql.Identifier(table)),
                (plan["run_key"],),
            )
        publishing = pool.submit(publish_partitions, path, *INTERVAL, run_id, plan["run_key"])
        deadline = time.monotonic() + 20
        while not fetch(
            variants["partitioned"],
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
            (f"driftline publish_partitions {run_id}",),
        ):
            assert not publishing.done(), (
                f"publish did not wait for the writing partition: {publishing.exception() or publishing.result()}"
            )
            assert time.monotonic() < deadline, "publish never waited on the plan's lock"
            time.sleep(0.05)
        zombie.commit()  # the try ends having removed its partition (it crashed before writing again)
        with pytest.raises(PartitionError, match=r"partition\(s\) \[2\] of 3 have not been scored"):
            publishing.result(timeout=60)
    assert predictions(variants["partitioned"]) == before
    score_partition(path, *INTERVAL, run_id, plan["partitions"][2])
    assert publish_partitions(path, *INTERVAL, run_id, plan["run_key"])["partitions"] == 3
    assert check_interval(path, *INTERVAL)["run_id"] == run_id


def test_a_key_in_two_partitions_fails_the_later_partition_and_says_so(variants, project):
    import shutil

    from driftline.sources import InputError
    from driftline.training import train_champion

    config = load_config(variants["partitioned"])
    day = f"{INTERVAL[0]:%Y-%m-%d}"
    target = config.root / "data" / "parts_dup" / day
    shutil.copytree(config.root / "data" / "parts" / day, target)
    path = config_variant(
        project,
        f"pt_dup_{uuid.uuid4().hex[:6]}",
        input='"data/parts_dup/{interval_start:%Y-%m-%d}"',
        files_per_partition="2",
    )
    train_champion(str(path))
    plan = plan_partitions(str(path), *INTERVAL, "manual__duplicate")
    first, second, third = plan["partitions"]
    score_partition(str(path), *INTERVAL, "manual__duplicate", first)
    score_partition(str(path), *INTERVAL, "manual__duplicate", second)
    [(key,)] = fetch(
        path,
        "SELECT entity_key FROM {s}.prediction_rows WHERE run_key = %s AND partition = 0 LIMIT 1",
        (plan["run_key"],),
    )
    line = next(line for line in (target / "part-000.csv").read_text().splitlines() if key in line.split(","))
    with (target / "part-004.csv").open("a") as extra:  # the third partition's file repeats that row
        extra.write(line + "\n")
    with pytest.raises(InputError, match="of partition 2 appears again in another partition"):
        score_partition(str(path), *INTERVAL, "manual__duplicate", third)
    staged = fetch(
        path,
        "SELECT partition, count(*) FROM {s}.prediction_rows WHERE run_key = %s GROUP BY 1 ORDER BY 1",
        (plan["run_key"],),
    )
    assert [partition for partition, _ in staged] == [0, 1]  # the failed partition wrote nothing
