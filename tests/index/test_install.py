"""Install, verify, update, outdated, rollback from a signed index served over HTTP."""

from __future__ import annotations

import json
import stat

import pytest

from .conftest import Env


def mode(p) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(p.stat().st_mode)


def test_install_over_http_side_by_side_then_update_and_rollback(env: Env) -> None:
    env.publish("fx", "1.0.0")
    code, out, err = env.ksa("plugin", "search", "--index", env.url)
    assert code == 0, err
    assert out.splitlines()[1] == "fx  1.0.0   -       fx-fx: basic"
    code, out, err = env.install("fx")
    assert code == 0, err
    assert "fx 1.0.0 from " + env.url in out and "verified" in out
    assert "scan: nothing found" in out
    d1 = env.home / "plugins" / "fx" / "1.0.0"
    assert f"installed fx 1.0.0 in {d1}" in out
    assert mode(d1) == 0o755 and mode(d1 / "plugin.py") == 0o644
    assert (env.home / "plugins" / ".current" / "fx" / "plugin.yaml").read_text().count(
        "version: 1.0.0") == 1
    assert env.ksa("plugin", "verify", "--index", env.url)[1] == (
        "ok: fx 1.0.0 (2 files match the index)\n")

    env.publish("fx", "1.1.0")
    assert env.ksa("plugin", "outdated", "--index", env.url)[1].splitlines()[1].split()[:3] \
        == ["fx", "1.0.0", "1.1.0"]
    code, out, err = env.ksa("plugin", "update", "--index", env.url, "--yes")
    assert code == 0, err
    assert (env.home / "plugins" / "fx" / "1.0.0").is_dir()  # side by side
    assert (env.home / "plugins" / ".current" / "fx").readlink().as_posix() == "../fx/1.1.0"
    assert "every installed plugin is at" in env.ksa("plugin", "outdated", "--index",
                                                     env.url)[1]

    code, out, err = env.ksa("plugin", "rollback", "fx")
    assert code == 0, err
    assert out.splitlines()[0] == "fx: rolled back 1.1.0 -> 1.0.0"
    assert (env.home / "plugins" / ".current" / "fx").readlink().as_posix() == "../fx/1.0.0"
    code, out, err = env.ksa("plugin", "rollback", "fx")
    assert (code, err.strip()) == (1, "ksa: error: fx: no earlier installed version to roll "
                                      "back to (1.0.0 is the only one)")


