"""Headless Debian Chromium driven over the DevTools protocol (a websocket, no driver binary).

Used by the dashboard tests and to take the README's screenshot. The background-network
flags matter: the machines running the tests have no network.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import websocket
from factories import eventually

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    """The browser did not start, or a DevTools command failed."""


class Chromium:
    """One headless browser with one page; use as a context manager."""

    def __init__(self, binary: str, width: int = 1400, height: int = 1000) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="hephaestus-chromium-"))
        self.log = self.profile / "chromium.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={self.profile}",
                 f"--window-size={width},{height}", "about:blank"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self._ids = 0
        try:
            port = self._devtools_port()
            page = httpx.put(f"http://127.0.0.1:{port}/json/new?about:blank", timeout=30).json()
            self.ws = websocket.create_connection(
                page["webSocketDebuggerUrl"], suppress_origin=True, timeout=60
            )
            self.send("Page.enable")
            self.send("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, timeout: float = 60) -> int:
        marker = self.profile / "DevToolsActivePort"

        def port() -> int | None:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited: {self.log.read_text()[-2000:]}")
            text = marker.read_text().strip() if marker.exists() else ""
            return int(text.split()[0]) if text else None

        found = eventually(port, timeout)
        if found is None:
            raise BrowserError(f"chromium did not open DevTools: {self.log.read_text()[-2000:]}")
        return found

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one DevTools command and return its result (events on the way are dropped)."""
        self._ids += 1
        self.ws.send(json.dumps({"id": self._ids, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._ids:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 60) -> None:
        """Navigate and wait until the document and its deferred scripts have loaded."""
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'",
                      timeout)  # fmt: skip

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        value = eventually(lambda: self.evaluate(expression), timeout, interval=0.1)
        if not value:
            raise BrowserError(f"timed out after {timeout}s waiting for {expression}")
        return value

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page."""
        metrics = self.send("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": metrics["width"], "height": metrics["height"],
                  "scale": 1},
        )  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
