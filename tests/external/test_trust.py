"""Plugin folders others can write are refused, and listing runs no plugin code
(issue 20, item 3). Tests run as root: "another user" is uid 65534 (nobody)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kubestack_ai.plugins import PluginManager, UnsafePluginError

from .test_cli import ksa
from .util import write_plugin

MARK = "import pathlib; pathlib.Path({path!r}).write_text('ran')"


def marked_plugin(base: Path, pid: str, marker: Path) -> Path:
    """A plugin whose import leaves ``marker`` behind: proof that its code ran."""
    return write_plugin(base, pid, top=MARK.format(path=str(marker)))


def only_error(m: PluginManager, dirs: list[Path]) -> UnsafePluginError:
    errors = m.load_external(dirs, entry_points=False)
    assert len(errors) == 1, errors
    assert isinstance(errors[0], UnsafePluginError), errors
    return errors[0]


def test_world_writable_plugin_file_is_refused_and_its_code_never_runs(
        manager: PluginManager, plugin_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    d = marked_plugin(plugin_dir, "ww", marker)
    (d / "plugin.py").chmod(0o666)
    err = only_error(manager, [plugin_dir])
    assert str(err) == (f"plugin 'ww' ({d}/plugin.yaml): permissions: {d}/plugin.py is "
                        f"writable by group and others: run `chmod go-w {d}/plugin.py`")
    assert "ww" not in manager.registry and not marker.exists()


def test_group_writable_folder_and_manifest_are_refused(
        manager: PluginManager, plugin_dir: Path) -> None:
    d = write_plugin(plugin_dir, "gw")
    d.chmod(0o775)
    err = only_error(manager, [plugin_dir])
    assert f"{d} is writable by group: run `chmod go-w {d}`" in str(err)
    d.chmod(0o755)
    (d / "plugin.yaml").chmod(0o620)
    err = only_error(manager, [plugin_dir])
    assert f"{d}/plugin.yaml is writable by group: run `chmod go-w {d}/plugin.yaml`" in str(err)


def test_the_plugins_directory_itself_must_not_be_writable_by_others(
        manager: PluginManager, plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "pd")
    plugin_dir.chmod(0o777 | 0o1000)  # sticky, as /tmp: others could still add a plugin
    err = only_error(manager, [plugin_dir])
    assert f"{plugin_dir} is writable by group and others: run `chmod go-w {plugin_dir}`" \
        in str(err)


def test_a_file_owned_by_another_user_is_refused(manager: PluginManager,
                                                 plugin_dir: Path) -> None:
    d = write_plugin(plugin_dir, "own")
    os.chown(d / "plugin.py", 65534, -1)
    err = only_error(manager, [plugin_dir])
    assert (f"{d}/plugin.py is owned by uid 65534, not by uid {os.geteuid()} (who runs "
            f"ksa) nor root: run `chown {os.geteuid()} {d}/plugin.py`") in str(err)
    os.chown(d / "plugin.py", 0, -1)  # root-owned is fine
    assert manager.load_external([plugin_dir], entry_points=False) == []


def test_a_symlink_leaving_the_plugin_folder_is_refused(manager: PluginManager,
                                                        plugin_dir: Path, tmp_path: Path) -> None:
    d = write_plugin(plugin_dir, "ln")
    outside = tmp_path / "elsewhere.py"
    outside.write_text("X = 1\n")
    (d / "helper.py").symlink_to(outside)
    err = only_error(manager, [plugin_dir])
    assert (f"{d}/helper.py is a symbolic link to {outside}, outside the plugin's folder "
            f"{d}: copy the file into the folder") in str(err)
    (d / "helper.py").unlink()
    (d / "inside.py").write_text("Y = 2\n")
    (d / "helper.py").symlink_to(d / "inside.py")  # within the folder: fine
    assert manager.load_external([plugin_dir], entry_points=False) == []


def test_ksa_plugin_list_refuses_a_writable_plugin_with_the_fix(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    marker = tmp_path / "ran"
    d = marked_plugin(plugins, "ww-cli", marker)
    (d / "plugin.py").chmod(0o646)
    p = ksa("plugin", "list", "--plugin-dir", str(plugins), env={"KSA_HOME": str(tmp_path)})
    assert p.returncode == 0, p.stderr
    assert "ww-cli" not in p.stdout
    assert f"chmod go-w {d}/plugin.py" in p.stderr and not marker.exists()


def test_list_info_and_manifest_only_validate_run_no_plugin_code(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    marker = tmp_path / "ran"
    d = marked_plugin(plugins, "quiet", marker)
    env = {"KSA_HOME": str(tmp_path)}
    p = ksa("plugin", "list", "--plugin-dir", str(plugins), "--json", env=env)
    assert p.returncode == 0, p.stderr
    row = {r["id"]: r for r in json.loads(p.stdout)}["quiet"]
    assert (row["version"], row["source"], row["state"]) == ("1.0.0", "directory", "found")
    p = ksa("plugin", "info", "quiet", "--plugin-dir", str(plugins), "--json", env=env)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["manifest"]["entry"] == "plugin:FxPlugin" and info["state"] == "found"
    p = ksa("plugin", "validate", "--manifest-only", str(d), env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == "ok: quiet 1.0.0 (manifest only: its code was not run)"
    for toggle in ("disable", "enable"):
        p = ksa("plugin", toggle, "quiet", "--plugin-dir", str(plugins), env=env)
        assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "quiet: enabled (generation 2)"
    assert not marker.exists()
    p = ksa("plugin", "validate", str(d), env=env)  # in full: its code runs
    assert p.returncode == 0, p.stdout + p.stderr
    assert marker.read_text() == "ran"


@pytest.mark.parametrize("mode", [0o666, 0o664])
def test_validate_in_full_refuses_a_writable_plugin(tmp_path: Path, mode: int) -> None:
    d = write_plugin(tmp_path, "wv")
    (d / "plugin.py").chmod(mode)
    p = ksa("plugin", "validate", str(d), env={"KSA_HOME": str(tmp_path)})
    assert p.returncode == 1
    assert f"run `chmod go-w {d}/plugin.py`" in p.stdout
