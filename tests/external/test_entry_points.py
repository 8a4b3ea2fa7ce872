"""Plugins shipped as installed distributions with a ``kubestack_ai.plugins`` entry point.

The distribution is a real one as far as importlib.metadata is concerned: a package and
its ``.dist-info`` (METADATA, entry_points.txt) on a temporary sys.path entry, which is
what ``pip install`` leaves in site-packages, without touching the shared venv.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubestack_ai.plugins import PluginManager, discover_entry_points

from .util import CODE, serves, target


def make_dist(base: Path, version: str = "1.0.0", *, entry: str = "ksa_fx_dist.plugin:FxPlugin",
              extra_eps: str = "", manifest: str | None = None) -> Path:
    pkg = base / "ksa_fx_dist"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "plugin.py").write_text(CODE.format(pid="ep-plugin", version=version, api="1.0",
                                               mtype="fx-ep-plugin", init="        pass",
                                               top="", imports=""))
    if manifest is not None:  # package data: a manifest beside the entry module
        (pkg / "plugin.yaml").write_text(manifest)
    info = base / f"ksa_fx_dist-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ksa-fx-dist\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        f"[kubestack_ai.plugins]\nep-plugin = {entry}\n{extra_eps}")
    return base


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = make_dist(tmp_path / "site", extra_eps="ep-broken = ksa_fx_dist.nothing:X\n")
    monkeypatch.syspath_prepend(str(base))
    return base


def test_entry_point_discovered_loaded_and_served(manager: PluginManager, dist: Path) -> None:
    found = {d.name: d for d in discover_entry_points().found}
    assert found["ep-plugin"].location == "ksa-fx-dist==1.0.0: ksa_fx_dist.plugin:FxPlugin"
    errors = [str(e) for e in manager.load_external([], entry_points=True)]
    assert len(errors) == 1
    assert "'ep-broken'" in errors[0] and "ksa-fx-dist==1.0.0" in errors[0]
    assert "module 'nothing' does not exist" in errors[0]
    entry = manager.registry.entry("ep-plugin")
    assert entry.source == "entry-point"
    assert serves(manager, "ep-plugin") == "1.0.0"


def test_entry_point_hot_reload_reimports(manager: PluginManager, dist: Path) -> None:
    manager.load_external([], entry_points=True)
    assert serves(manager, "ep-plugin") == "1.0.0"
    src = dist / "ksa_fx_dist" / "plugin.py"
    text = src.read_text().replace('VERSION = "1.0.0"', 'VERSION = "1.0.1"')
    src.write_text(text)
    st = src.stat()
    os.utime(src, (st.st_atime, st.st_mtime + 2))
    report = manager.hot_reload("ep-plugin")
    assert report.new_version == "1.0.1" and serves(manager, "ep-plugin") == "1.0.1"


def test_entry_point_with_packaged_manifest(manager: PluginManager, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = ("id: ep-plugin\nname: EP\nversion: 1.0.0\nrequires: [tcp-diagnostics >= 1]\n"
                "config_schema: {type: object, properties: {depth: {type: integer, "
                "default: 7}}}\n")
    monkeypatch.syspath_prepend(str(make_dist(tmp_path / "site", manifest=manifest)))
    [found] = [d for d in discover_entry_points().found if d.name == "ep-plugin"]
    assert found.manifest is not None and found.manifest.requires == ("tcp-diagnostics >= 1",)
    assert manager.load_external([], entry_points=True) == []
    assert manager.diagnose(target("ep-plugin")).metrics["options"] == {"depth": 7}


def test_entry_point_name_must_match_the_plugin(manager: PluginManager, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_dist(tmp_path / "site")
    eps = site / "ksa_fx_dist-1.0.0.dist-info" / "entry_points.txt"
    eps.write_text(eps.read_text().replace("ep-plugin =", "other-name ="))
    monkeypatch.syspath_prepend(str(site))
    [err] = manager.load_external([], entry_points=True)
    assert "the entry point is named 'other-name', the plugin's info() says 'ep-plugin'" in str(err)
    assert "ksa-fx-dist==1.0.0" in str(err)
