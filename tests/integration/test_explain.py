"""[explain] on: score_interval stores the top-k TreeSHAP reasons of the highest scores beside the
predictions, published with the attempt and replaced by a rerun; off: nothing is stored."""

from __future__ import annotations

import uuid

import numpy as np
import psycopg

from driftline.batch import score_interval
from driftline.config import load_config
from driftline.registry import load_model
from driftline.scoring.features import bind, model_matrix
from tests.helpers import PARTS_INPUT, SMALL_PLAN, config_variant, db_url, fetch, split_input

INTERVAL = SMALL_PLAN.interval_bounds()[0]


def variant(project, explain: str | None):
    from driftline.training import train_champion

    """A schema of the project whose [explain] section is explain (None: no section), champion trained."""
    path = config_variant(project, f"ex_{uuid.uuid4().hex[:8]}", sections={"explain": explain})
    train_champion(str(path))
    return path


def test_reasons_of_the_top_rows_sum_to_their_raw_scores_and_a_rerun_replaces_them(project):
    path = variant(project, "top_k = 7\ntop_fraction = 0.1\n")  # 7 = every demo feature: the sum is exact
    config = load_config(path)

    summary = score_interval(str(path), *INTERVAL, run_id="explain-1")

    rows = fetch(path, "SELECT entity_key, score, rank, feature, value, contribution FROM {s}.prediction_reasons")
    keys = {row[0] for row in rows}
    # top 10% of each chunk (chunk_rows = 1000 in the test project)
    assert summary["rows_explained"] == len(keys) > 0
    top = fetch(path, "SELECT count(*) FROM {s}.predictions WHERE score >= %s", (min(row[1] for row in rows),))[0][0]
    assert len(keys) <= top
    with psycopg.connect(db_url()) as conn:
        model = load_model(conn, config.db_schema)
    import pyarrow as pa

    one = pa.table(
        {
            f.name: pa.array([None], type=pa.string() if f.type == "categorical" else pa.float64())
            for f in config.features
        }
    )
    expected_value = model.booster.predict(model_matrix(one, bind(model, config)), pred_contrib=True)[0, -1]
    sums, scores = {}, {}
    for key, score, rank, feature, value, contribution in rows:
        sums[key] = sums.get(key, expected_value) + contribution
        scores[key] = score
        assert feature in config.feature_names and rank >= 1
        if feature == "channel" and value is not None:
            assert value in ("card_present", "online", "contactless")  # the category, not its code
    keys_sorted = sorted(keys)
    logits = np.log(np.array([scores[k] for k in keys_sorted]) / (1 - np.array([scores[k] for k in keys_sorted])))
    np.testing.assert_allclose([sums[k] for k in keys_sorted], logits, atol=1e-9)

    score_interval(str(path), *INTERVAL, run_id="explain-2")

    again = fetch(path, "SELECT entity_key, rank, feature, contribution FROM {s}.prediction_reasons")
    assert sorted(again) == sorted((k, r, f, c) for k, _, r, f, _, c in rows)
    [(stored, runs)] = fetch(path, "SELECT count(*), count(DISTINCT run_key) FROM {s}.prediction_reason_rows")
    assert (stored, runs) == (len(rows), 1)  # the first attempt's reasons went with it


def test_min_score_explains_only_rows_at_or_above_it_and_off_stores_nothing(project):
    path = variant(project, "top_k = 2\nmin_score = 0.2\n")
    score_interval(str(path), *INTERVAL, run_id="explain-min")
    [(explained, low, most)] = fetch(
        path, "SELECT count(DISTINCT entity_key), min(score), max(rank) FROM {s}.prediction_reasons"
    )
    [(eligible,)] = fetch(path, "SELECT count(*) FROM {s}.predictions WHERE score >= 0.2")
    assert explained == eligible > 0 and low >= 0.2 and most <= 2

    off = variant(project, None)
    summary = score_interval(str(off), *INTERVAL, run_id="explain-off")
    assert "rows_explained" not in summary and "explain" not in summary["stage_seconds"]
    assert fetch(off, "SELECT count(*) FROM {s}.prediction_reason_rows") == [(0,)]


def test_partitions_stage_their_reasons_and_publishing_shows_them_once(project):
    """Partitioned scoring with min_score (chunk-independent, so it equals the single task): a retried
    partition replaces its reasons, and they are visible only once the plan is published."""
    from driftline.partitions import plan_partitions, publish_partitions, score_partition
    from driftline.training import train_champion

    split_input(project, INTERVAL, 5)
    paths = {}
    for name, per_partition in (("single", "0"), ("partitioned", "2")):
        path = config_variant(
            project,
            f"exp_{name}_{uuid.uuid4().hex[:6]}",
            input=PARTS_INPUT,
            files_per_partition=per_partition,
            sections={"explain": "top_k = 2\nmin_score = 0.1\n"},
        )
        train_champion(str(path))
        paths[name] = path
    score_interval(str(paths["single"]), *INTERVAL, run_id="single")
    path, run_id = str(paths["partitioned"]), "manual__partitioned_reasons"
    plan = plan_partitions(path, *INTERVAL, run_id)
    first, second, third = plan["partitions"]
    for partition in (first, second, second, third):  # the second one retried
        score_partition(path, *INTERVAL, run_id, partition)
    assert fetch(paths["partitioned"], "SELECT count(*) FROM {s}.prediction_reasons") == [(0,)]  # not published yet

    publish_partitions(path, *INTERVAL, run_id, plan["run_key"])

    query = "SELECT entity_key, rank, feature, value, contribution FROM {s}.prediction_reasons ORDER BY 1, 2"
    single, partitioned = fetch(paths["single"], query), fetch(paths["partitioned"], query)
    assert partitioned == single and len(single) > 0
    assert fetch(paths["partitioned"], "SELECT count(DISTINCT partition) FROM {s}.prediction_reason_rows") == [(3,)]
