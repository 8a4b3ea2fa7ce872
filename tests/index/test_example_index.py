"""The test index under examples/ (TEST-ONLY keys) verifies and installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "index"


def test_example_index_installs_http_diagnostics(env: Env, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    (env.home / "trusted_keys" / "publisher.pub").unlink()
    monkeypatch.setenv("KSA_INDEX_KEYS", str(EXAMPLE / "keys" / "TEST-ONLY-publisher.pub"))
    code, out, err = env.ksa("plugin", "search", "http", "--index", str(EXAMPLE))
    assert code == 0, err
    assert out.splitlines()[1].startswith("http-diagnostics  1.0.0   4.0 (1)  http: "
                                          "availability, latency, tls")
    code, out, err = env.ksa("plugin", "install", "http-diagnostics", "--index",
                             f"file://{EXAMPLE}", "--yes")
    assert code == 0, err
    assert "scan: network     plugin.py:85  calls http.client.HTTPSConnection()" in out
    assert (env.home / "plugins" / "http-diagnostics" / "1.0.0" / "plugin.yaml").is_file()


def test_example_keys_are_marked_test_only() -> None:
    assert "TEST-ONLY" in (EXAMPLE / "keys" / "TEST-ONLY-publisher.pub").read_text()
    assert "for tests only" in (EXAMPLE / "README.md").read_text()
