"""Where an input is and what it is: local paths or object URLs, the files of an interval (file, directory or
glob; an object, a prefix or a glob), their format, the header checks."""

from __future__ import annotations

import difflib
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa

from driftline.config import DatasetConfig
from driftline.sources.chunk import InputError
from driftline.sources.objects import ObjectFile, is_object_url, object_files

# An input file: a local path, or an object in object storage (read through its Airflow connection).
InputFile = Path | ObjectFile


def local_path(location: str) -> Path:
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme == "file" else location)
    raise InputError(f"unsupported input scheme {parsed.scheme!r} in {location}: use a local path or file:// URI")


_GLOB_CHARACTERS = set("*?[")


def input_files(location: str, storage_conn_id: str | None = None) -> list[InputFile]:
    """The files of one interval's input, sorted by name: the file itself, the data files of a
    directory (.csv, .csv.gz, .tsv, .parquet, .pq; hidden and _-prefixed files such as _SUCCESS
    skipped), or the matches of a glob. An object URL (s3://...) is listed the same way in object
    storage, a prefix standing for a directory, with the credentials of storage_conn_id. Missing
    input gives an empty list."""
    if is_object_url(location):
        return list(object_files(location, storage_conn_id, is_data_name))
    path = local_path(location)
    if _GLOB_CHARACTERS & set(str(path)):
        anchor = Path(path.anchor or ".")
        return sorted(p for p in anchor.glob(str(path.relative_to(anchor))) if p.is_file())
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and is_data_name(p.name))
    return [path] if path.is_file() else []


_DATA_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".parquet", ".pq")


def is_data_name(name: str) -> bool:
    """A data file of a directory or prefix: a known suffix, not hidden, not _-prefixed (_SUCCESS)."""
    return not name.startswith((".", "_")) and name.lower().endswith(_DATA_SUFFIXES)


def as_input_file(item: str | InputFile, storage_conn_id: str | None = None) -> InputFile:
    """An input file from what a plan or a caller passed (its path or URL as text, or already one)."""
    if isinstance(item, Path | ObjectFile):
        return item
    return ObjectFile(item, storage_conn_id) if is_object_url(item) else Path(item)


def open_stream(file: InputFile, compression: str | None = None) -> pa.NativeFile:
    """The file as an Arrow input stream: local files natively (reads release the GIL), objects
    through their binary file, read in ranges."""
    if isinstance(file, ObjectFile):
        return pa.input_stream(file.open(), compression=compression)
    return pa.input_stream(str(file), compression=compression)


def input_format(path: InputFile) -> str:
    """ "csv" or "parquet", from the file name."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise InputError(f"{path}: unknown input format; name the file .csv, .csv.gz or .parquet")


def check_columns(
    path: InputFile, present: list[str], config: DatasetConfig, required: list[str] | None = None
) -> None:
    """Fail naming every missing column, with a likely rename or delimiter hint."""
    required = config.input_columns if required is None else required
    missing = [c for c in required if c not in present]
    if not missing:
        return
    hints = []
    for column in missing:
        close = difflib.get_close_matches(column, [p for p in present if p not in required], n=1)
        if close:
            hints.append(f"'{column}' looks renamed to '{close[0]}'")
    if len(present) == 1 and any(sep in present[0] for sep in ";\t|"):
        hints.append("the header is a single column: is the file comma-delimited?")
    raise InputError(
        f"{path}: missing column(s) {missing} required by {config.path.name} "
        f"(found {present}){'; ' + '; '.join(hints) if hints else ''}. "
        "Fix the input or update [features]/[dataset] in the config."
    )


def check_unique_names(path: InputFile, names: list[str], where: str) -> None:
    """Refuse a header or schema naming a column twice."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{path}: {where} names column(s) {repeated} more than once (a header repeated or two exports "
            "pasted side by side?). Each column must appear once; fix the export."
        )
