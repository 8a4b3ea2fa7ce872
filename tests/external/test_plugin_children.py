"""Whatever a plugin starts is ended with it (issue 20, item 3): a process forked by a
plugin's import or by one of its calls, or double-forked away as a daemon, does not
survive the call, nor ``ksa`` (run as a user runs it: a subprocess)."""

from __future__ import annotations

import os
from pathlib import Path

from .test_cli import ksa
from .util import write_plugin

# a child left running (Popen never waited), and a daemon double-forked into its own
# session (its parent waited, so it is reparented away from us)
SPAWN = '''\
def _spawn(tag):
    import os, pathlib, subprocess, time
    p = subprocess.Popen(["sleep", "300"])
    pathlib.Path({out!r}, tag + ".child").write_text(str(p.pid))
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:
            pathlib.Path({out!r}, tag + ".daemon").write_text(str(os.getpid()))
            time.sleep(300)
        os._exit(0)
    os.waitpid(first, 0)
    for _ in range(1000):  # up to 10 s on a loaded machine
        if pathlib.Path({out!r}, tag + ".daemon").exists():
            break
        time.sleep(0.01)
    return p
'''


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def pids(out: Path, tag: str) -> list[int]:
    return [int((out / f"{tag}.{kind}").read_text()) for kind in ("child", "daemon")]


def test_processes_started_by_a_plugins_import_end_with_the_import(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    d = write_plugin(tmp_path / "plugins", "forks-on-import",
                     top=SPAWN.format(out=str(out)) + "\n_KEEP = _spawn('import')\n")
    p = ksa("plugin", "validate", str(d), env={"KSA_HOME": str(tmp_path)})
    assert p.returncode == 0, p.stdout + p.stderr
    started = pids(out, "import")
    try:
        assert [pid for pid in started if alive(pid)] == []
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, 9)


def test_processes_started_by_a_plugin_call_end_with_the_call(tmp_path: Path) -> None:
    """An external plugin's calls run in its plugin host (issue 21): starting a program
    there is refused (seccomp: no exec) and visible in the result; nothing it started
    outlives the call (the host's own reaping: tests/isolation/test_hostile.py)."""
    out = tmp_path / "out"
    out.mkdir()
    d = write_plugin(tmp_path / "plugins", "forks-on-init",
                     top=SPAWN.format(out=str(out)), init="self._kept = _spawn('init')")
    p = ksa("--plugin-dir", str(d.parent), "diagnose", "fx-forks-on-init", "127.0.0.1:1",
            env={"KSA_HOME": str(tmp_path)})
    assert p.returncode == 3, p.stdout + p.stderr
    assert "PermissionError: [Errno 1] Operation not permitted: 'sleep'" in p.stdout
    assert list(out.iterdir()) == []  # nothing ran: no child, no daemon
