"""`driftline airflow`'s supervisor stops standalone and every process standalone had started."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from driftline.devtools.standalone import _stop_standalone

# Stands in for `airflow standalone`: starts a component, exits on SIGINT and leaves it orphaned.
PARENT = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"


def test_orphaned_components_are_stopped_too():
    process = subprocess.Popen([sys.executable, "-c", PARENT])
    deadline = time.monotonic() + 30
    while not (children := psutil.Process(process.pid).children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.1)
    [component] = children
    _stop_standalone(process, grace=10)
    assert process.returncode is not None
    assert not component.is_running() or component.status() == psutil.STATUS_ZOMBIE
