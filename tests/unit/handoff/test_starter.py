"""`driftline init-config`: the starting config binds the model's features and loads as a valid config."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from driftline.config import load_config
from driftline.handoff.contract import check_contract
from driftline.handoff.files import read_model_file
from driftline.handoff.starter import write_starting_config
from tests.unit.handoff.models import CATEGORICAL, FEATURES, booster, onehot_pipeline, rows


def _options(task: str = "binary"):
    return SimpleNamespace(
        name="fraud_handoff",
        task=task,
        entity_key="transaction_id",
        event_time="event_time",
        target="is_fraud",
        input=None,
        labels=None,
    )


@pytest.mark.parametrize("kind", ["sklearn", "lightgbm"])
def test_the_starting_config_loads_and_passes_the_models_own_contract(tmp_path, kind):
    import skops.io as sio

    history = rows()
    history_path = tmp_path / "history.parquet"
    history.to_parquet(history_path)
    model_path = tmp_path / ("model.skops" if kind == "sklearn" else "model.txt")
    if kind == "sklearn":
        sio.dump(onehot_pipeline(history), model_path)
    else:
        booster(history).save_model(str(model_path))
    path = write_starting_config(str(model_path), str(history_path), str(tmp_path / "config" / "x.toml"), _options())
    config = load_config(path)
    assert config.feature_names == FEATURES
    assert config.categorical_features == CATEGORICAL
    assert set(next(f for f in config.features if f.name == "channel").categories) == set(history["channel"])
    model = read_model_file(model_path)
    assert set(check_contract(model.model, model.kind, config)) == set(CATEGORICAL)


def test_it_never_overwrites_a_config_unless_asked(tmp_path):
    history_path = tmp_path / "history.parquet"
    rows().to_parquet(history_path)
    model_path = tmp_path / "model.txt"
    booster(rows()).save_model(str(model_path))
    target = tmp_path / "config" / "x.toml"
    write_starting_config(str(model_path), str(history_path), str(target), _options("regression"))
    assert load_config(target).retraining.metric == "rmse"
    with pytest.raises(Exception, match="--overwrite"):
        write_starting_config(str(model_path), str(history_path), str(target), _options())
