"""C sources shipped with the package, compiled with the system C compiler at first use.

The shared object is cached in a private directory (<cache>/native, 0700 and owned by this user)
under a name keyed by the source's sha256, the compiler's version line and the machine, with its
sha256 recorded beside it when it was built. Before every load the file is read, hashed, compared
with that record and loaded from a private copy, so the bytes checked are the bytes loaded; a
mismatch removes the entry and builds again. Without a compiler, `load` returns None and logs why
once: the caller falls back (explain.py: LightGBM's own pred_contrib).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

COMPILER_ENV = "CC"
# No -ffast-math: NaN and infinity tests must stay as written; no contraction into FMA, so every CPU
# rounds the same.
FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC", "-fno-fast-math", "-ffp-contract=off"]

_loaded: dict[str, ctypes.CDLL | None] = {}
_lock = threading.Lock()


def compiler() -> str | None:
    """$CC, else gcc, else cc: the first found on PATH."""
    for name in (os.environ.get(COMPILER_ENV), "gcc", "cc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def load(source_name: str) -> ctypes.CDLL | None:
    """The compiled library of the package's C source `source_name` (next to this module), or None
    when it cannot be built here (logged once per process)."""
    with _lock:
        if source_name not in _loaded:
            try:
                _loaded[source_name] = _build_and_load(Path(__file__).with_name(source_name))
            except (OSError, subprocess.SubprocessError) as exc:
                log.warning(
                    "cannot build %s (%s: %s); falling back to the slower path", source_name, type(exc).__name__, exc
                )
                _loaded[source_name] = None
        return _loaded[source_name]


def _build_and_load(source: Path) -> ctypes.CDLL | None:
    cc = compiler()
    if cc is None:
        log.warning(
            "no C compiler found ($%s, gcc or cc on PATH): %s not built; falling back to the slower path "
            "(install gcc to enable it)",
            COMPILER_ENV,
            source.name,
        )
        return None
    code = source.read_bytes()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    key = hashlib.sha256(
        b"|".join([code, version.splitlines()[0].encode() if version else b"", platform.machine().encode()])
        + " ".join(FLAGS).encode()
    ).hexdigest()
    directory = _private_directory()
    with tempfile.TemporaryDirectory(prefix="driftline-native-") as tmp:
        if directory is not None:
            target = directory / f"{source.stem}-{key[:24]}.so"
            verified = _verified_copy(target, Path(tmp))
            if verified is not None:
                return ctypes.CDLL(str(verified))
        built = Path(tmp) / f"{source.stem}.so"
        subprocess.run([cc, *FLAGS, "-o", str(built), str(source), "-lm"], capture_output=True, timeout=300, check=True)
        library = ctypes.CDLL(str(built))  # loaded before anything else can touch the file
        if directory is not None:
            _install(built, target)
            log.info("built %s with %s (cached at %s)", source.name, cc, target)
        return library


def _private_directory() -> Path | None:
    """<cache>/native under compiled.private_cache_folder's checks (this user's real folder, 0700, in a
    root no other user can write); None (build per process, not cached) when it fails them, since a
    shared object there is code this process will run."""
    from driftline.scoring.compiled import UnsafeCacheError, private_cache_folder

    try:
        return private_cache_folder("native", "native-code")
    except UnsafeCacheError as exc:
        log.warning("%s; building in a temporary directory", exc)
        return None


def _checksum_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _verified_copy(target: Path, private_dir: Path) -> Path | None:
    """A private copy of target when its sha256 matches the one recorded at build time, else None
    (a mismatched entry is removed and built again)."""
    if not target.is_file():
        return None
    try:
        data = target.read_bytes()
        recorded = _checksum_path(target).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        recorded = None
    if recorded is not None and hashlib.sha256(data).hexdigest() == recorded:
        copy = private_dir / target.name
        copy.write_bytes(data)
        return copy
    log.warning("native code cache %s does not match its recorded sha256; removing it and building again", target)
    for path in (target, _checksum_path(target)):
        path.unlink(missing_ok=True)
    return None


def _install(source: Path, target: Path) -> None:
    """Checksum first, then the object, each by rename: a reader never trusts a file without its record."""
    data = source.read_bytes()
    for path, content in ((_checksum_path(target), (hashlib.sha256(data).hexdigest() + "\n").encode()), (target, data)):
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staging.write_bytes(content)
        os.replace(staging, path)