@pytest.mark.parametrize("through", ["sqlite3", "Store"])
def test_workers_are_told_through_the_stored_generation(env: Env, through: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The default SQLite file is written with sqlite3 (no SQLAlchemy import); a
    configured database through Store: both read back the same through Store."""
    from kubestack_ai.storage import Store

    url = f"sqlite:///{env.home}/ksa.db"
    store = Store(url)
    store.migrate()
    if through == "Store":
        monkeypatch.setenv("KSA_DATABASE_URL", url)
    env.publish("fx", "1.0.0")
    env.publish("fx", "2.0.0")
    assert env.install("fx==1.0.0")[0] == 0
    code, out, _ = env.install("fx")
    assert f"fx: workers load {env.home}/plugins/fx/2.0.0 before their next task " \
           "(generation 2)" in out
    rec = store.get_plugin_state("fx")
    assert rec is not None and rec.source == str(env.home / "plugins" / "fx" / "2.0.0")
    assert rec.generation == 2 and rec.enabled
    assert env.ksa("plugin", "rollback", "fx")[0] == 0
    rec = store.get_plugin_state("fx")
    assert rec is not None and rec.generation == 3
    assert rec.source == str(env.home / "plugins" / "fx" / "1.0.0")
    store.dispose()


def test_no_store_here_nothing_to_tell(env: Env) -> None:
    """No worker ever ran here: none is told, and none is created (one started later
    loads the current version's folder)."""
    env.publish("fx")
    code, out, _ = env.install("fx")
    assert code == 0 and "workers load" not in out
    assert not (env.home / "ksa.db").exists()


def test_verify_names_a_changed_installed_file(env: Env) -> None:
    env.publish("fx")
    assert env.install("fx")[0] == 0
    f = env.home / "plugins" / "fx" / "1.0.0" / "plugin.py"
    f.write_text(f.read_text() + "\n# changed\n")
    code, out, _ = env.ksa("plugin", "verify", "fx", "--index", env.url)
    assert code == 1
    assert out.strip() == (f"FAILED: fx 1.0.0 ({f.parent}): files differ from the signed index "
                           "(changed: plugin.py)")


def test_install_without_yes_and_no_terminal_writes_nothing(env: Env) -> None:
    env.publish("fx")
    code, out, err = env.ksa("plugin", "install", "fx", "--index", env.url)
    assert code == 1
    assert "scan: nothing found" in out  # the report is shown first
    assert err.strip() == "ksa: error: not installed: confirm with --yes (no terminal to ask on)"
    assert not (env.home / "plugins").exists()


def test_ratings_show_in_search(env: Env) -> None:
    env.publish("fx")
    for score in (5, 4):
        assert env.ksa("index", "rate", "fx", "1.0.0", "--score", str(score), "--review",
                       "ok", "--index", str(env.index), "--key", str(env.key))[0] == 0
    code, out, _ = env.ksa("plugin", "search", "fx", "--index", env.url, "--json")
    row = json.loads(out)[0]
    assert (row["id"], row["score"], row["ratings"]) == ("fx", 4.5, 2)


def test_first_index_that_has_the_plugin_wins(env: Env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env.publish("fx", "1.0.0")
    other = tmp_path / "other-index"
    folder = env.src / "fx-1.0.0" / "fx"
    # a second index by the same publisher with a newer fx
    from tests.external.util import write_plugin

    newer = write_plugin(tmp_path / "o", "fx", "9.0.0")
    assert env.ksa("index", "add", str(newer), "--index", str(other), "--key",
                   str(env.key))[0] == 0
    code, out, err = env.ksa("plugin", "install", "fx", "--index", f"{env.url},{other}",
                             "--yes")
    assert code == 0, err
    assert "installed fx 1.0.0" in out
    assert folder.is_dir()


def test_a_changed_leftover_version_folder_is_replaced(env: Env) -> None:
    env.publish("fx")
    assert env.install("fx")[0] == 0
    d = env.home / "plugins" / "fx"
    (d / "installed.json").unlink()  # the record lost, a changed folder left behind
    (d / "1.0.0" / "plugin.py").write_text("import os\nos.system('id')\n")
    code, _, err = env.install("fx")
    assert code == 0, err
    assert "os.system" not in (d / "1.0.0" / "plugin.py").read_text()
    assert env.ksa("plugin", "verify", "--index", env.url)[0] == 0
    assert sorted(p.name for p in d.iterdir()) == [".lock", "1.0.0", "installed.json"]


def test_reinstalling_a_changed_installed_version_writes_it_again(env: Env) -> None:
    env.publish("fx")
    assert env.install("fx")[0] == 0
    f = env.home / "plugins" / "fx" / "1.0.0" / "plugin.py"
    f.write_text(f.read_text() + "\nimport ctypes\n")
    code, out, err = env.install("fx")
    assert code == 0, err
    assert "already installed" not in out and "ctypes" not in f.read_text()


def test_rollback_to_a_changed_version_is_refused(env: Env) -> None:
    env.publish("fx", "1.0.0")
    env.publish("fx", "2.0.0")
    assert env.install("fx==1.0.0")[0] == 0
    assert env.install("fx")[0] == 0
    old = env.home / "plugins" / "fx" / "1.0.0"
    (old / "extra.py").write_text("x = 1\n")
    code, _, err = env.ksa("plugin", "rollback", "fx")
    assert (code, err.strip()) == (1, f"ksa: error: fx 1.0.0 ({old}): files differ from the "
                                      "signed index (not in the index: extra.py): not rolled "
                                      "back; `ksa plugin install fx==1.0.0` writes it again")
    assert (env.home / "plugins" / ".current" / "fx").readlink().as_posix() == "../fx/2.0.0"
