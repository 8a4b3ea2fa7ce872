"""Hostile plugins against the real isolated path (issue 21): each escape is stopped or
contained, the attempt is in the run's result and the stored run, the worker (this
process, running the task body) goes on, and a well-behaved plugin still diagnoses."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from kubestack_ai.plugins.isolation import probe
from kubestack_ai.workers.runtime import Runtime
from tests.conftest import require

from .conftest import OTHER_SECRET, OWN_SECRET

LAYERS = {layer.name: layer for layer in probe()}


def needs(*names: str) -> None:
    for n in names:
        require(LAYERS[n].active, f"isolation layer {n}: {LAYERS[n].detail}")


def attack(rt: Runtime, name: str, **opts: Any) -> dict[str, Any]:
    target = {"name": f"hostile-{name}", "endpoints": ["127.0.0.1:9"],
              "options": {"attack": name, **opts}}
    task_id = str(uuid.uuid4())
    env = rt.diagnose(task_id, "hostile", target, None, True, None)
    assert env["error"] is None, env
    stored, err = rt.store.call("get_run", lambda s: s.get_run(task_id))
    assert err is None and stored is not None
    assert stored.result.model_dump(mode="json") == env["result"], "stored as returned"
    return env


def still_fine(rt: Runtime, http_server: str) -> None:
    env = rt.diagnose(str(uuid.uuid4()), "http", {"endpoints": [http_server]}, None, True,
                      None)
    assert env["status"] == "healthy", env
    assert env["result"]["resources"]["isolation"]


def got(env: dict[str, Any]) -> str:
    return str(env["result"]["metrics"].get("got"))


def error(env: dict[str, Any]) -> str:
    return str(env["result"]["errors"].get("attack") or env["result"]["errors"].get("_run"))


def test_read_etc_shadow_sees_nothing(runtime: Runtime, http_server: str) -> None:
    needs("namespaces")
    env = attack(runtime, "shadow")
    assert got(env) == "read 0 bytes"  # /dev/null over it
    still_fine(runtime, http_server)


def test_read_store_file_is_hidden(runtime: Runtime, home: Path, http_server: str) -> None:
    needs("namespaces")
    assert (home / "ksa.db").is_file()
    env = attack(runtime, "store", path=str(home / "ksa.db"))
    assert error(env).startswith("FileNotFoundError"), env["result"]
    still_fine(runtime, http_server)


def test_other_targets_secret_neither_by_file_nor_by_reference(runtime: Runtime,
                                                               home: Path) -> None:
    needs("namespaces")
    env = attack(runtime, "secret_file", path=str(home / "secrets" / "other"))
    assert error(env).startswith("FileNotFoundError")
    env = attack(runtime, "secret_ref", ref="env:OTHER_TARGET_PASSWORD")
    assert "not granted to this plugin host" in error(env)
    assert OTHER_SECRET not in str(env)


def test_own_targets_secret_is_granted_and_env_is_empty(runtime: Runtime) -> None:
    target = {"name": "hostile-own", "endpoints": ["127.0.0.1:9"],
              "auth": {"password": "env:OWN_TARGET_PASSWORD"},
              "options": {"attack": "own_secret", "ref": "env:OWN_TARGET_PASSWORD"}}
    env = runtime.diagnose(str(uuid.uuid4()), "hostile", target, None, True, None)
    assert got(env) == f"resolved {len(OWN_SECRET)} chars"
    env = attack(runtime, "env")
    names = eval(got(env))  # a list of names: the host's environment
    assert not any(n.startswith("KSA_") or "PASSWORD" in n for n in names), names


def test_write_outside_tmp_is_refused(runtime: Runtime) -> None:
    needs("namespaces")
    plugin_dir = os.environ["KSA_PLUGIN_PATH"]
    env = attack(runtime, "write", path=f"{plugin_dir}/hostile/evil.py")
    assert error(env).startswith("OSError: [Errno 30] Read-only file system"), error(env)
    assert not Path(plugin_dir, "hostile", "evil.py").exists()


def test_execve_is_denied_by_seccomp(runtime: Runtime) -> None:
    needs("seccomp")
    env = attack(runtime, "exec")
    assert error(env).startswith("PermissionError: [Errno 1] Operation not permitted"), error(env)


def test_connect_to_the_broker_port_is_refused(runtime: Runtime, http_server: str) -> None:
    needs("network")
    env = attack(runtime, "connect", host="127.0.0.1", port=6379)
    assert "connection to 127.0.0.1:6379 refused by the plugin host's network policy" \
        in error(env)
    assert env["result"]["resources"]["refused_network"] == ["connect 127.0.0.1:6379"]
    still_fine(runtime, http_server)


def test_fork_bomb_is_capped(runtime: Runtime, http_server: str) -> None:
    needs("cgroups")
    env = attack(runtime, "fork", n=1000)
    text = got(env)
    assert text.startswith("forked ") and "BlockingIOError" in text, text
    assert int(text.split()[1].rstrip(",")) < 32
    assert env["result"]["resources"]["children_killed"] >= 1
    still_fine(runtime, http_server)


def test_allocating_4gb_fails_in_the_plugin(runtime: Runtime) -> None:
    env = attack(runtime, "alloc")
    assert error(env).startswith("MemoryError"), env["result"]


def test_spinning_cpu_costs_one_run(runtime: Runtime, http_server: str) -> None:
    env = attack(runtime, "spin")
    assert env["outcome"] == "timed_out", env["result"]
    assert env["result"]["resources"]["cpu_seconds"] > 0.2  # measured, on a busy machine too
    still_fine(runtime, http_server)


def test_segfault_costs_one_run(runtime: Runtime, http_server: str) -> None:
    pid = os.getpid()
    env = attack(runtime, "segfault")
    assert env["outcome"] == "killed"
    assert error(env) == "the plugin host crashed (SIGSEGV, segmentation fault)"
    assert env["pid"] == pid
    still_fine(runtime, http_server)
    env = attack(runtime, "shadow")  # a new host for the plugin
    assert got(env) == "read 0 bytes"


def test_os_exit_costs_one_run(runtime: Runtime) -> None:
    env = attack(runtime, "exit")
    assert env["outcome"] == "killed"
    assert error(env) == ("the plugin host exited with status 3 (plugin code ended the "
                          "process)")


def test_child_left_behind_is_killed(runtime: Runtime) -> None:
    env = attack(runtime, "child")
    assert got(env) == "forked 1"
    assert env["result"]["resources"]["children_killed"] == 1


def test_host_is_kept_warm(runtime: Runtime, http_server: str) -> None:
    still_fine(runtime, http_server)
    host = next(h for (pid, _), h in runtime.hosts.hosts.items() if pid == "http-diagnostics")
    still_fine(runtime, http_server)
    assert next(h for (pid, _), h in runtime.hosts.hosts.items()
                if pid == "http-diagnostics") is host


def test_a_forged_answer_costs_the_host(runtime: Runtime, http_server: str) -> None:
    env = attack(runtime, "forge")
    assert env["outcome"] == "failed"
    assert error(env) == "the plugin host answered with no valid result (killed)"
    assert env["plugin_id"] == "hostile-diagnostics"
    still_fine(runtime, http_server)


def test_health_check_runs_in_the_host(runtime: Runtime, http_server: str) -> None:
    env = runtime.health(str(uuid.uuid4()), "http", {"endpoints": [http_server]})
    assert env["status"] == "healthy", env
    assert env["result"]["categories"] == ["health"]
    assert env["result"]["resources"]["isolation"]


def test_a_host_that_cannot_answer_is_killed_at_its_hard_limit(runtime: Runtime,
                                                                http_server: str) -> None:
    env = attack(runtime, "regex")
    assert env["outcome"] == "killed"
    assert error(env) == "the plugin host overran its hard limit (4 s) and was killed"
    assert env["result"]["resources"]["wall_seconds"] >= 4
    still_fine(runtime, http_server)


def test_memory_past_the_cgroup_limit_costs_the_host(http_server: str) -> None:
    """Files in the host's private tmpfs mounts are memory RLIMIT_AS does not see: the
    cgroup's OOM killer ends the host, and the run says so."""
    needs("cgroups", "namespaces")
    from kubestack_ai.plugins import MiddlewareTarget, PluginConfig, Timeouts
    from kubestack_ai.plugins.isolation import HostPool, PluginRef

    manifest = Path(__file__).parent / "plugins" / "hostile" / "plugin.yaml"
    ref = PluginRef("hostile-diagnostics", "path", str(manifest), str(manifest.parent))
    cfg = PluginConfig(timeouts=Timeouts(connect=2, diagnose=10, grace=1), memory_limit_mb=160)
    t = MiddlewareTarget(type="hostile", name="oom", endpoints=("127.0.0.1:9",),
                         options={"attack": "tmpfs"})
    pool = HostPool()
    try:
        r = pool.run("diagnose", ref, cfg, 0, t)
    finally:
        pool.close()
    assert r.outcome == "killed"
    assert r.errors == {"_run": "the plugin host was killed at its memory limit (160 MB)"}
    assert r.resources is not None and r.resources["peak_rss_mb"] >= 150
