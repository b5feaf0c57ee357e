"""Registry against real Postgres: idempotent registration, hash check on load, atomic aliases."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from psycopg import sql

from driftline import db
from driftline.registry import ModelLoadError, champion_version, load_model, register_champion

MODEL_TEXT = "tree\nversion=v4\n"  # only hashed and stored here; loading real models is tested below


@pytest.fixture
def conn(database_url):
    schema = f"reg_{uuid.uuid4().hex[:8]}"
    with db.connect(database_url, autocommit=True) as connection:
        db.ensure_schema(connection, schema)
        db.ensure_schema(connection, schema)  # idempotent
        yield connection, schema


def test_same_artifact_registers_once_and_new_one_archives_the_old(conn, tmp_path):
    connection, schema = conn
    v1, created1 = register_champion(connection, schema, tmp_path, MODEL_TEXT, {"metrics": {}}, "first")
    again, created_again = register_champion(connection, schema, tmp_path, MODEL_TEXT, {"metrics": {}}, "again")
    v2, created2 = register_champion(connection, schema, tmp_path, MODEL_TEXT + "x\n", {"metrics": {}}, "second")
    assert (v1, created1, again, created_again, v2, created2) == (1, True, 1, False, 2, True)
    assert champion_version(connection, schema) == 2
    rows = connection.execute(
        sql.SQL("SELECT version, status FROM {} ORDER BY version").format(db.table(schema, "model_versions"))
    ).fetchall()
    assert rows == [(1, "archived"), (2, "champion")]
    events = connection.execute(
        sql.SQL("SELECT from_version, to_version, action, reason FROM {} ORDER BY event_id").format(
            db.table(schema, "promotion_events")
        )
    ).fetchall()
    assert events == [(None, 1, "promote", "first"), (1, 2, "promote", "second")]


def test_tampered_artifact_is_refused_and_champion_unchanged(project, database_url):
    from driftline.config import load_config

    config = load_config(project)
    with db.connect(database_url, autocommit=True) as connection:
        model = load_model(connection, config.db_schema)  # loads fine before tampering
        assert model.booster.num_trees() == config.num_boost_round
        uri = connection.execute(
            sql.SQL("SELECT artifact_uri FROM {} WHERE version = %s").format(
                db.table(config.db_schema, "model_versions")
            ),
            (model.version,),
        ).fetchone()[0]
        path = Path(uri.removeprefix("file://"))
        original = path.read_bytes()
        try:
            path.write_bytes(original.replace(b"shrinkage=", b"shrinkage=9", 1))
            with pytest.raises(ModelLoadError, match="sha256 mismatch"):
                load_model(connection, config.db_schema)
            path.unlink()
            with pytest.raises(ModelLoadError, match="artifact unreadable"):
                load_model(connection, config.db_schema)
        finally:
            path.write_bytes(original)
        assert champion_version(connection, config.db_schema) == model.version
        manifest = json.loads((path.parent / "manifest.json").read_text())
        assert manifest["sha256"] and manifest["features"] and manifest["libraries"]["lightgbm"]
        assert set(manifest["metrics"]) == {"auc", "log_loss", "accuracy"}


def test_retention_keeps_newest_and_never_the_champion_or_previous(conn, tmp_path):
    from driftline.registry import RegistryError, prune_versions, register_candidate

    connection, schema = conn
    for text in ("a", "b"):  # v1 becomes previous, v2 champion
        register_champion(connection, schema, tmp_path, MODEL_TEXT + text, {"metrics": {}}, text)
    for text in ("c", "d", "e"):  # v3, v4, v5: candidates
        register_candidate(connection, schema, tmp_path, MODEL_TEXT + text, {"metrics": {}})
    with pytest.raises(RegistryError, match="at least 2"):
        prune_versions(connection, schema, 1)
    assert prune_versions(connection, schema, 2) == [3]  # v5, v4 newest; v2 champion, v1 previous
    assert prune_versions(connection, schema, 2) == []  # idempotent
    rows = dict(
        connection.execute(
            sql.SQL("SELECT version, pruned_at IS NOT NULL FROM {}").format(db.table(schema, "model_versions"))
        ).fetchall()
    )
    assert rows == {1: False, 2: False, 3: True, 4: False, 5: False}
    assert sorted(p.name[:5] for p in tmp_path.iterdir()) == ["v0001", "v0002", "v0004", "v0005"]
    with pytest.raises(ModelLoadError, match="removed by retention"):
        load_model(connection, schema, 3)
    assert champion_version(connection, schema) == 2
