"""The notebook of examples/notebook_handoff.py run against a test project, and a real MLflow
tracking server (sqlite backend) on 127.0.0.1 from its own venv, for the import-model tests."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
# Full MLflow (the server) pins versions Airflow's lock does not allow (README "Bring your own model"),
# so it lives in its own venv outside the repo, made once and reused.
MLFLOW_VENV = Path(os.environ.get("DRIFTLINE_MLFLOW_VENV", Path.home() / ".cache/driftline-test/mlflow-venv"))
MLFLOW_SERVER_VERSION = "3.17.2"  # 3.18.0's mlflow-tracing is not published; the 3.18 client talks to it


def notebook():
    """examples/notebook_handoff.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("notebook_handoff", REPO / "examples" / "notebook_handoff.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_notebook(config_path: Path, out: Path, kind: str, pipeline=None) -> dict:
    from driftline.config import load_config

    config = load_config(config_path)
    history = pd.read_parquet(config.resolve_location(config.history_uri))
    return notebook().train_and_save(history, out, kind, pipeline)


def _mlflow_executable() -> Path:
    executable = MLFLOW_VENV / "bin" / "mlflow"
    if not executable.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run(
            [str(MLFLOW_VENV / "bin" / "pip"), "install", "-q", f"mlflow=={MLFLOW_SERVER_VERSION}"], check=True
        )
    return executable


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_mlflow(folder: Path) -> tuple[subprocess.Popen, str]:
    """A tracking server with a model registry (sqlite) and proxied artifacts under folder."""
    port = _free_port()
    log = (folder / "mlflow.log").open("wb")
    server = subprocess.Popen(
        [
            str(_mlflow_executable()),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow.db'}",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {(folder / 'mlflow.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return server, url
        except OSError:
            time.sleep(1)
    server.terminate()
    raise RuntimeError("mlflow server did not answer /health within 180 s")
