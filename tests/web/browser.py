"""A small WebDriver client (W3C protocol over HTTP) for headless Chromium via chromedriver:
load a page, type into a field, click, read what is shown, take a screenshot."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import free_port

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900"]
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Browser:
    def __init__(self) -> None:
        self.port = free_port()
        self.profile = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(["chromedriver", f"--port={self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                self._call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [*FLAGS, f"--user-data-dir={self.profile.name}"]}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())["value"]
        except urllib.error.HTTPError as e:
            raise AssertionError(f"webdriver {method} {path}: {e.read().decode()[:500]}") from None

    def _s(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return _id(self._s("POST", "/element", {"using": "css selector", "value": css}))

    def find_all(self, css: str) -> list[str]:
        return [_id(e) for e in self._s("POST", "/elements",
                                        {"using": "css selector", "value": css})]

    def text(self, css: str = "body") -> str:
        return str(self._s("GET", f"/element/{self.find(css)}/text"))

    def texts(self, css: str) -> list[str]:
        return [str(self._s("GET", f"/element/{e}/text")) for e in self.find_all(css)]

    def type(self, css: str, text: str) -> None:
        el = self.find(css)
        self._s("POST", f"/element/{el}/clear", {})
        self._s("POST", f"/element/{el}/value", {"text": text})

    def click(self, css: str) -> None:
        self._s("POST", f"/element/{self.find(css)}/click", {})

    def follow(self, css: str, timeout: float = 15.0) -> str:
        """Click a link or a submit button and wait until the page it leads to has
        loaded (WebDriver's click returns before the navigation ends: reading the page at
        once may still read the old one). Returns the new URL."""
        before = self.url()
        self.click(css)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            now = self.url()
            if now != before and self._s("POST", "/execute/sync", {
                    "script": "return document.readyState", "args": []}) == "complete":
                return now
            time.sleep(0.05)
        raise AssertionError(f"clicking {css} on {before} led nowhere in {timeout} s")

    def url(self) -> str:
        return str(self._s("GET", "/url"))

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._s("GET", "/screenshot")))
        print(f"screenshot: {path}")
        return path

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.terminate()
            self.proc.wait(10)
            self.profile.cleanup()


def _id(element: dict[str, str]) -> str:
    # W3C key; chromedriver in its legacy mode answers "ELEMENT"
    return element.get(ELEMENT) or element["ELEMENT"]
