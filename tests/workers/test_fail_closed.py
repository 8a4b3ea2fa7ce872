"""Failing closed (issue 20, item 8), through the worker's Runtime (what a worker child
runs for every task) over a real SQLite store:

- a disabled plugin stays refused when storage cannot be read (the last state this
  process read); a process that never read it refuses the plugin until it can;
- ``rollback`` of a builtin after a ``reload --from`` reaches the builtin in a process
  that served the reloaded version and in a fresh one alike;
- an action whose plugin fails to initialise leaves an audit row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.plugins import PluginConfig
from kubestack_ai.plugins.catalogue import BUILTINS
from kubestack_ai.storage import Store
from kubestack_ai.workers.catalog import PluginSpec
from kubestack_ai.workers.runtime import Runtime
from kubestack_ai.workers.store import SafeStore
from tests.external.util import write_plugin

pytestmark = pytest.mark.timeout(60)

TCP = "tcp-diagnostics"
TARGET = {"name": "t", "endpoints": ["127.0.0.1:1"]}


def runtime(url: str, tmp_path: Path, specs: dict[str, PluginSpec] | None = None,
            last_states: Path | None = None) -> Runtime:
    specs = specs or {"tcp": PluginSpec(TCP, "tcp", PluginConfig())}
    return Runtime(specs, SafeStore(url, spool=tmp_path / "spool", timeout=2.0), 60.0,
                   last_states=last_states)


def diagnose(rt: Runtime, mtype: str = "tcp") -> dict[str, Any]:
    return rt.diagnose("task-1", mtype, TARGET, None, True, None)


def test_a_disabled_plugin_stays_refused_when_storage_cannot_be_read(tmp_path: Path) -> None:
    db = tmp_path / "ksa.db"
    url = f"sqlite:///{db}"
    store = Store(url)
    store.migrate()
    store.set_plugin_state(TCP, enabled=False)
    store.dispose()
    kept = tmp_path / "plugin-states.json"  # what a worker keeps in $KSA_HOME
    rt = runtime(url, tmp_path, last_states=kept)
    assert diagnose(rt)["error"] == f"refused: plugin {TCP!r} is disabled"
    db.write_bytes(b"this is no database any more" * 200)  # unreadable from now on
    out = diagnose(rt)
    assert out["error"] == (f"refused: plugin {TCP!r} is disabled (the last state read "
                            "here: storage cannot be read now)")
    assert out["result"] is None
    # a worker restarted meanwhile: its children go by what this machine read last
    out = diagnose(runtime(url, tmp_path, last_states=kept))
    assert out["error"] == (f"refused: plugin {TCP!r} is disabled (the last state read "
                            "here: storage cannot be read now)")
    # a process where it was never read: refused, it may be disabled
    out = diagnose(runtime(url, tmp_path, last_states=tmp_path / "none.json"))
    assert out["result"] is None
    assert out["error"].startswith(
        f"refused: plugin {TCP!r}: its state (enabled or disabled) cannot be read from "
        "storage and was never read here before; it runs once storage answers (")


def test_an_enabled_plugin_runs_on_when_storage_goes_away(tmp_path: Path) -> None:
    db = tmp_path / "ksa.db"
    url = f"sqlite:///{db}"
    Store(url).migrate()
    kept = tmp_path / "plugin-states.json"
    rt = runtime(url, tmp_path, last_states=kept)
    assert diagnose(rt)["outcome"] == "completed"
    db.write_bytes(b"this is no database any more" * 200)
    out = diagnose(rt)
    assert out["error"] is None and out["outcome"] == "completed"
    out = diagnose(runtime(url, tmp_path, last_states=kept))  # a worker restarted meanwhile
    assert out["error"] is None and out["outcome"] == "completed"


def test_rollback_of_a_builtin_after_reload_from_reaches_every_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ksa.db'}"
    store = Store(url)
    store.migrate()
    builtin = BUILTINS[TCP]["info"]["version"]
    v9 = write_plugin(tmp_path / "v9", TCP, "9.0.0", mtype="tcp")
    served = runtime(url, tmp_path)
    assert diagnose(served)["result"]["plugin_version"] == builtin
    store.record_reload(TCP, str(v9))  # what `ksa plugin reload tcp-diagnostics --from v9` stores
    assert diagnose(served)["result"]["plugin_version"] == "9.0.0"
    store.request_rollback(TCP)  # `ksa plugin rollback tcp-diagnostics`
    fresh = runtime(url, tmp_path)
    assert diagnose(fresh)["result"]["plugin_version"] == builtin
    assert diagnose(served)["result"]["plugin_version"] == builtin
    store.dispose()


def test_an_action_whose_plugin_fails_to_initialise_is_audited(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'ksa.db'}"
    store = Store(url)
    store.migrate()
    write_plugin(tmp_path / "plugins", "initfails", init="raise RuntimeError('no init today')",
                 mtype="initfails")
    monkeypatch.setenv("KSA_PLUGIN_PATH", str(tmp_path / "plugins"))
    spec = PluginSpec("initfails", "initfails", PluginConfig())
    rt = runtime(url, tmp_path, {"initfails": spec})
    out = rt.action("task-a", "op@host", "initfails", TARGET, "flush", {}, (), False)
    assert out["outcome"] == "failed"
    assert "init" in out["error"] and "no init today" in out["error"]
    rows = store.audit_log(target="initfails:t")
    assert [(r.action, r.outcome, r.who) for r in rows] == [("flush", "failed", "op@host")]
    assert rows[0].error == out["error"] and out["audit_id"] == rows[0].id
    rt.hosts.close()  # the plugin ran (failed) in a plugin host: its zygote's socket
    store.dispose()
