"""Great Expectations: the dataset's suite as a reviewed file, run chunk by chunk.

Row-level (column map) expectations that fail send the failing rows to quarantine with the
expectation as the reason code; any other failing expectation is table-level and stops the run.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from .config import DatasetConfig


class SuiteError(ValueError):
    """The expectation suite file is missing or unusable."""


class TableValidationError(ValueError):
    """A table-level expectation failed: the whole input is rejected."""


def reason_code(expectation_type: str, column: str | None) -> str:
    return f"{expectation_type}:{column}" if column else expectation_type


def build_suite(config: DatasetConfig) -> dict:
    """A starting suite from the config: presence, not-null, ranges and category sets."""
    expectations: list[dict] = []

    def add(kind: str, **kwargs) -> None:
        expectations.append({"type": kind, "kwargs": kwargs, "meta": {}})

    for column in config.input_columns:
        add("expect_column_to_exist", column=column)
    add("expect_column_values_to_not_be_null", column=config.entity_key)
    add("expect_column_values_to_not_be_null", column=config.event_time)
    for feature in config.features:
        if not feature.nullable:
            add("expect_column_values_to_not_be_null", column=feature.name)
        if feature.type == "numeric":
            # Bounds also reject inf and 1e308 when the config gives them.
            if feature.min is not None or feature.max is not None:
                add(
                    "expect_column_values_to_be_between",
                    column=feature.name,
                    min_value=feature.min,
                    max_value=feature.max,
                )
        elif feature.categories:
            add("expect_column_values_to_be_in_set", column=feature.name, value_set=list(feature.categories))
    return {
        "name": config.name,
        "expectations": expectations,
        "meta": {"generated_by": "driftline suite", "config": config.path.name},
    }


def write_suite(config: DatasetConfig, overwrite: bool = False) -> Path:
    """Write the starting suite to the configured path (review it like code afterwards)."""
    path = config.suite_path
    if path.exists() and not overwrite:
        raise SuiteError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_suite(config), indent=2) + "\n", encoding="utf-8")
    return path


def load_suite_file(config: DatasetConfig) -> dict:
    path = config.suite_path
    if not path.is_file():
        raise SuiteError(
            f"expectation suite not found: {path} (validation.suite in {config.path.name}). "
            f"Create a starting one with: driftline suite --config {config.path}"
        )
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(suite.get("expectations"), list):
        raise SuiteError(f"{path}: a suite needs an 'expectations' list")
    return suite


def _quiet_great_expectations() -> None:
    """GE logs hundreds of INFO lines per run, and some of its modules pin their own level."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations."):
            logging.getLogger(name).setLevel(logging.WARNING)


class Validator:
    """Runs one suite over many chunks with a single ephemeral GE context."""

    def __init__(self, config: DatasetConfig):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _quiet_great_expectations()
        suite = load_suite_file(config)
        self.suite_path = config.suite_path
        try:
            self.suite = gx.ExpectationSuite(name=suite.get("name", config.name), expectations=suite["expectations"])
        except Exception as exc:  # GE raises several types for a bad expectation
            raise SuiteError(f"{config.suite_path}: invalid expectation: {exc}") from exc
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        source = context.data_sources.add_pandas(name="driftline")
        self._batch_definition = source.add_dataframe_asset(name="interval").add_batch_definition_whole_dataframe(
            "chunk"
        )

    def row_failures(self, frame: pd.DataFrame, source: str) -> dict[int, list[str]]:
        """Map of row position -> failing expectation codes; raises TableValidationError."""
        frame = frame.reset_index(drop=True)
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(
            self.suite,
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
        )
        failures: dict[int, list[str]] = {}
        for outcome in result.results:
            if outcome.success:
                continue
            expectation = outcome.expectation_config
            column = expectation.kwargs.get("column")
            detail = outcome.result or {}
            if outcome.exception_info and outcome.exception_info.get("raised_exception"):
                message = outcome.exception_info.get("exception_message")
                raise TableValidationError(
                    f"{source}: expectation {expectation.type} on column '{column}' could not run: {message} "
                    f"(suite {self.suite_path})"
                )
            if "unexpected_index_list" not in detail:
                observed = detail.get("observed_value")
                raise TableValidationError(
                    f"{source}: table-level expectation {expectation.type}"
                    f"{f' on column {column!r}' if column else ''} failed (observed {observed!r}, "
                    f"expected {dict(expectation.kwargs)!r}); nothing was written. Fix the input or review "
                    f"{self.suite_path}."
                )
            code = reason_code(expectation.type, column)
            for index in detail["unexpected_index_list"]:
                failures.setdefault(int(index), []).append(code)
        return failures
