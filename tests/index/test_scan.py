"""The scanner: each rule found with its file and line, nothing run."""

from __future__ import annotations

from pathlib import Path

from kubestack_ai.plugins.index.scan import scan_folder, scan_source

CODE = '''\
import os
import subprocess as sp
from os import system
import ctypes
import socket
import importlib

def run(target):
    sp.run(["ls"])
    system("id")
    os.execv("/bin/sh", ["sh"])
    eval("1")
    exec("x = 1")
    __import__("json")
    importlib.import_module("json")
    token = os.environ["TOKEN"]
    home = os.getenv("HOME")
    socket.create_connection(("example.com", 80))
    open("/etc/passwd", "w").write("x")
    open("state.json", "w").write("{}")
    open("notes.txt").read()
    with open(target.path, "a") as f:
        f.write("x")
    os.remove("/tmp/x")
'''


def test_each_rule_with_its_line() -> None:
    found = [(f["rule"], f["line"], f["detail"]) for f in scan_source(CODE, "plugin.py")]
    assert found == [
        ("process", 2, "imports subprocess"),
        ("process", 3, "imports os.system"),
        ("native", 4, "imports ctypes"),
        ("network", 5, "imports socket"),
        ("dynamic", 6, "imports importlib"),
        ("process", 9, "calls subprocess.run()"),
        ("process", 10, "calls os.system()"),
        ("process", 11, "calls os.execv()"),
        ("dynamic", 12, "calls eval()"),
        ("dynamic", 13, "calls exec()"),
        ("dynamic", 14, "calls __import__()"),
        ("dynamic", 15, "calls importlib.import_module()"),
        ("environment", 16, "reads os.environ"),
        ("environment", 17, "calls os.getenv()"),
        ("network", 18, "calls socket.create_connection()"),
        ("write", 19, "opens a path outside its folder for writing (open)"),
        ("write", 22, "opens a path outside its folder for writing (open)"),
        ("write", 24, "calls os.remove() on a path outside its folder"),
    ]


def test_cffi_path_writes_and_syntax_errors(tmp_path: Path) -> None:
    (tmp_path / "plugin.py").write_text(
        "import cffi\nfrom pathlib import Path\n\nPath('/var/x').write_text('1')\n"
        "Path('cache.txt').write_text('1')\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    (tmp_path / "requirements.txt").write_text("requests==2.19.0\nPyYAML==6.0\n")
    adv = {"requests": [{"id": "CVE-2018-18074", "affected": "<2.20.0",
                         "summary": "credentials sent on redirect"}]}
    rows = [(f["rule"], f["file"], f["line"], f["detail"]) for f in scan_folder(tmp_path, adv)]
    assert rows == [
        ("syntax", "broken.py", 1, "does not parse: invalid syntax"),
        ("native", "plugin.py", 1, "imports cffi"),
        ("write", "plugin.py", 4, "calls .write_text() on a path outside its folder"),
        ("vulnerable", "requirements.txt", 1,
         "requests 2.19.0: CVE-2018-18074 credentials sent on redirect"),
    ]


def test_a_builtin_plugin_reads_as_network_only() -> None:
    """The example plugin talks HTTP to its target and nothing else."""
    root = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "http-diagnostics"
    assert {f["rule"] for f in scan_folder(root)} == {"network"}
