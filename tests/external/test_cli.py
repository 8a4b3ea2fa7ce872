"""``ksa plugin list|info|validate|reload`` and ``ksa diagnose`` with external plugins,
run as a user runs them: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .test_entry_points import make_dist
from .util import EXAMPLES, REPO, write_plugin


def ksa(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("KSA_PLUGIN_PATH", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], check=False,
                          capture_output=True, text=True, cwd=REPO,
                          env={**base, **(env or {})}, timeout=60)


def test_list_shows_builtin_directory_and_entry_point(tmp_path: Path) -> None:
    site = make_dist(tmp_path / "site")
    broken = tmp_path / "more"
    write_plugin(broken, "explodes", top="raise RuntimeError('boom')")
    p = ksa("plugin", "list", "--plugin-dir", str(broken),
            env={"KSA_PLUGIN_PATH": str(EXAMPLES), "PYTHONPATH": str(site)})
    assert p.returncode == 0, p.stderr
    rows = {line.split()[0]: line.split() for line in p.stdout.splitlines()[1:]}
    # ID VERSION TYPE MIDDLEWARE ENABLED GEN CONFIG STATE SOURCE NAME
    assert rows["tcp-diagnostics"][1:4] + rows["tcp-diagnostics"][7:9] == [
        "1.0.0", "middleware", "tcp", "loaded", "builtin"]
    # external plugins are listed from their manifests: their code is not run, so a
    # plugin whose import raises is found here and refused when it is used
    assert rows["http-diagnostics"][1:4] + rows["http-diagnostics"][7:9] == [
        "1.0.0", "middleware", "-", "found", "directory"]
    assert rows["ep-plugin"][8] == "entry-point"
    assert rows["explodes"][7] == "found"
    assert "boom" not in p.stderr
    p = ksa("plugin", "validate", str(broken / "explodes"))
    assert p.returncode == 1
    assert "entry: importing plugin:FxPlugin raised RuntimeError: boom" in p.stdout


def test_info_shows_the_manifest() -> None:
    p = ksa("--plugin-dir", str(EXAMPLES), "plugin", "info", "http-diagnostics", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["source"] == "directory" and d["location"].endswith("http-diagnostics/plugin.yaml")
    assert d["manifest"]["entry"] == "plugin:HttpPlugin"
    assert d["manifest"]["license"] == "Apache-2.0"
    assert d["state"] == "found" and "categories" not in d  # its code is not run for info
    text = ksa("plugin", "info", "http-diagnostics", "--plugin-dir", str(EXAMPLES)).stdout
    assert "manifest (" in text and "  entry: plugin:HttpPlugin" in text
    assert ("actions and categories: declared by its code, not run here (`ksa plugin "
            f"validate {EXAMPLES / 'http-diagnostics'}` loads it)") in text


def test_validate_ok_and_every_problem_at_once(tmp_path: Path) -> None:
    p = ksa("plugin", "validate", str(EXAMPLES / "http-diagnostics"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.strip() == ("ok: http-diagnostics 1.0.0 (api 1.0, categories: "
                                "availability, latency, tls)")
    p = ksa("plugin", "validate", str(EXAMPLES))  # a plugins directory: each plugin in it
    assert p.returncode == 0 and p.stdout.startswith("ok: http-diagnostics 1.0.0"), p.stdout
    d = tmp_path / "sloppy"
    d.mkdir()
    (d / "plugin.yaml").write_text(
        "id: sloppy\nname: 3\nversion: one\nrequires: [tcp-diagnostics >= 5]\n"
        "entry: plugin:Sloppy\nconfig_schema: {type: object, properties: {n: "
        "{type: integer, default: nope}}}\n")
    (d / "plugin.py").write_text("class Sloppy:\n    pass\n")
    p = ksa("plugin", "validate", str(d))
    assert p.returncode == 1
    f = d / "plugin.yaml"
    lines = p.stdout.splitlines()
    assert f"error: {f}: name: Input should be a valid string (got 3)" in lines
    assert f"error: {f}: version: 'one' is not a version (PEP 440, e.g. 1.0.0)" in lines
    assert any(line.startswith(f"error: {f}: entry: plugin:Sloppy is class Sloppy, which is "
                               "not a subclass") for line in lines), lines
    assert "3 problem(s)" in p.stderr


def test_validate_reports_config_defaults_and_requires(tmp_path: Path) -> None:
    d = write_plugin(tmp_path, "strict", requires=("tcp-diagnostics >= 5",),
                     manifest_extra="config_schema: {type: object, properties: "
                                    "{n: {type: integer, default: nope}}}\n")
    p = ksa("plugin", "validate", str(d / "plugin.yaml"))
    assert p.returncode == 1
    assert (f"error: {d}/plugin.yaml: requires[0]: requires tcp-diagnostics >= 5 but "
            "tcp-diagnostics 1.0.0 is installed") in p.stdout
    assert "config_schema: the defaults do not validate" in p.stdout
    assert "options.n: 'nope' is not of type 'integer'" in p.stdout


def test_reload_and_failed_reload(tmp_path: Path) -> None:
    p = ksa("plugin", "reload", "http-diagnostics", "--plugin-dir", str(EXAMPLES))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("reloaded http-diagnostics: 1.0.0 -> 1.0.0 from ")
    bad = write_plugin(tmp_path / "bad", "http-diagnostics", "1.1.0", mtype="http",
                       init="raise RuntimeError('cannot start')")
    p = ksa("plugin", "reload", "http-diagnostics", "--from", str(bad),
            "--plugin-dir", str(EXAMPLES))
    assert p.returncode == 1
    assert "reload to 1.1.0 (init) failed" in p.stderr
    assert "version 1.0.0 keeps serving" in p.stderr
    p = ksa("plugin", "reload", "nope", "--plugin-dir", str(EXAMPLES))
    assert p.returncode == 2 and "unknown plugin 'nope'" in p.stderr


def test_diagnose_with_an_external_plugin() -> None:
    import http.server
    import threading

    from .test_example_http import Handler

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        port = srv.server_address[1]
        p = ksa("--plugin-dir", str(EXAMPLES), "diagnose", "http", f"127.0.0.1:{port}",
                "-o", "path=/down", "--json")
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)
    r = json.loads(p.stdout)
    assert p.returncode == 2, p.stderr
    assert r["plugin_id"] == "http-diagnostics"
    assert [f["code"] for f in r["findings"]] == ["http.availability.unexpected_status"]
    assert r["findings"][0]["evidence"]["status"] == 503
