"""The datasets of one deployment: every *.toml of the configs folder ($DRIFTLINE_CONFIGS, default
config/ of this checkout), or only the file $DRIFTLINE_CONFIG names when it is set. Each config
either loads or carries its ConfigError, so one broken file never hides the others.

Standard library only: DAG files call this at parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from driftline.config.dataset import DatasetConfig
from driftline.config.errors import ConfigError
from driftline.config.load import default_configs_dir, load_config

# What two datasets of one deployment may not share, and why (the first file by name keeps it).
_OWN = {
    "dataset.name": ("name", "its DAG ids, Asset and tags are named after it"),
    "database.schema": ("db_schema", "its tables live there"),
    "model.registry_dir": ("registry_dir", "its model versions are written there"),
    "drift.reports_dir": ("drift.reports_dir", "its drift reports are written there"),
}


@dataclass(frozen=True)
class Datasets:
    """The configs of a deployment: those that load (path as the DAGs pass it on, config) and those
    that do not (path, error), both in file-name order."""

    loaded: list[tuple[str, DatasetConfig]] = field(default_factory=list)
    broken: list[tuple[str, ConfigError]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [config.name for _, config in self.loaded]

    def error(self) -> ConfigError | None:
        """One ConfigError naming every config that did not load (one line each, file and key), or None."""
        if not self.broken:
            return None
        lines = "\n".join(f"- {error}" for _, error in self.broken)
        return ConfigError(
            f"{len(self.broken)} dataset config(s) did not load; their datasets are left out, the others are "
            f"not:\n{lines}"
        )

    def get(self, name: str) -> tuple[str, DatasetConfig] | None:
        """(path, config) of the dataset called name, or None."""
        return next(((path, config) for path, config in self.loaded if config.name == name), None)


def config_paths() -> list[Path]:
    """$DRIFTLINE_CONFIG alone when set, else every *.toml of the configs folder (sorted by name);
    ConfigError when that folder is missing or holds none."""
    single = os.environ.get("DRIFTLINE_CONFIG")
    if single:
        return [Path(single)]
    folder = default_configs_dir()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: configs folder not found (set $DRIFTLINE_CONFIGS to the folder of *.toml files)")
    paths = sorted(path.resolve() for path in folder.glob("*.toml") if path.is_file())
    if not paths:
        raise ConfigError(f"{folder}: no dataset config (*.toml) in the configs folder ($DRIFTLINE_CONFIGS)")
    return paths


def load_datasets(paths: list[Path] | None = None) -> Datasets:
    """Load every config of the deployment (or of paths); a config that fails, or that reuses what an
    earlier one owns (name, schema, registry, reports folder), is broken, the others still load."""
    datasets = Datasets()
    try:
        paths = config_paths() if paths is None else paths
    except ConfigError as exc:
        datasets.broken.append((str(exc).split(": ", 1)[0], exc))
        return datasets
    owners: dict[tuple[str, object], str] = {}
    for path in paths:
        try:
            config = load_config(path)
            for key, value in _owned(config).items():
                if (key, value) in owners:
                    _, why = _OWN[key]
                    raise ConfigError(
                        f"{path}: '{key}' = {str(value)!r} is already used by {owners[key, value]}; every dataset "
                        f"needs its own ({why})"
                    )
        except ConfigError as exc:
            datasets.broken.append((str(path), exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a check this loader misses still hides no other dataset
            error = ConfigError(
                f"{path}: config cannot be loaded ({type(exc).__name__}); check the file against the README"
            )
            datasets.broken.append((str(path), error))
            continue
        owners.update({(key, value): str(path) for key, value in _owned(config).items()})
        datasets.loaded.append((str(path), config))
    return datasets


def _owned(config: DatasetConfig) -> dict[str, object]:
    values = {}
    for key, (attribute, _) in _OWN.items():
        value = config
        for part in attribute.split("."):
            value = getattr(value, part, None)
        if value is not None:
            values[key] = value.resolve() if isinstance(value, Path) else value
    return values
