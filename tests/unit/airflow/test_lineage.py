"""The OpenLineage event of a published interval, built without Airflow running (no server, no DB)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.airflow.lineage import build_event, input_datasets, postgres_namespace

SUMMARY = {"interval_start": "2026-11-01T00:00:00+00:00", "model_version": 3, "rows_in": 10}
SUMMARY |= {"rows_scored": 8, "rows_quarantined": 2}
CONFIG = SimpleNamespace(name="demo", db_schema="dl_demo")
RUN_ID = "01930000-0000-7000-8000-000000000000"

hosts = st.sampled_from(["localhost", "db.internal", "10.0.0.7"])
ports = st.integers(min_value=1, max_value=65535)
names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


@given(host=hosts, port=ports, database=names, user=names, password=names)
def test_a_url_and_its_conninfo_name_one_namespace_without_credentials(host, port, database, user, password):
    url = f"postgresql://{user}:{password}@{host}:{port}/{database}"
    conninfo = f"host={host} port={port} dbname={database} user={user} password={password}"
    assert postgres_namespace(url) == postgres_namespace(conninfo) == (f"postgres://{host}:{port}", database)


def test_defaults_a_socket_and_several_hosts():
    assert postgres_namespace("postgresql:///shop?host=/var/run/postgresql") == ("postgres://localhost:5432", "shop")
    assert postgres_namespace("postgresql://a:6432,b:6433/shop") == ("postgres://a:6432", "shop")
    assert postgres_namespace("postgresql://[::1]/shop") == ("postgres://[::1]:5432", "shop")


def test_input_datasets_name_files_objects_and_tables():
    files = {"source": "files", "location": "/data", "files": ["/data/a.csv", "/data/b.csv"]}
    assert input_datasets(files) == [("file", "/data/a.csv"), ("file", "/data/b.csv")]
    objects = {"source": "object_storage", "location": "s3://bucket/in/2026/", "files": None}
    assert input_datasets(objects) == [("s3://bucket", "in/2026/")]
    sql = {"source": "sql", "connection": {"url": "postgresql://u:p@wh:5433/sales"}, "table": "orders"}
    assert input_datasets(sql) == [("postgres://wh:5433", "sales.public.orders")]


def _event(plan):
    pytest.importorskip("openlineage.client")
    from openlineage.client.serde import Serde

    event = build_event(CONFIG, SUMMARY, plan, "host=pg port=5432 dbname=dl", RUN_ID, ("ns", "score_batch.announce"))
    return Serde.to_dict(event)


def test_the_event_carries_inputs_predictions_counts_and_model_version():
    event = _event({"source": "files", "location": "/data/a.csv", "files": ["/data/a.csv"]})
    assert event["eventType"] == "COMPLETE" and event["run"]["runId"] == RUN_ID
    assert (event["job"]["namespace"], event["job"]["name"]) == ("ns", "score_batch.announce")
    assert event["job"]["facets"]["jobType"]["jobType"] == "TASK"
    facets = event["run"]["facets"]
    assert (facets["driftline_counts"]["rowsIn"], facets["driftline_counts"]["rowsQuarantined"]) == (10, 2)
    assert facets["driftline_model"]["modelVersion"] == 3 and facets["driftline_model"]["dataset"] == "demo"
    assert all(f["_producer"].startswith("https://") for f in facets.values())
    ((inp,), (out,)) = (event["inputs"], event["outputs"])
    assert (inp["namespace"], inp["name"], inp["inputFacets"]["dataQualityMetrics"]["rowCount"]) == (
        "file",
        "/data/a.csv",
        10,
    )
    assert (out["namespace"], out["name"]) == ("postgres://pg:5432", "dl.dl_demo.predictions")
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 8


def test_several_inputs_do_not_each_claim_the_interval_total():
    event = _event({"source": "files", "location": "/d", "files": ["/d/a.csv", "/d/b.csv"]})
    assert [i["inputFacets"]["dataQualityMetrics"].get("rowCount") for i in event["inputs"]] == [None, None]
    assert event["run"]["facets"]["driftline_counts"]["rowsIn"] == 10
