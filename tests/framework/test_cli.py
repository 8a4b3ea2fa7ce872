"""The CLI, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import free_port


def ksa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True, text=True,
                          timeout=60)


def test_plugin_list_table_and_json():
    out = ksa("plugin", "list")
    assert out.returncode == 0, out.stderr
    header = out.stdout.splitlines()[0].split()
    assert header == ["ID", "VERSION", "TYPE", "MIDDLEWARE", "ENABLED", "GEN", "CONFIG", "STATE",
                      "SOURCE", "NAME"]
    assert "tcp-diagnostics" in out.stdout
    rows = json.loads(ksa("plugin", "list", "--json").stdout)
    tcp = next(r for r in rows if r["id"] == "tcp-diagnostics")
    assert tcp["state"] == "loaded" and tcp["source"] == "builtin"
    assert tcp["enabled"] is True and tcp["generation"] == 0 and tcp["config_overrides"] == {}
    assert tcp["categories"] == ["reachability", "latency"]


def test_plugin_info_and_unknown_id():
    out = ksa("plugin", "info", "tcp-diagnostics", "--json")
    assert json.loads(out.stdout)["middleware_type"] == "tcp"
    bad = ksa("plugin", "info", "nope")
    assert bad.returncode == 2
    assert bad.stderr.startswith("ksa: error: unknown plugin 'nope' (known: ")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_diagnose_exit_codes_and_json():
    ok = ksa("diagnose", "tcp", "127.0.0.1:6379", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "healthy"
    down = ksa("diagnose", "tcp", f"127.0.0.1:{free_port()}")
    assert down.returncode == 2
    assert "[CRIT] tcp.connection.unreachable" in down.stdout
    warn = ksa("diagnose", "tcp", "127.0.0.1:6379", "-t", "connect_ms_warning=0",
               "--category", "latency")
    assert warn.returncode == 1 and "tcp.latency.connect_slow" in warn.stdout


def test_diagnose_bad_input_gets_one_clear_line():
    unknown = ksa("diagnose", "nosuch", "127.0.0.1:1")
    assert unknown.returncode == 3
    line = unknown.stderr.strip()
    assert line.startswith("ksa: error: unknown middleware type 'nosuch' (known: ")
    assert "tcp" in line and len(line.splitlines()) == 1
    bad_ep = ksa("diagnose", "tcp", "127.0.0.1")
    assert bad_ep.stderr.strip() == ("ksa: error: invalid target: endpoints: Value error, "
                                     "endpoint '127.0.0.1' is not host:port")
    plain = ksa("diagnose", "tcp", "127.0.0.1:6379", "--password-ref", "hunter2")
    assert plain.returncode == 3 and "hunter2" not in plain.stderr
    assert "must be a secret reference" in plain.stderr
    cat = ksa("diagnose", "tcp", "127.0.0.1:6379", "--category", "nope")
    assert cat.returncode == 3
    assert "unknown categories nope (known: reachability, latency)" in cat.stdout
    thr = ksa("diagnose", "tcp", "127.0.0.1:6379", "-t", "no_such_threshold=5", "--json")
    assert thr.returncode == 3, thr.stdout + thr.stderr
    out = json.loads(thr.stdout)
    assert out["status"] == "unknown" and out["outcome"] == "failed" and out["findings"] == []
    assert out["errors"] == {"_run": "plugin 'tcp-diagnostics': unknown thresholds "
                                     "no_such_threshold (known: connect_ms_warning, "
                                     "latency_samples)"}


def test_log_level_debug_logs_to_stderr():
    out = ksa("--log-level", "debug", "diagnose", "tcp", f"127.0.0.1:{free_port()}")
    assert out.returncode == 2
    assert "DEBUG kubestack_ai.plugins.manager: connect 127.0.0.1:" in out.stderr
    quiet = ksa("diagnose", "tcp", f"127.0.0.1:{free_port()}")
    assert quiet.stderr == ""


def test_help_imports_no_framework():
    """``ksa --help`` builds every command's parser without the framework (pydantic, the
    models, PyYAML): a command module imports it when its command runs (issue 15)."""
    code = ("import sys; from kubestack_ai.ksa.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('pydantic', 'yaml', 'kubestack_ai.plugins', 'sqlalchemy', "
            "'celery') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout


def test_plugin_list_reads_the_catalogue_and_the_store_without_the_framework(tmp_path,
                                                                            monkeypatch):
    """With no external plugin to find, ``ksa plugin list`` prints the builtin catalogue
    and the stored state (read with sqlite3) and imports neither plugin code, pydantic
    nor SQLAlchemy (issue 15: start-up); the rows are what loading the plugins gives."""
    import os

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KSA_")},
           "KSA_HOME": str(tmp_path), "KSA_PLUGIN_PATH": str(tmp_path / "none")}
    run = [sys.executable, "-m", "kubestack_ai.ksa"]
    off = subprocess.run([*run, "plugin", "disable", "redis-diagnostics"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert off.returncode == 0, off.stderr
    code = ("import sys; from kubestack_ai.ksa.cli import main; rc = main(['plugin', 'list', "
            "'--json']); print(sorted(m for m in ('pydantic', 'yaml', 'sqlalchemy', "
            "'importlib.metadata', 'kubestack_ai.plugins.base', 'kubestack_ai.plugins.redis') "
            "if m in sys.modules), file=sys.stderr); sys.exit(rc)")
    fast = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert fast.returncode == 0 and fast.stderr.strip() == "[]", fast.stderr
    rows = {r["id"]: r for r in json.loads(fast.stdout)}
    assert (rows["redis-diagnostics"]["enabled"], rows["redis-diagnostics"]["generation"]) == (
        False, 1)
    # the same rows as a listing that loads every plugin (an external one makes it load)
    from kubestack_ai.ksa.commands.plugin import _describe
    from kubestack_ai.ksa.commands.plugin_state import stored_states
    from kubestack_ai.plugins import PluginManager

    m = PluginManager()
    assert m.load_builtins() == []
    monkeypatch.setenv("KSA_HOME", str(tmp_path))
    monkeypatch.delenv("KSA_DATABASE_URL", raising=False)
    assert rows == {i: _describe(m, i, stored_states()) for i in m.registry.ids()}


def test_diagnose_imports_only_its_own_plugin():
    """``ksa diagnose tcp`` loads the tcp plugin only: no other builtin's code, and no
    jsonschema when no target option is given (issue 15: start-up)."""
    code = ("import sys; from kubestack_ai.ksa.cli import main; rc = main(['diagnose', 'tcp', "
            "'127.0.0.1:1', '--no-store']); print(sorted(m for m in sys.modules if m in "
            "('jsonschema', 'kubestack_ai.plugins.redis', 'kubestack_ai.plugins.mysql', "
            "'kubestack_ai.plugins.kafka')), file=sys.stderr); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and out.stderr.strip() == "[]", out.stdout + out.stderr


def test_an_unknown_type_names_the_closest_known_one():
    """Issue 25.6: ``unknown middleware type 'reddis' (known: ...)`` without the match."""
    typo = ksa("diagnose", "reddis", "127.0.0.1:1")
    assert typo.returncode == 3
    assert typo.stderr.startswith("ksa: error: unknown middleware type 'reddis', did you mean "
                                  "'redis'? (known: ")
