"""Great Expectations: the dataset's suite as a reviewed file, run chunk by chunk.

Row-level (column map) expectations that fail send the failing rows to quarantine with the
expectation as the reason code; any other failing expectation is table-level and stops the run.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from driftline.config import DatasetConfig
from driftline.errors import BadConfig, BadInput


class SuiteError(BadConfig):
    """The expectation suite file is missing or unusable."""


class TableValidationError(BadInput):
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
    path.write_text(suite_text(build_suite(config)), encoding="utf-8")
    return path


def add_learned_categories(suite: dict, config: DatasetConfig, manifest: dict, version: int) -> dict:
    """A copy of suite with an in-set expectation for each categorical feature whose categories the
    model learned at training ([features] gave none): rows with a category the model never saw are
    then quarantined with a reason instead of scored as unknown. An existing in-set expectation of
    such a column gets the learned set; other expectations are kept as they are."""
    learned = manifest.get("categories") or {}
    expectations = [dict(e) for e in suite.get("expectations", [])]
    for feature in config.features:
        if feature.type != "categorical" or feature.categories or feature.name not in learned:
            continue
        value_set = sorted(str(value) for value in learned[feature.name])
        meta = {"generated_by": "driftline suite --from-model", "model_version": version}
        existing = [
            e
            for e in expectations
            if e.get("type") == "expect_column_values_to_be_in_set"
            and (e.get("kwargs") or {}).get("column") == feature.name
        ]
        if existing:
            for expectation in existing:
                expectation["kwargs"] = {**expectation["kwargs"], "value_set": value_set}
                expectation["meta"] = {**(expectation.get("meta") or {}), **meta}
        else:
            expectations.append(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": feature.name, "value_set": value_set},
                    "meta": meta,
                }
            )
    return {**suite, "expectations": expectations}


def suite_text(suite: dict) -> str:
    # ensure_ascii=False: a column named in any alphabet stays readable in the reviewed file.
    return json.dumps(suite, indent=2, ensure_ascii=False) + "\n"


def write_suite_from_model(config: DatasetConfig, manifest: dict, version: int) -> tuple[Path, str]:
    """Add the model's learned categories to the suite file (a starting suite if there is none);
    returns the path and a unified diff of the change for review ('' when nothing changed)."""
    import difflib

    path = config.suite_path
    before = suite_text(load_suite_file(config)) if path.exists() else ""
    suite = json.loads(before) if before else build_suite(config)
    after = suite_text(add_learned_categories(suite, config, manifest, version))
    if after == before:
        return path, ""
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"{path} (before)",
            f"{path} (model v{version})",
        )
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(after, encoding="utf-8")
    return path, diff


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


# Row-level expectation types evaluated with Arrow kernels (same semantics as GE's pandas engine:
# missing values are ignored by between/in_set, NaN counts as missing). Any other type, or one of
# these with arguments not listed here, runs through Great Expectations itself.
VECTORIZED_ARGUMENTS = {
    "expect_column_to_exist": {"column"},
    "expect_column_values_to_not_be_null": {"column", "mostly"},
    "expect_column_values_to_be_between": {"column", "min_value", "max_value", "strict_min", "strict_max", "mostly"},
    "expect_column_values_to_be_in_set": {"column", "value_set", "mostly"},
}


class Validator:
    """Runs one suite over many chunks.

    Failing rows of row-level expectations are returned with reason codes whether or not the
    expectation's `mostly` lets it pass: the quarantine budget, not `mostly`, decides how many bad
    rows an interval may have. Other failing expectations raise TableValidationError.
    """

    def __init__(self, config: DatasetConfig, engine: str | None = None):
        engine = engine or config.validation_engine
        suite = load_suite_file(config)
        self.suite_path = config.suite_path
        self._numeric = set(config.numeric_features)
        expectations = suite["expectations"]
        for position, expectation in enumerate(expectations):
            if not isinstance(expectation.get("type"), str) or not isinstance(expectation.get("kwargs", {}), dict):
                raise SuiteError(f"{self.suite_path}: expectation #{position + 1} needs a 'type' and 'kwargs'")
        self.vectorized = [e for e in expectations if engine == "auto" and self._vectorizable(e)]
        rest = [e for e in expectations if e not in self.vectorized]
        self._great_expectations = (
            _GreatExpectationsSuite(suite.get("name", config.name), rest, self.suite_path) if rest else None
        )

    def _vectorizable(self, expectation: dict) -> bool:
        kind, kwargs = expectation["type"], expectation.get("kwargs", {})
        if kind not in VECTORIZED_ARGUMENTS or not set(kwargs) <= VECTORIZED_ARGUMENTS[kind]:
            return False
        return kind != "expect_column_values_to_be_between" or kwargs.get("column") in self._numeric

    def row_failures(self, rows, source: str) -> dict[int, list[str]]:
        """Map of row position -> failing expectation codes for an Arrow table or a DataFrame."""
        table = (
            rows
            if isinstance(rows, pa.Table)
            else pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
        )
        failures: dict[int, list[str]] = {}
        for expectation in self.vectorized:
            self._evaluate(expectation, table, failures, source)
        if self._great_expectations is not None:
            for index, codes in self._great_expectations.row_failures(table.to_pandas(), source).items():
                failures.setdefault(index, []).extend(codes)
        return failures

    def _evaluate(self, expectation: dict, table: pa.Table, failures: dict[int, list[str]], source: str) -> None:
        kind, kwargs = expectation["type"], expectation.get("kwargs", {})
        column = kwargs.get("column")
        if column not in table.column_names:
            raise TableValidationError(
                f"{source}: expectation {kind} names column {column!r}, which the input does not have; "
                f"nothing was written. Fix the input or review {self.suite_path}."
            )
        if kind == "expect_column_to_exist":
            return
        values = table[column]
        if kind == "expect_column_values_to_not_be_null":
            unexpected = pc.is_null(values, nan_is_null=True)
        elif kind == "expect_column_values_to_be_between":
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            unexpected = pa.chunked_array([pa.array(np.zeros(len(table), dtype=bool))])
            if low is not None:
                below = pc.less_equal(values, low) if kwargs.get("strict_min") else pc.less(values, low)
                unexpected = pc.or_kleene(unexpected, below)
            if high is not None:
                above = pc.greater_equal(values, high) if kwargs.get("strict_max") else pc.greater(values, high)
                unexpected = pc.or_kleene(unexpected, above)
        else:  # expect_column_values_to_be_in_set
            allowed = pa.array(kwargs.get("value_set") or [], type=values.type)
            present = pc.invert(pc.is_null(values, nan_is_null=True))
            unexpected = pc.and_(present, pc.invert(pc.is_in(values, value_set=allowed)))
        mask = pc.fill_null(unexpected, False).to_numpy(zero_copy_only=False)
        code = reason_code(kind, column)
        for index in np.flatnonzero(mask):
            failures.setdefault(int(index), []).append(code)


class _GreatExpectationsSuite:
    """Expectations run by Great Expectations' pandas engine, one ephemeral context for all chunks."""

    def __init__(self, name: str, expectations: list[dict], suite_path: Path):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _quiet_great_expectations()
        self.suite_path = suite_path
        try:
            self.suite = gx.ExpectationSuite(name=name, expectations=expectations)
        except Exception as exc:  # GE raises several types for a bad expectation
            raise SuiteError(f"{suite_path}: invalid expectation: {exc}") from exc
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        source = context.data_sources.add_pandas(name="driftline")
        self._batch_definition = source.add_dataframe_asset(name="interval").add_batch_definition_whole_dataframe(
            "chunk"
        )

    def row_failures(self, frame: pd.DataFrame, source: str) -> dict[int, list[str]]:
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame.reset_index(drop=True)})
        result = batch.validate(
            self.suite,
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
        )
        failures: dict[int, list[str]] = {}
        for outcome in result.results:
            expectation = outcome.expectation_config
            column = expectation.kwargs.get("column")
            detail = outcome.result or {}
            if outcome.exception_info and outcome.exception_info.get("raised_exception"):
                message = outcome.exception_info.get("exception_message")
                raise TableValidationError(
                    f"{source}: expectation {expectation.type} on column '{column}' could not run: {message} "
                    f"(suite {self.suite_path})"
                )
            if "unexpected_index_list" in detail:  # row-level: quarantine its rows, even under `mostly`
                code = reason_code(expectation.type, column)
                for index in detail["unexpected_index_list"] or []:
                    failures.setdefault(int(index), []).append(code)
            elif not outcome.success:
                observed = detail.get("observed_value")
                raise TableValidationError(
                    f"{source}: table-level expectation {expectation.type}"
                    f"{f' on column {column!r}' if column else ''} failed (observed {observed!r}, "
                    f"expected {dict(expectation.kwargs)!r}); nothing was written. Fix the input or review "
                    f"{self.suite_path}."
                )
        return failures
