"""Fixtures for the plugin index: a publisher's key and index directory, an operator's
$KSA_HOME that pins the key, and a real HTTP server (http.server in a thread) serving the
index directory."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubestack_ai.ksa.cli import main
from tests.external.util import write_plugin


@dataclass
class Env:
    home: Path
    index: Path
    key: Path
    pub: Path
    src: Path
    url: str
    capsys: pytest.CaptureFixture[str]

    def ksa(self, *args: str) -> tuple[int, str, str]:
        """Run ``ksa`` in this process; (exit status, stdout, stderr)."""
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def publish(self, pid: str, version: str = "1.0.0", **kw: object) -> Path:
        folder = write_plugin(self.src / f"{pid}-{version}", pid, version, folder=pid, **kw)  # type: ignore[arg-type]
        code, out, err = self.ksa("index", "add", str(folder), "--index", str(self.index),
                                  "--key", str(self.key))
        assert code == 0, out + err
        return folder

    def install(self, wanted: str, *extra: str) -> tuple[int, str, str]:
        return self.ksa("plugin", "install", wanted, "--index", self.url, "--yes", *extra)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/index/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env(tmp_path: Path, http_dir: tuple[Path, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Env:
    home = tmp_path / "home"
    (home / "trusted_keys").mkdir(parents=True)
    monkeypatch.setenv("KSA_HOME", str(home))
    for var in ("KSA_INDEX", "KSA_INDEX_KEYS", "KSA_PLUGIN_PATH", "KSA_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    www, url = http_dir
    e = Env(home, www / "index", tmp_path / "publisher", tmp_path / "publisher.pub",
            tmp_path / "src", url, capsys)
    code, out, err = e.ksa("index", "keygen", str(tmp_path / "publisher"))
    assert code == 0, err
    e.key = tmp_path / "publisher.key"
    shutil.copy(e.pub, home / "trusted_keys" / "publisher.pub")
    return e
