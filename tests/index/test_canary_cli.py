"""``ksa plugin canary|promote`` without a worker: the canary version is fetched and
verified beside the current one without becoming current; one canary at a time; abort;
promote."""

from __future__ import annotations

import json

from kubestack_ai.plugins.index.canary import chosen

from .conftest import Env


def test_canary_abort_and_promote(env: Env) -> None:
    env.publish("fx", "1.0.0")
    env.publish("fx", "2.0.0")
    assert env.install("fx==1.0.0")[0] == 0
    cur = env.home / "plugins" / ".current" / "fx"
    code, out, err = env.ksa("plugin", "canary", "fx", "--version", "2.0.0", "--share", "10",
                             "--index", env.url, "--yes")
    assert code == 0, err
    assert "fx 2.0.0 from " in out and "scan: nothing found" in out
    assert out.splitlines()[-1].startswith("fx: canary 2.0.0 on 10% of its targets (the same "
                                           "ones every run), 1.0.0 on the rest")
    assert (env.home / "plugins" / "fx" / "2.0.0" / "plugin.py").is_file()
    assert cur.readlink().as_posix() == "../fx/1.0.0"  # not current
    state = json.loads((env.home / "plugins" / "fx" / "canary.json").read_text())
    assert (state["state"], state["version"], state["share"]) == ("running", "2.0.0", 10)

    code, _, err = env.ksa("plugin", "canary", "fx", "--version", "2.0.0")
    assert (code, err.strip()) == (1, "ksa: error: fx: a canary is running; `ksa plugin "
                                      "promote fx` or `ksa plugin canary fx --abort` ends it")
    code, out, _ = env.ksa("plugin", "canary", "fx", "--abort")
    assert code == 0 and out.startswith("fx: canary 2.0.0 aborted; every target runs 1.0.0")
    code, _, err = env.ksa("plugin", "promote", "fx")
    assert (code, err.strip()) == (1, "ksa: error: fx: no canary is running to promote")

    assert env.ksa("plugin", "canary", "fx", "--version", "2.0.0", "--share", "50")[0] == 0
    code, out, err = env.ksa("plugin", "promote", "fx")
    assert code == 0, err
    assert out.startswith("fx: 2.0.0 promoted, current on every target (was 1.0.0)")
    assert cur.readlink().as_posix() == "../fx/2.0.0"
    assert env.ksa("plugin", "rollback", "fx")[1].startswith("fx: rolled back 2.0.0 -> 1.0.0")


def test_share_is_stable_and_grows_by_keeping_targets() -> None:
    keys = [f"redis:r{i}" for i in range(2000)]
    ten = {k for k in keys if chosen("p", k, 10)}
    assert ten == {k for k in keys if chosen("p", k, 10)}
    assert 150 < len(ten) < 250
    assert ten <= {k for k in keys if chosen("p", k, 25)}


def test_canary_needs_an_installed_plugin(env: Env) -> None:
    code, _, err = env.ksa("plugin", "canary", "ghost", "--version", "1.0")
    assert (code, err.strip()) == (2, "ksa: error: ghost was not installed from an index: "
                                      "`ksa plugin install ghost` first")
