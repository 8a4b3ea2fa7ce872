"""Which plugins are isolated, what is refused, and a machine without namespaces (as in
Docker with its default seccomp profile): still a host with seccomp and rlimits."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.plugins import PluginConfig
from kubestack_ai.plugins.isolation import describe
from kubestack_ai.workers.catalog import PluginSpec
from kubestack_ai.workers.runtime import Runtime


def run(rt: Runtime, attack: str) -> dict[str, Any]:
    return rt.diagnose(str(uuid.uuid4()), "hostile",
                       {"name": f"p-{attack}", "endpoints": ["127.0.0.1:9"],
                        "options": {"attack": attack}}, None, True, None)


NO_NAMESPACES = """
import errno, json, os, sys
import pyseccomp
f = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
f.add_rule(pyseccomp.ERRNO(errno.EPERM), "unshare")   # as Docker's default profile does
f.load()
from kubestack_ai.plugins import MiddlewareTarget, PluginConfig, Timeouts
from kubestack_ai.plugins.isolation import HostPool, IsolationRefused, describe, isolated
from kubestack_ai.plugins.isolation import PluginRef
out = {"describe": describe("hostile-diagnostics", PluginConfig(), False)}
cfg = PluginConfig(timeouts=Timeouts(connect=2, diagnose=3, grace=1))
ref = PluginRef("hostile-diagnostics", "path", sys.argv[1], os.path.dirname(sys.argv[1]))
pool = HostPool()
for attack in ("segfault", "exec"):
    t = MiddlewareTarget(type="hostile", name=attack, endpoints=("127.0.0.1:9",),
                         options={"attack": attack})
    out[attack] = pool.run("diagnose", ref, cfg, 0, t).model_dump(mode="json")
pool.close()
os.environ["KSA_ISOLATION"] = "strict"
try:
    isolated("hostile-diagnostics", cfg, False)
except IsolationRefused as e:
    out["strict"] = str(e)
