"""Loading external plugins: each bad plugin is refused with an error naming it and its
file, and every other plugin still loads and serves."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from kubestack_ai.plugins import (
    ConfigError,
    DependencyCycleError,
    DependencyError,
    PluginConfig,
    PluginManager,
    PluginState,
    PluginTimeoutError,
    Timeouts,
    builtin_ids,
)
from kubestack_ai.plugins.importer import NAMESPACE

from .util import EXAMPLES, serves, write_plugin


def load(m: PluginManager, *dirs: Path, **kw: object) -> list[str]:
    return [str(e) for e in m.load_external(list(dirs), entry_points=False, **kw)]


def one(errors: list[str], *needles: str) -> str:
    hits = [e for e in errors if all(n in e for n in needles)]
    assert len(hits) == 1, (needles, errors)
    return hits[0]


def test_good_plugins_load_register_and_serve(manager: PluginManager, plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "alpha")
    write_plugin(plugin_dir, "beta", "2.1.0", requires=("alpha >= 1.0", "tcp-diagnostics"))
    assert load(manager, plugin_dir, EXAMPLES) == []
    e = manager.registry.entry("beta")
    assert e.source == "directory" and e.extra["location"] == str(plugin_dir / "beta/plugin.yaml")
    assert manager.registry.entry("http-diagnostics").state is PluginState.LOADED
    assert serves(manager, "alpha") == "1.0.0" and serves(manager, "beta") == "2.1.0"
    # fresh, unique module names: nothing of ours pollutes the plain module namespace
    mod = type(e.plugin).__module__
    assert mod.startswith(f"{NAMESPACE}.beta_") and mod.endswith(".plugin")
    assert "plugin" not in sys.modules


def test_missing_module_raising_module_and_non_plugin(manager: PluginManager,
                                                      plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "good")
    write_plugin(plugin_dir, "no-module", entry="nowhere:FxPlugin")
    (plugin_dir / "no-module" / "nowhere.py").write_text("import not_installed_dep_xyz\n")
    write_plugin(plugin_dir, "raises", top="raise RuntimeError('boom at import')")
    write_plugin(plugin_dir, "not-plugin", entry="plugin:VERSION")
    write_plugin(plugin_dir, "not-class", top="class Other:\n    pass",
                 entry="plugin:Other")
    write_plugin(plugin_dir, "no-attr", entry="plugin:Missing")
    errors = load(manager, plugin_dir)
    base = str(plugin_dir)
    one(errors, "'no-module'", f"{base}/no-module/plugin.yaml",
        "module 'not_installed_dep_xyz' does not exist")
    one(errors, "'raises'", f"{base}/raises/plugin.yaml",
        "importing plugin:FxPlugin raised RuntimeError: boom at import")
    one(errors, "'not-plugin'", f"{base}/not-plugin/plugin.yaml",
        "plugin:VERSION is a str, not a Plugin class or factory")
    one(errors, "'not-class'", "plugin:Other is class Other, which is not a subclass of "
        "plugins.Plugin")
    one(errors, "'no-attr'", "plugin:Missing: no such object")
    assert len(errors) == 5
    assert manager.registry.ids() == [*builtin_ids(), "good"]
    assert serves(manager, "good") == "1.0.0"


def test_hanging_init_hits_the_sandbox_deadline(manager: PluginManager,
                                                plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "hangs", init="time.sleep(30)  # ignores its deadline")
    write_plugin(plugin_dir, "fine")
    slow = PluginConfig(timeouts=Timeouts(init=0.3))
    assert load(manager, plugin_dir, configs={"hangs": slow}) == []
    t0 = time.perf_counter()
    failures = manager.start_all()
    assert time.perf_counter() - t0 < 3
    assert [f.plugin_id for f in failures] == ["hangs"]
    err = failures[0].error
    assert isinstance(err, PluginTimeoutError)
    assert str(err) == (f"plugin 'hangs' init: timed out after 0.3s "
                        f"({plugin_dir}/hangs/plugin.yaml)")
    assert manager.registry.get_state("hangs") is PluginState.FAILED
    assert serves(manager, "fine") == "1.0.0"


def test_dependency_cycle_named_others_load(manager: PluginManager, plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "cyc-a", requires=("cyc-b",))
    write_plugin(plugin_dir, "cyc-b", requires=("cyc-c >= 1.0",))
    write_plugin(plugin_dir, "cyc-c", requires=("cyc-a",))
    write_plugin(plugin_dir, "needs-cycle", requires=("cyc-a",))
    write_plugin(plugin_dir, "free")
    errs = manager.load_external([plugin_dir], entry_points=False)
    cycles = [e for e in errs if isinstance(e, DependencyCycleError)]
    assert {e.plugin_id for e in cycles} == {"cyc-a", "cyc-b", "cyc-c"}
    assert "dependency cycle: cyc-a -> cyc-b -> cyc-c -> cyc-a" in str(cycles[0])
    assert all(e.location.endswith(f"{e.plugin_id}/plugin.yaml") for e in cycles)
    one([str(e) for e in errs], "'needs-cycle'", "requires cyc-a, which was refused")
    assert manager.registry.ids() == [*builtin_ids(), "free"]
    assert serves(manager, "free") == "1.0.0"


def test_version_conflict_and_missing_dependency(manager: PluginManager,
                                                 plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "base-lib", "1.4.0")
    write_plugin(plugin_dir, "wants-new", requires=("base-lib >= 2.0, < 3",))
    write_plugin(plugin_dir, "wants-tcp2", requires=("tcp-diagnostics >= 2.0.0",))
    write_plugin(plugin_dir, "wants-ghost", requires=("ghost-plugin >= 1.0",))
    write_plugin(plugin_dir, "happy", requires=("base-lib ~= 1.2",))
    errs = manager.load_external([plugin_dir], entry_points=False)
    assert all(isinstance(e, DependencyError) for e in errs)
    text = [str(e) for e in errs]
    one(text, f"plugin 'wants-new' ({plugin_dir}/wants-new/plugin.yaml)",
        "requires base-lib<3,>=2.0 but base-lib 1.4.0 is installed")
    one(text, "'wants-tcp2'", "requires tcp-diagnostics>=2.0.0 but tcp-diagnostics 1.0.0")
    one(text, "'wants-ghost'", "requires ghost-plugin>=1.0", "not installed")
    assert len(errs) == 3
    assert manager.registry.ids() == [*builtin_ids(), "base-lib", "happy"]
    assert serves(manager, "happy") == "1.0.0"


def test_two_plugins_with_one_id(manager: PluginManager, tmp_path: Path) -> None:
    d1, d2 = tmp_path / "one", tmp_path / "two"
    write_plugin(d1, "twin", "1.0.0")
    write_plugin(d2, "twin", "9.0.0")
    write_plugin(d2, "tcp-diagnostics", folder="shadow")  # a builtin's id
    write_plugin(d2, "other")
    errs = load(manager, d1, d2)
    one(errs, "'twin'", f"{d2}/twin/plugin.yaml", f"already provided by {d1}/twin/plugin.yaml")
    one(errs, "'tcp-diagnostics'", f"{d2}/shadow/plugin.yaml", "already provided by builtin")
    assert len(errs) == 2
    assert serves(manager, "twin") == "1.0.0" and serves(manager, "other") == "1.0.0"


def test_manifest_and_code_must_agree(manager: PluginManager, plugin_dir: Path) -> None:
    d = write_plugin(plugin_dir, "liar", "1.0.0")
    (d / "plugin.yaml").write_text((d / "plugin.yaml").read_text().replace("1.0.0", "1.2.0"))
    write_plugin(plugin_dir, "future", api="1.9")
    errs = load(manager, plugin_dir)
    one(errs, "'liar'", "version: the manifest says 1.2.0, the plugin's info() says 1.0.0")
    one(errs, "'future'", "written for plugin API 1.9, this framework implements 1.0")


def test_config_schema_fills_defaults_and_refuses_bad_config(manager: PluginManager,
                                                             plugin_dir: Path) -> None:
    schema = ("config_schema:\n  type: object\n  properties:\n"
              "    retries: {type: integer, minimum: 0, default: 3}\n"
              "    mode: {type: string, enum: [fast, safe], default: safe}\n")
    write_plugin(plugin_dir, "schemed", manifest_extra=schema)
    write_plugin(plugin_dir, "misconfigured", manifest_extra=schema)
    bad = PluginConfig(options={"retries": -1, "mode": "reckless"})
    assert load(manager, plugin_dir, configs={"misconfigured": bad}) == []
    failures = manager.start_all()
    assert [f.plugin_id for f in failures] == ["misconfigured"]
    assert isinstance(failures[0].error, ConfigError)
    assert str(failures[0].error) == (
        "plugin 'misconfigured': config does not match config_schema: options.mode: "
        "'reckless' is not one of ['fast', 'safe']; options.retries: -1 is less than the "
        f"minimum of 0 ({plugin_dir}/misconfigured/plugin.yaml)")
    r = manager.diagnose(target_of("schemed"))
    assert r.metrics["options"] == {"retries": 3, "mode": "safe"}


def target_of(pid: str):
    from .util import target

    return target(pid)


@pytest.mark.parametrize("layout", ["beside", "subfolder-manifest"])
def test_both_directory_layouts(manager: PluginManager, plugin_dir: Path, layout: str) -> None:
    if layout == "beside":
        write_plugin(plugin_dir, "lay", folder=".")
        (plugin_dir / "plugin.yaml").rename(plugin_dir / "lay.yaml")
    else:
        d = write_plugin(plugin_dir, "lay")
        (d / "plugin.yaml").rename(d / "manifest.yaml")
    assert load(manager, plugin_dir) == []
    assert serves(manager, "lay") == "1.0.0"


def test_required_builtin_is_loaded_first(plugin_dir: Path) -> None:
    m = PluginManager()  # no builtins loaded yet
    write_plugin(plugin_dir, "on-tcp", requires=("tcp-diagnostics >= 1",))
    assert m.load_external([plugin_dir], entry_points=False) == []
    assert m.registry.ids() == ["tcp-diagnostics", "on-tcp"]  # only the required builtin
    assert serves(m, "on-tcp") == "1.0.0"


def test_bad_manifests_beside_good_plugins(manager: PluginManager, plugin_dir: Path) -> None:
    from .test_manifest import BOMB

    write_plugin(plugin_dir, "good")
    for name, text in {"malformed": "id: malformed\nname: [oops\n", "bomb": BOMB,
                       "wrong-types": "id: wrong-types\nname: {a: 1}\nversion: 1.0.0\n"
                                      "capabilities: 7\nentry: plugin:FxPlugin\n"}.items():
        (plugin_dir / name).mkdir()
        (plugin_dir / name / "plugin.yaml").write_text(text)
    t0 = time.perf_counter()
    errors = load(manager, plugin_dir)
    assert time.perf_counter() - t0 < 2
    one(errors, f"{plugin_dir}/malformed/plugin.yaml", "invalid YAML")
    one(errors, f"{plugin_dir}/bomb/plugin.yaml", "aliases (*a) are not allowed")
    one(errors, "plugin 'wrong-types'", f"{plugin_dir}/wrong-types/plugin.yaml",
        "name: Input should be a valid string", "capabilities: Input should be a valid tuple")
    assert len(errors) == 3
    assert serves(manager, "good") == "1.0.0"


def test_load_all_uses_plugin_path(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(plugin_dir, "from-env")
    monkeypatch.setenv("KSA_PLUGIN_PATH", str(plugin_dir))
    m = PluginManager()
    assert m.load_all(entry_points=False) == []
    assert m.registry.ids() == [*builtin_ids(), "from-env"]
    assert serves(m, "from-env") == "1.0.0"
