"""LightGBM trees compiled to native code with lleaves (LLVM), cached per model and machine.

Compiling a 200-tree model takes 5-20 s; predicting with it is ~5x faster than Booster.predict.
The compiled object is cached on local disk, keyed by the model's sha256, the lleaves and llvmlite
versions and the host CPU, so each Airflow task process loads it in milliseconds after the first.
LLVM aborts the whole process (SIGABRT, no run row, no alert) on a corrupt object file, so the
object's sha256 is recorded in the registry when it is built (registry.CompiledHashes) and a cache
file is only handed to LLVM when it matches that row: a hash written beside the file would prove
nothing, whoever replaces the file can replace it too. A file that does not match is removed and
compiled again (and reported: Scorer.notices). The cache folder must be private to this user.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from driftline.errors import BadModel

log = logging.getLogger(__name__)

CACHE_ENV = "DRIFTLINE_CACHE_DIR"
# Rows per block of lleaves' generated loop (its default is 34). Measured on the benchmark's
# 200 trees x 31 leaves, 1M rows, one thread: 34 -> 2.50 s, 16 -> 2.33 s, 8 -> 2.31-2.36 s,
# 4 -> 2.46 s; compiling took 13.7 s at 34 and 6.5-7.5 s at 8. Part of the cache key.
BLOCK_ROWS = 8


class CompileError(BadModel):
    """The model cannot be compiled here; the caller scores with LightGBM instead."""


class UnsafeCacheError(CompileError):
    """The cache folder could be written by someone else: nothing in it is used (LightGBM scores)."""


class ObjectHashes(Protocol):
    """Where the sha256 of each built object is kept (the registry: registry.CompiledHashes)."""

    def expected(self, cache_key: str) -> str | None: ...

    def record(self, cache_key: str, model_sha256: str, object_sha256: str) -> None: ...


@dataclass
class Compiled:
    """A compiled model, and why a cached object was refused on the way (None when none was)."""

    model: object
    refused: str | None = None


def cache_dir() -> Path:
    """$DRIFTLINE_CACHE_DIR, else $XDG_CACHE_HOME/driftline, else ~/.cache/driftline."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "driftline"


def cache_key(sha256: str) -> str:
    """File name of a compiled model: what must match for the object code to be reusable."""
    from importlib.metadata import version

    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    try:
        features = llvm.get_host_cpu_features().flatten()
    except RuntimeError:  # LLVM cannot detect the features on some hosts
        features = ""
    host = hashlib.sha256(f"{llvm.get_process_triple()}|{llvm.get_host_cpu_name()}|{features}".encode()).hexdigest()
    return f"{sha256}-lleaves{version('lleaves')}-llvmlite{version('llvmlite')}-fb{BLOCK_ROWS}-{host[:16]}.o"


def compile_model(text: bytes, sha256: str, hashes: ObjectHashes | None) -> Compiled:
    """An lleaves.Model of the verified LightGBM model text, compiled or loaded from the cache.

    Only call this with text whose sha256 was checked (registry.load_model does). A cached object is
    loaded only when its sha256 equals the one `hashes` recorded when it was built; without `hashes`
    the cache is not used at all (compiled every time).
    """
    if b"is_linear=1" in text:
        raise CompileError("linear trees (linear_tree=true) are not supported by lleaves")
    if hashlib.sha256(text).hexdigest() != sha256:
        raise CompileError("the model text does not match its sha256")
    try:
        import lleaves
    except ImportError as exc:
        raise CompileError(f"lleaves is not installed: {exc}") from exc
    directory = private_cache_folder() if hashes is not None else None
    started = time.perf_counter()
    refused = None
    with tempfile.TemporaryDirectory(prefix="driftline-compile-") as tmp:
        model_file = Path(tmp) / "model.txt"
        model_file.write_bytes(text)  # lleaves reads a file; this copy is the verified bytes
        model = lleaves.Model(model_file=str(model_file))
        try:
            if directory is None:
                model.compile(fblocksize=BLOCK_ROWS)
                return Compiled(model)
            key = cache_key(sha256)
            target = directory / key
            cached, refused, found = _verified_cache(target, hashes.expected(key), Path(tmp))
            if cached is not None:
                model.compile(cache=str(cached), fblocksize=BLOCK_ROWS)
                log.info(
                    "loaded compiled model %s from %s in %.2f s", sha256[:12], target, time.perf_counter() - started
                )
                return Compiled(model)
            # lleaves writes the cache file in place; compile to a private name, record its hash,
            # then rename it into the cache, so no task ever loads half an object file.
            partial = Path(tmp) / target.name
            model.compile(cache=str(partial), fblocksize=BLOCK_ROWS)
            data = partial.read_bytes()
            built = hashlib.sha256(data).hexdigest()
            hashes.record(key, sha256, built)
            _install(data, target)
        except CompileError:
            raise
        except Exception as exc:  # noqa: BLE001 - LLVM raises assorted errors; all mean "use LightGBM"
            raise CompileError(f"{type(exc).__name__}: {exc}") from exc
    if refused and found == built:
        # The same object, built by another deployment schema sharing this cache: nothing was wrong.
        refused = None
    if refused:
        log.warning("%s", refused)
    log.info("compiled model %s in %.1f s (cached at %s)", sha256[:12], time.perf_counter() - started, target)
    return Compiled(model, refused)


