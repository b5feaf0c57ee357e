"""A running Airflow as the end-to-end tests drive it: its REST API (token, runs, task logs) and the
process group it runs in, stopped by id."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_alive(pgid: int) -> bool:
    """A live (non-zombie) process in group pgid."""
    import psutil

    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (psutil.Error, ProcessLookupError):  # gone (or not ours to read) since the listing
            continue
    return False


def stop_group(process: subprocess.Popen, grace: float = 60) -> None:
    """SIGTERM the process group led by process, SIGKILL it if anything is left after grace seconds."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reaps the leader
            if not group_alive(process.pid):
                return
            time.sleep(0.5)


class Airflow:
    """The running Airflow and the project it serves."""

    def __init__(self, base: str, root: Path, config: Path, schema: str, db_url: str, log: Path):
        import httpx

        self.base, self.root, self.config, self.schema, self.db_url, self.log = base, root, config, schema, db_url, log
        self.home = root / ".driftline" / "airflow"
        self.http = httpx.Client(base_url=base, timeout=60)
        self.token: str | None = None
        self.port = int(base.rsplit(":", 1)[1])
        self.started_env: dict[str, str] = {}  # the AIRFLOW*/DRIFTLINE_* variables it was started with

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def token_for(self, user: str) -> str:
        """A JWT from POST /auth/token with the password Airflow generated for user."""
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        response = self.http.post("/auth/token", json={"username": user, "password": passwords[user]})
        assert response.status_code in (200, 201), response.text
        return response.json()["access_token"]

    def login(self) -> str:
        self.token = self.token_for("admin")
        return self.token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def api(self, method: str, path: str, expect: tuple[int, ...] = (200,), token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else self.auth
        response = self.http.request(method, f"/api/v2{path}", headers=headers, **kwargs)
        assert response.status_code in expect, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response.json() if response.content else None

    def wait_for(self, what: str, check, timeout: float, every: float = 3):
        """Poll check() until it returns something truthy; fail with the Airflow log tail on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(every)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n--- airflow log tail ---\n{self.log_tail()}")

    def wait_healthy(self, processes: dict[str, subprocess.Popen], log_of, what: str, timeout: float = 300) -> None:
        """Wait until the API server reports a healthy metadata database; fail at once, with
        log_of(name), when one of the processes has exited."""

        def healthy():
            for name, process in processes.items():
                assert process.poll() is None, f"{name} exited ({process.returncode})\n{log_of(name)}"
            try:
                response = self.http.get("/api/v2/monitor/health")
            except Exception:
                return False
            return response.status_code == 200 and response.json()["metadatabase"]["status"] == "healthy"

        self.wait_for(what, healthy, timeout)

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        state = self.wait_for(
            f"{dag_id} run {run_id}",
            lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s,
            timeout,
        )
        if state != "success":
            tasks = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
            failed = [
                f"--- {t['task_id']} log ---\n" + self.task_log(dag_id, run_id, t["task_id"], t["try_number"])
                for t in tasks
                if t["state"] == "failed"
            ]
            pytest.fail(
                f"{dag_id} {run_id}: {state}; tasks {[(t['task_id'], t['state']) for t in tasks]}\n"
                + "\n".join(failed)
                + f"\n{self.log_tail()}"
            )
        return state

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, chars: int = 6000) -> str:
        response = self.http.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            headers={**self.auth, "Accept": "application/json"},
        )
        if response.status_code != 200:
            return f"(no log: {response.status_code})"
        lines = response.json().get("content") or []
        return "\n".join(line.get("event", str(line)) if isinstance(line, dict) else str(line) for line in lines)[
            -chars:
        ]
