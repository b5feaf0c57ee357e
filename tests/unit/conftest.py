"""Unit-layer fixtures: the seeded demo model, trained once per session per (task, extra params)."""

from __future__ import annotations

import pytest

from tests.unit.models import config_for, trained


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """trained_model(task, **params) -> (config, LoadedModel): config_for + trained, cached for the session.

    Training the 20k-row model takes seconds; every scoring test used to train its own identical copy.
    The config and the model are shared: replace the config (dataclasses.replace) rather than change it.
    """
    cache = {}

    def get(task: str, **params: str):
        key = (task, tuple(sorted(params.items())))
        if key not in cache:
            config = config_for(tmp_path_factory.mktemp(task), task, **params)
            cache[key] = (config, trained(config))
        return cache[key]

    return get