def private_cache_folder(name: str = "compiled", what: str = "compiled-model") -> Path:
    """cache_dir()/<name>, created 0700; UnsafeCacheError when it (or the cache root) is not a
    real folder of this user that only this user can write: object code in it is loaded into the
    process, so a folder another user can write is refused rather than trusted. name: "compiled"
    (lleaves' models, here) or "native" (native_build's shared objects); what: named in messages."""
    root = cache_dir()
    directory = root / name
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        root_info, info = root.stat(), directory.lstat()
    except OSError as exc:
        raise UnsafeCacheError(f"{what} cache folder {directory} cannot be created ({exc})") from exc
    me = os.geteuid()
    problem = None
    if not stat.S_ISDIR(info.st_mode):
        problem = f"{directory} is not a folder (a symlink or file stands in its place)"
    elif info.st_uid != me:
        problem = f"{directory} is owned by uid {info.st_uid}, not by this user (uid {me})"
    elif info.st_mode & 0o022:
        problem = f"{directory} is writable by group or others (mode {stat.filemode(info.st_mode)})"
    elif root_info.st_uid not in (me, 0) or (root_info.st_mode & 0o022 and not root_info.st_mode & stat.S_ISVTX):
        mode = stat.filemode(root_info.st_mode)
        problem = f"its parent {root} can be written by another user (uid {root_info.st_uid}, mode {mode})"
    if problem:
        raise UnsafeCacheError(
            f"refusing the {what} cache: {problem}. Remove it (it is rebuilt, mode 700) or set "
            f"{CACHE_ENV} to a folder only this user can write"
        )
    return directory


def _verified_cache(
    target: Path, expected: str | None, private_dir: Path
) -> tuple[Path | None, str | None, str | None]:
    """(a private copy of the cached object, None, its sha256) when its sha256 equals the registry's,
    else (None, why it was refused, its sha256 if read) with the file removed: a truncated, corrupt
    or swapped object would abort the process in LLVM. The copy means the file checked is the file loaded."""
    from driftline.regular_files import read_regular_file

    try:
        data = read_regular_file(target)
    except FileNotFoundError:
        return None, None, None
    except OSError as exc:
        actual, why = None, f"unreadable ({type(exc).__name__})"
    else:
        actual = hashlib.sha256(data).hexdigest()
        if expected is not None and actual == expected:
            copy = private_dir / target.name
            copy.write_bytes(data)
            return copy, None, actual
        why = (
            "no sha256 is recorded for it in the registry"
            if expected is None
            else f"its sha256 {actual[:12]} is not the {expected[:12]} recorded in the registry when it was built"
        )
    refused = (
        f"compiled model cache {target} was refused ({why}: not built here, or truncated, corrupt or "
        "replaced); removed it and compiled again"
    )
    for path in (target, target.with_name(target.name + ".sha256")):  # .sha256: what earlier versions wrote
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # a folder in its place: installing the new object fails too, and LightGBM scores
    return None, refused, actual


def _install(data: bytes, target: Path) -> None:
    """Write next to target, then rename: a reader sees the old file or the whole new one."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staging.write_bytes(data)
    os.replace(staging, target)
