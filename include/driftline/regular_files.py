"""Reading a file that must be a regular file: the registry's artifacts and the compiled-model cache's
objects, where a FIFO, device or directory put in a file's place must fail instead of blocking."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular_file(path: Path) -> bytes:
    """The bytes of path, which must be a regular file: a FIFO, device or directory put in an
    artifact's place raises OSError instead of blocking or reading forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as file:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            raise OSError(f"{path} is not a regular file ({stat.filemode(kind)})")
        return file.read()
