"""load_config: read one dataset's TOML file, validate it against the file's models (config/file.py)
and flatten it into the DatasetConfig the package reads."""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import fields
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from driftline.config.checks import plain_numbers
from driftline.config.dataset import DatasetConfig
from driftline.config.errors import ConfigError
from driftline.config.file import ConfigFile
from driftline.config.messages import config_error

MAX_CONFIG_BYTES = 1_000_000  # read at every DAG parse: a few kB in practice


@functools.cache
def _adapter() -> TypeAdapter:
    return TypeAdapter(ConfigFile)


def load_config(path: str | os.PathLike) -> DatasetConfig:
    """Load and validate one dataset config file."""
    path = Path(path)
    raw = _read_toml(path)
    plain_numbers(path, raw)
    root = _project_root(path)
    try:
        file = _adapter().validate_python(raw, context={"root": root})
    except ValidationError as exc:
        raise config_error(path, exc, ConfigFile) from None
    return dataset_config(file, path.resolve(), root)


def dataset_config(file: ConfigFile, path: Path, root: Path) -> DatasetConfig:
    """The flat view of a valid file: each DatasetConfig field read from the [section] key it names."""
    values = {}
    for spec in fields(DatasetConfig):
        if "section" not in spec.metadata:
            continue  # path, root: not from the file
        value = getattr(file, spec.metadata["section"])
        if spec.metadata["key"] is not None:
            value = getattr(value, spec.metadata["key"])
        values[spec.name] = value
    values["features"] = tuple(file.features.values())
    values["label_column"] = file.label_column
    return DatasetConfig(path=path, root=root, **values)


def _read_toml(path: Path) -> dict:
    """The file's TOML table; ConfigError naming the file for anything that stops it being one: missing,
    unreadable, not UTF-8 (with the line of the first bad byte), not TOML."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except OSError as exc:  # a folder, no permission
        raise ConfigError(f"{path}: config file cannot be read ({exc.strerror or type(exc).__name__})") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; a dataset config is a few kB of TOML")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}, line {line}); save the file as UTF-8") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError as exc:  # arrays or inline tables nested thousands deep
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from exc


def _project_root(config_path: Path) -> Path:
    """Relative paths are resolved against the project root: the parent of the config folder."""
    env_root = os.environ.get("DRIFTLINE_HOME")
    if env_root:
        return Path(env_root).resolve()
    return config_path.resolve().parent.parent


def default_config_path() -> Path:
    """The config a command uses when none is given: $DRIFTLINE_CONFIG, else demo.toml in the configs
    folder ($DRIFTLINE_CONFIGS, else config/ in this checkout)."""
    env = os.environ.get("DRIFTLINE_CONFIG")
    if env:
        return Path(env)
    return default_configs_dir() / "demo.toml"


def default_configs_dir() -> Path:
    """The configs folder of a deployment: $DRIFTLINE_CONFIGS, else config/ in this checkout."""
    env = os.environ.get("DRIFTLINE_CONFIGS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "config"
