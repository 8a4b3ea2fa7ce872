"""docs/troubleshooting.md (the README links it) quotes what this project prints: each quoted
message is produced here, by the code path the section names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def section() -> str:
    return (ROOT / "docs" / "troubleshooting.md").read_text()


def test_a_plugin_that_fails_to_load_is_named_with_its_file_and_field(tmp_path: Path) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "plugin.yaml").write_text('id: broken\nname: Broken\nversion: 1.0.0\ntype: middleware\n'
                                   'api_version: "1.0"\nentry: plugin:Nope\n')
    (d / "plugin.py").write_text("import nosuchmodule\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    # loaded (so found broken) when plugins are used: `ksa plugin list` reads manifests only
    p = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "--plugin-dir", str(tmp_path),
                        "diagnose", "broken", "127.0.0.1:1"], capture_output=True, text=True,
                       timeout=60,
                       env={**env, "KSA_HOME": str(tmp_path)})
    line = f"ksa: warning: plugin 'broken' ({d / 'plugin.yaml'}): entry: module 'nosuchmodule' does not exist"
    assert line in p.stderr.splitlines(), p.stderr
    quoted = line.replace(str(d), "/etc/kubestack-ai/plugins/broken")
    assert quoted in section()


def test_a_plugin_others_can_write_is_refused_with_the_fix(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    d.mkdir()
    (d / "plugin.yaml").write_text('id: shared\nname: Shared\nversion: 1.0.0\n'
                                   'type: middleware\napi_version: "1.0"\nentry: plugin:P\n')
    (d / "plugin.py").write_text("P = None\n")
    (d / "plugin.py").chmod(0o666)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    p = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "--plugin-dir", str(tmp_path),
                        "plugin", "list"], capture_output=True, text=True, timeout=60,
                       env={**env, "KSA_HOME": str(tmp_path)})
    line = (f"ksa: warning: plugin 'shared' ({d / 'plugin.yaml'}): permissions: "
            f"{d / 'plugin.py'} is writable by group and others: run `chmod go-w "
            f"{d / 'plugin.py'}`")
    assert line in p.stderr.splitlines(), p.stderr
    assert line.replace(str(d), "/etc/kubestack-ai/plugins/shared") in section()


def test_each_quoted_worker_message_is_the_code_s() -> None:
    src = "\n".join(p.read_text() for p in (ROOT / "kubestack_ai").rglob("*.py"))
    text = section()
    for quoted, code in [
        ("cannot be loaded: ...", 'cannot be loaded: {e}"'),
        ("refused: plugin 'x' is disabled", 'error=f"refused: {refusal}"'),
        ("stopped at the soft time limit", '"stopped at the soft time limit"'),
        ("killed at the hard time limit (40 s): TimeLimitExceeded",
         'f"killed at the hard time limit ({spec.hard_limit:g} s): "'),
        ("MemoryError: above the 1024 MB memory cap",
         'f"MemoryError: above the {config.memory_limit_mb} MB memory cap"'),
        ("(--no-audit runs it without a record)", '"(--no-audit runs it without a record)"'),
        ("--force runs it anyway", '--force runs it anyway"'),
    ]:
        assert quoted in text, quoted
        assert code in src, code
