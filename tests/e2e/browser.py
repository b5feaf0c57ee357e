"""Screenshots of logged-in Airflow pages with Debian's headless chromium, over the DevTools protocol.

Chromium has no flag for cookies, so the UI session (`_token`, as set by Airflow's login) is set
through CDP's Network.setCookie before each page is opened.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]


def find_chromium() -> str | None:
    return os.environ.get("DRIFTLINE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless chromium process, driven through one flat-mode CDP session on one tab."""

    def __init__(self, executable: str, width: int = 1440, height: int = 900):
        from websockets.sync.client import connect

        self._profile = tempfile.mkdtemp(prefix="driftline-chromium-")
        self._process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        endpoint = self._devtools_endpoint(timeout=60)
        self._ws = connect(endpoint, max_size=64 * 1024 * 1024, open_timeout=30)
        self._ids = itertools.count(1)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Network.enable", session=True)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _devtools_endpoint(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                return match.group(1)
            if not line and self._process.poll() is not None:
                break
        raise RuntimeError("chromium did not open its DevTools endpoint")

    def call(self, method: str, session: bool = False, timeout: float = 60, **params) -> dict:
        message_id = next(self._ids)
        message = {"id": message_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
        raise TimeoutError(method)

    def set_cookie(self, url: str, name: str, value: str) -> None:
        self.call("Network.setCookie", session=True, url=url, name=name, value=value, path="/")

    def screenshot(self, url: str, path: Path, settle_seconds: float = 6, wait_for_text: str | None = None) -> str:
        """Open url, wait until wait_for_text shows (or settle_seconds pass), save a PNG; returns the page text."""
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + max(settle_seconds, 45 if wait_for_text else 0)
        started = time.monotonic()
        text = ""
        while time.monotonic() < deadline:
            time.sleep(1)
            text = self.page_text()
            if time.monotonic() - started >= settle_seconds and (wait_for_text is None or wait_for_text in text):
                break
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return text

    def page_text(self) -> str:
        """Visible text of the page and of its same-origin iframes (plugin pages render in one)."""
        expression = (
            "(() => { let t = document.body ? document.body.innerText : '';"
            " for (const f of document.querySelectorAll('iframe')) {"
            "  try { t += '\\n' + f.contentDocument.body.innerText } catch (e) {} }"
            " return t })()"
        )
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result.get("result", {}).get("value") or ""

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:
            pass
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)
