"""LightGBM trees compiled to native code with lleaves (LLVM), cached per model and machine.

Compiling a 200-tree model takes 5-20 s; predicting with it is ~5x faster than Booster.predict.
The compiled object is cached on local disk, keyed by the model's sha256, the lleaves and llvmlite
versions and the host CPU, so each Airflow task process loads it in milliseconds after the first.
Its sha256 is recorded beside it (<name>.o.sha256) and checked before every load: a truncated or
corrupt cache file is removed and compiled again instead of aborting the process in LLVM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from driftline.errors import BadModel

log = logging.getLogger(__name__)

CACHE_ENV = "DRIFTLINE_CACHE_DIR"
# Rows per block of lleaves' generated loop (its default is 34). Measured on the benchmark's
# 200 trees x 31 leaves, 1M rows, one thread: 34 -> 2.50 s, 16 -> 2.33 s, 8 -> 2.31-2.36 s,
# 4 -> 2.46 s; compiling took 13.7 s at 34 and 6.5-7.5 s at 8. Part of the cache key.
BLOCK_ROWS = 8


class CompileError(BadModel):
    """The model cannot be compiled here; the caller scores with LightGBM instead."""


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


def compile_model(text: bytes, sha256: str):
    """An lleaves.Model of the verified LightGBM model text, compiled or loaded from the cache.

    Only call this with text whose sha256 was checked (registry.load_model does): the cache is
    trusted as object code, so it lives in a directory only this user can write.
    """
    if b"is_linear=1" in text:
        raise CompileError("linear trees (linear_tree=true) are not supported by lleaves")
    if hashlib.sha256(text).hexdigest() != sha256:
        raise CompileError("the model text does not match its sha256")
    try:
        import lleaves
    except ImportError as exc:
        raise CompileError(f"lleaves is not installed: {exc}") from exc
    directory = cache_dir() / "compiled"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = directory / cache_key(sha256)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="driftline-compile-") as tmp:
        model_file = Path(tmp) / "model.txt"
        model_file.write_bytes(text)  # lleaves reads a file; this copy is the verified bytes
        model = lleaves.Model(model_file=str(model_file))
        try:
            cached = _verified_cache(target, Path(tmp))
            if cached is not None:
                model.compile(cache=str(cached), fblocksize=BLOCK_ROWS)
                log.info(
                    "loaded compiled model %s from %s in %.2f s", sha256[:12], target, time.perf_counter() - started
                )
                return model
            # lleaves writes the cache file in place; compile to a private name and rename, so a
            # concurrent task never loads half an object file.
            partial = Path(tmp) / target.name
            model.compile(cache=str(partial), fblocksize=BLOCK_ROWS)
            _install(partial, target)
        except CompileError:
            raise
        except Exception as exc:  # noqa: BLE001 - LLVM raises assorted errors; all mean "use LightGBM"
            raise CompileError(f"{type(exc).__name__}: {exc}") from exc
    log.info("compiled model %s in %.1f s (cached at %s)", sha256[:12], time.perf_counter() - started, target)
    return model


def _checksum_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _verified_cache(target: Path, private_dir: Path) -> Path | None:
    """A private copy of the cached object file when its sha256 matches the one recorded at compile
    time, else None (and the bad entry removed, with a warning).

    LLVM aborts the whole process (`LLVM ERROR`) on a truncated or corrupt object file, so nothing
    unverified is ever handed to it; the copy means the file checked is the file loaded.
    """
    if not target.is_file():
        return None
    try:
        data = target.read_bytes()
        recorded = _checksum_path(target).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        recorded, why = None, f"no readable checksum ({type(exc).__name__})"
    else:
        why = "its sha256 does not match the one recorded at compile time"
    if recorded is not None and hashlib.sha256(data).hexdigest() == recorded:
        copy = private_dir / target.name
        copy.write_bytes(data)
        return copy
    log.warning(
        "compiled model cache %s is unusable (%s: truncated or corrupt); removing it and compiling again", target, why
    )
    for path in (target, _checksum_path(target)):
        path.unlink(missing_ok=True)
    return None


def _install(source: Path, target: Path) -> None:
    """Copy next to target, then rename: atomic even when the temporary directory is elsewhere. The
    object's sha256 goes beside it first, so a reader never trusts an object without its checksum."""
    import shutil

    data = source.read_bytes()
    checksum = _checksum_path(target)
    staging = checksum.with_name(f".{checksum.name}.{os.getpid()}.tmp")
    staging.write_text(hashlib.sha256(data).hexdigest() + "\n", encoding="ascii")
    os.replace(staging, checksum)
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, staging)
    os.replace(staging, target)