print(json.dumps(out))
"""


def test_where_namespaces_are_refused_a_host_still_contains_a_crash_and_denies_exec(
        ) -> None:
    """unshare(2) denied with EPERM by a seccomp filter on the whole process tree, as in
    Docker with its default profile: the kernel refuses namespaces, for real."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    manifest = Path(__file__).parent / "plugins" / "hostile" / "plugin.yaml"
    p = subprocess.run([sys.executable, "-c", NO_NAMESPACES, str(manifest)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    layers_ = out["describe"]["layers"]
    assert layers_["namespaces"] == ("missing: namespaces refused by the kernel (unshare: "
                                     "Operation not permitted)")
    assert layers_["seccomp"].startswith("active") and layers_["process"].startswith("active")
    assert out["segfault"]["outcome"] == "killed"
    assert out["segfault"]["errors"]["_run"] == ("the plugin host crashed (SIGSEGV, "
                                                 "segmentation fault)")
    assert out["exec"]["errors"]["attack"].startswith("PermissionError: [Errno 1]")
    assert "filesystem" not in out["exec"]["resources"]["isolation"]
    assert "seccomp" in out["exec"]["resources"]["isolation"]
    assert out["strict"].startswith("plugin 'hostile-diagnostics': KSA_ISOLATION=strict and "
                                    "this machine lacks namespaces (namespaces refused by "
                                    "the kernel (unshare: Operation not permitted))")
    assert out["strict"].endswith("unset KSA_ISOLATION to run with the layers there are")


def test_isolation_none_for_an_external_plugin_needs_the_operators_word(
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = runtime.specs["hostile"]
    cfg = spec.config.model_copy(update={"isolation": "none"})
    monkeypatch.setitem(runtime.specs, "hostile", PluginSpec(spec.plugin_id, spec.mtype, cfg,  # type: ignore[index]
                                                              spec.categories))
    env = run(runtime, "shadow")
    assert env["result"] is None
    assert ("isolation: none refused for an external plugin (rule: external plugin code "
            "runs in a plugin host); allow it with KSA_ISOLATION_ALLOW_NONE="
            "hostile-diagnostics") in env["error"]


def test_builtins_stay_in_the_worker_unless_configured() -> None:
    assert describe("redis-diagnostics", PluginConfig(), True) == {"mode": "in the worker"}
    d = describe("redis-diagnostics", PluginConfig(isolation="process"), True)
    assert d["mode"] == "plugin host"


def test_a_builtin_configured_isolated_diagnoses_real_redis() -> None:
    from kubestack_ai.plugins import MiddlewareTarget
    from kubestack_ai.plugins.isolation import HostPool, locate
    from tests.conftest import port_open, require

    require(port_open("127.0.0.1", 6379), "redis on 127.0.0.1:6379")
    pool = HostPool()
    try:
        t = MiddlewareTarget(type="redis", endpoints=("127.0.0.1:6379",))
        r = pool.run("diagnose", locate("redis-diagnostics", True),
                     PluginConfig(isolation="process"), 0, t)
        assert r.outcome == "completed" and not r.errors, r.errors
        assert "used_memory" in r.metrics
        assert r.resources is not None and r.resources["peak_rss_mb"] > 0
    finally:
        pool.close()


def test_a_reload_or_a_config_change_replaces_the_host(runtime: Runtime) -> None:
    env = run(runtime, "child")
    key = ("hostile-diagnostics", "hostile:p-child")
    first = runtime.hosts.hosts[key]
    assert run(runtime, "child")["pid"] == env["pid"]
    assert runtime.hosts.hosts[key] is first  # warm
    runtime.store.call("request_reload", lambda s: s.request_reload("hostile-diagnostics"))
    run(runtime, "child")
    second = runtime.hosts.hosts[key]
    assert second is not first and not first.alive
    runtime.store.call("set_plugin_state", lambda s: s.set_plugin_state(
        "hostile-diagnostics", config={"memory_limit_mb": 300}))
    run(runtime, "child")
    third = runtime.hosts.hosts[key]
    assert third is not second and third.config.memory_limit_mb == 300


def test_an_action_runs_in_the_host_and_the_worker_keeps_the_audit_log(
        runtime: Runtime) -> None:
    target = {"name": "act", "endpoints": ["127.0.0.1:9"], "options": {"attack": "shadow"}}
    out = runtime.action(str(uuid.uuid4()), "tester", "hostile", target, "ping", {}, (), False)
    assert out["outcome"] == "succeeded" and out["audit_error"] is None, out
    assert out["result"] == {"pong": True, "password": "<redacted>"}
    assert out["who"] == "tester" and out["target"] == "hostile:act"
    crash = runtime.action(str(uuid.uuid4()), "tester", "hostile", target, "crash", {}, (),
                           False)
    assert crash["outcome"] == "killed"
    assert crash["error"] == "the plugin host crashed (SIGSEGV, segmentation fault)"
    records, err = runtime.store.call("audit", lambda s: s.audit_log(limit=10))
    assert err is None
    by_id = {r.id: r for r in records}
    assert by_id[crash["audit_id"]].outcome == "killed"
    assert by_id[out["audit_id"]].outcome == "succeeded"
    assert by_id[out["audit_id"]].who == "tester"


def test_the_host_is_told_to_hide_ksa_home_secrets_and_other_plugins(tmp_path: Path) -> None:
    from kubestack_ai.plugins.isolation import PluginRef
    from kubestack_ai.plugins.isolation.client import hidden_paths

    plugins = tmp_path / "plugins"
    for name in ("mine", "theirs"):
        (plugins / name).mkdir(parents=True)
    (tmp_path / "home").mkdir()
    (tmp_path / "secret-dir").mkdir()
    env = {"KSA_HOME": str(tmp_path / "home"), "KSA_SECRET_DIRS": str(tmp_path / "secret-dir"),
           "KSA_PLUGIN_PATH": str(plugins)}
    ref = PluginRef("mine", "path", str(plugins / "mine" / "plugin.yaml"), str(plugins / "mine"))
    hide = hidden_paths(ref, env)
    assert str(tmp_path / "home") in hide and str(tmp_path / "secret-dir") in hide
    assert str(plugins / "theirs") in hide and str(plugins / "mine") not in hide
    assert "/etc/shadow" in hide


def test_plugin_info_says_where_a_plugin_runs_and_each_layer() -> None:
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "KSA_PLUGIN_PATH": str(root / "examples" / "plugins")}
    env.pop("KSA_ISOLATION", None)
    p = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "plugin", "info",
                        "http-diagnostics", "--json"], capture_output=True, text=True,
                       env=env, timeout=60, cwd=root)
    assert p.returncode == 0, p.stderr
    iso = json.loads(p.stdout)["isolation"]
    assert iso["mode"] == "plugin host" and iso["strict"] is False
    assert list(iso["layers"]) == ["process", "namespaces", "network", "seccomp", "cgroups",
                                   "rlimits"]
    assert all(v.startswith(("active: ", "missing: ")) for v in iso["layers"].values())
    p = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "plugin", "info",
                        "redis-diagnostics"], capture_output=True, text=True, env=env,
                       timeout=60, cwd=root)
    assert "\nisolation: in the worker\n" in p.stdout


def test_ksa_action_runs_an_external_plugins_action_in_its_host(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "KSA_HOME": str(tmp_path)}
    for k in ("KSA_ISOLATION", "KSA_DATABASE_URL", "KSA_PLUGIN_PATH"):
        env.pop(k, None)

    def action(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "--plugin-dir",
                               str(root / "tests" / "isolation" / "plugins"), "action",
                               "hostile", "127.0.0.1:9", name], capture_output=True,
                              text=True, env=env, timeout=60, cwd=root)

    p = action("crash")  # in the ksa process itself this would be a segfault
    assert "crash KILLED  (hostile-diagnostics 1.0.0" in p.stdout, p.stdout + p.stderr
    assert "error: the plugin host crashed (SIGSEGV, segmentation fault)" in p.stdout
    assert "audit #1" in p.stdout


def test_plugin_info_of_a_builtin_applies_its_stored_config(tmp_path: Path) -> None:
    """A builtin configured ``isolation: process`` in storage runs in a plugin host in
    every worker (the stored config over its own); ``ksa plugin info`` says so too."""
    import json
    import os
    import subprocess
    import sys

    from kubestack_ai.storage import Store

    root = Path(__file__).resolve().parents[2]
    url = f"sqlite:///{tmp_path / 'ksa.db'}"
    store = Store(url)
    store.migrate()
    store.set_plugin_state("tcp-diagnostics", config={"isolation": "process"})
    store.dispose()
    env = {**os.environ, "KSA_HOME": str(tmp_path), "KSA_DATABASE_URL": url}
    env.pop("KSA_ISOLATION", None)
    p = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "plugin", "info",
                        "tcp-diagnostics", "--json"], capture_output=True, text=True,
                       env=env, timeout=60, cwd=root)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["isolation"]["mode"] == "plugin host"
