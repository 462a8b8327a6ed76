"""A real headless Chromium for the tests, driven through chromedriver's W3C WebDriver API (plain HTTP and
JSON, so ``requests`` is all it takes: no Selenium).

:func:`chromium_paths` finds the browser and the driver (Debian's ``chromium`` and ``chromium-driver``
packages install ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``; ``LEDGERLINK_CHROMIUM`` and
``LEDGERLINK_CHROMEDRIVER`` point elsewhere); a test skips, saying which is missing, when either is.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver key of an element reference
WINDOW = (1280, 900)


def chromium_paths() -> tuple[str | None, str | None]:
    """The Chromium binary and chromedriver, or None for what is not installed."""
    browser = (
        os.environ.get("LEDGERLINK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    driver = os.environ.get("LEDGERLINK_CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def wait_until(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll ``probe`` until it returns something truthy (the bound only ends a hang; nothing is timed)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Browser:
    """One WebDriver session of a headless Chromium."""

    def __init__(self, driver_url: str, session_id: str) -> None:
        self._base = f"{driver_url}/session/{session_id}"
        self._http = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, self._base + path, json=body, timeout=30)
        answer = response.json()
        if response.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {answer.get('value')}")
        return answer.get("value")

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def script(self, source: str, *args: Any) -> Any:
        """The value of ``source`` (a function body: ``return ...``) run in the page."""
        return self._call("POST", "/execute/sync", {"script": source, "args": list(args)})

    def page_state(self) -> str:
        return str(self.script("return document.body ? document.body.dataset.state : ''"))

    def wait_ready(self) -> None:
        """Until the page's script has rendered its view (``<body data-state="ready">``)."""
        state = wait_until(
            lambda: s if (s := self.page_state()) in ("ready", "error") else None, "the page to render"
        )
        if state != "ready":
            raise AssertionError(f"the page shows an error: {self.text('#error')}")

    def text(self, selector: str) -> str:
        return str(
            self.script(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", selector
            )
        )

    def click(self, selector: str) -> None:
        element = self._call("POST", "/element", {"using": "css selector", "value": selector})
        self._call("POST", f"/element/{element[ELEMENT]}/click", {})

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", "/screenshot")))
        return path

    def close(self) -> None:
        self._call("DELETE", "")


@contextmanager
def headless_chromium(browser_binary: str, driver_binary: str) -> Iterator[Browser]:
    """chromedriver on a free loopback port and one headless Chromium session of it."""
    port = _free_port()
    driver_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ledgerlink-chromium-") as profile:
        process = subprocess.Popen(  # noqa: S603 - the test's own chromedriver
            [driver_binary, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:

            def ready() -> bool:
                try:
                    return bool(requests.get(f"{driver_url}/status", timeout=2).json()["value"]["ready"])
                except (requests.RequestException, ValueError, KeyError):
                    return False

            wait_until(ready, "chromedriver to listen")
            options = {
                "binary": browser_binary,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    f"--window-size={WINDOW[0]},{WINDOW[1]}",
                    f"--user-data-dir={profile}",
                ],
            }
            answer = requests.post(
                f"{driver_url}/session",
                json={"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}},
                timeout=60,
            ).json()
            if "sessionId" not in answer.get("value", {}):
                raise AssertionError(f"chromedriver started no session: {answer.get('value')}")
            browser = Browser(driver_url, answer["value"]["sessionId"])
            try:
                yield browser
            finally:
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
