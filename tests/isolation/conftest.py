"""A worker's Runtime (the body of every diagnose task) with the hostile test plugin and
the example HTTP plugin, both external and so isolated; storage in SQLite under KSA_HOME."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.plugins import PluginConfig, Timeouts
from kubestack_ai.workers.catalog import PluginSpec
from kubestack_ai.workers.runtime import Runtime
from kubestack_ai.workers.store import SafeStore

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
OTHER_SECRET = "other-target-Pw-9x"
OWN_SECRET = "own-target-Pw-4k"


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = tmp_path_factory.mktemp("ksa-home")
    (h / "secrets").mkdir()
    (h / "secrets" / "other").write_text(OTHER_SECRET)
    return h


@pytest.fixture(scope="module")
def runtime(home: Path, http_server: str) -> Iterator[Runtime]:
    mp = pytest.MonkeyPatch()
    plugins = home / "plugins"
    plugins.mkdir()
    import shutil

    shutil.copytree(HERE / "plugins" / "hostile", plugins / "hostile")
    shutil.copytree(ROOT / "examples" / "plugins" / "http-diagnostics",
                    plugins / "http-diagnostics")
    # the plugin folders outside KSA_HOME, as an operator has them (KSA_HOME is hidden)
    outside = Path(str(home) + "-plugins")
    shutil.move(plugins, outside)
    mp.setenv("KSA_HOME", str(home))
    mp.setenv("KSA_PLUGIN_PATH", str(outside))
    mp.setenv("KSA_DATABASE_URL", f"sqlite:///{home}/ksa.db")
    mp.setenv("OTHER_TARGET_PASSWORD", OTHER_SECRET)
    mp.setenv("OWN_TARGET_PASSWORD", OWN_SECRET)
    mp.delenv("KSA_ISOLATION", raising=False)
    from kubestack_ai.storage import Store

    st = Store(f"sqlite:///{home}/ksa.db")
    st.migrate()
    st.dispose()
    t = Timeouts(connect=2, diagnose=3, grace=1)
    specs = {
        "hostile": PluginSpec("hostile-diagnostics", "hostile",
                              PluginConfig(timeouts=t, memory_limit_mb=512, pids_max=32),
                              ("attack",)),
        "http": PluginSpec("http-diagnostics", "http", PluginConfig(timeouts=t), ()),
    }
    rt = Runtime(specs, SafeStore(f"sqlite:///{home}/ksa.db", spool=home / "spool",
                                  timeout=5), 0.0)
    yield rt
    rt.hosts.close()
    mp.undo()
