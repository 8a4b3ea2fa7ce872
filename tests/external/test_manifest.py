"""Manifests: safe parsing, field-by-field validation, discovery that never stops."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from kubestack_ai.plugins import ManifestError, discover_plugins, load_manifest, plugin_dirs
from kubestack_ai.plugins import manifest as manifest_mod
from kubestack_ai.plugins.manifest import MAX_MANIFEST_BYTES

from .util import EXAMPLES, write_plugin

BOMB = """\
id: bomb
name: Billion laughs
version: 1.0.0
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_example_manifest_is_valid() -> None:
    m = load_manifest(EXAMPLES / "http-diagnostics" / "plugin.yaml")
    assert (m.id, m.version, m.entry, m.api_version) == (
        "http-diagnostics", "1.0.0", "plugin:HttpPlugin", "1.0")
    assert m.config_schema and m.config_schema["properties"]["path"]["default"] == "/healthz"


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("id: broken\nname: [unclosed\nversion: 1.0.0\n")
    with pytest.raises(ManifestError) as ei:
        load_manifest(f)
    msg = str(ei.value)
    assert str(f) in msg and "invalid YAML" in msg and "line 3" in msg


@pytest.mark.parametrize("loader", ["libyaml", "pure-python"])
def test_alias_bomb_refused_in_bounded_time_and_memory(tmp_path: Path, loader: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if loader == "pure-python":
        monkeypatch.setattr(manifest_mod, "LOADER", manifest_mod._Loader)
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ManifestError) as ei:
            load_manifest(f)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "aliases (*a) are not allowed" in str(ei.value) and str(f) in str(ei.value)
    assert elapsed < 0.5, elapsed  # 9**9 "lol"s if expanded: minutes and gigabytes
    assert peak < 5 * 1024 * 1024, peak


def test_oversized_and_deep_manifests_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("id: big\n" + "#" * MAX_MANIFEST_BYTES)
    with pytest.raises(ManifestError, match="larger than 64 KiB"):
        load_manifest(big)
    deep = tmp_path / "deep.yaml"
    deep.write_text("id: deep\nx: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(ManifestError, match="nesting deeper than 32"):
        load_manifest(deep)


def test_wrong_field_types_every_problem_with_its_field(tmp_path: Path) -> None:
    f = tmp_path / "wrong.yaml"
    f.write_text(
        "id: Wrong Id\nname: wrong\nversion: not-a-version\ntype: database\n"
        "requires: redis-diagnostics >= 1.0\ncapabilities: [1, [2]]\n"
        "config_schema: {type: objekt}\nentry: 'no colon'\napi_version: 1\ncolour: red\n")
    with pytest.raises(ManifestError) as ei:
        load_manifest(f)
    e = ei.value
    fields = {p.field: p.message for p in e.problems}
    assert e.file == str(f) and e.plugin_id == "Wrong Id"
    assert "String should match pattern" in fields["id"]
    assert "'not-a-version' is not a version" in fields["version"]
    assert "'middleware', 'diagnostic' or 'action'" in fields["type"]
    assert "tuple" in fields["requires"]  # a string, not a list
    assert "capabilities[1]" in fields
    assert "not a valid JSON Schema" in fields["config_schema"]
    assert "'no colon' is not 'module:attr'" in fields["entry"]
    assert "api_version" in fields and "unknown field" in fields["colour"]
    assert all(p.file == str(f) for p in e.problems)


def test_incompatible_api_version_refused(tmp_path: Path) -> None:
    f = tmp_path / "old.yaml"
    f.write_text("id: old\nname: old\nversion: 1.0.0\napi_version: '2.0'\nentry: m:P\n")
    with pytest.raises(ManifestError, match=r"written for plugin API 2.0, this framework "
                                            r"implements 1.0"):
        load_manifest(f)


def test_discover_reports_invalid_and_keeps_the_rest(plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "good-one")
    write_plugin(plugin_dir, "good-two")
    (plugin_dir / "bad").mkdir()
    (plugin_dir / "bad" / "manifest.yaml").write_text("id: bad\nname: bad\nversion: [1]\n")
    (plugin_dir / "bomb.yaml").write_text(BOMB)
    (plugin_dir / "beside.yaml").write_text(
        "id: beside\nname: beside\nversion: 0.1.0\nentry: beside_code:FxPlugin\n")
    (plugin_dir / "beside_code.py").write_text("")
    (plugin_dir / "nocode.yaml").write_text(
        "id: nocode\nname: nocode\nversion: 0.1.0\nentry: missing_mod:X\n")
    report = discover_plugins(plugin_dir)
    assert sorted(d.name for d in report.found) == ["beside", "good-one", "good-two"]
    beside = next(d for d in report.found if d.name == "beside")
    assert beside.root == plugin_dir and beside.source == "directory"
    errors = sorted(str(e) for e in report.invalid)
    assert len(errors) == 3
    assert any("'bad'" in e and "bad/manifest.yaml" in e and "version" in e for e in errors)
    assert any("bomb.yaml" in e and "aliases" in e for e in errors)
    assert any("nocode.yaml" in e and "module 'missing_mod' not found" in e for e in errors)


def test_plugin_dirs_default_env_and_configured(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    dirs = plugin_dirs([b], env={"KSA_PLUGIN_PATH": f"{a}:{b}"})
    assert dirs == [Path("/etc/kubestack-ai/plugins"), a, b]
    assert plugin_dirs(env={}, include_default=False) == []
